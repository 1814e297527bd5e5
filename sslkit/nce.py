r"""Instance discrimination: the memory bank, the non-parametric softmax and its NCE approximation.

Wu, Xiong, Yu, Lin, *Unsupervised feature learning via non-parametric instance
discrimination*, CVPR 2018. Every image ``i`` is its own class, represented by a unit
vector ``v_i`` in a memory bank. For an image's current feature ``f`` (unit norm)

.. math:: P(i \mid f) = \frac{\exp(v_i^\top f / \tau)}{Z}, \qquad Z = \sum_{j=1}^N \exp(v_j^\top f / \tau).

``Z`` costs N dot products per image; NCE replaces the N-way softmax by a binary
problem — is a vector the data's (the positive ``v_i``) or one of ``m`` noise samples
drawn uniformly, ``P_n = 1/N``? — with ``h(i, f) = P(i|f) / (P(i|f) + m P_n)`` and

.. math:: L_{NCE} = -\log h(i, f) - \sum_{j=1}^m \log\bigl(1 - h(j, f)\bigr),

where ``Z`` is estimated once by Monte Carlo, ``Z \approx N \cdot \mathrm{mean}_j
\exp(v_j^\top f/\tau)`` over the noise samples of the first batch, then kept fixed.

All functions are pure (explicit arguments); the bank update is replicated across
processes under ``torch.distributed`` by gathering every process's (index, feature) pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import dist


def init_memory_bank(num_samples: int, dim: int, generator: torch.Generator | None = None,
                     device=None) -> torch.Tensor:
    """N random unit vectors (the paper initialises the bank randomly)."""
    bank = torch.randn(num_samples, dim, generator=generator)
    return F.normalize(bank, dim=1).to(device) if device is not None else F.normalize(bank, dim=1)


@torch.no_grad()
def update_memory_bank(bank: torch.Tensor, indices: torch.Tensor, features: torch.Tensor,
                       momentum: float = 0.5) -> torch.Tensor:
    """``v_i <- normalize(momentum * v_i + (1 - momentum) * f_i)`` for the batch's indices, in place.

    Under ``torch.distributed`` every process applies the updates of the global batch, so
    the replicated banks stay identical.
    """
    indices = dist.all_gather_cat(indices.contiguous())
    features = dist.all_gather_cat(features.detach().to(bank.dtype).contiguous())
    mixed = bank[indices] * momentum + features * (1.0 - momentum)
    bank[indices] = F.normalize(mixed, dim=1)
    return bank


def softmax_logits(features: torch.Tensor, bank: torch.Tensor, temperature: float) -> torch.Tensor:
    """``f^T V / tau`` against the whole bank, (B, N)."""
    return features @ bank.t() / temperature


def exact_instance_loss(features: torch.Tensor, indices: torch.Tensor, bank: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """The non-parametric softmax's cross-entropy, ``-log P(i|f)`` averaged over the batch (exact, O(N))."""
    return F.cross_entropy(softmax_logits(features, bank, temperature), indices)


def exact_normalizer(features: torch.Tensor, bank: torch.Tensor, temperature: float) -> torch.Tensor:
    """``Z(f) = sum_j exp(v_j^T f / tau)`` for each row of ``features``."""
    return torch.exp(softmax_logits(features, bank, temperature)).sum(1)


def sample_noise(batch: int, m: int, num_samples: int, device, generator: torch.Generator | None = None,
                 shared: bool = False) -> torch.Tensor:
    """(B, m) noise indices drawn uniformly from the N instances (with replacement, as in the paper).

    ``shared=True`` draws one set of m indices for the whole batch, (1, m): every example
    still sees m uniform noise samples, but scoring them is one (B x D) @ (D x m) product
    instead of gathering B x m bank rows (the cost that dominates on a CPU).
    """
    return torch.randint(0, num_samples, (1 if shared else batch, m), device=device, generator=generator)


def nce_scores(features: torch.Tensor, indices: torch.Tensor, noise: torch.Tensor, bank: torch.Tensor,
               temperature: float) -> torch.Tensor:
    """Unnormalised ``exp(v^T f / tau)`` for the positive (column 0) and the m noise samples: (B, 1+m).

    ``noise`` is (B, m) per-example indices or (1, m) indices shared by the batch.
    """
    pos = (features * bank[indices]).sum(1, keepdim=True)
    if noise.shape[0] == 1 and len(features) > 1:
        neg = features @ bank[noise[0]].t()
    else:
        neg = torch.einsum("bd,bmd->bm", features, bank[noise])
    return torch.exp(torch.cat([pos, neg], dim=1) / temperature)


def monte_carlo_normalizer(noise_scores: torch.Tensor, num_samples: int) -> float:
    """``Z ~ N * mean exp(v_j^T f / tau)`` over noise samples (uniform ``j``), one number.

    Under ``torch.distributed`` the mean spans every process's batch, so all agree on ``Z``.
    """
    total = dist.all_reduce_sum(noise_scores.detach().float().sum().reshape(1))
    count = dist.all_reduce_sum(torch.tensor([float(noise_scores.numel())], device=noise_scores.device))
    return float(total.item() / count.item() * num_samples)


def nce_loss(scores: torch.Tensor, z: float | torch.Tensor, num_samples: int) -> torch.Tensor:
    """The paper's binary NCE loss from ``nce_scores`` output and a fixed normaliser ``z``.

    ``P = scores / z``; positive term ``-log(P_0 / (P_0 + m/N))``, noise terms
    ``-log((m/N) / (P_j + m/N))``; summed over the 1+m columns, averaged over the batch.
    """
    m = scores.shape[1] - 1
    p = scores / z
    noise_mass = m / num_samples
    log_h_pos = torch.log(p[:, 0] / (p[:, 0] + noise_mass))
    log_1m_h_noise = torch.log(noise_mass / (p[:, 1:] + noise_mass))
    return -(log_h_pos + log_1m_h_noise.sum(1)).mean()


def proximal_term(features: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """``||f_i^(t) - v_i^(t-1)||^2`` averaged over the batch: the paper's proximal regulariser,
    which keeps an image's feature close to its bank entry from the last epoch."""
    return (features - previous.detach()).pow(2).sum(1).mean()


def nce_estimate_error(features: torch.Tensor, bank: torch.Tensor, temperature: float, m: int,
                       generator: torch.Generator | None = None) -> float:
    """Relative error of the Monte-Carlo estimate of ``Z`` from ``m`` uniform noise samples per
    image, against the exact ``Z`` (mean over the batch): the quantity that shrinks as m grows."""
    n = len(bank)
    logits = softmax_logits(features, bank, temperature)  # (B, N): the exact Z needs them all anyway
    noise = sample_noise(len(features), m, n, "cpu", generator).to(features.device)
    est = torch.exp(logits.gather(1, noise)).mean(1) * n
    exact = torch.exp(logits).sum(1)
    return float(((est - exact).abs() / exact).mean())


__all__ = ["init_memory_bank", "update_memory_bank", "softmax_logits", "exact_instance_loss", "exact_normalizer",
           "sample_noise", "nce_scores", "monte_carlo_normalizer", "nce_loss", "proximal_term",
           "nce_estimate_error"]

"""SwAV: swapping assignments between views (online clustering).

Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, NeurIPS 2020. For every image the
network sees two full-resolution crops and ``n_local`` small ones; each crop goes through
the backbone, a projection head and an L2 normalisation to a point ``z`` on the unit
sphere, scored against K prototypes (unit vectors ``c_k``: ``s = z C^T``).

* Codes: for each full-resolution crop, Sinkhorn on ``exp(s / epsilon)`` over the batch
  (plus the queue) equipartitions the batch over the prototypes; 3 iterations, no
  gradient, soft codes ``q`` (rows sum to 1), as in the paper.
* Swapped prediction: every *other* crop predicts those codes,
  ``loss = - sum_k q_k log softmax(s' / tau)_k``, averaged over crops and the two codes.
* Prototypes are re-normalised to unit length after every step and receive no gradient
  during the first ``freeze_prototypes_steps`` steps.
* The queue: when the batch is small compared with K, the features of the last
  ``queue_length`` images (per full-resolution crop) join the Sinkhorn problem from epoch
  ``queue_start_epoch`` on; only the current batch's codes enter the loss.

Under ``torch.distributed`` Sinkhorn's sums are all-reduced (``sslkit.transport``), so the
codes equipartition the global batch. The method keeps, per image, the prototype its last
code pointed to (``labels``), which the loop compares with the ground truth and uses for
the collapse monitor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import dist
from ..augment import AugmentConfig, multi_crop
from ..config import opt, ConfigError
from ..eval.metrics import collapse_statistics, nmi
from ..passes import batched_argmax
from ..transport import swav_codes
from .base import ColourParams, EpochContext, Method


@dataclass
class SwavParams(ColourParams):
    proj_hidden: int = opt(2048, 'projection MLP hidden width (0: a single linear layer)')
    proj_dim: int = opt(128, 'dimension of z and of the prototypes')
    num_prototypes: int = opt(3000, 'K')
    temperature: float = opt(0.1, 'tau of the prediction softmax')
    epsilon: float = opt(0.05, 'Sinkhorn regularisation (lambda = 1/epsilon)')
    sinkhorn_iters: int = opt(3, 'Sinkhorn iterations per batch (paper: 3)')
    freeze_prototypes_steps: int = opt(313, 'steps without gradient for the prototypes (paper: 313)')
    queue_length: int = opt(0, 'features kept per full-resolution crop (0: no queue)')
    queue_start_epoch: int = opt(15, '0-based epoch from which the queue is used')
    hard_codes: bool = opt(False, "round each code to a one-hot vector (the paper's discrete codes, section 3.1, "
                                  "which it reports as worse)")
    n_local: int = opt(0, 'small crops besides the 2 full-resolution ones (whose side is the image\'s)')
    local_size: int = opt(16, 'side in pixels of the small crops (0: 3/7 of the image side, SwAV\'s 96 of 224)')
    global_scale_min: float = opt(0.14, 'full crops cover (global_scale_min, 1) of the image')
    local_scale_min: float = opt(0.05, 'small crops cover (local_scale_min, global_scale_min)')


def swapped_prediction_loss(scores: list[torch.Tensor], codes: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """SwAV's loss: ``scores[v]`` (B, K) prototype scores of crop v; ``codes[i]`` (B, K) the
    codes of crop i (the first ``len(codes)`` crops are the ones with codes). Each code is
    predicted by every other crop; the mean is over crops, codes and images."""
    total = 0.0
    for i, q in enumerate(codes):
        others = [v for v in range(len(scores)) if v != i]
        sub = sum(-(q * F.log_softmax(scores[v] / temperature, dim=1)).sum(1).mean() for v in others)
        total = total + sub / len(others)
    return total / len(codes)


LOSS_AT_LNK = 0.98  # loss / ln K above which the swapped-prediction loss is called stuck ...
UNIFORM_CODES = 0.95  # ... when the codes' entropy H(q) / ln K is also above this (uniform codes)


class SwAV(Method):
    name = "swav"
    title = "SwAV"
    per_process_buffers = ("queue",)
    per_sample_buffers = ("labels",)
    Params = SwavParams

    def __init__(self, backbone, params: SwavParams, num_samples: int):
        super().__init__(backbone, params, num_samples)
        if params.proj_hidden > 0:
            self.projector = nn.Sequential(nn.Linear(backbone.dim, params.proj_hidden),
                                           nn.BatchNorm1d(params.proj_hidden), nn.ReLU(inplace=True),
                                           nn.Linear(params.proj_hidden, params.proj_dim))
        else:
            self.projector = nn.Linear(backbone.dim, params.proj_dim)
        self.prototypes = nn.Linear(params.proj_dim, params.num_prototypes, bias=False)
        self.normalize_prototypes()
        # each process keeps its share of the queue (as the official code and solo-learn do):
        # Sinkhorn sums over processes, so the problem holds queue_length queued rows in all
        self.register_buffer("queue", torch.zeros(2, params.queue_length // dist.world_size(), params.proj_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))  # images in the queue
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("labels", torch.full((num_samples,), -1, dtype=torch.long))
        # last epoch's assignments, for the NMI between epochs (not saved: a resumed run skips one value)
        self.register_buffer("prev_labels", torch.full((num_samples,), -1, dtype=torch.long), persistent=False)
        self.epoch = 0
        self.crops = dict(global_scale=(params.global_scale_min, 1.0), n_local=params.n_local,
                          local_size=params.local_size, local_scale=(params.local_scale_min, params.global_scale_min),
                          base=AugmentConfig(jitter_strength=params.jitter_strength, gray_p=params.gray_p,
                                             blur_p=params.blur_p))

    @classmethod
    def check_config(cls, cfg, data=None) -> None:
        """Positive temperature and epsilon, at least 2 prototypes, and at least as many samples
        in the Sinkhorn problem (the global batch plus the queue) as prototypes."""
        p = cfg.params
        if p.num_prototypes < 2:
            raise ConfigError(f"SwAV: --params.num_prototypes={p.num_prototypes}: the codes need at least 2 "
                              "prototypes (one prototype is the trivial solution; the paper uses 3000)")
        if not 0 < p.temperature < float("inf"):
            raise ConfigError(f"SwAV: --params.temperature={p.temperature}: the prediction softmax's temperature "
                              "must be a positive number (the paper uses 0.1)")
        if not 0 < p.epsilon < float("inf"):
            raise ConfigError(f"SwAV: --params.epsilon={p.epsilon}: Sinkhorn's regularisation must be a positive "
                              "number (SwAV uses 0.05; 0.03 on CIFAR-100)")
        if p.sinkhorn_iters < 1 or p.proj_dim < 1 or p.proj_hidden < 0 or p.n_local < 0 or p.local_size < 0:
            raise ConfigError("SwAV: --params.sinkhorn_iters and --params.proj_dim must be at least 1, "
                              "--params.proj_hidden, --params.n_local and --params.local_size >= 0")
        if p.n_local and not 8 <= cls.local_side(p, cfg.image_size) < cfg.image_size:
            raise ConfigError(f"SwAV: --params.local_size={p.local_size}: the small crops must be at least 8 px and "
                              f"smaller than the {cfg.image_size} px images (--params.local_size=0: 3/7 of the side)")
        batch = cfg.batch_size * dist.planned_world_size()
        if batch + p.queue_length < p.num_prototypes:
            need = p.num_prototypes - batch
            suggest = -(-need // cfg.batch_size) * cfg.batch_size  # a multiple of the batch size
            raise ConfigError(
                f"SwAV: the global batch ({batch}) plus the queue ({p.queue_length}) is smaller than the "
                f"{p.num_prototypes} prototypes, so the codes cannot spread the batch over the prototypes and "
                f"training collapses. Use a queue (--params.queue_length={suggest} or more, "
                f"with --params.queue_start_epoch), a larger --batch_size, or fewer --params.num_prototypes.")
        world = dist.planned_world_size()
        if p.queue_length and (p.queue_length % world or p.queue_length // world < cfg.batch_size):
            raise ConfigError(f"SwAV: --params.queue_length={p.queue_length} is split over {world} process(es), and "
                              f"each share must hold at least one batch (--batch_size={cfg.batch_size}): use a "
                              f"multiple of {world} that is at least {cfg.batch_size * world}")

    @classmethod
    def cluster_count(cls, params) -> int:
        return params.num_prototypes

    @staticmethod
    def local_side(params, image_side: int) -> int:
        """The small crops' side: ``local_size``, or 3/7 of the image's side when it is 0 (96 of 224)."""
        return params.local_size or max(8, round(image_side * 3 / 7))

    @classmethod
    def smoke_params(cls, params, batch_size: int):
        return replace(params, num_prototypes=min(params.num_prototypes, batch_size, 16), queue_length=0,
                       proj_hidden=min(params.proj_hidden, 64), freeze_prototypes_steps=1)

    @classmethod
    def bench_references(cls) -> dict:
        return {"lightly": lightly_swav_rates}

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm projection z of a batch of float images."""
        return F.normalize(self.projector(self.backbone(x)), dim=1)

    def prototype_scores(self, z: torch.Tensor) -> torch.Tensor:
        """z C^T; the prototypes get no gradient while frozen."""
        w = self.prototypes.weight
        if int(self.steps_done) < self.params.freeze_prototypes_steps:
            w = w.detach()
        return z @ w.t()

    @property
    def queue_active(self) -> bool:
        return self.params.queue_length > 0 and self.epoch >= self.params.queue_start_epoch

    @torch.no_grad()
    def codes(self, scores: torch.Tensor, crop: int, z: torch.Tensor) -> torch.Tensor:
        """Soft codes for one full-resolution crop's batch; with the queue active, the queued
        features join the problem (once the queue is full, as in the official code) and the
        current batch then enters the queue."""
        s = scores.detach().float()
        if self.queue_active:
            if int(self.queue_filled) >= self.queue.shape[1]:
                s = torch.cat([self.queue[crop] @ self.prototypes.weight.detach().float().t(), s])
            b = len(z)
            self.queue[crop] = torch.cat([z.detach().float(), self.queue[crop][:-b]])
            if crop == 1:
                self.queue_filled.add_(b).clamp_(max=self.queue.shape[1])
        q = swav_codes(s, self.params.epsilon, self.params.sinkhorn_iters)[-len(z):]
        if self.params.hard_codes:  # each image wholly on its best prototype
            q = F.one_hot(q.argmax(1), q.shape[1]).to(q.dtype)
        return q

    def on_epoch_start(self, ctx: EpochContext) -> dict:
        self.epoch = ctx.epoch
        if self.labels.min() < 0:
            return {}
        out = collapse_statistics(self.labels.cpu(), self.params.num_prototypes)
        if self.prev_labels.min() >= 0:  # how much the prototype assignments moved in an epoch
            out["nmi_prev"] = nmi(self.prev_labels.cpu(), self.labels.cpu())
        self.prev_labels.copy_(self.labels)
        return out

    def pseudo_labels(self):
        return None if self.labels.min() < 0 else self.labels

    def predict_clusters(self, images):
        return [batched_argmax(lambda x: self.embed(x) @ self.prototypes.weight.t(), images, module=self)]

    def assign_features(self, features):
        """The nearest prototype and the prediction softmax's probability of it (temperature tau)."""
        s = F.normalize(self.projector(features), dim=1) @ self.prototypes.weight.t()
        p = F.softmax(s.float() / self.params.temperature, 1)
        return [(s.argmax(1), p.gather(1, s.argmax(1, keepdim=True)).squeeze(1))]

    def training_step(self, images, indices, labels=None):
        side = images.shape[-1]  # the full-resolution crops have the images' own side
        views = multi_crop(images, n_global=2, global_size=side,
                           **{**self.crops, "local_size": self.local_side(self.params, side)})
        # one forward pass per resolution: the two full crops together, then the small ones
        zs = [self.embed(torch.cat(views[:2]))]
        if self.params.n_local:
            zs.append(self.embed(torch.cat(views[2:])))
        z = torch.cat(zs)
        scores = list(self.prototype_scores(z).split(len(images)))
        zz = z.split(len(images))
        codes = [self.codes(scores[i], i, zz[i]) for i in range(2)]
        loss = swapped_prediction_loss(scores, codes, self.params.temperature)
        with torch.no_grad():  # every process records the whole global batch's assignments
            self.labels[dist.all_gather_cat(indices)] = dist.all_gather_cat(codes[0].argmax(1))
            ent = -(codes[0] * codes[0].clamp_min(1e-12).log()).sum(1).mean() / math.log(self.params.num_prototypes)
        return loss, {"code_entropy": ent, "loss_over_lnK": loss.detach() / math.log(self.params.num_prototypes)}

    @classmethod
    def collapse_advice(cls, record: dict) -> str | None:
        """The cluster-size check, then SwAV's own collapse: the loss sits at ln K with uniform
        codes (prototypes unused)."""
        generic = super().collapse_advice(record)
        if generic:
            return generic
        ratio, code_h = record.get("loss_over_lnK"), record.get("code_entropy", 1.0)
        if ratio is not None and record.get("epoch", 0) >= 2 and ratio > LOSS_AT_LNK and code_h > UNIFORM_CODES:
            return (f"COLLAPSE at epoch {record.get('epoch')}: the loss is {ratio:.1%} of ln K, i.e. the codes are "
                    "uniform and the prototypes carry no information. Lower epsilon (--params.epsilon), keep the "
                    "prototypes frozen longer (--params.freeze_prototypes_steps), or add a queue "
                    "(--params.queue_length) when the batch is small compared with the prototypes.")
        return None

    def on_step_end(self, ctx: EpochContext) -> None:
        self.steps_done += 1
        self.normalize_prototypes()


SwAV.add_preset(
    "lab", source="this book: sized for about four minutes on a 2-core CPU (chapter 05); single lab runs at 16 "
                  "epochs: lr 0.3 45.8 % kNN, 0.6 47.0 %, 1.2 45.6 %; weight decay 5e-4 47.3 % and 58.7 % linear "
                  "(1e-5: 47.0 % and 57.3 %); 49.2 % at 30 epochs, 51.4 % at 42 (246 s)",
    description="ConvNet on the CIFAR-10 lab subset; 2x32px crops, K=100 prototypes, batch 128 (no queue needed)",
    backbone="convnet", subset="lab", epochs=42, knn_every=6, precision="auto", batch_size=128, lr=0.6, weight_decay=5e-4,
    warmup_epochs=1,
    **{"params.proj_hidden": 512, "params.proj_dim": 64, "params.num_prototypes": 100,
       "params.freeze_prototypes_steps": 78, "params.epsilon": 0.05, "params.temperature": 0.1})
_SOLO = ("solo-learn CIFAR SwAV recipe (Costa et al., JMLR 2022; scripts/pretrain/cifar/swav.yaml): ResNet-18, "
         "projector 2048-128, 3000 prototypes, queue 3840 from epoch 50, prototypes frozen 2 epochs, eps 0.05, "
         "tau 0.1, batch 256, LARS (eta 0.02, clipped, biases and norms excluded) lr 0.6, wd 1e-6, "
         "10 warm-up epochs, 1000 epochs; multi-crop off. SwAV defaults: "
         "Caron et al., NeurIPS 2020 and facebookresearch/swav main_swav.py")
for _ds, _eps in (("cifar10", 0.05), ("cifar100", 0.05), ("svhn", 0.05)):
    SwAV.add_preset(
        _ds, source=_SOLO, description=f"CIFAR ResNet-18 on full {_ds}, 1000 epochs",
        dataset=_ds, backbone="resnet18", subset="full", epochs=1000, batch_size=256, lr=0.6, weight_decay=1e-6,
        warmup_epochs=10, precision="bf16", optimizer="lars", lars_eta=0.02, lars_clip=True,
        **{"params.proj_hidden": 2048, "params.proj_dim": 128, "params.num_prototypes": 3000,
           "params.queue_length": 3840, "params.queue_start_epoch": 50, "params.freeze_prototypes_steps": 2 * 195,
           "params.epsilon": _eps, "params.temperature": 0.1})

SwAV.add_preset(
    "imagenet",
    source="Caron et al., NeurIPS 2020, ImageNet (75.3 % linear top-1); official code facebookresearch/swav "
           "scripts/swav_800ep_pretrain.sh (ResNet-50, 2x224 + 6x96 crops of scale (0.14, 1) and (0.05, 0.14), "
           "3000 prototypes, 128-d features, epsilon 0.05, 3 Sinkhorn iterations, temperature 0.1, no queue, "
           "800 epochs, batch 64 per GPU on 64 GPUs = 4096, base lr 4.8 to a final 0.0048 by a cosine, 10 warm-up "
           "epochs from 0.3, weight decay 1e-6, prototypes frozen for 313 iterations, fp16) and main_swav.py "
           "(projection 2048-2048-128 with batch norm, SGD momentum 0.9 inside LARC with trust coefficient 0.001 "
           "and no clipping; colour distortion of strength 1 with p 0.8, grey 0.2, Gaussian blur p 0.5). Here: bf16 "
           "for fp16, the warm-up starts at 0, LARS leaves biases and norm layers out (LARC adapts them too). On "
           "fewer than 64 processes the batch is smaller than the 3000 prototypes: add a queue (the 200- and "
           "400-epoch scripts at batch 256 use 3840 from epoch 15)",
    description="ResNet-50 on ImageNet, 2x224 + 6x96 crops, K=3000, 800 epochs, batch 64 per process x 64 "
                "processes (torchrun), LARS (kNN monitor every 10 epochs on 50 images per class)",
    dataset="imagenet", subset="full", image_size=224, backbone="resnet50", epochs=800, batch_size=64, lr=4.8,
    lr_batch_size=4096, final_lr_ratio=0.001, warmup_epochs=10, weight_decay=1e-6, momentum=0.9, schedule="cosine",
    optimizer="lars", lars_eta=0.001, lars_clip=False, precision="bf16", knn_every=10, eval_subset="50",
    **{"params.proj_hidden": 2048, "params.proj_dim": 128, "params.num_prototypes": 3000, "params.queue_length": 0,
       "params.epsilon": 0.05, "params.sinkhorn_iters": 3, "params.temperature": 0.1,
       "params.freeze_prototypes_steps": 313, "params.n_local": 6, "params.local_size": 96,
       "params.global_scale_min": 0.14, "params.local_scale_min": 0.05, "params.jitter_strength": 1.0,
       "params.gray_p": 0.2, "params.blur_p": 0.5})


def lightly_swav_rates(method: SwAV, cfg, n, images, device, precision, batch_size, steps, ips) -> list[tuple]:
    """``bench train``'s comparison with lightly's SwaV (when lightly is installed; else ``[]``):
    rows ``(what, images/s, FLOPs per image, note)``. sslkit's step augments its batch on the
    device, so its augmentation is timed apart and the step without it derived, for the row
    whose views are ready. lightly runs the way its example (examples/pytorch/swav.py) trains:
    ``SwaVProjectionHead``, ``SwaVPrototypes``, ``SwaVLoss``, ``prototypes.normalize()``, one
    forward per view, on sslkit's backbone, sizes and optimiser; once with the two views ready on
    the device, once fed by a DataLoader with ``SwaVTransform`` on PIL images (sslkit's crop
    scale, jitter and grey probability, no blur; one worker per CPU)."""
    try:
        import lightly  # noqa: F401
    except ImportError:
        return []
    import time

    from ..bench.timing import sync

    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        multi_crop(images[torch.randint(0, n, (batch_size,), device=device)], n_global=2, **method.crops)
    sync(device)
    t_aug = (time.perf_counter() - t) / steps
    bare = batch_size / max(batch_size / ips - t_aug, 1e-9)
    rows = [("sslkit, no augmentation", bare, float("nan"), f"sslkit's augmentation: {t_aug * 1e3:.0f} ms of the "
             f"step's {batch_size / ips * 1e3:.0f} ms")]
    for pipeline, what in ((False, "views ready"), (True, "its DataLoader")):
        lips, lflops = _lightly_swav_rate(cfg, n, images, device, precision, batch_size, steps, pipeline)
        mine = bare if not pipeline else ips
        rows.append((f"lightly, {what}", lips, lflops, f"sslkit's SwAV step{' without its augmentation' if not pipeline else ''}"
                     f" is {mine / lips:.2f}x as fast"))
    return rows


def _lightly_swav_rate(cfg, n, images, device, precision, batch_size, steps, pipeline):
    """(images/s, FLOPs per image) of lightly's SwaV (see ``lightly_swav_rates``)."""
    import os

    from lightly.loss import SwaVLoss
    from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

    from ..augment import to_float
    from ..bench.timing import images_per_s
    from ..optim import make_optimizer
    from ..precision import autocast, set_backbone_precision
    from . import build_method

    p = cfg.params
    backbone = build_method(cfg, n).backbone  # a fresh copy of sslkit's backbone
    set_backbone_precision(backbone, precision, device)  # bf16 off CUDA: the backbone autocasts, as sslkit's

    class LightlySwaV(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.projection_head = SwaVProjectionHead(backbone.dim, p.proj_hidden, p.proj_dim)
            self.prototypes = SwaVPrototypes(p.proj_dim, n_prototypes=p.num_prototypes)

        def forward(self, x):
            x = self.projection_head(self.backbone(x).flatten(start_dim=1))
            return self.prototypes(F.normalize(x, dim=1, p=2))

    model = LightlySwaV().to(device).train()
    criterion = SwaVLoss(temperature=p.temperature, sinkhorn_iterations=p.sinkhorn_iters, sinkhorn_epsilon=p.epsilon)
    opt = make_optimizer(cfg, model.parameters())
    if pipeline:
        from PIL import Image
        from lightly.transforms.swav_transform import SwaVTransform

        transform = SwaVTransform(crop_sizes=(32,), crop_counts=(2,), crop_min_scales=(p.global_scale_min,),
                                  crop_max_scales=(1.0,), cj_strength=p.jitter_strength, random_gray_scale=p.gray_p,
                                  gaussian_blur=0.0)
        pil = [Image.fromarray(im.permute(1, 2, 0).cpu().numpy()) for im in images]

        class Images(torch.utils.data.Dataset):
            def __len__(self):
                return len(pil)

            def __getitem__(self, i):
                return transform(pil[i]), 0

        loader = torch.utils.data.DataLoader(Images(), batch_size=batch_size, shuffle=True, drop_last=True,
                                             num_workers=os.cpu_count() or 1, persistent_workers=True)

        def batches():
            while True:
                for views, _ in loader:
                    yield [v.to(device, non_blocking=True) for v in views]
    else:
        def batches():
            while True:
                x = to_float(images[torch.randint(0, len(images), (batch_size,), device=device)])
                yield [x, x.clone()]
    it = batches()

    def step(_):
        views = next(it)
        model.prototypes.normalize()
        with autocast(precision, device):
            feats = [model(v) for v in views]
            loss = criterion(feats[:2], feats[2:])
        loss.backward()
        opt.step()
        opt.zero_grad()

    return images_per_s(step, steps, batch_size, device)


"""The interface every method implements, so one training loop runs them all.

A method is an ``nn.Module`` that owns its backbone and heads. The loop calls

* ``on_epoch_start(ctx)``: offline work before an epoch (DeepCluster's k-means, SeLa's
  Sinkhorn relabelling); may return metrics to log;
* ``sample_order(epoch, ctx)``: the order of training indices for the epoch (default: a
  random permutation; DeepCluster draws uniformly over clusters);
* ``training_step(images, indices, labels)``: one mini-batch of uint8 images on the
  device; returns the loss and a dict of numbers to log. Self-supervised methods never
  read ``labels`` (they are passed for the supervised baseline only);
* ``check_config(cfg)`` (class method): reject impossible settings before any work;
* ``on_step_end(step, ctx)``: work after the optimiser step (prototype normalisation,
  memory-bank update);
* ``reinitialized_parameters()``: what ``on_epoch_start`` re-initialised (its optimiser
  state is dropped; under ``torch.distributed`` every process gets rank 0's parameters);
* ``collapse_advice(record)``: the method's own collapse check, with what to do.

Under ``torch.distributed`` a method keeps every buffer identical on every process: a
buffer written from the local batch (SwAV's labels, NPID's bank) is written from the
gathered global batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..augment import AugmentConfig
from ..config import Preset

# The book's lab budget: every method's `lab` preset trains this many epochs (the sweep's `lab`
# budget too), at precision "auto": bf16 where the CPU or GPU does bf16 in hardware. On the
# book's 2-core CPU (AMX) a lab epoch runs 1.2-1.7x faster in bf16, with the same kNN accuracy
# after the same epochs over 3 seeds (README), so 16 epochs take about the time 12 fp32 epochs
# took there; where bf16 is absent or emulated the lab runs are fp32 and take a third longer.
LAB_EPOCHS = 16


@dataclass
class EpochContext:
    """What the loop shares with a method: the training images (uint8, on the device),
    the epoch, the device, the config, and a place for the method's per-run state."""

    images: torch.Tensor
    epoch: int
    device: torch.device
    cfg: object
    num_samples: int
    step: int = 0
    optimizer: object = None  # the loop's optimiser (read-only for methods: see reinitialized_parameters)
    state: dict = field(default_factory=dict)


def hidden_layer(dim: int, width: int) -> tuple[nn.Module, int]:
    """A Linear-BN-ReLU layer of ``width`` on top of ``dim`` features (identity when width is 0),
    and the feature size it outputs: the layer below the clustering heads of SeLa and
    DeepCluster, as AlexNet's fully connected layers in the papers."""
    if width <= 0:
        return nn.Identity(), dim
    return nn.Sequential(nn.Linear(dim, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)), width


def view_recipe(params) -> AugmentConfig:
    """The augmentation of a method's training views from its ``crop_scale_min``,
    ``jitter_strength`` and ``gray_p`` parameters."""
    return AugmentConfig(scale=(params.crop_scale_min, 1.0), jitter_strength=params.jitter_strength,
                         gray_p=params.gray_p)


class Method(nn.Module):
    name = "base"
    uses_labels = False
    # buffers that differ between processes by design (SwAV's queue: each process's share);
    # checkpoints keep every process's own copy, everything else is identical on all processes
    per_process_buffers: tuple[str, ...] = ()
    presets: dict[str, Preset] = {}  # name -> recipe with its source; each subclass gets its own dict

    @classmethod
    def add_preset(cls, name: str, source: str, description: str = "", **values) -> Preset:
        """Add a named recipe (``--preset=NAME``): config values as ``key=value`` (method
        parameters as ``"params.key"``), with the source it follows."""
        if "presets" not in cls.__dict__:
            cls.presets = {}
        preset = cls.presets[name] = Preset(cls.name, name, values, source, description)
        return preset

    def __init__(self, backbone: nn.Module, params, num_samples: int):
        super().__init__()
        self.backbone = backbone
        self.params = params
        self.num_samples = num_samples

    @classmethod
    def check_config(cls, cfg) -> None:
        """Raise ``ConfigError`` for a config this method cannot train with (called before any work)."""

    def on_epoch_start(self, ctx: EpochContext) -> dict:
        return {}

    def sample_order(self, ctx: EpochContext) -> torch.Tensor:
        return torch.randperm(ctx.num_samples, device=ctx.device)

    def training_step(self, images: torch.Tensor, indices: torch.Tensor, labels: torch.Tensor | None):
        raise NotImplementedError

    def forward(self, images, indices, labels=None):
        """The training step, as ``forward`` so that DistributedDataParallel can wrap a method."""
        return self.training_step(images, indices, labels)

    def on_step_end(self, ctx: EpochContext) -> None:
        pass

    def reinitialized_parameters(self) -> list:
        """Parameters that the last ``on_epoch_start`` re-initialised (DeepCluster's classifier):
        the loop drops their optimiser state (momentum of the old classifier)."""
        return []

    @classmethod
    def collapse_advice(cls, record: dict) -> str | None:
        """A method's own collapse check on an epoch's record (beyond the loop's cluster-size
        entropy check): a message saying what went wrong and what to change, or None."""
        return None

    def monitor(self, eval_data, cfg) -> dict:
        """Method-specific evaluation next to the loop's kNN monitor (NPID: kNN on its memory bank)."""
        return {}

    def predict_clusters(self, images: torch.Tensor) -> list[torch.Tensor] | None:
        """Each clustering head's assignment of ``images`` (uint8), for evaluation; None without heads."""
        return None

    def pseudo_labels(self) -> torch.Tensor | None:
        """The method's current labelling of the training set (None for methods without one)."""
        return None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The representation that evaluation uses (backbone output)."""
        return self.backbone(x)

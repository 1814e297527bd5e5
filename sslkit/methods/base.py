"""The interface every method implements, so one training loop runs them all.

A method is an ``nn.Module`` that owns its backbone and heads, and a subclass with a
``name`` registers itself (``sslkit.registry``): the config, the command line, the sweep,
the results table and the benchmarks all find it there. What the loop calls, in order:

* ``on_epoch_start(ctx) -> dict``: offline work before an epoch (DeepCluster's k-means,
  SeLa's Sinkhorn relabelling); returns metrics to log;
* ``sample_order(ctx) -> LongTensor``: the order of training indices for the epoch (default:
  a random permutation; DeepCluster draws uniformly over clusters);
* ``training_step(images, indices, labels) -> (loss, logs)``: one mini-batch of uint8 images on
  the device; ``logs`` is a dict of numbers (tensors stay on the device). Self-supervised
  methods never read ``labels`` (they are passed for the supervised baseline only);
* ``on_step_end(ctx)``: work after the optimiser step (prototype normalisation, memory-bank update);
* ``reinitialized_parameters() -> list``: what ``on_epoch_start`` re-initialised (its optimiser
  state is dropped; under ``torch.distributed`` every process gets rank 0's parameters);
* ``collapse_advice(record) -> str | None`` (class method): the epoch record's collapse check,
  with what to do (the base class checks the cluster-size entropy that
  ``eval.metrics.collapse_statistics`` records);
* ``monitor(eval_data, cfg) -> dict``: evaluation beside the loop's kNN monitor.

What the rest of the library asks a method class (class methods, before any work):

* ``check_config(cfg, data)``: raise ``ConfigError`` for settings it cannot train with;
  ``data`` is a ``sslkit.data.DataInfo`` once the data is known, else None;
* ``resolve_params(params, data)``: fill parameters that follow from the data (the supervised
  head's number of classes);
* ``cluster_count(params)``: K of the method's own clustering (None without one);
* ``backbone_options(params)``: keyword arguments of ``build_backbone`` (DeepCluster's Sobel);
* ``smoke_params(params, batch_size)``: the sizes of a tiny run that fits ``batch_size``
  (benchmarks' ``--quick`` and tests);
* ``bench_references()``: other libraries' implementations that ``bench train`` times beside it.

Evaluation uses ``features(x)``, ``predict_clusters(images)``, ``pseudo_labels()``; a trained
run's ``assign`` (``sslkit.load_run``) and ``python -m sslkit.predict`` use
``assign_features(features) -> [(clusters, confidence), ...]``: each clustering head's cluster
of a batch of backbone features and the probability the method gives it (the same clusters
as ``predict_clusters``; None for a method without clusters of its own).

Under ``torch.distributed`` a method keeps every buffer identical on every process: a
buffer written from the local batch (SwAV's labels, NPID's bank) is written from the
gathered global batch, except ``per_process_buffers`` (each process's own share).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn

from ..augment import AugmentConfig
from ..config import Preset, opt
from ..registry import register

# The book's lab budget is time, not epochs: every method's `lab` preset trains for about
# LAB_BUDGET_S seconds on the book's 2-core CPU, at precision "auto" (bf16 where the CPU or GPU
# does bf16 in hardware), so each preset sets the epochs its method fits in that time (a SwAV
# epoch computes two views, SeLa relabels before each, ...), measured on an otherwise idle machine
# (a loaded one runs the same epochs slower). The sweep's `lab` budget trains each
# preset as it is; the measured times are in the stored runs (chapter 07).
LAB_BUDGET_S = 240


@dataclass
class ColourParams:
    """The colour part of a method's training views (SimCLR's recipe at strength s)."""

    jitter_strength: float = opt(0.5, 'colour-jitter strength (brightness, contrast, saturation 0.8 s; hue 0.2 s)')
    gray_p: float = opt(0.2, 'probability of turning a view grey')
    blur_p: float = opt(0.0, 'probability of a Gaussian blur of a view (sigma 0.1-2, kernel a tenth of the side; '
                             'off at 32 px as in the CIFAR recipes, 0.5 in the ImageNet ones)')


@dataclass
class ViewParams(ColourParams):
    """One random-resized crop per view, then the colour recipe."""

    crop_scale_min: float = opt(0.2, 'random-resized crops cover (crop_scale_min, 1) of the image')

    def view_recipe(self) -> AugmentConfig:
        """The view of an image: a crop of the image's own side (``size=0``), whatever its size."""
        return AugmentConfig(size=0, scale=(self.crop_scale_min, 1.0), jitter_strength=self.jitter_strength,
                             gray_p=self.gray_p, blur_p=self.blur_p)


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


COLLAPSE_ENTROPY = 0.5  # normalised cluster-size entropy H / ln K below which a run is called collapsed


class Method(nn.Module):
    name = ""  # the registry key; a subclass that sets it registers itself
    title = ""  # how tables and figures call it (default: the name)
    uses_labels = False
    Params: type = ColourParams  # the method's own dataclass of hyper-parameters
    # buffers that differ between processes by design (SwAV's queue: each process's share);
    # checkpoints keep every process's own copy, everything else is identical on all processes
    per_process_buffers: tuple[str, ...] = ()
    # buffers with one entry per training image (pseudo-labels, memory bank): their first or last
    # dimension is the training set's size, which a checkpoint written before it recorded the size gives
    per_sample_buffers: tuple[str, ...] = ()
    # parameters whose 0 means "what the data says" (resolve_params fills them): a stored run's resolved value
    # is the same run as the 0 a command asks for
    resolved_from_data: tuple[str, ...] = ()
    presets: dict[str, Preset] = {}  # name -> recipe with its source; each subclass gets its own dict

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.presets = {}
        if cls.__dict__.get("name"):
            cls.title = cls.__dict__.get("title") or cls.name
            register(cls)

    @classmethod
    def add_preset(cls, name: str, source: str, description: str = "", **values) -> Preset:
        """Add a named recipe (``--preset=NAME``): config values as ``key=value`` (method
        parameters as ``"params.key"``), with the source it follows."""
        preset = cls.presets[name] = Preset(cls.name, name, values, source, description)
        return preset

    def __init__(self, backbone: nn.Module, params, num_samples: int):
        super().__init__()
        self.backbone = backbone
        self.params = params
        self.num_samples = num_samples

    # -- what the library asks a method class -----------------------------------------------
    @classmethod
    def check_config(cls, cfg, data=None) -> None:
        """Raise ``ConfigError`` for a config this method cannot train with (called before any
        work; again with ``data``, a ``DataInfo``, once the data is known)."""

    @classmethod
    def resolve_params(cls, params, data):
        """``params`` with what follows from the data filled in (called once the data is known)."""
        return params

    @classmethod
    def cluster_count(cls, params) -> int | None:
        """K of the method's own clustering, or None for a method without one."""
        return None

    @classmethod
    def backbone_options(cls, params) -> dict:
        """Keyword arguments of ``build_backbone`` this method's parameters ask for."""
        return {}

    @classmethod
    def smoke_params(cls, params, batch_size: int):
        """``params`` shrunk for a tiny run (a few images, batches of ``batch_size``), for the
        benchmarks' ``--quick`` mode and for tests."""
        return replace(params)

    @classmethod
    def bench_references(cls) -> dict:
        """Other libraries' implementations of this method for ``bench train``: label ->
        ``rate(cfg, n, images, device, precision, batch_size, steps) -> [(what, images/s, FLOPs/img)]``."""
        return {}

    @classmethod
    def collapse_advice(cls, record: dict) -> str | None:
        """A loud message when the epoch's labelling has collapsed (most images in few clusters,
        from ``collapse_statistics``' ``cluster_entropy``), or None. Methods add their own kind."""
        h = record.get("cluster_entropy")
        if h is not None and h < COLLAPSE_ENTROPY:
            return (f"COLLAPSE at epoch {record.get('epoch')}: cluster-size entropy H/ln K = {h:.2f} "
                    f"(< {COLLAPSE_ENTROPY}); the largest cluster holds "
                    f"{record.get('largest_cluster', float('nan')):.0%} of the images. Check the safeguards "
                    "(equipartition, empty-cluster re-seeding, uniform sampling).")
        return None

    # -- what the loop calls ------------------------------------------------------------------
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

    def monitor(self, eval_data, cfg) -> dict:
        """Method-specific evaluation next to the loop's kNN monitor (NPID: kNN on its memory bank)."""
        return {}

    # -- what evaluation calls ----------------------------------------------------------------
    def predict_clusters(self, images: torch.Tensor) -> list[torch.Tensor] | None:
        """Each clustering head's assignment of ``images`` (uint8), for evaluation; None without heads."""
        return None

    def assign_features(self, features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Each clustering head's cluster of every row of ``features`` (backbone output, eval mode)
        and the method's probability of that cluster, in [0, 1]: the clusters ``predict_clusters``
        gives for the same images, with a confidence. None for a method without clusters."""
        return None

    def pseudo_labels(self) -> torch.Tensor | None:
        """The method's current labelling of the training set (None for methods without one)."""
        return None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The representation that evaluation uses (backbone output)."""
        return self.backbone(x)

"""One file per method, one interface (``Method``), one registry, and ``build_method``.

Adding a method (say ``mymethod``) takes one file, here or anywhere:

1. A ``@dataclass`` of its hyper-parameters; inherit ``ViewParams`` (crop, jitter, grey) or
   ``ColourParams`` for the view recipe, and declare each field with ``opt(default, help)``
   so that ``--help`` explains it and the config checks its type.
2. A subclass of ``Method`` with ``name = "mymethod"`` (that registers it: the command line,
   the sweep, the results table and ``bench train`` find it), ``title``, ``Params``, and
   ``training_step(self, images, indices, labels) -> (loss, logs)`` on a batch of uint8 images
   on the device (augment them with ``sslkit.augment``). Add what it needs of the other hooks
   (``sslkit/methods/base.py`` lists them with their signatures): ``on_epoch_start(ctx) ->
   dict`` for offline work, ``on_step_end(ctx)``, ``sample_order(ctx)``, ``check_config(cfg,
   data)`` for its settings, ``cluster_count(params)`` if it clusters,
   ``per_sample_buffers`` / ``per_process_buffers`` for state that has a row per image or
   per process, ``predict_clusters(images)`` and ``pseudo_labels()`` for the cluster metrics,
   ``assign_features(features)`` for each cluster's confidence (``sk.load_run(...).assign``,
   ``python -m sslkit.predict``), ``smoke_params(params, batch_size)`` for tiny runs. Images
   come at any side (``--image_size``): take crop sizes from the batch (``AugmentConfig(size=0)``).
3. Presets with their sources: ``MyMethod.add_preset("lab", source=..., epochs=..., **{"params.k": 10})``.
4. Import the module: inside this package, add it to the imports below; outside it, name it in
   ``SSLKIT_PLUGINS`` (``sslkit.registry``) so that the command line and the processes it
   starts import it too. ``tests/test_method_plugin.py`` does all this for a toy method and
   runs it through ``sk.fit``, ``python -m sslkit.train``, resume, two processes, the sweep
   and ``bench train``.
"""

from ..registry import METHODS
from .base import LAB_BUDGET_S, ColourParams, EpochContext, Method, ViewParams
from .supervised import Supervised, SupervisedParams
from .sela import SeLa, SelaParams
from .deepcluster import DeepCluster, DeepClusterParams
from .swav import SwAV, SwavParams, swapped_prediction_loss
from .npid import NPID, NpidParams

__all__ = ["build_method", "Method", "EpochContext", "ViewParams", "ColourParams", "METHODS", "LAB_BUDGET_S",
           "Supervised", "SupervisedParams", "SeLa", "SelaParams", "DeepCluster", "DeepClusterParams", "SwAV",
           "SwavParams", "NPID", "NpidParams", "swapped_prediction_loss"]


def build_method(cfg, data) -> Method:
    """The method named by ``cfg.method`` with a fresh backbone ``cfg.backbone``.

    data: a ``sslkit.data.DataInfo`` (or just the number of training images): what the
    method's per-image state and data-dependent parameters are sized by. The weights are
    initialised from ``cfg.seed``, so a config alone reproduces a run; the backbone's stem
    follows ``cfg.image_size`` and its normalisation ``cfg.dataset``.
    """
    from ..backbones import build_backbone
    from ..data import DataInfo
    from ..device import seed_everything
    from ..registry import get_method

    cls = get_method(cfg.method)
    info = data if isinstance(data, DataInfo) else DataInfo(num_samples=int(data))
    if cfg.params is None:
        cfg.params = cls.Params()
    if info.num_classes is not None:
        cfg.params = cls.resolve_params(cfg.params, info)
    seed_everything(cfg.seed)
    backbone = build_backbone(cfg.backbone, dataset=cfg.dataset, image_size=cfg.image_size,
                              **cls.backbone_options(cfg.params))
    return cls(backbone, cfg.params, info.num_samples)

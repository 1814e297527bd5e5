"""One pass of a network over a uint8 image tensor, in batches, without gradients.

Every offline pass of the library goes through ``batched``: evaluation features, SeLa's
labelling scores, DeepCluster's clustering features, NPID's bank initialisation and
monitor, each head's cluster assignment. ``images`` is a uint8 tensor or an
``sslkit.imagesource.ImageSource`` (images decoded by worker processes as the pass goes).
"""

from __future__ import annotations

import torch

from .augment import to_float


@torch.no_grad()
def batched(fn, images: torch.Tensor, *, module: torch.nn.Module | None = None, train: bool = False,
            batch_size: int = 512, device=None, prepare=to_float) -> torch.Tensor:
    """``fn(prepare(batch))`` for consecutive batches of ``images``, concatenated along dim 0.

    module: put in eval mode (or train mode with ``train=True``: batch statistics in the
        normalisation layers) for the pass and restored to its mode afterwards.
    device: where each batch goes before ``prepare`` (default: ``module``'s parameters' device,
        else where the images are).
    prepare: uint8 to float in [0, 1] by default; any batch transform (an augmentation).
    """
    if device is None:
        param = next(module.parameters(), None) if module is not None else None
        device = param.device if param is not None else images.device
    was = module.training if module is not None else None
    if module is not None:
        module.train(train)
    chunks = (images.batches(batch_size, pin_memory=torch.device(device).type == "cuda") if hasattr(images, "batches")
              else (images[i:i + batch_size] for i in range(0, len(images), batch_size)))
    try:
        out = [fn(prepare(chunk.to(device, non_blocking=True))) for chunk in chunks]
    finally:
        if module is not None:
            module.train(was)
    return torch.cat(out)


def batched_argmax(fn, images: torch.Tensor, module: torch.nn.Module | None = None, device=None,
                   batch_size: int = 512) -> torch.Tensor:
    """The arg-max over dim 1 of ``fn``'s (B, K) scores for every image (int64, on the CPU)."""
    return batched(lambda x: fn(x).argmax(1).cpu(), images, module=module, device=device, batch_size=batch_size)

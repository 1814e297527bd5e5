"""Device choice, seeding and notebook set-up. The device is always a parameter."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), else CUDA, then MPS, then CPU.

    The environment variable ``SSLKIT_DEVICE`` overrides the automatic choice.
    """
    prefer = prefer or os.environ.get("SSLKIT_DEVICE")
    if prefer:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was asked for but CUDA is not available; "
                               "use device='cpu' or leave it unset to choose automatically")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 matrix products in hardware: a CUDA GPU with bf16 support, or a
    CPU with AVX512-BF16 or AMX (oneDNN uses them under autocast). Elsewhere (MPS, older CPUs) bf16
    would be emulated, slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        if torch.version.hip:  # ROCm: torch's own check
            return torch.cuda.is_bf16_supported()
        # bf16 tensor cores from Ampere (compute capability 8.0) on; torch.cuda.is_bf16_supported()
        # also says yes on older GPUs that emulate it
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_properties(index).major >= 8
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(bool(check()) for check in checks if check is not None)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run trains in: ``auto`` is ``bf16`` where :func:`native_bf16` holds for
    ``device``, else ``fp32``; ``fp32``, ``bf16`` and ``fp16`` are kept as they are."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_notebook(seed: int = 0, device: str | None = None, threads: int | None = None,
                   quiet: bool = False) -> torch.device:
    """One call at the top of every chapter: seed, choose the device, set plotting defaults.

    Returns the device the chapter should put its data and models on.
    """
    seed_everything(seed)
    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    try:
        import matplotlib

        matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (6, 3.5),
                                    "axes.grid": True, "grid.alpha": 0.3})
    except ImportError:  # plotting is optional for scripts
        pass
    if not quiet:
        print(f"sslkit: device={dev}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, seed={seed}")
    return dev

"""Where tensors live: one parser for ``--device`` (cpu, cuda, cuda:N, mps, auto) everywhere.

:func:`resolve_device` turns the text a user typed into a ``torch.device`` that exists on this
machine, or raises :class:`~sciflow.errors.InputError` naming the flag and what is available, so
a command fails before any work instead of deep inside torch. ``auto`` picks the first CUDA device,
then Apple's MPS, then the CPU. Under ``torchrun`` a plain ``cuda`` means this rank's local GPU.
"""

from __future__ import annotations

import os
from typing import Any

from sciflow.errors import InputError

__all__ = ["resolve_device", "DEVICE_HELP"]

DEVICE_HELP = "cpu, cuda, cuda:N, mps or auto (the first GPU if there is one, else the CPU)"


def resolve_device(spec: Any = "cpu", *, name: str = "--device") -> Any:
    """``"cpu"``/``"cuda"``/``"cuda:1"``/``"mps"``/``"auto"`` or a ``torch.device`` -> a device
    that exists here. Raises InputError (naming ``name``) for an unknown or absent device."""
    import torch

    if isinstance(spec, torch.device):
        text = str(spec)
    elif isinstance(spec, str) and spec.strip():
        text = spec.strip().lower()
    else:
        raise InputError(f"{name}={spec!r}: expected {DEVICE_HELP}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else ("mps" if has_mps else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise InputError(f"{name}={spec!r} is not a device; expected {DEVICE_HELP}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"{name}={spec!r}: this machine has no CUDA device (torch "
                             f"{torch.__version__}); use --device cpu or auto")
        index = device.index
        if index is None:
            index = int(os.environ.get("LOCAL_RANK", "0")) if "WORLD_SIZE" in os.environ else 0
        if index >= count:
            raise InputError(f"{name}={spec!r}: there are {count} CUDA device(s), cuda:0 to "
                             f"cuda:{count - 1}")
        device = torch.device("cuda", index)
    elif device.type == "mps" and not has_mps:
        raise InputError(f"{name}={spec!r}: MPS is not available here; use cpu or auto")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"{name}={spec!r}: sciflow runs on {DEVICE_HELP}")
    return device

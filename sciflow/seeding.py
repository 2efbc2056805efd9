"""One call that fixes every random stream a run uses, before anything random happens.

``seed_everything(seed)`` seeds Python's ``random``, NumPy's global generator and torch (CPU and
every CUDA device), and returns a fresh ``torch.Generator`` seeded alike for code that draws
explicitly. Call it *before* building a model: weight initialisation draws from torch's global
stream, so a model built first is not reproducible (two processes with ``seed=0`` would differ).
"""

from __future__ import annotations

import random

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> object:
    """Seed python, numpy and torch with ``seed`` (an integer in [0, 2**31)); returns a
    ``torch.Generator`` seeded with it."""
    import numpy as np
    import torch

    from sciflow.errors import InputError

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise InputError(f"seed={seed!r}: expected an integer in [0, 2**31)")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)

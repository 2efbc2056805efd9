"""Reference forecasts every forecaster is read against: repeating the last context frame (the
floor) and drawing exact future branches with their known probabilities (the ceiling)."""

from __future__ import annotations

import torch
from torch import Tensor

from sciflow.errors import InputError

from .data import EvalSet

__all__ = ["copy_last", "copy_last_forecast", "oracle_forecast"]


def copy_last(context: Tensor, horizon: int) -> Tensor:
    """The last of the context frames (B, L, *) repeated ``horizon`` times: (B, 1, horizon, *),
    one deterministic 'sample'."""
    return context[:, -1:, None].expand(-1, 1, horizon, *context.shape[2:]).clone()


def copy_last_forecast(data: EvalSet) -> Tensor:
    """The trivial baseline: the last context frame repeated, (B, 1, H, D, h, w)."""
    return copy_last(data.context, data.future.shape[1])


def oracle_forecast(data: EvalSet, samples: int, *, seed: int = 0) -> Tensor:
    """A perfect sampler: K exact branches per clip drawn with their known probabilities,
    (B, K, H, D, h, w). Its scores are the ceiling a forecaster can reach."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"samples={samples!r}: expected an integer >= 1")
    g = torch.Generator().manual_seed(seed)
    b = data.branches.shape[0]
    idx = torch.multinomial(data.probs.double().expand(b, -1), samples, replacement=True,
                            generator=g)
    return data.branches[torch.arange(b)[:, None], idx]

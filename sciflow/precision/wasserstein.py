"""The Wasserstein rounding-error test of Paxton et al. (J. Climate 35(4), 2022).

Is a low-precision model's climate distinguishable from the float64 one? Compare the distribution
of each variable (at each grid point, for fields) over time and ensemble members: W1 between the
low-precision run and the float64 reference, judged against a *null*, W1 between float64 runs from
perturbed initial conditions and the same reference (the spread that chaos alone gives). The
reported figure is the ratio ``mean W1(low, ref) / mean W1(null, ref)``; the low-precision run is
indistinguishable from float64 when its W1 is within the null's range (not above the largest null
run's W1): the rounding error is then lost in the internal variability.

In 1-D the distance between empirical distributions has a closed form,
``W1 = int |F_a(z) - F_b(z)| dz``, which for equal sample sizes is ``mean |sort(a) - sort(b)|``.

For a flow-matching sampler (an ODE from noise, not chaotic) the same noise can be pushed through
both precisions: ``mean_i ||x_low,i - x_64,i||`` is the cost of one coupling, so it bounds W1 from
above, with far less sampling noise than W1 of two sample sets (:func:`same_noise_deviation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "wasserstein1_1d",
    "RoundingErrorResult",
    "rounding_error_test",
    "same_noise_deviation",
]


def _as_samples(x: Tensor, name: str, dim: int) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if x.dim() == 0:
        raise ValueError(f"{name} is a scalar; expected samples along dim {dim}")
    if x.shape[dim] == 0:
        raise ValueError(f"{name} has no samples along dim {dim} (shape {tuple(x.shape)})")
    return x.to(torch.float64).movedim(dim, -1)


def wasserstein1_1d(a: Tensor, b: Tensor, *, dim: int = 0) -> Tensor:
    """Exact W1 between the 1-D empirical distributions of ``a`` and ``b`` along ``dim``.

    ``W1 = int |F_a(z) - F_b(z)| dz``; with equal sample counts this is
    ``mean_k |a_(k) - b_(k)|`` over the sorted samples.

    Shapes: a (..., n, ...), b (..., m, ...) with ``dim`` the sample axis and the other axes equal
    -> (...) one distance per variable / grid point, float64.

    Examples
    --------
    >>> wasserstein1_1d(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])).item()
    2.0
    """
    x = _as_samples(a, "a", dim)
    y = _as_samples(b, "b", dim)
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(
            f"a and b must agree on every axis but the sample axis dim={dim}; got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    x = x.sort(dim=-1).values
    y = y.sort(dim=-1).values
    n, m = x.shape[-1], y.shape[-1]
    if n == m:
        return (x - y).abs().mean(dim=-1)
    z = torch.cat([x, y], dim=-1).sort(dim=-1).values
    cdf_x = torch.searchsorted(x.contiguous(), z.contiguous(), right=True).to(torch.float64) / n
    cdf_y = torch.searchsorted(y.contiguous(), z.contiguous(), right=True).to(torch.float64) / m
    gaps = z.diff(dim=-1)
    return ((cdf_x - cdf_y).abs()[..., :-1] * gaps).sum(dim=-1)


@dataclass(frozen=True)
class RoundingErrorResult:
    """Outcome of :func:`rounding_error_test` for one variable.

    Attributes
    ----------
    w1:
        (*S) W1 between the low-precision run and the float64 reference, per grid point.
    null:
        (*S) mean over the null runs of W1(null run, reference), per grid point.
    null_each:
        (K,) grid-mean W1 of each null run, to see the null's own spread.
    ratio:
        ``mean(w1) / mean(null)``, the reported figure.
    limit:
        ``max(null_each) / mean(null)``: the ratio the worst null run reaches by chaos alone.
    """

    w1: Tensor
    null: Tensor
    null_each: Tensor
    ratio: float
    limit: float

    @property
    def indistinguishable(self) -> bool:
        """Whether the error is within the null's range: ``mean(w1) <= max_k null_k``."""
        return self.ratio <= self.limit


def rounding_error_test(
    low: Tensor,
    reference: Tensor,
    null_runs: Sequence[Tensor] | Tensor,
    *,
    dim: int = 0,
) -> RoundingErrorResult:
    """W1 of a low-precision run to the float64 reference, judged against a float64 null.

    Parameters
    ----------
    low:
        (N, *S) samples of one variable (time steps x members along ``dim``) from the
        low-precision run; S is () for a scalar variable, (ny, nx) for a field.
    reference:
        (M, *S) samples from the float64 reference run.
    null_runs:
        K runs (N_k, *S) in float64 from perturbed initial conditions (a sequence, or one tensor
        (K, N, *S) with the sample axis at ``dim + 1``).

    Returns
    -------
    RoundingErrorResult
        per-grid-point W1 and null, and the ratio of their means.
    """
    if isinstance(null_runs, Tensor):
        null_runs = list(null_runs.unbind(0))
    if len(null_runs) == 0:
        raise ValueError("null_runs is empty; pass at least one float64 run from perturbed ICs")
    w1 = wasserstein1_1d(low, reference, dim=dim)
    nulls = torch.stack([wasserstein1_1d(run, reference, dim=dim) for run in null_runs])
    null = nulls.mean(dim=0)
    null_each = nulls.reshape(nulls.shape[0], -1).mean(dim=1)
    ratio = float(w1.mean() / null.mean())
    limit = float(null_each.max() / null.mean())
    return RoundingErrorResult(w1=w1, null=null, null_each=null_each, ratio=ratio, limit=limit)


def same_noise_deviation(x_low: Tensor, x_ref: Tensor) -> float:
    """``mean_i ||x_low,i - x_ref,i||_2`` over paired samples from the same noise (float64).

    The pairing is one transport plan between the two sample sets, so this bounds their W1 from
    above.

    Shapes: x_low, x_ref (B, *) -> float (features flattened).
    """
    if x_low.shape != x_ref.shape:
        raise ValueError(
            f"x_low has shape {tuple(x_low.shape)} but x_ref has {tuple(x_ref.shape)}; they must "
            f"be the same samples from the same noise"
        )
    diff = (x_low.to(torch.float64) - x_ref.to(torch.float64)).flatten(1)
    return float(diff.norm(dim=1).mean())

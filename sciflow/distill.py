"""Reflow and k-step distillation of a trained flow, and the straightness of its trajectories.

Rectified flow (Liu, Gong & Liu 2023, "Flow straight and fast"):

1. couplings: push source draws through the trained ODE, Z1 = ODE_v(Z0) (:func:`generate_pairs`);
2. reflow: train v' on the straight line between the *coupled* pairs,
   min E_t || v'(t Z1 + (1 - t) Z0, t) - (Z1 - Z0) ||^2 (:func:`reflow`). The pairs no longer cross,
   so the new flow's paths are straighter and few Euler steps suffice;
3. k-step distillation: the same loss with t restricted to the Euler grid {0, 1/k, ..., (k-1)/k}
   (:func:`distill`); k = 1 is min E || Z0 + v(Z0, 0) - Z1 ||^2, a one-step generator.

Straightness (their eq. for S(Z)): S = int_0^1 E || (Z1 - Z0) - v(Z_t, t) ||^2 dt along the model's
own trajectories; zero iff every trajectory is a straight line traversed at constant speed
(:func:`straightness`, reported per coordinate).

Dense data: pairs (P, *). Graphs: node rows with ``batch``; batches of training pairs are drawn
as whole graphs with their conditions (:func:`sciflow.particles.take_samples`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sciflow import graphs
from sciflow.matcher import FlowMatcher, UniformTime
from sciflow.particles import take_samples
from sciflow.solvers import odeint
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = [
    "Pairs",
    "GridTime",
    "Straightness",
    "generate_pairs",
    "straightness",
    "train_on_pairs",
    "reflow",
    "distill",
    "DistillResult",
]


@dataclass(frozen=True)
class Pairs:
    """Coupled (source, end) samples from a trained flow: x0, x1 (P, *) or graph rows with batch,
    their conditions, and the NFE per sample it cost to make them."""

    x0: Tensor
    x1: Tensor
    batch: Tensor | None
    cond: Any
    nfe: int

    @property
    def count(self) -> int:
        return graphs.num_graphs(self.batch, self.x0.shape[0]) if self.batch is not None else self.x0.shape[0]


@dataclass(frozen=True)
class GridTime:
    """t uniform on the Euler grid {0, 1/k, ..., (k-1)/k}: the time sampler of k-step distillation."""

    k: int

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")

    def __call__(self, n: int, *, generator: torch.Generator | None, device: torch.device,
                 dtype: torch.dtype) -> Tensor:
        return torch.randint(0, self.k, (n,), generator=generator).to(device=device, dtype=dtype) / self.k


@dataclass(frozen=True)
class Straightness:
    """value: S per coordinate (mean over samples, time and coordinates); speed: mean ||v||^2 per
    coordinate along the path; steps: Euler steps of the estimate."""

    value: float
    speed: float
    steps: int


@dataclass(frozen=True)
class DistillResult:
    """The trained model (EMA weights, eval mode), the trainer's record, the training time grid
    ("uniform" for reflow, k for k-step distillation)."""

    model: nn.Module
    train: TrainResult
    times: str | int


@torch.no_grad()
def generate_pairs(
    model: Callable[..., Tensor],
    x0: Tensor,
    *,
    method: str = "rk4",
    steps: int = 32,
    cond: Any = None,
    batch: Tensor | None = None,
) -> Pairs:
    """Couplings of a trained flow: Z1 = ODE_v(Z0) with any solver of :data:`sciflow.solvers.SOLVERS`
    (an adaptive one ignores ``steps``).

    Shapes: x0 (P, *) -> Pairs with x1 (P, *). The teacher's accuracy bounds the student's, so use
    an accurate solver here (rk4 with 32 steps = 128 NFE per pair by default).
    """
    sol = odeint(model, x0, method=method, steps=steps, cond=cond, batch=batch)
    return Pairs(x0=x0.detach(), x1=sol.x.detach(), batch=batch, cond=cond, nfe=sol.nfe)


@torch.no_grad()
def straightness(
    model: Callable[..., Tensor],
    x0: Tensor,
    *,
    steps: int = 32,
    cond: Any = None,
    batch: Tensor | None = None,
) -> Straightness:
    """S = int_0^1 E ||(Z1 - Z0) - v(Z_t, t)||^2 dt on an Euler grid of ``steps`` (Liu et al. 2023).

    Z_t is the model's own Euler trajectory from x0; Z1 its end. Reported per coordinate (divided by
    the number of entries), so it compares across data sizes. Shapes: x0 (N, *).
    """
    sol = odeint(model, x0, method="euler", steps=steps, cond=cond, batch=batch, return_trajectory=True)
    traj = sol.trajectory
    assert traj is not None
    chord = traj[-1] - traj[0]
    # Euler: v(Z_{t_i}, t_i) = (Z_{i+1} - Z_i) / dt, so no second pass over the network is needed
    dev, spd = 0.0, 0.0
    for a, b in zip(traj[:-1], traj[1:]):
        v = (b - a) * steps
        dev += float(((chord - v) ** 2).mean())
        spd += float((v**2).mean())
    return Straightness(value=dev / steps, speed=spd / steps, steps=steps)


def train_on_pairs(
    student: nn.Module,
    pairs: Pairs,
    *,
    times: str | int = "uniform",
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    ema_decay: float = 0.99,
    seed: int = 0,
    progress: bool | None = False,
    out_dir: str | None = None,
) -> DistillResult:
    """Regress ``student`` on the straight lines between coupled pairs.

    L = E_t E_pairs || student(t Z1 + (1 - t) Z0, t) - (Z1 - Z0) ||^2, t ~ U[0, 1) for
    ``times="uniform"`` (reflow) or t on the grid {j / k} for ``times=k`` (k-step distillation).
    ``batch_size`` counts samples (graphs). Warm-start by passing a copy of the teacher; the student
    is trained in place (its parameters are set trainable) and its EMA copy is returned.
    """
    if times != "uniform" and not (isinstance(times, int) and times >= 1):
        raise ValueError(f"times must be 'uniform' or an integer k >= 1, got {times!r}")
    if not isinstance(student, nn.Module):
        raise TypeError(f"student must be a torch.nn.Module, got {type(student).__name__}")
    if pairs.x0.shape != pairs.x1.shape:
        raise ValueError(f"pairs x0 {tuple(pairs.x0.shape)} and x1 {tuple(pairs.x1.shape)} differ")
    matcher = FlowMatcher(time=UniformTime() if times == "uniform" else GridTime(int(times)))
    count = pairs.count
    both = torch.cat([pairs.x0, pairs.x1], dim=-1)
    d = pairs.x0.shape[-1]

    def batch_fn(step: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor | None, Any]:
        idx = torch.randint(0, count, (min(batch_size, count),), generator=g)
        x, b, c = take_samples(both, idx.to(both.device), batch=pairs.batch, cond=pairs.cond)
        return x[..., :d], x[..., d:], b, c

    def loss_fn(net: nn.Module, data: tuple[Tensor, Tensor, Tensor | None, Any]) -> Tensor:
        x0, x1, b, c = data
        return matcher.loss(net, x1, x0=x0, cond=c, batch=b)

    config = TrainConfig(steps=steps, lr=lr, schedule="cosine", ema_decay=ema_decay, seed=seed,
                         progress=progress, out_dir=out_dir, log_every=max(steps // 10, 1))
    # a copy of an EMA teacher arrives frozen and in eval mode: the student is trained in place
    student.requires_grad_(True).train()
    trainer = Trainer(student, loss_fn, config, meta={"distill": {"times": times}})
    with torch.enable_grad():  # callers often sample under no_grad; training needs autograd
        result = trainer.fit(batch_fn)
    return DistillResult(model=trainer.ema_model, train=result, times=times)


def reflow(student: nn.Module, pairs: Pairs, **kwargs: Any) -> DistillResult:
    """Reflow: :func:`train_on_pairs` with t ~ U[0, 1) (a straighter flow with the same ends)."""
    return train_on_pairs(student, pairs, times="uniform", **kwargs)


def distill(student: nn.Module, pairs: Pairs, *, k: int = 1, **kwargs: Any) -> DistillResult:
    """k-step distillation: :func:`train_on_pairs` on the Euler grid; sample with ``steps=k`` Euler."""
    return train_on_pairs(student, pairs, times=k, **kwargs)

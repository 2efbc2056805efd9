"""Reward-driven particle sampling for a trained flow under a fixed budget of network evaluations.

Three searches over the stochastic trajectories of a trained velocity field, each given a budget of
``budget`` network evaluations (NFE) *per returned sample* and a ``reward`` to maximise:

- :func:`best_of_n`: N = budget // steps independent trajectories, keep the one with the highest
  reward of its end sample. Its reward is the maximum over N draws.
- :func:`smc`: sequential Monte Carlo (Del Moral et al. 2006) with N = budget // steps particles;
  after every step each particle's reward is scored on its data estimate x1_hat (free: the velocity
  at the new state is needed for the next step anyway), the weights multiply by
  exp(lambda (r_new - r_old)), and the particles are resampled (systematically) when the effective
  sample size drops below ``ess_threshold`` N. Returns the best end particle of each run.
- :func:`rollover_budget_forcing`: one particle per run (Kim et al. 2025, "Inference-time scaling for
  flow models via stochastic generation and rollover budget forcing"), started from the best of
  N source draws. Each step has a quota of evaluations; proposals x_{t+dt} are drawn one at a time
  from the SDE step and scored on their x1_hat; the first proposal whose reward beats the best
  reward accepted so far is taken, and the evaluations left unused roll over to the next step. A
  step with no winning proposal moves to its best proposal; the last proposal step spends all
  that is left and keeps its best proposal, so the whole budget is used.

The stochastic step is :class:`sciflow.solvers.SDEStep` (re-exported here), the one
Euler-Maruyama step of the flow's marginal-preserving SDE that :func:`sciflow.solvers.sde_sample`
also runs (score from the velocity; Albergo et al. 2023):

    x_{t+dt} = x + dt (v + eps_t s) + sqrt(2 eps_t dt) z,   s = path.velocity_to_score(v, x, t)

with no noise on the last step, for shifted and scaled Gaussian sources too (e.g. the
transition-state model's (R + P)/2 + 0.2 A noise). With ``SDEStep(diffusion=0)`` the searches run
on the ODE and particles differ only in their x0. For a variance-preserving interpolant as in
Kim et al., wrap the model with :func:`sciflow.reparam.to_vp` and pass
``SDEStep(path=AffinePath(CosineScheduler()))``.

Accounting: one NFE is one velocity evaluation of one sample (one graph). Rewards cost no NFE.
Runs: ``like`` (R, *) holds one row per run (dense) or the node rows of R graphs with ``batch``;
particles of run i sit at position p R + i of the tiled batch. ``cond`` may be a tensor, a dict,
a list/tuple or a dataclass of tensors; tensors with one row per sample (graph) or per node row are
tiled and resampled with the particles, others pass unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.solvers import SDEStep

__all__ = [
    "Reward",
    "ParticleSource",
    "gaussian_source",
    "SDEStep",
    "ParticleResult",
    "take_samples",
    "best_of_n",
    "smc",
    "rollover_budget_forcing",
]


class Reward(Protocol):
    """r(x, *, cond, batch) -> (B,): one reward per sample (per graph), higher is better."""

    def __call__(self, x: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor: ...


class ParticleSource(Protocol):
    """x0 for a tiled batch: source(like, *, cond, batch, generator) -> tensor shaped like ``like``."""

    def __call__(self, like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor: ...


def gaussian_source(scale: float = 1.0, *, center_graphs: bool = False) -> ParticleSource:
    """x0 ~ N(0, scale^2 I), optionally centred per graph (as :class:`sciflow.matcher.GaussianSource`)."""

    def draw(like: Tensor, *, cond: Any = None, batch: Tensor | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        z = scale * torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
        return graphs.center(z, batch) if center_graphs else z

    return draw


@dataclass(frozen=True)
class ParticleResult:
    """What a particle search returns.

    x: (R, *) dense or the node rows of R graphs, in the layout of ``like``; reward: (R,) reward of
    each returned sample; nfe: (R,) int64 evaluations spent per run (never above ``budget``);
    particles: particles per run (best-of-N, SMC) or source draws per run (RBF); rewards_seen:
    (particles, R) end rewards of every particle (best-of-N, SMC), else None; resamples:
    resampling events (SMC).
    """

    x: Tensor
    reward: Tensor
    nfe: Tensor
    budget: int
    particles: int
    rewards_seen: Tensor | None = None
    resamples: int = 0


# ----------------------------------------------------------------------------- batch bookkeeping


def _map_tensors(obj: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _map_tensors(getattr(obj, f.name), fn)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


@dataclass(frozen=True)
class _Runs:
    """Samples (dense rows or ragged graphs) with their conditions, indexable by sample."""

    x: Tensor
    batch: Tensor | None
    cond: Any
    n: int

    @staticmethod
    def of(x: Tensor, batch: Tensor | None, cond: Any) -> _Runs:
        n = graphs.num_graphs(batch, x.shape[0]) if batch is not None else x.shape[0]
        return _Runs(x, batch, cond, n)

    def take(self, idx: Tensor) -> _Runs:
        x, batch, cond = take_samples(self.x, idx, batch=self.batch, cond=self.cond)
        return _Runs(x, batch, cond, int(idx.numel()))

    def tile(self, k: int) -> _Runs:
        return self.take(torch.arange(self.n, device=self.x.device).repeat(k))

    def with_x(self, x: Tensor) -> _Runs:
        return _Runs(x, self.batch, self.cond, self.n)


def take_samples(x: Tensor, idx: Tensor, *, batch: Tensor | None = None,
                 cond: Any = None) -> tuple[Tensor, Tensor | None, Any]:
    """Pick samples (graphs) ``idx`` (M,), repeats allowed, with their conditions.

    Dense: x[idx]. Ragged: the node rows of graphs idx in that order, a new batch vector 0..M-1,
    and every tensor in ``cond`` with one row per graph or per node row indexed alike.
    Returns (x, batch, cond). Shapes: x (N, *), batch (N,) -> (N', *), (N',).
    """
    idx = idx.to(device=x.device, dtype=torch.long)
    if batch is None:
        n = x.shape[0]
        return x[idx], None, _map_tensors(cond, lambda c: c[idx] if c.dim() and c.shape[0] == n else c)
    n_rows, n = x.shape[0], graphs.num_graphs(batch, x.shape[0])
    order = torch.argsort(batch, stable=True)
    sizes = graphs.graph_sizes(batch, n)
    ptr = torch.cumsum(sizes, 0) - sizes
    counts = sizes[idx]
    new_batch = torch.repeat_interleave(torch.arange(idx.numel(), device=x.device), counts)
    offsets = torch.cumsum(counts, 0) - counts
    local = torch.arange(new_batch.numel(), device=x.device) - offsets[new_batch]
    rows = order[ptr[idx][new_batch] + local]

    def pick(c: Tensor) -> Tensor:
        if c.dim() and c.shape[0] == n_rows:
            return c[rows]
        if c.dim() and c.shape[0] == n:
            return c[idx]
        return c

    return x[rows], new_batch, _map_tensors(cond, pick)


def _check_common(like: Tensor, budget: int, steps: int, batch: Tensor | None) -> None:
    if not isinstance(like, Tensor) or not like.is_floating_point():
        raise TypeError(f"like must be a floating-point tensor of one sample per run, got "
                        f"{type(like).__name__}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not isinstance(budget, int) or budget < steps:
        raise ValueError(f"budget={budget!r} NFE per sample cannot pay for one trajectory of "
                         f"steps={steps}; need an integer budget >= steps")
    if batch is not None and (batch.dim() != 1 or batch.shape[0] != like.shape[0]):
        raise ValueError(f"batch must be (N,) with one graph index per row of like "
                         f"(N={like.shape[0]}), got shape {tuple(batch.shape)}")


def _velocity(model: Callable[..., Tensor], runs: _Runs, x: Tensor, t: float) -> Tensor:
    tt = torch.full((runs.n,), t, dtype=x.dtype, device=x.device)
    return model(x, tt, cond=runs.cond, batch=runs.batch)


def _x1_hat(dyn: SDEStep, runs: _Runs, v: Tensor, x: Tensor, t: float) -> Tensor:
    tt = graphs.expand_per_graph(torch.full((runs.n,), t, dtype=x.dtype, device=x.device), runs.batch)
    return dyn.path.velocity_to_x1(v, x, tt)


def _reward(reward: Reward, runs: _Runs, x: Tensor) -> Tensor:
    r = reward(x, cond=runs.cond, batch=runs.batch)
    if not isinstance(r, Tensor) or r.shape != (runs.n,):
        raise ValueError(f"reward must return one value per sample (graph), shape ({runs.n},), got "
                         f"{tuple(r.shape) if isinstance(r, Tensor) else type(r).__name__}")
    if bool(torch.isnan(r).any()):
        raise ValueError("reward returned NaN; map failures (e.g. an SCF that did not converge) to a "
                         "low finite reward instead")
    return r.detach().to(device=runs.x.device, dtype=torch.float64)


def _best_per_run(r: Tensor, k: int, n: int) -> tuple[Tensor, Tensor]:
    """r (k n,) in tiled order -> best particle index into the tiled batch (n,), its reward (n,)."""
    table = r.reshape(k, n)
    best, which = table.max(dim=0)
    return which * n + torch.arange(n, device=r.device), best


# ----------------------------------------------------------------------------- the searches


@torch.no_grad()
def best_of_n(
    model: Callable[..., Tensor],
    like: Tensor,
    *,
    reward: Reward,
    budget: int,
    steps: int,
    source: ParticleSource | None = None,
    dynamics: SDEStep | None = None,
    cond: Any = None,
    batch: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ParticleResult:
    """Draw N = budget // steps trajectories per run and keep the end sample of highest reward.

    ``dynamics`` defaults to the SDE with eps_t = 1 - t; ``SDEStep(diffusion=0)`` is the ODE (then
    the draws differ only in x0). Shapes: like (R, *) or graph rows with batch -> ParticleResult.
    """
    _check_common(like, budget, steps, batch)
    source = source if source is not None else gaussian_source()
    dyn = dynamics if dynamics is not None else SDEStep()
    k = budget // steps
    base = _Runs.of(like, batch, cond)
    runs = base.tile(k)
    x = source(runs.x, cond=runs.cond, batch=runs.batch, generator=generator)
    dt = 1.0 / steps
    for i in range(steps):
        v = _velocity(model, runs, x, i * dt)
        x = dyn(v, x, i * dt, dt, batch=runs.batch, last=i == steps - 1, cond=runs.cond,
                generator=generator)
    r = _reward(reward, runs, x)
    pick, best = _best_per_run(r, k, base.n)
    out = runs.with_x(x).take(pick)
    nfe = torch.full((base.n,), k * steps, dtype=torch.long, device=like.device)
    return ParticleResult(x=out.x, reward=best, nfe=nfe, budget=budget, particles=k,
                          rewards_seen=r.reshape(k, base.n))


def _systematic_resample(weights: Tensor, generator: torch.Generator | None) -> Tensor:
    """Systematic resampling per column: weights (k, n) normalised per column -> indices (k, n)."""
    k, n = weights.shape
    dev = weights.device
    u = torch.rand(1, n, generator=generator, dtype=weights.dtype).to(dev)
    u = (u + torch.arange(k, dtype=weights.dtype, device=dev)[:, None]) / k
    cdf = torch.cumsum(weights, dim=0)
    cdf[-1] = 1.0
    return torch.searchsorted(cdf.T.contiguous(), u.T.contiguous()).T.clamp_max(k - 1)


@torch.no_grad()
def smc(
    model: Callable[..., Tensor],
    like: Tensor,
    *,
    reward: Reward,
    budget: int,
    steps: int,
    source: ParticleSource | None = None,
    dynamics: SDEStep | None = None,
    temperature: float = 1.0,
    ess_threshold: float = 0.5,
    cond: Any = None,
    batch: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ParticleResult:
    """Sequential Monte Carlo with N = budget // steps particles per run, potentials on x1_hat.

    log w <- log w + lambda (r(x1_hat_{t+dt}) - r(x1_hat_t)),  lambda = ``temperature``; resample
    systematically when ESS = 1 / sum w^2 < ``ess_threshold`` N (then log w = 0). The returned
    sample is each run's end particle with the highest reward.
    """
    _check_common(like, budget, steps, batch)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 <= ess_threshold <= 1:
        raise ValueError(f"ess_threshold must lie in [0, 1], got {ess_threshold}")
    source = source if source is not None else gaussian_source()
    dyn = dynamics if dynamics is not None else SDEStep()
    k = budget // steps
    base = _Runs.of(like, batch, cond)
    n = base.n
    runs = base.tile(k)
    x = source(runs.x, cond=runs.cond, batch=runs.batch, generator=generator)
    dt = 1.0 / steps
    v = _velocity(model, runs, x, 0.0)
    r_old = _reward(reward, runs, _x1_hat(dyn, runs, v, x, 0.0))
    log_w = torch.zeros(k, n, dtype=torch.float64, device=like.device)
    resamples = 0
    for i in range(steps):
        t, last = i * dt, i == steps - 1
        x = dyn(v, x, t, dt, batch=runs.batch, last=last, cond=runs.cond, generator=generator)
        if last:
            r_new = _reward(reward, runs, x)
        else:
            v = _velocity(model, runs, x, t + dt)
            r_new = _reward(reward, runs, _x1_hat(dyn, runs, v, x, t + dt))
        log_w = log_w + temperature * (r_new - r_old).reshape(k, n)
        r_old = r_new
        if last or k == 1:
            continue
        w = torch.softmax(log_w, dim=0)
        ess = 1.0 / (w**2).sum(dim=0)
        if bool((ess < ess_threshold * k).any()):
            resample = ess < ess_threshold * k
            idx = _systematic_resample(w, generator)
            keep = torch.arange(k, device=idx.device)[:, None].expand(k, n)
            idx = torch.where(resample[None, :], idx, keep)
            flat = (idx * n + torch.arange(n, device=idx.device)[None, :]).reshape(-1)
            moved = runs.with_x(torch.cat([x, v], dim=-1)).take(flat)
            d = x.shape[-1]
            x, v = moved.x[..., :d], moved.x[..., d:]
            runs = _Runs(x, moved.batch, moved.cond, moved.n)
            r_old = r_old[flat]
            log_w = torch.where(resample[None, :], torch.zeros_like(log_w), log_w)
            resamples += int(resample.sum())
    pick, best = _best_per_run(r_old, k, n)
    out = runs.with_x(x).take(pick)
    nfe = torch.full((n,), k * steps, dtype=torch.long, device=like.device)
    return ParticleResult(x=out.x, reward=best, nfe=nfe, budget=budget, particles=k,
                          rewards_seen=r_old.reshape(k, n), resamples=resamples)


@torch.no_grad()
def rollover_budget_forcing(
    model: Callable[..., Tensor],
    like: Tensor,
    *,
    reward: Reward,
    budget: int,
    steps: int,
    source: ParticleSource | None = None,
    dynamics: SDEStep | None = None,
    initial_particles: int | None = None,
    cond: Any = None,
    batch: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ParticleResult:
    """Rollover budget forcing (Kim et al. 2025): one particle per run, proposals under a quota.

    Start: ``initial_particles`` source draws per run, each paying one NFE for v(x0); the one whose
    x1_hat scores highest starts the search. The other budget - initial_particles NFE are split
    evenly over the proposal steps 0..steps-2 (the last step is deterministic: the SDE adds no
    noise there). At step i each run draws proposals x' = SDE step of (x_t, v) one at a time,
    pays one NFE for v(x', t + dt) and scores r(x1_hat(x')). The first proposal with r above the
    best reward accepted so far is taken and the rest of the step's quota rolls over to step
    i + 1; with none, the step moves to its best proposal. The last proposal step spends
    everything left (no early stop) and moves to its best proposal, whose x1_hat the final
    deterministic step returns (exactly, on the linear path). So every run spends exactly
    ``budget`` NFE when steps >= 2.

    ``initial_particles`` defaults to N = budget // steps, the particle count of :func:`best_of_n`
    and :func:`smc` at the same budget (Kim et al.'s code also starts from the best of several
    draws). For an exact linear-path flow x1_hat(x0) = E[x1] for every x0, so the choice would be
    blind; a trained network's v(x0, 0) is smooth in t and already points where its trajectory
    goes, so it pays in practice (benchmarks/results/inference.md, section 2). Pass 1 to start
    from a single draw.

    Runs advance in lock step; only the runs still searching are evaluated, so the NFE spent per
    run is counted exactly. Shapes: like (R, *) or graph rows with batch -> ParticleResult.
    """
    _check_common(like, budget, steps, batch)
    if initial_particles is None:
        initial_particles = budget // steps
    if not isinstance(initial_particles, int) or not 1 <= initial_particles <= budget - (steps - 1):
        raise ValueError(f"initial_particles must be an integer in [1, budget - (steps - 1)] = "
                         f"[1, {budget - steps + 1}] (each later step needs one NFE), got "
                         f"{initial_particles!r}")
    source = source if source is not None else gaussian_source()
    dyn = dynamics if dynamics is not None else SDEStep()
    base = _Runs.of(like, batch, cond)
    n, dev = base.n, like.device
    starts = base.tile(initial_particles)
    x = source(starts.x, cond=starts.cond, batch=starts.batch, generator=generator)
    v = _velocity(model, starts, x, 0.0)
    r0 = _reward(reward, starts, _x1_hat(dyn, starts, v, x, 0.0))
    pick, best_r = _best_per_run(r0, initial_particles, n)
    runs = starts.with_x(torch.cat([x, v], dim=-1)).take(pick)
    d = x.shape[-1]
    x, v = runs.x[..., :d], runs.x[..., d:]
    runs = _Runs(x, runs.batch, runs.cond, n)
    nfe = torch.full((n,), initial_particles, dtype=torch.long, device=dev)
    dt = 1.0 / steps
    proposal_steps = steps - 1
    carry = torch.zeros(n, dtype=torch.long, device=dev)
    spare = budget - initial_particles
    for i in range(proposal_steps):
        t, final = i * dt, i == proposal_steps - 1
        quota = spare // proposal_steps + (1 if i < spare % proposal_steps else 0)
        allowed = carry + quota
        used = torch.zeros(n, dtype=torch.long, device=dev)
        searching = allowed > 0
        step_r = torch.full((n,), -math.inf, dtype=torch.float64, device=dev)
        new_x, new_v = x.clone(), v.clone()
        while bool(searching.any()):
            sel = searching.nonzero().flatten()
            sub = runs.with_x(torch.cat([x, v], dim=-1)).take(sel)
            xs, vs = sub.x[..., :d], sub.x[..., d:]
            sub = _Runs(xs, sub.batch, sub.cond, sub.n)
            xp = dyn(vs, xs, t, dt, batch=sub.batch, last=False, cond=sub.cond, generator=generator)
            vp = _velocity(model, sub, xp, t + dt)
            used[sel] += 1
            rp = _reward(reward, sub, _x1_hat(dyn, sub, vp, xp, t + dt))
            better = (rp > step_r[sel]) | (used[sel] == 1)  # the first proposal always moves
            if bool(better.any()):
                won = sel[better]
                step_r[won] = rp[better]
                _scatter_samples(new_x, xp, runs.batch, sub.batch, won, better)
                _scatter_samples(new_v, vp, runs.batch, sub.batch, won, better)
            if not final:  # a winner ends the step; the last step searches to the end of the budget
                searching[sel[rp > best_r[sel]]] = False
            searching &= used < allowed
        x, v = new_x, new_v
        best_r = torch.maximum(best_r, step_r)
        carry = allowed - used
        nfe += used
    x = dyn(v, x, (steps - 1) * dt, dt, batch=runs.batch, last=True, cond=runs.cond,
            generator=generator)
    r = _reward(reward, runs, x)
    return ParticleResult(x=x, reward=r, nfe=nfe, budget=budget, particles=initial_particles)


def _scatter_samples(dest: Tensor, src: Tensor, batch: Tensor | None, sub_batch: Tensor | None,
                     targets: Tensor, chosen: Tensor) -> None:
    """dest[sample targets[j]] = src[sample j of chosen], in place (graphs: whole node blocks)."""
    if batch is None:
        dest[targets.to(dest.device)] = src[chosen]
        return
    order = torch.argsort(batch, stable=True)
    rows_dest = order[torch.isin(batch[order], targets.to(batch.device))]
    chosen_ids = chosen.nonzero().flatten().to(sub_batch.device)
    sub_order = torch.argsort(sub_batch, stable=True)
    rows_src = sub_order[torch.isin(sub_batch[sub_order], chosen_ids)]
    # both sides list the graphs in increasing id; targets = sel[chosen] is increasing as sel is
    dest[rows_dest] = src[rows_src]

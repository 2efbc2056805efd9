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

All three run on the one time loop of :mod:`sciflow.solvers` (:func:`~sciflow.solvers.time_loop`
over :func:`~sciflow.solvers.uniform_grid`): best-of-N advances with the SDE step alone, SMC and
rollover budget forcing with an advance function that also scores, reweights and resamples (SMC) or
searches proposals under the step's quota (RBF). Sources are :class:`sciflow.sources.Source` s;
a function ``fn(like, *, cond, batch, generator)`` is accepted too.

The stochastic step is :class:`sciflow.solvers.SDEStep` (re-exported here), the one
Euler-Maruyama step of the flow's marginal-preserving SDE that :func:`sciflow.solvers.sde_sample`
also runs (score from the velocity; Albergo et al. 2023):

    x_{t+dt} = x + dt (v + eps_t s) + sqrt(2 eps_t dt) z,   s = path.velocity_to_score(v, x, t)

with no noise on the last step, for shifted and scaled Gaussian sources too (e.g. the
transition-state model's (R + P)/2 + 0.2 A noise: ``SDEStep.for_source(source)``). With
``SDEStep(diffusion=0)`` the searches run
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
from sciflow.solvers import Interval, SDEStep, time_loop, uniform_grid
from sciflow.sources import GaussianSource, Source, SourceFunction, as_source

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


ParticleSource = Source
"""The former name of the source interface here (now :class:`sciflow.sources.Source`)."""


def gaussian_source(scale: float = 1.0, *, center_graphs: bool = False) -> GaussianSource:
    """x0 ~ N(0, scale^2 I), optionally centred per graph: :class:`sciflow.sources.GaussianSource`
    (kept for old callers; it is also callable as ``source(like, *, cond, batch, generator)``)."""
    return GaussianSource(scale=scale, center_graphs=center_graphs)


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
    source: Source | SourceFunction | None = None,
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
    src = as_source(source)
    dyn = dynamics if dynamics is not None else SDEStep()
    k = budget // steps
    base = _Runs.of(like, batch, cond)
    runs = base.tile(k)
    x = src.sample(runs.x, cond=runs.cond, batch=runs.batch, generator=generator)
    advance = dyn.advance(lambda x, t: _velocity(model, runs, x, t), cond=runs.cond,
                          batch=runs.batch, generator=generator)
    x = time_loop(advance, x, uniform_grid(0.0, 1.0, steps))
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


@dataclass(frozen=True)
class _Swarm:
    """SMC's state on the time loop: the particles (with their conditions), their velocity at the
    current time, the reward of their current data estimate, log-weights (k, n), resamplings."""

    runs: _Runs
    v: Tensor
    reward: Tensor
    log_w: Tensor
    resamples: int


@torch.no_grad()
def smc(
    model: Callable[..., Tensor],
    like: Tensor,
    *,
    reward: Reward,
    budget: int,
    steps: int,
    source: Source | SourceFunction | None = None,
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
    src = as_source(source)
    dyn = dynamics if dynamics is not None else SDEStep()
    k = budget // steps
    base = _Runs.of(like, batch, cond)
    n = base.n
    runs = base.tile(k)
    x = src.sample(runs.x, cond=runs.cond, batch=runs.batch, generator=generator)
    runs = runs.with_x(x)
    v = _velocity(model, runs, x, 0.0)
    start = _Swarm(runs=runs, v=v, reward=_reward(reward, runs, _x1_hat(dyn, runs, v, x, 0.0)),
                   log_w=torch.zeros(k, n, dtype=torch.float64, device=like.device), resamples=0)

    def advance(sw: _Swarm, s: Interval) -> _Swarm:
        runs = sw.runs
        x = dyn(sw.v, runs.x, s.t, s.dt, batch=runs.batch, last=s.last, cond=runs.cond,
                generator=generator)
        runs = runs.with_x(x)
        if s.last:
            v, r_new = sw.v, _reward(reward, runs, x)
        else:
            v = _velocity(model, runs, x, s.t_next)
            r_new = _reward(reward, runs, _x1_hat(dyn, runs, v, x, s.t_next))
        log_w = sw.log_w + temperature * (r_new - sw.reward).reshape(k, n)
        if s.last or k == 1:
            return _Swarm(runs=runs, v=v, reward=r_new, log_w=log_w, resamples=sw.resamples)
        w = torch.softmax(log_w, dim=0)
        ess = 1.0 / (w**2).sum(dim=0)
        if not bool((ess < ess_threshold * k).any()):
            return _Swarm(runs=runs, v=v, reward=r_new, log_w=log_w, resamples=sw.resamples)
        resample = ess < ess_threshold * k
        idx = _systematic_resample(w, generator)
        keep = torch.arange(k, device=idx.device)[:, None].expand(k, n)
        idx = torch.where(resample[None, :], idx, keep)
        flat = (idx * n + torch.arange(n, device=idx.device)[None, :]).reshape(-1)
        moved = runs.with_x(torch.cat([x, v], dim=-1)).take(flat)
        d = x.shape[-1]
        return _Swarm(runs=_Runs(moved.x[..., :d], moved.batch, moved.cond, moved.n),
                      v=moved.x[..., d:], reward=r_new[flat],
                      log_w=torch.where(resample[None, :], torch.zeros_like(log_w), log_w),
                      resamples=sw.resamples + int(resample.sum()))

    end = time_loop(advance, start, uniform_grid(0.0, 1.0, steps))
    pick, best = _best_per_run(end.reward, k, n)
    out = end.runs.take(pick)
    nfe = torch.full((n,), k * steps, dtype=torch.long, device=like.device)
    return ParticleResult(x=out.x, reward=best, nfe=nfe, budget=budget, particles=k,
                          rewards_seen=end.reward.reshape(k, n), resamples=end.resamples)


@dataclass(frozen=True)
class _Climber:
    """RBF's state on the time loop: one particle per run (with its conditions), its velocity, the
    best reward accepted so far, the evaluations rolled over from the last step, NFE spent."""

    runs: _Runs
    v: Tensor
    best: Tensor
    carry: Tensor
    nfe: Tensor


@torch.no_grad()
def rollover_budget_forcing(
    model: Callable[..., Tensor],
    like: Tensor,
    *,
    reward: Reward,
    budget: int,
    steps: int,
    source: Source | SourceFunction | None = None,
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
    src = as_source(source)
    dyn = dynamics if dynamics is not None else SDEStep()
    base = _Runs.of(like, batch, cond)
    n, dev = base.n, like.device
    starts = base.tile(initial_particles)
    x = src.sample(starts.x, cond=starts.cond, batch=starts.batch, generator=generator)
    v = _velocity(model, starts, x, 0.0)
    r0 = _reward(reward, starts, _x1_hat(dyn, starts, v, x, 0.0))
    pick, best_r = _best_per_run(r0, initial_particles, n)
    runs = starts.with_x(torch.cat([x, v], dim=-1)).take(pick)
    d = x.shape[-1]
    start = _Climber(runs=_Runs(runs.x[..., :d], runs.batch, runs.cond, n), v=runs.x[..., d:],
                     best=best_r, carry=torch.zeros(n, dtype=torch.long, device=dev),
                     nfe=torch.full((n,), initial_particles, dtype=torch.long, device=dev))
    proposal_steps = steps - 1
    spare = budget - initial_particles

    def advance(st: _Climber, s: Interval) -> _Climber:
        runs, x, v = st.runs, st.runs.x, st.v
        if s.last:  # deterministic: x1_hat of the best proposal on the linear path
            x = dyn(v, x, s.t, s.dt, batch=runs.batch, last=True, cond=runs.cond, generator=generator)
            return dataclasses.replace(st, runs=runs.with_x(x))
        i, final = s.index, s.index == proposal_steps - 1
        quota = spare // proposal_steps + (1 if i < spare % proposal_steps else 0)
        allowed = st.carry + quota
        used = torch.zeros(n, dtype=torch.long, device=dev)
        searching = allowed > 0
        step_r = torch.full((n,), -math.inf, dtype=torch.float64, device=dev)
        new_x, new_v = x.clone(), v.clone()
        while bool(searching.any()):
            sel = searching.nonzero().flatten()
            sub = runs.with_x(torch.cat([x, v], dim=-1)).take(sel)
            xs, vs = sub.x[..., :d], sub.x[..., d:]
            sub = _Runs(xs, sub.batch, sub.cond, sub.n)
            xp = dyn(vs, xs, s.t, s.dt, batch=sub.batch, last=False, cond=sub.cond,
                     generator=generator)
            vp = _velocity(model, sub, xp, s.t_next)
            used[sel] += 1
            rp = _reward(reward, sub, _x1_hat(dyn, sub, vp, xp, s.t_next))
            better = (rp > step_r[sel]) | (used[sel] == 1)  # the first proposal always moves
            if bool(better.any()):
                won = sel[better]
                step_r[won] = rp[better]
                _scatter_samples(new_x, xp, runs.batch, sub.batch, won, better)
                _scatter_samples(new_v, vp, runs.batch, sub.batch, won, better)
            if not final:  # a winner ends the step; the last step searches to the end of the budget
                searching[sel[rp > st.best[sel]]] = False
            searching &= used < allowed
        return _Climber(runs=runs.with_x(new_x), v=new_v, best=torch.maximum(st.best, step_r),
                        carry=allowed - used, nfe=st.nfe + used)

    end = time_loop(advance, start, uniform_grid(0.0, 1.0, steps))
    r = _reward(reward, end.runs, end.runs.x)
    return ParticleResult(x=end.runs.x, reward=r, nfe=end.nfe, budget=budget,
                          particles=initial_particles)


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

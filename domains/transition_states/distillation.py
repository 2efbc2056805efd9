"""Few-step TS generators distilled from a trained one without data: one or two network calls.

:func:`distil` turns a trained TS :class:`~.model.Model` (the teacher) into a flow map
X(x, s, t) = x + (t - s) F(x, s, t) (:mod:`sciflow.flowmaps`) trained by data-free distillation
(:class:`sciflow.flowmaps.DataFreeLoss`, after Tong et al. 2025): the training states are draws of
the teacher's own source, (R + P)/2 plus centred noise, conditioned on the reactant and product
of the given reactions, and the student's jumps out of them. No transition state is read, so the
reactions need only R and P (the teacher's training reactions, or any others).

The student is the teacher's network with one more input, the jump's target time t: an embedding
tau(t) appended to the per-molecule invariant scalars of the graph network
(:class:`TSFlowMapNet`, the layout of :class:`sciflow.flowmaps.GraphFlowMapNet`). tau(t) is
invariant, so the student is E(3)-equivariant like the teacher. It is warm-started from the
teacher (:func:`sciflow.flowmaps.warm_start`, the new columns zero): before training, one jump is
one Euler step of the teacher. It keeps the teacher's output, the TS estimate x1hat(x, s, t), and
jumps as x + (t - s)(x1hat - x)/(1 - s).

The returned Model samples with :func:`.sampling.sample` like any TS model: its network,
evaluated by the Euler solver on its grid of ``jumps`` steps, makes exactly the flow map's jumps
X(x_i, t_i, t_{i+1}) (``default_steps`` = jumps, ``default_solver`` = ``"euler"``); one trained
map serves any number of jumps (:func:`with_jumps`). :func:`save_distilled` and
:func:`load_distilled` write and read it (a checkpoint of kind :data:`KIND`).

>>> from sciflow.domains.transition_states import distil, load, sample       # doctest: +SKIP
>>> one_step = distil(load(), reactions, jumps=1, steps=3000)                # doctest: +SKIP
>>> ts = sample(one_step, r, p).best                      # one network evaluation per sample
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sciflow.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from sciflow.devices import resolve_device
from sciflow.errors import InputError
from sciflow.flowmaps import DataFreeLoss, FlowBatch, FlowMap, fit_flow_map, warm_start
from sciflow.nn.embeddings import make_time_embedding
from sciflow.nn.mlp import per_sample_time
from sciflow.solvers import uniform_grid
from sciflow.train import TrainConfig

from .config import Config
from .data import Endpoints, TSInputError, prepare_endpoints, stack_endpoints
from .model import Model
from .network import TSVelocity

__all__ = ["KIND", "TSFlowMapNet", "distil", "with_jumps", "save_distilled", "load_distilled"]

KIND = "transition_states.flow_map"
"""Checkpoint kind of a distilled few-step generator (:func:`save_distilled`, :func:`load_distilled`)."""

_GRID_TOL = 1e-5


def _with_target(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of the inner graph network: the pending tau(t) joins the graph scalars."""
    target = module.__dict__.get("_flow_map_target")
    if target is not None:
        kwargs = dict(kwargs)
        kwargs["cond"] = dataclasses.replace(kwargs["cond"], graph_scalars=target)
    return args, kwargs


class TSFlowMapNet(TSVelocity):
    """The TS network with the jump's target time as an input: a flow-map network for TSs.

    :meth:`two_time` (x, s, t) is the teacher's output (the TS estimate x1hat, or the velocity for
    ``target="velocity"``) at time s, with tau(t) (``target_dim`` invariant scalars) appended to
    the graph network's per-molecule scalars, in the last input columns of its encoder
    (:func:`sciflow.flowmaps.warm_start` widens the teacher's weights with zeros there).

    ``forward(x, t)`` is the velocity-network contract :class:`~.model.Model` and the solvers use:
    the output for the jump from t to the next point of the uniform grid of ``jumps`` steps, so the
    Euler solver on that grid takes the flow map's jumps. Any other time is an InputError (sample
    with ``sample_steps=jumps`` and ``solver="euler"``, the Model's defaults, or re-grid with
    :func:`with_jumps`).

    Shapes: x (N, 3), s and t (B,), cond a :class:`~.data.TSCondition`, batch (N,) -> (N, 3).
    """

    def __init__(self, config: Config, *, jumps: int = 1, target_dim: int = 16) -> None:
        super().__init__(config)
        if isinstance(jumps, bool) or not isinstance(jumps, int) or jumps < 1:
            raise InputError(f"jumps={jumps!r}: expected an integer >= 1")
        if isinstance(target_dim, bool) or not isinstance(target_dim, int) or target_dim < 1:
            raise InputError(f"target_dim={target_dim!r}: expected an integer >= 1")
        inner = self.net
        if inner.graph_scalar_dim:
            raise InputError("the TS network already takes graph scalars; a flow map needs them "
                             "free for the target time")
        first = inner.encoder[0]
        inner.encoder[0] = nn.Linear(first.in_features + target_dim, first.out_features)
        inner.graph_scalar_dim = target_dim
        inner.register_forward_pre_hook(_with_target, with_kwargs=True)
        self.target_dim = target_dim
        self.target_embed = make_time_embedding("sinusoidal", target_dim)
        self.jumps = jumps

    def two_time(self, x: Tensor, s: Tensor, t: Tensor, *, cond: Any = None,
                 batch: Tensor | None = None) -> Tensor:
        """The network's output at time s for a jump to time t (see the class docstring)."""
        n = int(batch.max()) + 1 if batch is not None and batch.numel() else x.shape[0]
        target = self.target_embed(per_sample_time(t, n, like=x)).to(x.dtype)
        self.net.__dict__["_flow_map_target"] = target
        try:
            return TSVelocity.forward(self, x, s, cond=cond, batch=batch)
        finally:
            self.net.__dict__["_flow_map_target"] = None

    def next_time(self, t: Tensor) -> Tensor:
        """The grid point after each t (InputError for a t off the grid of ``jumps`` steps)."""
        grid = torch.tensor(uniform_grid(0.0, 1.0, self.jumps), dtype=t.dtype, device=t.device)
        k = torch.round(t * self.jumps)
        off = ((t * self.jumps - k).abs() > _GRID_TOL * self.jumps) | (k >= self.jumps) | (k < 0)
        if bool(off.any()):
            bad = float(t[off][0])
            raise InputError(
                f"this few-step TS generator jumps on the grid of {self.jumps} step(s) "
                f"{[round(g, 4) for g in grid.tolist()]} and was called at t={bad:.4f}; sample it "
                f"with sample_steps={self.jumps} and solver='euler' (its defaults), or make a "
                "generator for another number of jumps with with_jumps(model, k)")
        return grid[k.long() + 1]

    def forward(self, x: Tensor, t: Tensor, *, cond: Any = None,
                batch: Tensor | None = None) -> Tensor:
        n = int(batch.max()) + 1 if batch is not None and batch.numel() else x.shape[0]
        s = per_sample_time(t, n, like=x)
        return self.two_time(x, s, self.next_time(s), cond=cond, batch=batch)


def _data_units(t: Tensor) -> Tensor:
    """DataFreeLoss.scale for an x1-predicting teacher: residuals times (1 - t)."""
    return 1.0 - t


class _TwoTimeView(nn.Module):
    """F(x, s, t) of :class:`sciflow.flowmaps.FlowMap` for a :class:`TSFlowMapNet`."""

    def __init__(self, student: TSFlowMapNet) -> None:
        super().__init__()
        self.student = student

    def forward(self, x: Tensor, s: Tensor, t: Tensor, *, cond: Any = None,
                batch: Tensor | None = None) -> Tensor:
        return self.student.two_time(x, s, t, cond=cond, batch=batch)


def _student_model(teacher: Model, net: TSFlowMapNet, extra: dict[str, Any]) -> Model:
    meta = {k: v for k, v in teacher.meta.items() if k not in ("val_scan_median_rmsd",
                                                                "default_steps", "default_solver")}
    meta.update(default_steps=net.jumps, default_solver="euler", **extra)
    meta["flow_map"] = {**meta.get("flow_map", {}), "jumps": net.jumps,
                        "target_dim": net.target_dim}
    return Model(net=net, config=teacher.config, meta=meta)


def with_jumps(model: Model, jumps: int) -> Model:
    """The same distilled generator sampling with ``jumps`` jumps by default (weights copied)."""
    if not isinstance(model.net, TSFlowMapNet):
        raise InputError("with_jumps needs a distilled few-step generator (distil or "
                         "load_distilled), got a plain TS model")
    net = copy.deepcopy(model.net)
    if isinstance(jumps, bool) or not isinstance(jumps, int) or jumps < 1:
        raise InputError(f"jumps={jumps!r}: expected an integer >= 1")
    net.jumps = jumps
    meta = dict(model.meta)
    meta.update(default_steps=jumps, flow_map={**meta.get("flow_map", {}), "jumps": jumps})
    return Model(net=net, config=model.config, meta=meta, checkpoint=model.checkpoint)


def _endpoints(teacher: Model, reactions: Sequence[Any], reverse: bool) -> list[Endpoints]:
    out = []
    for r in reactions:
        try:
            out.append(prepare_endpoints(r.reactant, r.product, elements=teacher.elements))
            if reverse:
                out.append(prepare_endpoints(r.product, r.reactant, elements=teacher.elements))
        except TSInputError as err:
            raise TSInputError(f"reaction {getattr(r, 'id', '?')!r}: {err}") from err
    return out


def distil(model: Model, reactions: Sequence[Any], *, jumps: int = 1, steps: int = 2000,
           batch_size: int = 16, lr: float = 3e-4, ema_decay: float = 0.995,
           warmup_steps: int = 50, grad_clip: float | None = 1.0, seed: int = 0,
           start_at_source: float = 0.5, velocity_weight: float = 1.0, reverse: bool = True,
           target_dim: int = 16, out_dir: str | Path | None = None,
           progress: bool | None = False, resume: bool = False) -> Model:
    """Distil a few-step generator from ``model`` using only the R and P of ``reactions``.

    Every update draws ``batch_size`` reactions (each also run P -> R with ``reverse``, as the TS
    models are trained), one source draw each, and minimises the data-free objective
    (:class:`sciflow.flowmaps.DataFreeLoss` with ``start_at_source``, ``velocity_weight``, the
    residuals in data units, times 1 - t, for a teacher that predicts the TS; the teacher frozen) with AdamW (``lr``, cosine schedule after ``warmup_steps``), gradient clipping
    and EMA weights (``ema_decay``) through :func:`sciflow.flowmaps.fit_flow_map`; ``out_dir``
    keeps its checkpoints and metric log (``resume`` continues there). Returns a :class:`Model`
    whose ``default_steps`` is ``jumps`` (:func:`with_jumps` for another count), with
    ``meta["distillation"]`` saying how it was made.

    Raises InputError for bad settings, TSInputError for a reaction the teacher cannot take.
    """
    if not isinstance(model, Model):
        raise InputError(f"distil needs a TS Model (load() or train()), got "
                         f"{type(model).__name__}")
    if isinstance(model.net, TSFlowMapNet):
        raise InputError("the teacher is already a distilled flow map; distil from the "
                         "multi-step model it came from")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("jumps", jumps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name}={value!r}: expected an integer >= 1")
    reactions = list(reactions)
    if not reactions:
        raise InputError("distil() got no reactions; pass reactions whose R and P condition "
                         "the source draws (their TSs are not used)")
    endpoints = _endpoints(model, reactions, reverse)
    teacher = copy.deepcopy(model.net).eval().requires_grad_(False)
    matcher = model.matcher
    velocity = matcher.velocity(teacher)
    source = model.source
    device = model.device
    dtype = next(teacher.parameters()).dtype

    torch.manual_seed(seed)
    student = TSFlowMapNet(model.config, jumps=jumps, target_dim=target_dim).to(device, dtype)
    started = warm_start(student, teacher)
    fmap = FlowMap(_TwoTimeView(student), matcher=matcher)
    n = len(endpoints)

    def batches(step: int, g: torch.Generator) -> FlowBatch:
        if batch_size <= n:
            index = torch.randperm(n, generator=g)[:batch_size]
        else:
            index = torch.randint(n, (batch_size,), generator=g)
        cond, ids = stack_endpoints([endpoints[int(i)] for i in index], elements=model.elements,
                                    dtype=dtype)
        x0 = source.sample(cond.reactant, cond=cond, batch=ids, generator=g)
        return FlowBatch(x0, cond, ids)

    # an x1-predicting teacher's velocity (x1hat - x)/(1 - t) grows as t -> 1: residuals in data
    # units keep the objective's variance bounded (DataFreeLoss.scale)
    scale = _data_units if model.config.target == "x1" else None
    loss = DataFreeLoss(teacher=velocity, start_at_source=start_at_source,
                        velocity_weight=velocity_weight, scale=scale)
    config = TrainConfig(steps=steps, lr=lr, ema_decay=ema_decay, warmup_steps=warmup_steps,
                         schedule="cosine", grad_clip=grad_clip, seed=seed, out_dir=out_dir,
                         progress=progress, log_every=max(steps // 20, 1),
                         checkpoint_every=0 if out_dir is None else max(steps // 4, 1),
                         device=str(device))
    settings = {"method": "data-free flow map (sciflow.flowmaps.DataFreeLoss)", "steps": steps,
                "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay, "seed": seed,
                "start_at_source": start_at_source, "velocity_weight": velocity_weight,
                "reverse": reverse, "reactions": len(reactions),
                "residual_scale": "1 - t" if scale is not None else "none",
                "teacher": {"checkpoint": dict(model.checkpoint),
                            "default_steps": model.default_steps,
                            "default_solver": model.default_solver},
                "warm_start": {"copied": len(started.copied), "widened": list(started.widened),
                               "new": list(started.missing)}}
    t0 = time.perf_counter()
    result = fit_flow_map(fmap, loss, batches, config, meta={"distillation": settings},
                          kind=KIND, resume=resume)
    trained = result.model.net.student
    trained.jumps = jumps
    settings.update(wall_seconds=time.perf_counter() - t0,
                    final_loss=result.train.final_loss)
    return _student_model(model, trained.eval().requires_grad_(False),
                          {"distillation": settings})


def save_distilled(model: Model, path: str | Path) -> Path:
    """Write a distilled generator (kind :data:`KIND`; :func:`load_distilled` reads it)."""
    if not isinstance(model.net, TSFlowMapNet):
        raise InputError("save_distilled() writes distilled generators; save a plain TS model "
                         "with Model.save")
    meta = {k: v for k, v in model.meta.items() if k != "config"}
    step = int(meta.get("distillation", {}).get("steps", 0) or 0)
    return save_checkpoint(path, model.net, kind=KIND, step=step,
                           meta={**meta, "config": model.config.to_dict()})


def load_distilled(path: str | Path, *, device: str = "cpu") -> Model:
    """Read a generator written by :func:`save_distilled`. Raises FileNotFoundError for a
    missing file, CheckpointError for another kind of file or weights that do not fit."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"distilled TS checkpoint {str(path)!r} does not exist")
    ck = load_checkpoint(path)
    if ck.kind != KIND or "flow_map" not in ck.meta or "config" not in ck.meta:
        raise CheckpointError(f"{str(path)!r} holds a {ck.kind or 'untagged'} checkpoint, not a "
                              f"distilled TS generator (kind {KIND!r})")
    config = Config.from_dict(ck.meta["config"])
    fm = ck.meta["flow_map"]
    net = TSFlowMapNet(config, jumps=int(fm["jumps"]), target_dim=int(fm["target_dim"]))
    load_weights(net, ck.state_dict, path)
    return Model(net=net.to(resolve_device(device)), config=config, meta=ck.meta,
                 checkpoint={"path": str(path.resolve()), "digest": ck.digest, "step": ck.step})

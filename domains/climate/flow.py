"""The flow testbed: a trained 2-D flow-matching sampler under low precision.

Not in the paper: a flow-matching ODE sampler is not chaotic, so rounding errors need not grow
as in Lorenz 1963. The flow (8 gaussians -> two moons, an MLP velocity) is trained in float32 with
the core alone (:class:`~sciflow.matcher.FlowMatcher` + :class:`~sciflow.train.Trainer`), then
sampled in a float64 container by :func:`sciflow.solvers.odeint` under each precision.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciflow.outputs import ensure_finite
from sciflow.precision import ROUNDINGS, StateRounding, emulate, round_module_, same_noise_deviation
from sciflow.progress import progress as progress_bar
from sciflow.train import TrainConfig

from .config import KIND, default_train
from .results import FlowRow, FlowSweep
from .sweeps import Progress, _say, sweep_arms
from .uncertainty import RESAMPLES, resample_counts

__all__ = ["SOURCE", "TARGET", "HIDDEN", "LAYERS", "BATCH", "FLOW_NULLS", "train_flow",
           "flow_sweep", "train_key"]

SOURCE, TARGET = "8gaussians", "moons"  # densities of sciflow.datasets.toy2d.TOY2D
HIDDEN, LAYERS, BATCH = 64, 3, 256
#: independent float64 sample sets whose W1 to the float64 samples make the null
FLOW_NULLS = 4


def train_flow(train: TrainConfig | None = None) -> nn.Module:
    """Train the 8-gaussians -> moons flow; returns its EMA velocity network (CPU, eval mode).

    Independent pairs, the linear path and the velocity loss of :class:`FlowMatcher`; batches of
    256 fresh draws of each density per update. ``train.seed`` fixes everything from the MLP's
    initial weights on (:func:`sciflow.seeding.seed_everything` runs first), so two processes
    with one config give bit-identical weights.
    """
    from sciflow.datasets.toy2d import TOY2D
    from sciflow.matcher import FlowMatcher
    from sciflow.nn.mlp import MLPVelocity
    from sciflow.seeding import seed_everything
    from sciflow.train import Trainer

    train = train if train is not None else default_train()
    seed_everything(train.seed)
    net = MLPVelocity(dim=2, hidden=HIDDEN, layers=LAYERS)
    matcher = FlowMatcher()
    source, target = TOY2D[SOURCE], TOY2D[TARGET]

    def batch_fn(step: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        return source(BATCH, generator=g), target(BATCH, generator=g)

    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x0, x1 = batch
        return matcher.loss(model, x1, x0=x0)

    trainer = Trainer(net, loss_fn, train, kind=KIND)
    trainer.fit(batch_fn)
    return trainer.ema_model.cpu().eval()


def flow_sweep(
    *,
    bits: Sequence[int] = tuple(range(4, 24)),
    roundings: Sequence[str] = ROUNDINGS,
    train: TrainConfig | None = None,
    samples: int = 2000,
    solver: str = "euler",
    sample_steps: int = 32,
    resamples: int = RESAMPLES,
    progress: Progress = None,
) -> FlowSweep:
    """The trained flow (:func:`train_flow`), sampled under each precision arm.

    The model is copied to float64. Per arm its weights are rounded to the format and
    :func:`sciflow.solvers.odeint` runs under ``emulate`` ("emulate" rows), or in float64 with only
    the state rounded after each step (``step_hook``, "state" rows). Reported: W1 between the arm's
    samples and float64 samples from independent noise (beside the float64-vs-float64 null with
    that noise), and the same-noise deviation ``mean ||x_low - x_64||``, an upper bound on W1 to
    the same-noise float64 samples. An arm whose samples are not finite gets inf in both.
    ``train.seed`` also seeds the sampling noise and the stochastic rounding. Uncertainty: the
    deviation is resampled over the samples (``resamples`` bootstraps) and each resample is
    judged against the W1 of one of :data:`FLOW_NULLS` independent float64 sample sets.
    """
    arms = sweep_arms(bits, roundings)[1:]  # checks bits and roundings before any work
    from sciflow.datasets.toy2d import TOY2D
    from sciflow.metrics import wasserstein1
    from sciflow.solvers import odeint

    t0 = time.perf_counter()
    train = train if train is not None else default_train()
    if progress is None:  # a silent sweep trains silently
        train = dataclasses.replace(train, progress=False)
    seed = train.seed
    _say(progress, f"flow: training {SOURCE} -> {TARGET} for {train.steps} steps")
    model64 = copy.deepcopy(train_flow(train)).double().eval()
    g = torch.Generator().manual_seed(seed + 10)
    noise = TOY2D[SOURCE](samples, generator=g).double()
    other = TOY2D[SOURCE](samples, generator=g).double()
    with torch.no_grad():
        ref = odeint(model64, noise, method=solver, steps=sample_steps).x
        ref_other = odeint(model64, other, method=solver, steps=sample_steps).x
    ensure_finite(ref, "flow: float64 samples of the trained flow",
                  hint="the flow did not train to a usable velocity; train longer or lower lr")
    null = wasserstein1(ref, ref_other)
    # more independent float64 sample sets: the null's own spread, for the bootstrap
    null_each = [null]
    for _ in range(FLOW_NULLS - 1):
        more = TOY2D[SOURCE](samples, generator=g).double()
        with torch.no_grad():
            null_each.append(wasserstein1(ref, odeint(model64, more, method=solver,
                                                      steps=sample_steps).x))
    boot = torch.Generator().manual_seed(seed + 3)
    counts = resample_counts(torch.arange(samples), resamples, generator=boot).double()
    boot_null = torch.tensor(null_each, dtype=torch.float64)[
        torch.randint(len(null_each), (resamples,), generator=boot)]
    rows, boot_dev = [], []
    _say(progress, f"flow: {len(arms)} arms x 2 modes, {solver} with {sample_steps} steps")
    for arm in progress_bar(arms, desc="flow arms", unit="arm", enabled=progress is not None):
        low = round_module_(copy.deepcopy(model64), arm.fmt, rounding="nearest")
        gen = torch.Generator().manual_seed(seed + 20)
        with torch.no_grad(), emulate(arm.fmt, rounding=arm.rounding, generator=gen):
            x = odeint(low, noise, method=solver, steps=sample_steps).x
        hook = StateRounding(arm.fmt, arm.rounding, torch.Generator().manual_seed(seed + 21))
        with torch.no_grad():
            y = odeint(model64, noise, method=solver, steps=sample_steps, step_hook=hook).x
        for mode, out in (("emulate", x), ("state", y)):
            finite = bool(torch.isfinite(out).all())
            rows.append(FlowRow(
                arm=arm.name, sbits=arm.fmt.sbits, rounding=arm.rounding, mode=mode,
                w1=wasserstein1(out, ref_other) if finite else math.inf,
                deviation=same_noise_deviation(out, ref) if finite else math.inf,
            ))
            # per-sample distances, as in same_noise_deviation; resampled as weighted means
            dist = (out - ref).flatten(1).norm(dim=1)
            boot_dev.append(counts @ dist / samples if finite
                            else torch.full((resamples,), math.inf, dtype=torch.float64))
    steps_text = "adaptive steps" if solver == "dopri5" else f"{sample_steps} steps"
    settings = (
        f"{SOURCE} -> {TARGET}, MLP {LAYERS}x{HIDDEN}, {train.steps} training steps (float32, "
        f"EMA); sampling: {solver} with {steps_text}, {samples} samples, float64 container; "
        f"weights rounded to the format (round-to-nearest) in 'emulate' rows"
    )
    settings += (f"; null: W1 of the float64 samples to {FLOW_NULLS} float64 sample sets from "
                 f"independent noise (the first is the verdict's null); bootstrap over the "
                 f"{samples} samples")
    return FlowSweep(tuple(rows), null, settings, time.perf_counter() - t0, tuple(null_each),
                     torch.stack(boot_dev, dim=1), boot_null, samples)


def train_key(train: TrainConfig) -> dict[str, object]:
    """The TrainConfig fields that change the trained flow (what a cache of it is keyed by)."""
    d = dataclasses.asdict(train)
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()
            if k in ("steps", "lr", "weight_decay", "betas", "ema_decay", "grad_clip",
                     "warmup_steps", "schedule", "seed")}

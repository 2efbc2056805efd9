"""Train, predict and evaluate population flows (MFM, FM, CGFM) and the dummy baselines.

Training (Atanackovic et al. 2025, Meta Flow Matching, Alg. 1) minimises the conditional flow
matching loss on the linear path between a population's source and target cells,

    L = E_{pop, t ~ U(0,1), (x0, x1) ~ pop} || v(x_t, t | c(pop)) - (x1 - x0) ||^2,
    x_t = (1 - t) x0 + t x1,

with a batch of ``populations_per_batch`` populations x ``cells_per_population`` cells each
(letters: 10 x 700), one t per cell, and source/target rows kept paired when the data pair them.

MFM has two parameter blocks, the GCN encoder and the velocity network. ``training="alternating"``
follows the paper: even steps update the velocity network with the population embeddings held
fixed (computed without gradient), odd steps update the encoder through the same loss with the
velocity network frozen. It runs inside the sciflow :class:`~sciflow.train.Trainer` (one AdamW; a
parameter whose gradient is None is skipped, and Adam keeps per-parameter moments and step
counts, so this equals the paper's two optimisers with one learning rate) and so keeps its EMA,
checkpoints, logs and exact resume. ``training="joint"`` (the default) updates both blocks every
step: plain gradient descent on the same loss, so each block gets twice the updates. On letters
with 2,500 steps (10 x 256 cells, unit-length embedding) the joint scheme reached a lower loss
(0.227 vs 0.235) and the alternating one had not yet learned to use the embedding (held-out Y:
W1 0.217 joint, 0.233 alternating, 0.233 FM); benchmarks/results/single_cell.md
repeats this comparison. The paper's GPU budget (~500k steps) is out of reach of a CPU-first
default.

Baselines without training: BASE predicts the source cells, SHIFT adds the mean training shift of
the condition, IDEAL-SHIFT recentres the source on the true target mean (an oracle).

Prediction integrates dx/dt = v(x, t | c) from each source population with dopri5 (atol = rtol =
1e-4 as in the paper's evaluation), all populations in one batched solve.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sciflow.checkpoint import load_checkpoint, save_checkpoint
from sciflow.domains.single_cell.data import CellDataError, CellPopulations, PopulationPair
from sciflow.domains.single_cell.metrics import PopulationScores, score_population
from sciflow.domains.single_cell.model import CellFlowModel, CellFlowSpec
from sciflow.matcher import FlowMatcher
from sciflow.solvers import odeint
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = [
    "BASELINES",
    "CellTrainConfig",
    "CellFlow",
    "build_spec",
    "mean_training_shift",
    "train_cell_flow",
    "predict",
    "population_embeddings",
    "baseline_predictions",
    "evaluate",
    "save_cell_flow",
    "load_cell_flow",
    "scores_table",
]

BASELINES: tuple[str, ...] = ("base", "shift", "ideal-shift")
_NO_CONDITION = ""  # JSON key standing for "no condition column"


@dataclass(frozen=True, kw_only=True)
class CellTrainConfig:
    """How to train a cell flow (keyword-only).

    steps: optimiser updates. populations_per_batch, cells_per_population: the batch (paper,
    letters: 10 x 700; populations with fewer cells are sampled with replacement). lr, schedule,
    ema_decay, grad_clip: passed to :class:`~sciflow.train.TrainConfig`. training: MFM's update
    scheme, ``"joint"`` (default) or ``"alternating"`` (the paper's; see the module docstring).
    out_dir: checkpoints and metrics.jsonl (None: nothing written). seed: every random draw of
    the run, the initial weights included.
    """

    steps: int = 2000
    populations_per_batch: int = 10
    cells_per_population: int = 700
    lr: float = 1e-3
    schedule: Literal["constant", "cosine"] = "cosine"
    ema_decay: float = 0.99
    grad_clip: float | None = 1.0
    training: Literal["alternating", "joint"] = "joint"
    seed: int = 0
    out_dir: str | Path | None = None
    log_every: int = 50
    checkpoint_every: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        for name, low in (("steps", 0), ("populations_per_batch", 1),
                          ("cells_per_population", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"CellTrainConfig.{name} must be an integer >= {low}, "
                                 f"got {value!r}")
        if self.training not in ("alternating", "joint"):
            raise ValueError(f"CellTrainConfig.training={self.training!r}; expected "
                             "'alternating' or 'joint'")


@dataclass(frozen=True)
class CellFlow:
    """A trained flow and what it needs to be applied to new AnnData.

    model: the EMA weights, in eval mode. features, rep, keys: the training data's feature names,
    representation and obs columns. mean_shift: the mean training shift per condition (the SHIFT
    baseline; key ``""`` without conditions). embed_cells: source cells per population used for
    MFM embeddings at prediction (the training batch size; None: all). train: the training run.
    """

    model: CellFlowModel
    features: tuple[str, ...]
    rep: str
    keys: dict[str, str | None]
    mean_shift: dict[str, Tensor]
    embed_cells: int | None
    train: TrainResult | None = None

    @property
    def spec(self) -> CellFlowSpec:
        return self.model.spec

    def meta(self) -> dict[str, Any]:
        """JSON metadata stored in checkpoints (rebuilds everything but the weights)."""
        return {"cells": {
            "spec": self.spec.to_dict(), "features": list(self.features), "rep": self.rep,
            "keys": dict(self.keys), "embed_cells": self.embed_cells,
            "mean_shift": {k: v.tolist() for k, v in self.mean_shift.items()},
        }}


def build_spec(cells: CellPopulations, method: str, **options: Any) -> CellFlowSpec:
    """The spec of ``method`` for these data: dim, condition and population names filled in.

    ``options`` are :class:`CellFlowSpec` fields (hidden, layers, knn, ...).
    """
    pops = cells.populations if method == "cgfm" else ()
    return CellFlowSpec(method=method, dim=cells.dim, conditions=cells.conditions,  # type: ignore[arg-type]
                        populations=pops, **options)


def _cond_key(condition: str | None) -> str:
    return _NO_CONDITION if condition is None else condition


def mean_training_shift(cells: CellPopulations) -> dict[str, Tensor]:
    """Per condition, the mean over populations of mean(target) - mean(source): (D,) each."""
    sums: dict[str, list[Tensor]] = {}
    for p in cells.pairs:
        if p.target is None:
            raise CellDataError(f"population {p.key!r} has no target cells")
        sums.setdefault(_cond_key(p.condition), []).append(p.target.mean(0) - p.source.mean(0))
    return {k: torch.stack(v).mean(0) for k, v in sums.items()}


def _check_population_sizes(pairs: Sequence[PopulationPair], k: int, what: str) -> None:
    for p in pairs:
        if p.source.shape[0] == 0:
            raise CellDataError(f"population {p.key!r} has no source cells")
        if p.source.shape[0] < k + 1:
            raise CellDataError(
                f"population {p.key!r} has {p.source.shape[0]} source cells, fewer than "
                f"knn + 1 = {k + 1} needed for its {k}-nearest-neighbour graph ({what}); lower "
                "knn or drop the population")


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Build the graph without gradients for ``module``'s parameters (they stay untouched)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


def _draw(n: int, m: int, g: torch.Generator) -> Tensor:
    return torch.randperm(n, generator=g)[:m] if n >= m else torch.randint(n, (m,), generator=g)


def train_cell_flow(
    cells: CellPopulations, spec: CellFlowSpec, config: CellTrainConfig | None = None, *,
    resume: bool = False,
) -> CellFlow:
    """Train the flow described by ``spec`` on the populations of ``cells``.

    Every pair needs target cells. Returns the EMA model with its metadata; with
    ``config.out_dir`` the Trainer's checkpoints and ``metrics.jsonl`` are written there too, and
    ``resume=True`` continues the latest checkpoint in it (bit-exactly, see
    :meth:`sciflow.train.Trainer.fit`).
    """
    cfg = config if config is not None else CellTrainConfig()
    pairs = cells.pairs
    if any(p.target is None or p.target.shape[0] == 0 for p in pairs):
        raise CellDataError("every population needs target cells to train on")
    if spec.dim != cells.dim:
        raise ValueError(f"spec.dim={spec.dim} but the cells have {cells.dim} features")
    if spec.method == "mfm":
        if cfg.cells_per_population < spec.knn + 1:
            raise ValueError(f"cells_per_population={cfg.cells_per_population} must exceed "
                             f"knn={spec.knn} (each sampled population is a k-NN graph)")
        _check_population_sizes(pairs, spec.knn, "MFM embeds every source population")
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG untouched
        torch.manual_seed(cfg.seed)
        model = CellFlowModel(spec)
    model.set_standardization(torch.cat([torch.cat([p.source, p.target]) for p in pairs]))
    matcher = FlowMatcher()
    n_pop = min(cfg.populations_per_batch, len(pairs))
    m = cfg.cells_per_population
    alternating = spec.method == "mfm" and cfg.training == "alternating"

    def batch_fn(step: int, g: torch.Generator) -> dict[str, Tensor]:
        chosen = torch.randperm(len(pairs), generator=g)[:n_pop]
        x0s, x1s = [], []
        for i in chosen.tolist():
            p = pairs[i]
            rows = _draw(p.source.shape[0], m, g)
            x0s.append(p.source[rows])
            x1s.append(p.target[rows if p.paired else _draw(p.target.shape[0], m, g)])
        return {"x0": torch.cat(x0s), "x1": torch.cat(x1s), "pairs": chosen,
                "batch": torch.arange(n_pop).repeat_interleave(m),
                "phase": torch.tensor(step % 2)}

    def loss_fn(net: nn.Module, b: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        core: CellFlowModel = getattr(net, "module", net)
        chosen = [pairs[i] for i in b["pairs"].tolist()]
        names = {"populations": [p.population for p in chosen],
                 "conditions": [p.condition for p in chosen]}
        encoder_step = alternating and int(b["phase"]) == 1
        if alternating and not encoder_step:
            with torch.no_grad():
                emb = core.embed(b["x0"], b["batch"], n_pop)
            cond = core.condition(b["x0"], b["batch"], embedding=emb, **names)
        else:
            cond = core.condition(b["x0"], b["batch"], **names)
        ctx = _frozen(core.velocity) if encoder_step else contextlib.nullcontext()
        with ctx:
            loss = matcher.loss(net, b["x1"], x0=b["x0"], cond=cond[b["batch"]])
        return loss, {"encoder_step": float(encoder_step)}

    train_cfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, schedule=cfg.schedule,
                            ema_decay=cfg.ema_decay, grad_clip=cfg.grad_clip, seed=cfg.seed,
                            out_dir=cfg.out_dir, log_every=cfg.log_every,
                            checkpoint_every=cfg.checkpoint_every, progress=cfg.progress)
    partial = CellFlow(model=model, features=cells.features, rep=cells.rep, keys=dict(cells.keys),
                       mean_shift=mean_training_shift(cells), embed_cells=m)
    trainer = Trainer(model, loss_fn, train_cfg, meta=partial.meta())
    try:
        result = trainer.fit(batch_fn, resume=resume)
    except FileExistsError as err:
        raise FileExistsError(f"{err} (train_cell_flow(..., resume=True) continues it)") from None
    ema: CellFlowModel = trainer.ema_model  # type: ignore[assignment]
    return replace(partial, model=ema.eval(), train=result)


def _subsample(x: Tensor, n: int | None, seed: int) -> Tensor:
    if n is None or x.shape[0] <= n:
        return x
    g = torch.Generator().manual_seed(seed)
    return x[torch.randperm(x.shape[0], generator=g)[:n]]


def _conditions(flow: CellFlow, pairs: Sequence[PopulationPair], start: int, stop: int,
                seed: int) -> Tensor:
    """Conditioning vectors (stop - start, C) of a slice of pairs."""
    chunk = pairs[start:stop]
    src = [_subsample(p.source, flow.embed_cells, seed) for p in chunk]
    batch = torch.cat([torch.full((s.shape[0],), i) for i, s in enumerate(src)])
    dtype = flow.model.shift.dtype
    return flow.model.condition(torch.cat(src).to(dtype), batch,
                                populations=[p.population for p in chunk],
                                conditions=[p.condition for p in chunk])


def _check_features(flow: CellFlow, pairs: Sequence[PopulationPair]) -> None:
    for p in pairs:
        if p.source.dim() != 2 or p.source.shape[1] != flow.spec.dim:
            raise CellDataError(f"population {p.key!r} has cells with {p.source.shape[-1]} "
                                f"features but the model was trained on {flow.spec.dim} "
                                f"({', '.join(flow.features[:4])}...)")
        if not bool(torch.isfinite(p.source).all()):
            raise CellDataError(f"population {p.key!r} has NaN or inf source features")


@torch.no_grad()
def population_embeddings(flow: CellFlow, pairs: Sequence[PopulationPair], *,
                          seed: int = 0) -> Tensor:
    """MFM embeddings phi(source) of each pair's source population: (len(pairs), gnn_hidden)."""
    if flow.spec.method != "mfm":
        raise ValueError(f"method {flow.spec.method!r} has no population embedding")
    _check_features(flow, pairs)
    _check_population_sizes(pairs, flow.spec.knn, "for its embedding")
    out = []
    for start in range(0, len(pairs), 32):
        chunk = pairs[start:start + 32]
        src = [_subsample(p.source, flow.embed_cells, seed) for p in chunk]
        batch = torch.cat([torch.full((s.shape[0],), i) for i, s in enumerate(src)])
        out.append(flow.model.embed(torch.cat(src).to(flow.model.shift.dtype), batch, len(chunk)))
    return torch.cat(out)


@torch.no_grad()
def predict(
    flow: CellFlow,
    pairs: Sequence[PopulationPair],
    *,
    method: str = "dopri5",
    steps: int | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    max_rows: int = 50_000,
    seed: int = 0,
) -> list[Tensor]:
    """Push each pair's source cells through the learned flow: one (n_i, D) tensor per pair.

    Pairs are integrated together (``batch`` vector, one conditioning vector each) in chunks of at
    most ``max_rows`` cells. ``method``/``steps``/``atol``/``rtol`` go to
    :func:`sciflow.solvers.odeint`. MFM embeds each source population from ``flow.embed_cells``
    of its cells (a subsample drawn with ``seed``), the number it was trained with.
    """
    if not pairs:
        return []
    _check_features(flow, pairs)
    if flow.spec.method == "mfm":
        _check_population_sizes(pairs, flow.spec.knn, "for its embedding")
    model = flow.model.eval()
    out: list[Tensor] = []
    start = 0
    while start < len(pairs):
        stop, rows = start, 0
        while stop < len(pairs) and (
                stop == start or rows + pairs[stop].source.shape[0] <= max_rows):
            rows += pairs[stop].source.shape[0]
            stop += 1
        chunk = pairs[start:stop]
        cond = _conditions(flow, pairs, start, stop, seed)
        x0 = torch.cat([p.source for p in chunk]).to(model.shift.dtype)
        batch = torch.cat([torch.full((p.source.shape[0],), i) for i, p in enumerate(chunk)])
        sol = odeint(model, x0, method=method, steps=steps, atol=atol, rtol=rtol, cond=cond,
                     batch=batch)
        out.extend(torch.split(sol.x, [p.source.shape[0] for p in chunk]))
        start = stop
    return out


def baseline_predictions(kind: str, pairs: Sequence[PopulationPair], *,
                         mean_shift: dict[str, Tensor] | None = None) -> list[Tensor]:
    """BASE (source as is), SHIFT (source + mean training shift of the condition) or IDEAL-SHIFT
    (source recentred on the true target mean; needs the targets)."""
    if kind not in BASELINES:
        raise ValueError(f"baseline {kind!r}; choose from {list(BASELINES)}")
    out = []
    for p in pairs:
        if kind == "base":
            out.append(p.source.clone())
        elif kind == "shift":
            if mean_shift is None:
                raise ValueError("the SHIFT baseline needs mean_shift (from training data)")
            key = _cond_key(p.condition)
            if key not in mean_shift:
                raise ValueError(f"no training shift for condition {p.condition!r}; known: "
                                 f"{sorted(mean_shift)}")
            out.append(p.source + mean_shift[key].to(p.source.dtype))
        else:
            if p.target is None:
                raise CellDataError(f"IDEAL-SHIFT needs the true target cells of {p.key!r}")
            out.append(p.source - p.source.mean(0) + p.target.mean(0))
    return out


def evaluate(predictions: Sequence[Tensor], pairs: Sequence[PopulationPair], *,
             max_cells: int | None = None, seed: int = 0) -> list[PopulationScores]:
    """Score each prediction against its pair's true target cells.

    ``max_cells`` caps both sets by a seeded subsample (exact OT is O(n^3)); None uses all cells.
    """
    if len(predictions) != len(pairs):
        raise ValueError(f"got {len(predictions)} predictions for {len(pairs)} populations")
    scores = []
    for i, (pred, p) in enumerate(zip(predictions, pairs)):
        if p.target is None:
            raise CellDataError(f"population {p.key!r} has no target cells to evaluate against")
        scores.append(score_population(_subsample(pred, max_cells, seed + i),
                                       _subsample(p.target, max_cells, seed + i)))
    return scores


def save_cell_flow(path: str | Path, flow: CellFlow) -> Path:
    """Write the flow's weights and metadata to one checkpoint file (atomic)."""
    return save_checkpoint(path, flow.model, meta=flow.meta(),
                           step=flow.train.step if flow.train is not None else 0)


def load_cell_flow(path: str | Path) -> CellFlow:
    """Load a flow saved by :func:`save_cell_flow` or a Trainer checkpoint of
    :func:`train_cell_flow` (EMA weights when present)."""
    ck = load_checkpoint(path)
    meta = ck.meta.get("cells")
    if not isinstance(meta, dict):
        raise CellDataError(f"{str(path)!r} is not a sciflow cells checkpoint (no 'cells' "
                            f"metadata; found {sorted(ck.meta)})")
    model = CellFlowModel(CellFlowSpec.from_dict(meta["spec"]))
    model.load_state_dict(ck.state_dict)
    shift = {k: torch.tensor(v, dtype=torch.float32) for k, v in meta["mean_shift"].items()}
    return CellFlow(model=model.eval(), features=tuple(meta["features"]), rep=meta["rep"],
                    keys=dict(meta["keys"]), mean_shift=shift, embed_cells=meta["embed_cells"])


def scores_table(rows: dict[str, PopulationScores], *, digits: int = 4) -> str:
    """A markdown table of named scores (one row per name)."""
    head = "| method | W1 | W2 | MMD | mean-L2 | corr-of-corrs |\n|---|---|---|---|---|---|"
    lines = [head]
    for name, s in rows.items():
        cells = [s.w1, s.w2, s.mmd, s.mean_l2, s.corr]
        lines.append(f"| {name} | " + " | ".join(
            "n/a" if math.isnan(v) else f"{v:.{digits}f}" for v in cells) + " |")
    return "\n".join(lines)

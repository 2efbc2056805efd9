"""Training a population flow (MFM, FM, CGFM): FlowMatcher + Trainer, with MFM's update schemes.

Training (Atanackovic et al. 2025, Meta Flow Matching, Alg. 1) minimises the conditional flow
matching loss on the linear path between a population's source and target cells,

    L = E_{pop, t ~ U(0,1), (x0, x1) ~ pop} || v(x_t, t | c(pop)) - (x1 - x0) ||^2,
    x_t = (1 - t) x0 + t x1,

(:class:`sciflow.matcher.FlowMatcher`) with a batch of ``populations_per_batch`` populations x
``cells_per_population`` cells each (letters: 10 x 700), one t per cell, and source/target rows
kept paired when the data pair them.

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
W1 0.217 joint, 0.233 alternating, 0.233 FM); benchmarks/results/single_cell.md repeats this
comparison. The paper's GPU budget (~500k steps) is out of reach of a CPU-first default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import torch
from torch import Tensor, nn

from sciflow.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from sciflow.matcher import FlowMatcher
from sciflow.resources import check_memory
from sciflow.seeding import seed_everything
from sciflow.train import ExistingRunError, Trainer

from .baselines import mean_training_shift
from .config import NETWORK_FIELDS, Config
from .model import KIND, Model, build_network, saved_config
from .populations import CellDataError, CellPopulations, check_population_sizes

__all__ = ["train", "check_training_data", "batch_bytes"]


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


def batch_bytes(config: Config, populations: int) -> float:
    """A rough upper bound of the memory one training step needs (bytes, float32).

    Rows B = populations x cells_per_population; per row the decoder input, the hidden layers
    (activations, pre-activations and their gradients) and MFM's GCN layers and k-NN edges,
    twice (forward and backward), plus one chunk of the k-NN distance matrix.
    """
    m = config.cells_per_population
    rows = populations * m
    d_in = config.cond_dim + config.time_dim + 2 * config.fourier + (config.dim or 1)
    per_row = d_in + 3 * config.hidden * (config.layers + 1)
    if config.model_type == "mfm":
        per_row += 3 * config.gnn_hidden * config.gnn_layers + 3 * config.knn
    return 4.0 * (2 * rows * per_row + min(m, 2048) * m)


def _check_resume(config: Config, cells: CellPopulations) -> None:
    """CheckpointError when the run in ``out_dir`` was trained with another network or data."""
    path = latest_checkpoint(config.train.out_dir)
    if path is None:
        return
    saved, data = saved_config(load_checkpoint(path))
    diffs = [f"{name}: {getattr(saved, name)!r} there, {getattr(config, name)!r} now"
             for name in NETWORK_FIELDS if getattr(saved, name) != getattr(config, name)]
    if tuple(data.get("features", ())) != tuple(cells.features):
        diffs.append(f"features: {len(data.get('features', ()))} there, {cells.dim} now")
    if diffs:
        raise CheckpointError(
            f"cannot resume the run in {str(config.train.out_dir)!r}: its checkpoint "
            f"{path.name} was trained with another model or data ({'; '.join(diffs)}). Resume "
            "with the same settings and data, or start a new run in another out_dir (--out)")


def check_training_data(cells: CellPopulations, config: Config | None = None) -> Config:
    """``config`` filled in for ``cells`` after every check :func:`train` makes before any work:
    population sizes (``config.min_population``, source and target) and the batch's memory."""
    if not isinstance(cells, CellPopulations):
        raise CellDataError(f"cells must be CellPopulations (from read_populations), got "
                            f"{type(cells).__name__}")
    config = (config if config is not None else Config()).for_data(cells)
    check_population_sizes(cells.pairs, config.min_population, why=config.population_rule())
    n_pop = min(config.populations_per_batch, len(cells.pairs))
    check_memory(batch_bytes(config, n_pop), f"a training batch of {n_pop} populations x "
                 f"{config.cells_per_population} cells", name="cells_per_population")
    return config


def train(cells: CellPopulations, config: Config | None = None, *,
          resume: bool = False) -> Model:
    """Train the flow of ``config`` on the populations of ``cells``; returns the EMA model.

    ``config`` (default :class:`Config`) is filled in for the data (:meth:`Config.for_data`).
    Every pair needs target cells, and every population at least ``config.min_population``
    source and target cells (a :class:`CellDataError` names the first one below it). Everything
    random, the initial weights included, is fixed by ``config.train.seed``: two processes with
    the same config and data give bit-identical weights. With ``config.train.out_dir`` the
    Trainer's checkpoints and ``metrics.jsonl`` are written there, and ``resume=True`` continues
    the latest checkpoint in it bit-exactly (a CheckpointError if it was trained with another
    network size or other features). ``model.result`` holds the TrainResult.
    """
    config = check_training_data(cells, config)
    pairs = cells.pairs
    n_pop = min(config.populations_per_batch, len(pairs))
    m = config.cells_per_population
    if resume and config.train.out_dir is not None:
        _check_resume(config, cells)
    seed_everything(config.train.seed)  # before the network: its initial weights are seeded
    net = build_network(config)
    net.set_standardization(torch.cat([torch.cat([p.source, p.target]) for p in pairs]))
    matcher = FlowMatcher()
    alternating = config.model_type == "mfm" and config.training == "alternating"

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
        core = getattr(net, "module", net)
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

    partial = Model(net=net, config=config, features=cells.features, rep=cells.rep,
                    keys=dict(cells.keys), mean_shift=mean_training_shift(cells), embed_cells=m)
    trainer = Trainer(net, loss_fn, config.train, kind=KIND, meta=partial.meta())
    try:
        result = trainer.fit(batch_fn, resume=resume)
    except ExistingRunError as err:
        raise ExistingRunError(f"{err} (train(..., resume=True), or --resume on the command "
                               "line, continues it)") from None
    return replace(partial, net=trainer.ema_model.eval(), result=result)

"""Sampling a population flow: each source population pushed through the learned ODE.

dx/dt = v(x, t | c(pop)) is integrated from every source population by
:func:`sciflow.solvers.odeint` (default dopri5, atol = rtol = 1e-4 as in the paper's
evaluation), all populations of a chunk in one batched solve (a ``batch`` vector, one
conditioning vector each). The prediction of a population is its integrated source cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sciflow.devices import resolve_device
from sciflow.errors import InputError, NonFiniteError
from sciflow.outputs import ensure_finite
from sciflow.progress import progress as progress_bar
from sciflow.resources import check_memory
from sciflow.solvers import SOLVERS, odeint

from .config import ATOL, RTOL, SAMPLE_STEPS, SOLVER
from .model import Model
from .populations import (
    CellDataError,
    CellPopulations,
    PopulationPair,
    as_pairs,
    check_population_sizes,
    subsample,
)

__all__ = ["sample", "population_embeddings"]

_EMBED_CHUNK = 32  # populations embedded together


def _check_inputs(model: Model, pairs: Sequence[PopulationPair]) -> None:
    dim = model.config.dim
    for p in pairs:
        if p.source.dim() != 2 or p.source.shape[1] != dim:
            raise CellDataError(f"population {p.key!r} has cells with {p.source.shape[-1]} "
                                f"features but the model was trained on {dim} "
                                f"({', '.join(model.features[:4])}...)")
        if not bool(torch.isfinite(p.source).all()):
            raise CellDataError(f"population {p.key!r} has NaN or inf source features")
    if model.config.model_type == "mfm":
        check_population_sizes(pairs, model.config.min_population,
                               why=model.config.population_rule(), targets=False)
    else:
        check_population_sizes(pairs, 1, why="cells a prediction needs", targets=False)


def _conditions(model: Model, chunk: Sequence[PopulationPair], seed: int) -> Tensor:
    """Conditioning vectors (len(chunk), C); MFM embeds a seeded subsample of each source."""
    net = model.net
    src = [subsample(p.source, model.embed_cells, seed) for p in chunk]
    batch = torch.cat([torch.full((s.shape[0],), i) for i, s in enumerate(src)]).to(model.device)
    return net.condition(torch.cat(src).to(model.device, net.shift.dtype), batch,
                         populations=[p.population for p in chunk],
                         conditions=[p.condition for p in chunk])


def _chunks(pairs: Sequence[PopulationPair], max_rows: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive pairs with at most ``max_rows`` source cells (at least one)."""
    out, start = [], 0
    while start < len(pairs):
        stop, rows = start, 0
        while stop < len(pairs) and (stop == start or
                                     rows + pairs[stop].source.shape[0] <= max_rows):
            rows += pairs[stop].source.shape[0]
            stop += 1
        out.append((start, stop))
        start = stop
    return out


@torch.no_grad()
def sample(
    model: Model,
    cells: CellPopulations | Sequence[PopulationPair],
    *,
    solver: str = SOLVER,
    steps: int = SAMPLE_STEPS,
    atol: float = ATOL,
    rtol: float = RTOL,
    max_rows: int = 50_000,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = False,
) -> list[Tensor]:
    """Predict each pair's target cells from its source cells: one (n_i, D) CPU tensor per pair.

    ``solver`` is a name of :data:`sciflow.solvers.SOLVERS`; ``steps`` the fixed-step solvers'
    step count (dopri5 adapts its own with ``atol``/``rtol``). Pairs are integrated together in
    chunks of at most ``max_rows`` cells. MFM embeds each source population from
    ``model.embed_cells`` of its cells (a subsample drawn with ``seed``), the number it was trained
    with, and needs ``model.config.min_population`` source cells. ``device`` moves the network
    (cpu, cuda, mps, auto; default: where it is). ``progress``: None or True report each
    chunk (:func:`sciflow.progress.progress`; the command line does), False is silent.

    Raises InputError (CellDataError) for bad arguments or populations, ResourceError when a
    chunk would not fit in memory, NonFiniteError naming the population whose cells came out
    NaN or inf.
    """
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r}: choose from {sorted(SOLVERS)}")
    for name, value in (("steps", steps), ("max_rows", max_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name}={value!r}: expected an integer >= 1")
    pairs = as_pairs(cells)
    if not pairs:
        return []
    _check_inputs(model, pairs)
    if device is not None:
        model.net.to(resolve_device(device))
    cfg = model.config
    rows = min(sum(p.source.shape[0] for p in pairs), max(max_rows, max(
        p.source.shape[0] for p in pairs)))
    per_row = cfg.dim * 12 + cfg.cond_dim + cfg.time_dim + 2 * cfg.fourier + 2 * cfg.hidden
    check_memory(4.0 * rows * per_row, f"integrating {rows} cells at once", name="max_rows")
    net, out = model.net.eval(), []
    chunks = _chunks(pairs, max_rows)
    bar = progress_bar(total=len(chunks), desc="sample", unit="chunk", enabled=progress)
    for start, stop in chunks:
        chunk = pairs[start:stop]
        cond = _conditions(model, chunk, seed)
        x0 = torch.cat([p.source for p in chunk]).to(model.device, net.shift.dtype)
        batch = torch.cat([torch.full((p.source.shape[0],), i)
                           for i, p in enumerate(chunk)]).to(model.device)
        try:
            sol = odeint(net, x0, method=solver, steps=steps, atol=atol, rtol=rtol, cond=cond,
                         batch=batch)
        except FloatingPointError as err:  # dopri5: a non-finite error estimate
            raise NonFiniteError(f"the flow of population(s) {[p.key for p in chunk][:5]} "
                                 f"diverged ({err}); nothing was written. Try rk4 with more "
                                 "--sample-steps") from err
        except RuntimeError as err:
            if "max_steps" not in str(err):
                raise
            raise InputError(f"{solver} could not integrate population(s) "
                             f"{[p.key for p in chunk][:5]} ({err}); loosen atol/rtol or use "
                             "a fixed-step solver (--solver rk4 --sample-steps 32)") from err
        out.extend(x.cpu() for x in torch.split(sol.x, [p.source.shape[0] for p in chunk]))
        bar.update(1)
    bar.close()
    for p, x in zip(pairs, out):
        ensure_finite(x, f"the predicted cells of population {p.key!r} ({solver}, "
                      f"{steps} steps)", axis_name="cell",
                      hint="Try dopri5, or rk4 with more --sample-steps; a model trained with "
                           "a too-high lr can also diverge")
    return out


@torch.no_grad()
def population_embeddings(model: Model, cells: CellPopulations | Sequence[PopulationPair], *,
                          seed: int = 0) -> Tensor:
    """MFM embeddings sqrt(H) phi(source) of each pair's source population: (pairs, gnn_hidden)."""
    if model.config.model_type != "mfm":
        raise InputError(f"model_type {model.config.model_type!r} has no population embedding")
    pairs = as_pairs(cells)
    _check_inputs(model, pairs)
    out = []
    for start in range(0, len(pairs), _EMBED_CHUNK):
        chunk = pairs[start:start + _EMBED_CHUNK]
        src = [subsample(p.source, model.embed_cells, seed) for p in chunk]
        batch = torch.cat([torch.full((s.shape[0],), i) for i, s in enumerate(src)])
        out.append(model.net.embed(torch.cat(src).to(model.device, model.net.shift.dtype),
                                   batch.to(model.device), len(chunk)).cpu())
    return torch.cat(out)

"""Training a TS generator: FlowMatcher (path, source, coupling, loss) + Trainer.

Conditional flow matching on the linear path x_t = (1 - t) x0 + t x1, u_t = x1 - x0 (Lipman et
al. 2023) from the source x0 (:mod:`.sources`: (R + P)/2 plus centred noise, the noise rotated onto
the TS per reaction) to the reference TS x1, through the core's
:class:`~sciflow.matcher.FlowMatcher` (:func:`.model.build_matcher`): its loss is the per-reaction
mean squared error of the network's TS prediction (or velocity), averaged over reactions.
:class:`TSFlowLoss` adds an optional loss on short interatomic distances; the
:class:`~sciflow.train.Trainer` adds AdamW, EMA weights, checkpoints (kind :data:`.model.KIND`),
exact resume and DDP under torchrun.

``seed`` (``config.train.seed``) fixes everything from the network's initial weights on: two
processes with one config give bit-identical weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from sciflow.checkpoint import latest_checkpoint, load_checkpoint
from sciflow.errors import InputError
from sciflow.graphs import full_edges
from sciflow.resources import check_memory
from sciflow.seeding import seed_everything
from sciflow.train import Trainer, TrainResult

from .config import NETWORK_FIELDS, Config
from .data import collate, condition_of, reaction_to_graph
from .model import KIND, Model, build_matcher
from .network import build_network, parameter_bytes
from .scope import scope_of

__all__ = ["TSFlowLoss", "train", "check_resume", "warm_start"]


class TSFlowLoss:
    """``loss_fn(model, batch)`` for the Trainer: the flow-matching loss of a batch of reactions.

    With (x_t, t) from the core's ``FlowMatcher.loss`` and the network's output y (the TS x1hat for
    ``target="x1"``, the velocity v for ``target="velocity"``, then x1hat = x_t + (1 - t) v):

        L = mean_g mean_{i in g} |y_i - y*_i|^2 / 3      (y* = x1 or u_t = x1 - x0; the core's loss)
            + lambda mean_g mean_{(i,j) in g: d_ij(x1) < cutoff} (|x1hat_i - x1hat_j| - d_ij(x1))^2

    The second term (``distance_weight`` lambda) weights the short interatomic distances that set
    a TS's energy: a 0.1 A error spread over a molecule's bonds costs tens of kcal/mol, while the
    velocity loss weighs every coordinate alike (auxiliary distance losses on the predicted clean
    structure are common in structure generators, e.g. FrameFlow, Yim et al. 2023).
    Shapes: batch.pos_ts, pos_r, pos_p (N, 3), batch.batch (N,).
    """

    def __init__(self, config: Config, *, distance_weight: float | None = None,
                 distance_cutoff: float = 2.0) -> None:
        weight = config.distance_weight if distance_weight is None else distance_weight
        if not weight >= 0 or not distance_cutoff > 0:
            raise InputError(f"need distance_weight >= 0 and distance_cutoff > 0, got "
                             f"{weight}, {distance_cutoff}")
        self.config = config
        self.distance_weight = float(weight)
        self.distance_cutoff = float(distance_cutoff)
        self.matcher = build_matcher(config)

    def __call__(self, model: torch.nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        seen: dict[str, Tensor] = {}

        def net(x: Tensor, t: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
            seen["x"], seen["t"] = x, t
            seen["pred"] = model(x, t, cond=cond, batch=batch)  # DDP wraps the model: call it
            return seen["pred"]

        x1, ids = batch.pos_ts, batch.batch
        fm = self.matcher.loss(net, x1, cond=condition_of(batch), batch=ids)
        if self.distance_weight == 0.0:
            return fm, {"fm": float(fm.detach())}
        pred, x_t, t = seen["pred"], seen["x"], seen["t"]
        x1_hat = pred if self.config.target == "x1" else x_t + (1.0 - t[ids])[:, None] * pred
        src, dst = full_edges(x1, ids)
        d_ref = (x1[src] - x1[dst]).norm(dim=-1)
        near = d_ref < self.distance_cutoff
        src, dst, d_ref = src[near], dst[near], d_ref[near]
        err = ((x1_hat[src] - x1_hat[dst]).norm(dim=-1) - d_ref) ** 2
        per_graph = scatter(err, ids[dst], dim=0, dim_size=t.shape[0], reduce="mean")
        dist = per_graph.mean()
        return fm + self.distance_weight * dist, {"fm": float(fm.detach()),
                                                  "dist": float(dist.detach())}


def _reversed(data: Any) -> Any:
    """The same reaction run backwards: reactant and product swap, the TS stays (one frame)."""
    rev = data.clone()
    rev.pos_r, rev.pos_p = data.pos_p.clone(), data.pos_r.clone()
    return rev


def _batch_fn(graphs: Sequence[Any], batch_size: int) -> Callable[[int, torch.Generator], Any]:
    n = len(graphs)

    def draw(step: int, generator: torch.Generator) -> Any:
        if batch_size <= n:
            index = torch.randperm(n, generator=generator)[:batch_size]
        else:
            index = torch.randint(n, (batch_size,), generator=generator)
        return collate([graphs[int(i)] for i in index])

    return draw


def check_resume(config: Config) -> None:
    """A resumed run must keep the network: refuse changed sizes before any weight is loaded."""
    found = None if config.train.out_dir is None else latest_checkpoint(config.train.out_dir)
    if found is None:
        return
    meta = load_checkpoint(found).meta
    stored = meta.get("config") or meta.get("model") or {}
    now = config.network_dict()
    changed = [f"{k}={stored[k]!r} -> {now[k]!r}" for k in NETWORK_FIELDS
               if k in stored and stored[k] != now[k]]
    if changed:
        raise InputError(f"cannot resume the run in {str(config.train.out_dir)!r} with another "
                         f"network: {', '.join(changed)}; use the settings it was started with, "
                         "or a new --out")


def _legacy(config: Config | None, settings: Config | None, out_dir: str | Path | None) -> Config:
    """``train(reactions, config=TSModelConfig(...), settings=TSTrainSettings(...), out_dir=)``."""
    config = config if config is not None else Config()
    if settings is not None:
        config = config.replace(batch_size=settings.batch_size, reverse=settings.reverse,
                                distance_weight=settings.distance_weight, train=settings.train)
    if out_dir is not None:
        config = config.replace(train={"out_dir": out_dir})
    return config


def warm_start(net: torch.nn.Module, init: Model, config: Config) -> list[str]:
    """Copy ``init``'s weights into ``net`` (a fresh network of ``config``): every tensor of the
    same shape is copied; the element embedding is copied column by column for the elements both
    know, and the columns of elements ``init`` never saw stay zero (their atoms start from the
    embedding's bias). The aggregation stays ``config``'s. Returns what was not copied.
    InputError when the networks differ otherwise (another width, depth or kind)."""
    theirs = init.net.state_dict()
    ours = net.state_dict()
    skipped = []
    with torch.no_grad():
        for key, value in ours.items():
            if key.endswith("aggregation_mean") or key not in theirs:
                skipped.append(key)
                continue
            src = theirs[key]
            if src.shape == value.shape:
                value.copy_(src)
            elif key.endswith("node_embed.weight") and src.shape[0] == value.shape[0]:
                value.zero_()
                for j, z in enumerate(config.elements):
                    if z in init.elements:
                        value[:, j] = src[:, init.elements.index(z)]
            else:
                raise InputError(f"cannot start from that model: {key} is {tuple(src.shape)} "
                                 f"there and {tuple(value.shape)} here (use its network sizes: "
                                 f"{init.config.network} {init.config.hidden} x "
                                 f"{init.config.layers})")
    return skipped


def train(reactions: Sequence[Any], config: Config | None = None, *, resume: bool = False,
          meta: dict[str, Any] | None = None, return_result: bool = False,
          settings: Config | None = None, out_dir: str | Path | None = None,
          init: Model | None = None) -> Model | tuple[Model, TrainResult]:
    """Train a TS generator on reactions (``sciflow.datasets.reactions.Reaction`` objects).

    The model's meta records what it saw: ``scope`` (elements, kinds, charges, sizes, methods:
    :func:`.scope.scope_of`) and ``train["ids"]`` (the training reaction ids, which
    :func:`.evaluation.held_out` leaves out of an evaluation).
    Checkpoints, EMA weights and ``metrics.jsonl`` go to ``config.train.out_dir`` (``resume``
    continues the run there; a changed network is an InputError). Under ``torchrun`` the Trainer
    runs DDP. Returns the :class:`~.model.Model` (EMA weights), with the
    :class:`~sciflow.train.TrainResult` if ``return_result``. ``settings`` / ``out_dir`` are the
    former keywords (a :func:`~.config.TSTrainSettings` and the run folder). ``init`` starts
    from another model's weights (:func:`warm_start`: same network, more elements allowed);
    its checkpoint digest is recorded in ``meta["train"]["init"]``.

    Example
    -------
    >>> from sciflow.datasets.reactions import read_reactions                # doctest: +SKIP
    >>> cfg = Config(hidden=64).replace(train={"steps": 2000, "out_dir": "runs/ts"})
    >>> model = train(read_reactions("reactions.extxyz.gz"), cfg)           # doctest: +SKIP
    """
    config = _legacy(config, settings, out_dir)
    reactions = list(reactions)
    if not reactions:
        raise InputError("train() got no reactions; pass a reaction store or file (--data)")
    if resume:
        check_resume(config)
    check_memory(parameter_bytes(config), f"a network of hidden={config.hidden} x "
                 f"layers={config.layers}", name="--hidden/--layers")
    graphs = [reaction_to_graph(r, elements=config.elements) for r in reactions]
    largest = max(int(g.num_nodes) for g in graphs)
    check_memory(8 * config.batch_size * largest**2 * 4 * (3 * config.num_rbf + 8 * config.hidden),
                 f"batches of {config.batch_size} reactions of up to {largest} atoms",
                 name="--batch-size")
    if config.reverse:
        graphs += [_reversed(g) for g in graphs]
    seed_everything(config.train.seed)  # before the network: its initial weights are drawn
    net = build_network(config)
    provenance = {"reactions": len(reactions), "max_atoms": largest,
                  "ids": [str(r.id) for r in reactions]}
    if init is not None:
        warm_start(net, init, config)
        provenance["init"] = {"checkpoint": (init.checkpoint or {}).get("path"),
                              "digest": (init.checkpoint or {}).get("digest")}
    full_meta = {**(meta or {}), "config": config.to_dict(), "train": provenance,
                 "scope": scope_of(reactions).to_dict()}
    trainer = Trainer(net, TSFlowLoss(config), config.train, kind=KIND, meta=full_meta)
    result = trainer.fit(_batch_fn(graphs, config.batch_size), resume=resume)
    provenance.update(steps=result.step, wall_seconds=result.wall_time,
                      final_loss=result.final_loss)
    model = Model(net=trainer.ema_model, config=config, meta={**full_meta, "train": provenance})
    return (model, result) if return_result else model

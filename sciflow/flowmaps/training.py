"""Training a flow map through :class:`sciflow.train.Trainer`: the batch type, the loss reduction,
and one fit function for every flow-map objective.

A flow-map loss is a callable ``loss(flow_map, FlowBatch) -> (loss, extras)`` —
:class:`~sciflow.flowmaps.CTMLoss` (batches of data) or :class:`~sciflow.flowmaps.DataFreeLoss`
(batches of source draws) — so :func:`fit_flow_map` is the Trainer with a batch function, and a
run gets EMA weights, clipping, checkpoints, exact resume and the metric log like any other.

Multi-pass objectives call the flow map several times per step outside its ``forward``; under
``torchrun`` (DistributedDataParallel) those calls would bypass the gradient synchronisation, so
:func:`fit_flow_map` runs in one process and says so when started with WORLD_SIZE > 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.train import TrainConfig, Trainer, TrainResult

__all__ = ["FlowBatch", "FlowMapResult", "mean_squared", "fit_flow_map"]


class FlowBatch(NamedTuple):
    """One training batch of a flow-map objective: ``x`` (N, *) — data x1 for CTM, source draws
    x0 for data-free distillation — with the conditions ``cond`` of its samples (per sample, per
    graph or per node row, as the networks take them) and ``batch`` (N,) for ragged graphs.
    The Trainer moves its tensors to the training device."""

    x: Tensor
    cond: Any = None
    batch: Tensor | None = None


@dataclass(frozen=True)
class FlowMapResult:
    """The trained flow map (EMA weights, eval mode, frozen) and the trainer's record."""

    model: torch.nn.Module
    train: TrainResult


def mean_squared(err: Tensor, batch: Tensor | None = None) -> Tensor:
    """Mean of err^2 per coordinate: over each row, then over each graph's rows, then over the
    samples (graphs), so every graph weighs the same. Shapes: err (N, *) -> scalar."""
    per_row = err.reshape(err.shape[0], -1).square().mean(dim=1)
    if batch is None:
        return per_row.mean()
    return graphs.graph_mean(per_row, batch).mean()


def fit_flow_map(
    flow_map: torch.nn.Module,
    loss: Callable[[Any, FlowBatch], Any],
    batches: Callable[[int, torch.Generator], FlowBatch],
    config: TrainConfig,
    *,
    meta: Mapping[str, Any] | None = None,
    kind: str = "flow_map",
    resume: bool = False,
) -> FlowMapResult:
    """Train ``flow_map`` by minimising ``loss`` over ``batches(step, generator)``.

    ``flow_map`` is trained in place (its parameters are set trainable: a warm start copied from
    an EMA teacher arrives frozen); the EMA copy is returned. ``meta`` and ``kind`` go into the
    checkpoints (``sciflow.checkpoint``), ``resume`` continues a run in ``config.out_dir``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RuntimeError("flow-map objectives call the model several times per step, which "
                           "DistributedDataParallel does not synchronise; run fit_flow_map in one "
                           "process (without torchrun)")
    if not callable(loss):
        raise TypeError(f"loss must be callable(flow_map, FlowBatch), got {type(loss).__name__}")
    if not callable(batches):
        raise TypeError(f"batches must be a function (step, generator) -> FlowBatch, got "
                        f"{type(batches).__name__}")

    def batch_fn(step: int, g: torch.Generator) -> FlowBatch:
        data = batches(step, g)
        if not isinstance(data, FlowBatch):
            raise TypeError(f"batches returned {type(data).__name__} at step {step}; return "
                            "sciflow.flowmaps.FlowBatch(x, cond, batch)")
        return data

    flow_map.requires_grad_(True).train()
    trainer = Trainer(flow_map, loss, config, meta=meta, kind=kind)
    with torch.enable_grad():
        result = trainer.fit(batch_fn, resume=resume)
    return FlowMapResult(model=trainer.ema_model, train=result)

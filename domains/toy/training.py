"""Training a toy flow: FlowMatcher (path, coupling, loss) + Trainer, nothing of its own."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from sciflow.datasets.toy2d import TOY2D
from sciflow.matcher import CoupledBatch
from sciflow.seeding import seed_everything
from sciflow.train import Trainer, TrainResult

from .config import Config
from .model import KIND, Model, build_matcher, build_network

__all__ = ["train"]


def train(config: Config | None = None, *, resume: bool = False,
          return_result: bool = False) -> Model | tuple[Model, TrainResult]:
    """Train ``config.source -> config.target``; returns the :class:`Model` with EMA weights.

    Everything random (the MLP's initial weights included) is fixed by ``config.train.seed``:
    two processes with the same config give bit-identical weights, with or without
    ``config.train.prefetch`` (on by default: the coupling of the next batch is solved in a
    worker thread while the current one trains). ``resume`` continues the run
    in ``config.train.out_dir``. With ``return_result`` also returns the TrainResult (loss
    history, checkpoint, wall time).
    """
    config = config if config is not None else Config()
    seed_everything(config.train.seed)
    net = build_network(config)
    matcher = build_matcher(config)
    source, target = TOY2D[config.source], TOY2D[config.target]
    n = config.batch_size

    def batch_fn(step: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        return source(n, generator=g), target(n, generator=g)

    def prepare(batch: tuple[Tensor, Tensor], g: torch.Generator) -> CoupledBatch:
        x0, x1 = batch  # the OT solve: one step ahead, in the trainer's worker thread
        return matcher.couple(x1, x0=x0, generator=g)

    def loss_fn(model: torch.nn.Module, pair: CoupledBatch) -> Tensor:
        return matcher.loss(model, pair)

    trainer = Trainer(net, loss_fn, config.train, kind=KIND, prepare=prepare,
                      meta={"config": config.to_dict()})
    result = trainer.fit(batch_fn, resume=resume)
    model = Model(net=trainer.ema_model, config=dataclasses.replace(config))
    return (model, result) if return_result else model

"""sciflow 0.1's single-cell API, kept working on top of the current one.

=======================================  ===================================================
former                                   now
=======================================  ===================================================
``CellFlowSpec(method=, dim=, ...)``     :class:`~.config.Config` (``model_type=``, ...)
``CellTrainConfig(steps=, ...)``         the batch fields of Config + ``Config.train``
``build_spec(cells, method, **opts)``    ``Config(model_type=method, **opts).for_data(cells)``
``train_cell_flow(cells, spec, cfg)``    :func:`~.training.train` ``(cells, config)``
``CellFlow`` (``.model``, ``.spec``,     :class:`~.model.Model` (``.net``, ``.config``,
``.train``)                              ``.result``)
``save_cell_flow(path, flow)``           :meth:`Model.save <.model.Model.save>`
``load_cell_flow(path)``                 :func:`~.model.load`
``predict(flow, pairs, method=, ...)``   :func:`~.sampling.sample` ``(model, cells, solver=)``
``evaluate(predictions, pairs)``         :func:`~.evaluation.score` (``evaluate`` still
                                         accepts this call)
=======================================  ===================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from sciflow.errors import InputError
from sciflow.train import TrainConfig

from .config import ATOL, RTOL, SAMPLE_STEPS, Config
from .model import Model, load
from .populations import CellPopulations, PopulationPair
from .sampling import sample
from .training import train

__all__ = ["CellFlow", "CellFlowSpec", "CellTrainConfig", "LegacyTrainSettings", "build_spec",
           "train_cell_flow", "save_cell_flow", "load_cell_flow", "predict"]

#: sciflow 0.1's trained bundle
CellFlow = Model
load_cell_flow = load


def CellFlowSpec(*, method: str, dim: int, **fields: Any) -> Config:  # noqa: N802 - former class
    """The Config of sciflow 0.1's network spec (``method`` is now ``model_type``)."""
    if method == "cgfm" and not fields.get("populations"):
        raise InputError("method='cgfm' needs the training population names (populations=)")
    return Config(model_type=method, dim=dim, **fields)


@dataclass(frozen=True)
class LegacyTrainSettings:
    """What ``CellTrainConfig(...)`` returns: the batch fields of a Config and its TrainConfig."""

    populations_per_batch: int
    cells_per_population: int
    training: str
    train: TrainConfig

    def apply(self, config: Config) -> Config:
        """``config`` with these batch and run settings."""
        return config.replace(populations_per_batch=self.populations_per_batch,
                              cells_per_population=self.cells_per_population,
                              training=self.training, train=self.train)


def CellTrainConfig(  # noqa: N802 - former class
    *, steps: int = 2000, populations_per_batch: int = 10, cells_per_population: int = 700,
    lr: float = 1e-3, schedule: Literal["constant", "cosine"] = "cosine",
    ema_decay: float = 0.99, grad_clip: float | None = 1.0, training: str = "joint",
    seed: int = 0, out_dir: str | Path | None = None, log_every: int = 50,
    checkpoint_every: int = 0, progress: bool | None = None,
) -> LegacyTrainSettings:
    """sciflow 0.1's training settings (its defaults), for :func:`train_cell_flow`."""
    run = TrainConfig(steps=steps, lr=lr, schedule=schedule, ema_decay=ema_decay,
                      grad_clip=grad_clip, seed=seed, out_dir=out_dir, log_every=log_every,
                      checkpoint_every=checkpoint_every, progress=progress)
    return LegacyTrainSettings(populations_per_batch=populations_per_batch,
                               cells_per_population=cells_per_population, training=training,
                               train=run)


def build_spec(cells: CellPopulations, method: str, **options: Any) -> Config:
    """The Config of ``method`` for these data (dim, conditions, CGFM's populations filled in);
    ``options`` are Config fields (hidden, layers, knn, ...)."""
    return Config(model_type=method, **options).for_data(cells)


def train_cell_flow(cells: CellPopulations, spec: Config,
                    config: LegacyTrainSettings | None = None, *, resume: bool = False) -> Model:
    """sciflow 0.1's ``train_cell_flow(cells, spec, CellTrainConfig(...))``: :func:`train`."""
    settings = config if config is not None else CellTrainConfig()
    return train(cells, settings.apply(spec), resume=resume)


def save_cell_flow(path: str | Path, flow: Model) -> Path:
    """sciflow 0.1's ``save_cell_flow``: :meth:`Model.save`."""
    return flow.save(path)


def predict(flow: Model, pairs: CellPopulations | Sequence[PopulationPair], *,
            method: str = "dopri5", steps: int | None = None, atol: float = ATOL,
            rtol: float = RTOL, max_rows: int = 50_000, seed: int = 0) -> list[Tensor]:
    """sciflow 0.1's ``predict``: :func:`sample` with ``method`` as ``solver``."""
    return sample(flow, pairs, solver=method, steps=SAMPLE_STEPS if steps is None else steps,
                  atol=atol, rtol=rtol, max_rows=max_rows, seed=seed)

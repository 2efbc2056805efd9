"""What a remote-sensing model is and how it is trained: one frozen object, kept in checkpoints.

:class:`Config` holds the model's inputs and outputs (band, class and SAR names, matched by name
against cubes), the network's size, how training draws its tasks, and the run itself as a
contained :class:`sciflow.train.TrainConfig` (``config.train.steps``, ``.lr``, ``.seed``, ...).

This module imports neither torch nor xarray (the command line reads its defaults at start-up):
the band names come from :mod:`sciflow.datasets.sentinel` and the TrainConfig from
:mod:`sciflow.train` only when a Config is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sciflow.configs import DomainConfig
from sciflow.errors import InputError

if TYPE_CHECKING:
    from sciflow.train import TrainConfig

__all__ = ["Config", "RSModelSpec", "NETWORK_FIELDS", "TASKS", "SAMPLES", "SAMPLE_STEPS", "SOLVER",
           "OVERLAP", "CUBE_SUFFIXES"]

TASKS: tuple[str, ...] = ("reconstruction", "cloud_removal", "forecasting", "change_detection")

#: sampling defaults shared by the Python API and the command line
SAMPLES, SAMPLE_STEPS, SOLVER, OVERLAP = 4, 8, "euler", 8

#: the cube formats read and written (netCDF, zarr), by file name ending
CUBE_SUFFIXES: tuple[str, ...] = (".nc", ".nc4", ".netcdf", ".zarr")

#: the fields that fix the network's shape: a resumed run or a loaded file must agree on them
NETWORK_FIELDS: tuple[str, ...] = ("bands", "classes", "sar", "frames", "tile", "patch_size",
                                   "dim", "depth", "heads", "mlp_ratio", "acor", "stm",
                                   "pixel_head", "prior")


def _bands() -> tuple[str, ...]:
    from sciflow.datasets.sentinel import S2_BANDS

    return S2_BANDS


def _classes() -> tuple[str, ...]:
    from sciflow.datasets.sentinel import LANDCOVER_CLASSES

    return LANDCOVER_CLASSES


def _sar() -> tuple[str, ...]:
    from sciflow.datasets.sentinel import SAR_POLARIZATIONS

    return SAR_POLARIZATIONS


def _default_train() -> TrainConfig:
    from sciflow.train import TrainConfig

    return TrainConfig(steps=2000, lr=1e-3, schedule="cosine", warmup_steps=100,
                       ema_decay=0.995, grad_clip=1.0, log_every=50)


def _positive_int(name: str, value: Any, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name}={value!r}: expected an integer >= {low}")


@dataclass(frozen=True, kw_only=True)
class Config(DomainConfig):
    """One remote-sensing flow model (UniTS-style) and its training run.

    Inputs and outputs
        bands: optical band names, matched by name against cubes. classes: land-cover class
        names (() for a model without change detection). sar: SAR polarisations (() for
        optical only).
    Network (:class:`~sciflow.nn.spacetime.SpaceTimeTransformer`)
        frames: dates per temporal window (>= 2); tile: pixels per spatial tile side, a
        multiple of patch_size; dim, depth, heads (dim divisible by heads), mlp_ratio;
        acor (condition injection), stm (attention bias); pixel_head: width of the
        full-resolution head (0: none); prior: give the network the linear interpolation of the
        observations and let it predict the correction.
    Training tasks
        batch_size: series per update. task_weights: relative frequency of each task of
        :data:`TASKS`. given_weight: loss weight of pixels whose clear value is given.
        sar_dropout: probability that a batch gets no SAR (one model also works optical-only).
        max_drop_dates / max_horizon: upper bounds of the random reconstruction gaps and
        forecast horizons. extra_gap_prob: probability that a series also loses the clear pixels
        under another series' clouds (artificial gaps).
    Run
        train: the :class:`~sciflow.train.TrainConfig` (steps, lr, seed, device, out_dir, ...),
        contained, never copied. Its warm-up is capped at a tenth of the run when training.

    ``replace(train={"steps": 100})`` changes fields of the TrainConfig; :meth:`to_dict` /
    :meth:`from_dict` round-trip through JSON (checkpoints).
    """

    LABEL = "remote-sensing"

    bands: tuple[str, ...] = field(default_factory=_bands)
    classes: tuple[str, ...] = field(default_factory=_classes)
    sar: tuple[str, ...] = field(default_factory=_sar)
    frames: int = 10
    tile: int = 32
    patch_size: int = 4
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    acor: bool = True
    stm: bool = True
    pixel_head: int = 16
    prior: bool = True
    batch_size: int = 8
    task_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    given_weight: float = 0.2
    sar_dropout: float = 0.25
    max_drop_dates: int = 3
    max_horizon: int = 3
    extra_gap_prob: float = 0.5
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        from sciflow.train import TrainConfig

        for name in ("bands", "classes", "sar"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{name}={value!r}: expected a tuple of names, e.g. "
                                 "('B02', 'B03', 'B04', 'B08')")
            object.__setattr__(self, name, tuple(value))
            if len(set(value)) != len(value):
                raise InputError(f"{name}={tuple(value)!r} names one entry twice")
        if not self.bands:
            raise InputError("bands=(): a model needs at least one optical band")
        _positive_int("frames", self.frames, 2)
        for name in ("patch_size", "dim", "depth", "heads", "batch_size"):
            _positive_int(name, getattr(self, name))
        _positive_int("pixel_head", self.pixel_head, 0)
        _positive_int("max_drop_dates", self.max_drop_dates, 0)
        _positive_int("max_horizon", self.max_horizon)
        _positive_int("tile", self.tile)
        if self.tile % self.patch_size:
            raise InputError(f"tile={self.tile}: expected a multiple of patch_size="
                             f"{self.patch_size}")
        if self.dim < 8 or self.dim % 4 or self.dim % self.heads or (self.acor and self.dim % 8):
            raise InputError(f"dim={self.dim}: expected a multiple of 4 (of 8 with acor), at "
                             f"least 8 and divisible by heads={self.heads}")
        if not (isinstance(self.mlp_ratio, (int, float)) and self.mlp_ratio > 0
                and math.isfinite(self.mlp_ratio)):
            raise InputError(f"mlp_ratio={self.mlp_ratio!r}: expected a finite number > 0")
        weights = tuple(float(w) for w in self.task_weights)
        if len(weights) != len(TASKS) or min(weights) < 0 or sum(weights) <= 0 \
                or not all(math.isfinite(w) for w in weights):
            raise InputError(f"task_weights={self.task_weights!r}: expected {len(TASKS)} "
                             f"non-negative numbers (for {TASKS}) with a positive sum")
        object.__setattr__(self, "task_weights", weights)
        for name in ("given_weight", "sar_dropout", "extra_gap_prob"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise InputError(f"{name}={value!r}: expected a number in [0, 1]")
        if not isinstance(self.train, TrainConfig):
            raise InputError(f"train={self.train!r}: expected a sciflow.train.TrainConfig "
                             "(or Config.replace(train={...}))")

    @property
    def channels(self) -> int:
        """C + K: channels of the generated state per date."""
        return len(self.bands) + len(self.classes)

    @property
    def aux_channels(self) -> int:
        """SAR channels of the condition plus their availability flag (0 without SAR)."""
        return len(self.sar) + 1 if self.sar else 0

    @property
    def frame_channels(self) -> int:
        """Condition channels per date: observations (+ prior), two flags, SAR."""
        return len(self.bands) * (2 if self.prior else 1) + 2 + self.aux_channels

    def network(self) -> dict[str, Any]:
        """The fields that fix the network's shape (:data:`NETWORK_FIELDS`), as a dict."""
        return {name: getattr(self, name) for name in NETWORK_FIELDS}


#: sciflow 0.1's name: the network part of what is now the Config
RSModelSpec = Config

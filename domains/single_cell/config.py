"""What a population flow is and how it is trained: one frozen object, kept in checkpoints.

:class:`Config` holds the model type (MFM, FM or CGFM), the network's size, how a training batch
is drawn, and the run itself as a contained :class:`sciflow.train.TrainConfig`
(``config.train.steps``, ``.lr``, ``.seed``, ``.device``, ``.out_dir``, ...). Three fields come
from the data and are filled in by :meth:`Config.for_data` when training starts: ``dim`` (features
per cell), ``conditions`` (treatment names) and ``populations`` (CGFM's training populations).

This module imports no torch: the command line reads its defaults (:data:`DEFAULTS`) at start-up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sciflow.configs import DomainConfig
from sciflow.errors import InputError

if TYPE_CHECKING:
    from sciflow.train import TrainConfig

    from .data import CellPopulations

__all__ = ["Config", "DEFAULTS", "MODEL_TYPES", "TRAINING_SCHEMES", "NETWORK_FIELDS", "MIN_CELLS",
           "SOLVER", "SAMPLE_STEPS", "ATOL", "RTOL", "SPREAD_REPEATS"]

#: what the flow is conditioned on: mfm (the source population, through a GCN embedding),
#: fm (the treatment only), cgfm (a one-hot population id)
MODEL_TYPES: tuple[str, ...] = ("mfm", "fm", "cgfm")
#: how MFM's two parameter blocks are updated (see :mod:`.training`)
TRAINING_SCHEMES: tuple[str, ...] = ("joint", "alternating")
#: every population needs at least this many cells (one cell is no distribution); MFM needs knn + 1
MIN_CELLS = 2
#: sampling defaults shared by the Python API and the command line (dopri5 as in the paper)
SOLVER, SAMPLE_STEPS, ATOL, RTOL = "dopri5", 8, 1e-4, 1e-4
#: bootstrap redraws of the source cells behind each population's spread (predict, evaluate)
SPREAD_REPEATS = 4

#: the fields that fix the network's shape: a resumed run or a loaded file must agree on them
NETWORK_FIELDS: tuple[str, ...] = ("model_type", "dim", "conditions", "populations", "spare_slots",
                                   "hidden", "layers", "time_dim", "time_scale", "fourier",
                                   "fourier_scale", "gnn_hidden", "gnn_layers", "knn")


def _default_train() -> TrainConfig:
    from sciflow.train import TrainConfig

    return TrainConfig(steps=2000, lr=1e-3, schedule="cosine", ema_decay=0.99, grad_clip=1.0,
                       log_every=50)


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name}={value!r}: expected an integer >= {low}")


def _names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{name}={value!r}: expected a tuple of names")
    value = tuple(value)
    if len(set(value)) != len(value):
        raise InputError(f"{name}={value!r} names one entry twice")
    return value


@dataclass(frozen=True, kw_only=True)
class Config(DomainConfig):
    """One population flow (Meta Flow Matching, Atanackovic et al. ICLR 2025) and its training run.

    Model
        model_type: ``"mfm"`` (conditioned on a GCN embedding of the source population),
        ``"fm"`` (on the treatment only) or ``"cgfm"`` (on a one-hot population id; unseen
        populations get one of ``spare_slots`` untrained slots). hidden, layers: the decoder
        (paper, letters: 512 x 4). time_dim, time_scale: sinusoidal features of time_scale * t.
        fourier, fourier_scale: random Fourier features of the standardised cells (count, std of
        B). gnn_hidden, gnn_layers, knn: MFM's population encoder (paper, letters: 64, 3, 50;
        ``knn=0`` drops the graph). The defaults (128 x 4, k = 20 for ~256 cells) suit a CPU.
    Data (filled in by :meth:`for_data`)
        dim: features per cell. conditions: treatment names (one-hot order). populations: CGFM's
        training populations (() for MFM and FM).
    Training batches
        populations_per_batch x cells_per_population cells per update (paper, letters:
        10 x 700; smaller populations are drawn with replacement). training: MFM's update scheme,
        ``"joint"`` or ``"alternating"`` (the paper's; see :mod:`.training`).
    Run
        train: the :class:`~sciflow.train.TrainConfig` (steps, lr, seed, device, out_dir, ...),
        contained, never copied. ``train.seed`` fixes everything random, the weights included.

    ``replace(train={"steps": 100})`` changes fields of the TrainConfig; :meth:`to_dict` /
    :meth:`from_dict` round-trip through JSON (checkpoints; :class:`~sciflow.configs.DomainConfig`).
    """

    LABEL = "single-cell"
    model_type: str = "mfm"
    hidden: int = 128
    layers: int = 4
    time_dim: int = 128
    time_scale: float = 1.0
    fourier: int = 64
    fourier_scale: float = 0.5
    gnn_hidden: int = 64
    gnn_layers: int = 3
    knn: int = 20
    spare_slots: int = 20
    dim: int | None = None
    conditions: tuple[str, ...] = ()
    populations: tuple[str, ...] = ()
    populations_per_batch: int = 10
    cells_per_population: int = 256
    training: str = "joint"
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        from sciflow.train import TrainConfig

        if self.model_type not in MODEL_TYPES:
            raise InputError(f"model_type={self.model_type!r}: choose from {list(MODEL_TYPES)}")
        if self.training not in TRAINING_SCHEMES:
            raise InputError(f"training={self.training!r}: choose from {list(TRAINING_SCHEMES)}")
        for name, low in (("hidden", 1), ("layers", 1), ("time_dim", 2), ("fourier", 0),
                          ("gnn_hidden", 1), ("gnn_layers", 1), ("knn", 0), ("spare_slots", 0),
                          ("populations_per_batch", 1), ("cells_per_population", 1)):
            _integer(name, getattr(self, name), low)
        if self.dim is not None:
            _integer("dim", self.dim, 1)
        if self.time_dim % 2:
            raise InputError(f"time_dim={self.time_dim}: expected an even number")
        for name in ("time_scale", "fourier_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise InputError(f"{name}={value!r}: expected a finite number > 0")
        for name in ("conditions", "populations"):
            object.__setattr__(self, name, _names(name, getattr(self, name)))
        if self.model_type != "cgfm" and self.populations:
            raise InputError(f"populations={self.populations!r}: only model_type='cgfm' keeps "
                             "the training populations")
        if self.model_type == "mfm" and self.cells_per_population < self.knn + 1:
            raise InputError(f"cells_per_population={self.cells_per_population}: MFM samples "
                             f"each population as a {self.knn}-nearest-neighbour graph, which "
                             f"needs at least knn + 1 = {self.knn + 1} cells; raise it or lower "
                             "knn")
        if not isinstance(self.train, TrainConfig):
            raise InputError(f"train={self.train!r}: expected a sciflow.train.TrainConfig "
                             "(or Config.replace(train={...}))")

    @property
    def min_population(self) -> int:
        """The fewest cells a population may have (source and target): MFM's k-NN graph needs
        knn + 1, and every model needs :data:`MIN_CELLS` (one cell is not a distribution)."""
        return max(MIN_CELLS, self.knn + 1) if self.model_type == "mfm" else MIN_CELLS

    def population_rule(self) -> str:
        """Why :attr:`min_population` is what it is, for error messages."""
        if self.model_type == "mfm" and self.knn + 1 > MIN_CELLS:
            return (f"cells this model needs (knn + 1 = {self.knn + 1}: MFM embeds each population "
                    f"as a {self.knn}-nearest-neighbour graph)")
        return f"cells every population needs (MIN_CELLS = {MIN_CELLS}: one cell is no distribution)"

    @property
    def cond_dim(self) -> int:
        """Width of the conditioning vector c (treatment one-hot, plus the MFM embedding or the
        CGFM population one-hot)."""
        width = len(self.conditions)
        if self.model_type == "mfm":
            width += self.gnn_hidden
        elif self.model_type == "cgfm":
            width += len(self.populations) + self.spare_slots
        return width

    def for_data(self, cells: CellPopulations) -> Config:
        """This config with ``dim``, ``conditions`` and ``populations`` taken from ``cells``.

        A ``dim`` given beforehand must match the data (InputError otherwise).
        """
        if self.dim is not None and self.dim != cells.dim:
            raise InputError(f"dim={self.dim} but the cells have {cells.dim} features "
                             f"({', '.join(cells.features[:4])}...)")
        pops = cells.populations if self.model_type == "cgfm" else ()
        return dataclasses.replace(self, dim=cells.dim, conditions=cells.conditions,
                                   populations=pops)

    def network(self) -> dict[str, Any]:
        """The fields that fix the network's shape (:data:`NETWORK_FIELDS`), as a dict."""
        return {name: getattr(self, name) for name in NETWORK_FIELDS}

    @classmethod
    def _upgrade(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Files written before the Config existed name ``model_type`` ``method``."""
        if "method" in d:
            d["model_type"] = d.pop("method")
        return d

#: each field's default, read without building a Config (so without torch): the CLI's defaults
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)
                            if f.default is not dataclasses.MISSING}

"""What a TS generator is: its network, its source, its training data feed and the training run.

One frozen keyword-only :class:`Config` holds all of it and *contains* the core
:class:`~sciflow.train.TrainConfig` (``config.train``) instead of copying its fields:

>>> cfg = Config(hidden=32, layers=2).replace(train={"steps": 500, "lr": 3e-3})  # doctest: +SKIP

The network is rebuilt from the fields in :data:`NETWORK_FIELDS` (stored as JSON in every
checkpoint); ``batch_size``, ``reverse`` and ``distance_weight`` shape the training batches and
loss. This module imports no torch (``sciflow ts --help`` reads the defaults from it).

Former names: :class:`TSModelConfig` is this class (``TSModelConfig(hidden=32)`` still works), and
:func:`TSTrainSettings` builds a Config from the old keyword arguments of ``TSTrainSettings``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sciflow.configs import DomainConfig, train_config_from_dict
from sciflow.errors import InputError

if TYPE_CHECKING:
    from sciflow.train import TrainConfig

__all__ = ["Config", "DEFAULT_ELEMENTS", "NETWORKS", "SOURCES", "TARGETS", "SUBSETS", "NETWORK_FIELDS",
           "TSModelConfig", "TSTrainSettings"]

DEFAULT_ELEMENTS: tuple[int, ...] = (1, 6, 7, 8, 9, 15, 16, 17)
"""H, C, N, O, F, P, S, Cl: the elements of the shipped reaction data (Transition1x has H, C, N, O)."""

NETWORKS = ("egnn", "painn", "e3nn")
SOURCES = ("gaussian", "midpoint")
TARGETS = ("x1", "velocity")
AGGREGATIONS = ("mean", "sum")
SUBSETS = ("test", "val", "train", "unseen", "all")
"""What ``ts evaluate --subset`` scores (:func:`.files.held_out`)."""

NETWORK_FIELDS = ("network", "hidden", "layers", "vector_channels", "elements", "source",
                  "source_scale", "target", "time_dim", "num_rbf", "rbf_max", "pair_distances",
                  "aggregation")
"""The fields that define the network and its source: a resumed run must keep them."""

_DATA_FIELDS = ("batch_size", "reverse", "distance_weight")


def _default_train() -> TrainConfig:
    from sciflow.train import TrainConfig

    return TrainConfig(steps=3000, lr=1e-3, ema_decay=0.995, warmup_steps=50, schedule="cosine",
                       grad_clip=1.0, log_every=50, checkpoint_every=500)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}={value!r}: expected an integer >= 1")


@dataclass(frozen=True, kw_only=True)
class Config(DomainConfig):
    """A TS generator and how to train it.

    Network (``NETWORK_FIELDS``)
        network : "egnn", "painn" or "e3nn" (``sciflow.nn.make_graph_velocity`` names).
        hidden, layers : width of the scalar features and number of message-passing layers.
        vector_channels : EGNN's vector channels per atom (ignored by the other networks).
        elements : atomic numbers the model accepts, in the order of the one-hot features.
        source : "midpoint" ((R + P)/2 plus centred Gaussian noise of scale ``source_scale``) or
            "gaussian" (centred N(0, source_scale^2 I), TS-GEN's source).
        source_scale : standard deviation of the source noise, in A.
        target : "x1" (the network predicts the TS as a correction to the R/P midpoint) or
            "velocity" (it predicts the velocity, as TS-GEN).
        time_dim, num_rbf, rbf_max : time embedding size, radial basis size and range (A).
        pair_distances : give every edge the radial basis of its reactant and product distances.
        aggregation : "mean" (neighbour messages averaged, bounded at any size) or "sum" (summed
            and divided by a constant 10, the networks before the option; see
            ``sciflow.nn.GraphVelocityNet``). A checkpoint's weights record which one it used.
    Training data and loss
        batch_size : reactions per step (drawn without replacement, with it for smaller data).
        reverse : also train on every reaction run backwards (P -> R has the same TS).
        distance_weight : weight of the auxiliary short-distance loss (:class:`.training.TSFlowLoss`).
    train : the :class:`~sciflow.train.TrainConfig` (steps, lr, ema_decay, seed, device, out_dir...).
    """

    network: str = "egnn"
    hidden: int = 96
    layers: int = 4
    vector_channels: int = 8
    elements: tuple[int, ...] = DEFAULT_ELEMENTS
    source: str = "midpoint"
    source_scale: float = 0.2
    target: str = "x1"
    time_dim: int = 32
    num_rbf: int = 24
    rbf_max: float = 6.0
    pair_distances: bool = True
    aggregation: str = "mean"
    batch_size: int = 16
    reverse: bool = True
    distance_weight: float = 0.5
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        for name, choices in (("network", NETWORKS), ("source", SOURCES), ("target", TARGETS),
                              ("aggregation", AGGREGATIONS)):
            if getattr(self, name) not in choices:
                raise InputError(f"{name}={getattr(self, name)!r}: choose from {list(choices)}")
        for name in ("hidden", "layers", "vector_channels", "time_dim", "num_rbf", "batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("source_scale", "rbf_max"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"{name}={value!r}: expected a finite number > 0 (A)")
        if not (isinstance(self.distance_weight, (int, float)) and self.distance_weight >= 0
                and math.isfinite(self.distance_weight)):
            raise InputError(f"distance_weight={self.distance_weight!r}: expected a finite "
                             "number >= 0")
        elements = tuple(self.elements)
        if (not elements or len(set(elements)) != len(elements)
                or not all(isinstance(e, int) and 1 <= e <= 118 for e in elements)):
            raise InputError(f"elements={self.elements!r}: expected distinct atomic numbers "
                             "(1-118), e.g. (1, 6, 7, 8)")
        object.__setattr__(self, "elements", tuple(int(e) for e in elements))
        from sciflow.train import TrainConfig

        if not isinstance(self.train, TrainConfig):
            raise InputError(f"train={self.train!r}: expected a sciflow.train.TrainConfig "
                             "(use Config().replace(train={...}) to change its fields)")

    def network_dict(self) -> dict[str, Any]:
        """The fields that rebuild the network and its source (JSON-able)."""
        d = {name: getattr(self, name) for name in NETWORK_FIELDS}
        d["elements"] = list(self.elements)
        return d

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; :meth:`from_dict` inverts it."""
        return {**self.network_dict(), **{k: getattr(self, k) for k in _DATA_FIELDS},
                "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Inverse of :meth:`to_dict`; also reads the model dict of older checkpoints (network
        fields only; without ``pair_distances``, written before that option, it is off)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown TS model settings {unknown}; known: {sorted(known)}")
        d = dict(d)
        d.setdefault("pair_distances", False)
        if "elements" in d:
            d["elements"] = tuple(d["elements"])
        if isinstance(d.get("train"), dict):
            d["train"] = train_config_from_dict(d["train"])
        return cls(**d)

    @classmethod
    def from_legacy(cls, model: dict[str, Any], train: dict[str, Any] | None = None) -> Config:
        """The Config of a checkpoint written before this class: ``meta["model"]`` (the former
        TSModelConfig) and ``meta["train"]`` (the former TSTrainSettings plus provenance)."""
        config = cls.from_dict(model)
        train = dict(train or {})
        data = {k: train[k] for k in _DATA_FIELDS if k in train}
        return config.replace(**data, train=_train_config(train, base=config.train))


def _train_config(d: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """A TrainConfig from a dict that may hold other keys (they are ignored)."""
    from sciflow.train import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kept = {k: v for k, v in d.items() if k in names}
    if "betas" in kept:
        kept["betas"] = tuple(kept["betas"])
    if base is None:
        return TrainConfig(**{"steps": 3000, **kept})
    return dataclasses.replace(base, **kept)


TSModelConfig = Config
"""Former name of :class:`Config` (it held the network fields only)."""


def TSTrainSettings(**settings: Any) -> Config:  # noqa: N802 (the former class name)
    """Former training settings: a :class:`Config` with the default network whose TrainConfig
    fields (steps, lr, ema_decay, seed, ...) and data fields (batch_size, reverse,
    distance_weight) are the keyword arguments. Pass it as ``train(..., settings=...)``."""
    from sciflow.train import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(settings) - names - set(_DATA_FIELDS))
    if unknown:
        raise InputError(f"unknown training settings {unknown}; TrainConfig has {sorted(names)} "
                         f"and the TS data feed {list(_DATA_FIELDS)}")
    base = Config()
    return base.replace(**{k: v for k, v in settings.items() if k in _DATA_FIELDS},
                        train={k: v for k, v in settings.items() if k in names})

"""What a toy flow is: densities, coupling, network size and the training run (one frozen object)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sciflow.datasets.toy2d import TOY2D
from sciflow.errors import InputError
from sciflow.train import TrainConfig

__all__ = ["Config", "COUPLINGS"]

COUPLINGS = ("independent", "ot")


def _default_train() -> TrainConfig:
    return TrainConfig(steps=2000, lr=3e-3, schedule="cosine", ema_decay=0.99, log_every=100)


@dataclass(frozen=True, kw_only=True)
class Config:
    """A 2-D flow from ``source`` to ``target`` (names in :data:`sciflow.datasets.toy2d.TOY2D`).

    coupling: ``"independent"`` (I-CFM) or ``"ot"`` (exact minibatch OT, OT-CFM); hidden, layers:
    the MLP; batch_size: pairs per step; train: the :class:`~sciflow.train.TrainConfig` (steps,
    lr, seed, device, out_dir, ...), contained, never copied.
    """

    source: str = "8gaussians"
    target: str = "moons"
    coupling: str = "independent"
    hidden: int = 64
    layers: int = 3
    batch_size: int = 256
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        for name in ("source", "target"):
            if getattr(self, name) not in TOY2D:
                raise InputError(f"{name}={getattr(self, name)!r}: choose from {sorted(TOY2D)}")
        if self.coupling not in COUPLINGS:
            raise InputError(f"coupling={self.coupling!r}: choose from {list(COUPLINGS)}")
        for name in ("hidden", "layers", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}={value!r}: expected an integer >= 1")

    def replace(self, **changes: Any) -> Config:
        """A copy with fields changed; ``train=dict(...)`` changes fields of the TrainConfig."""
        if isinstance(changes.get("train"), dict):
            changes["train"] = dataclasses.replace(self.train, **changes["train"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "train"}
        return {**d, "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        d = dict(d)
        train = d.pop("train", None)
        if train is not None:
            train = dict(train)
            train["betas"] = tuple(train.get("betas", (0.9, 0.999)))
            d["train"] = TrainConfig(**train)
        return cls(**d)

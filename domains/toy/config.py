"""What a toy flow is: densities, coupling, network size and the training run (one frozen object)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sciflow.configs import DomainConfig
from sciflow.datasets.toy2d import TOY2D
from sciflow.errors import InputError
from sciflow.train import TrainConfig

__all__ = ["Config", "COUPLINGS"]

COUPLINGS = ("independent", "ot")


def _default_train() -> TrainConfig:
    return TrainConfig(steps=2000, lr=3e-3, schedule="cosine", ema_decay=0.99, log_every=100)


@dataclass(frozen=True, kw_only=True)
class Config(DomainConfig):
    """A 2-D flow from ``source`` to ``target`` (names in :data:`sciflow.datasets.toy2d.TOY2D`).

    coupling: ``"independent"`` (I-CFM) or ``"ot"`` (exact minibatch OT, OT-CFM); hidden, layers:
    the MLP; batch_size: pairs per step; train: the :class:`~sciflow.train.TrainConfig` (steps,
    lr, seed, device, out_dir, ...), contained, never copied. ``replace``, ``to_dict`` and
    ``from_dict`` come from :class:`~sciflow.configs.DomainConfig`.
    """

    LABEL = "toy"

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

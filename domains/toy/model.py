"""The trained toy flow: an MLP velocity with the Config that built it; save and load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from sciflow.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sciflow.devices import resolve_device
from sciflow.matcher import FlowMatcher
from sciflow.nn.mlp import MLPVelocity

from .config import Config

__all__ = ["KIND", "Model", "build_network", "build_matcher", "load"]

KIND = "toy"


def build_network(config: Config) -> MLPVelocity:
    """The velocity field v(x, t): an MLP on (x, time embedding), 2 -> 2."""
    return MLPVelocity(dim=2, hidden=config.hidden, layers=config.layers)


def build_matcher(config: Config) -> FlowMatcher:
    """Linear path, Gaussian-free source (x0 comes from the source density), the chosen coupling."""
    from sciflow.couplings import ExactOTCoupling, IndependentCoupling

    coupling = ExactOTCoupling() if config.coupling == "ot" else IndependentCoupling()
    return FlowMatcher(coupling=coupling)


@dataclass(frozen=True)
class Model:
    """A trained toy flow: ``net`` (EMA weights, eval mode) and its ``config``."""

    net: nn.Module
    config: Config

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (kind ``"toy"``, digest checked on load)."""
        return save_checkpoint(path, self.net, kind=KIND, meta={"config": self.config.to_dict()})


def load(path: str | Path, *, device: str = "cpu") -> Model:
    """Load a toy flow written by :meth:`Model.save` or by training (EMA weights).

    Files of sciflow 0.1 (``meta["toy"]``, no kind tag) load too.
    """
    ck = load_checkpoint(path)
    if ck.kind not in (KIND, "") or not ("config" in ck.meta or "toy" in ck.meta):
        raise CheckpointError(f"{str(path)!r} is not a toy-flow checkpoint (kind {ck.kind!r})")
    config = (Config.from_dict(ck.meta["config"]) if "config" in ck.meta
              else Config(**ck.meta["toy"]))
    net = build_network(config)
    load_checkpoint(path, net)
    return Model(net=net.to(resolve_device(device)).eval(), config=config)

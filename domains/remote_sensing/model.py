"""The remote-sensing velocity network, the trained bundle (:class:`Model`), save and load.

The network is a :class:`~sciflow.nn.spacetime.SpaceTimeTransformer` sized and wired for
optical bands, land-cover classes and an optional SAR auxiliary. x per date: C standardised
bands + K class channels. Per-frame conditions: C observed values, C interpolated values
(``prior``), given-clear flag, given-cloudy flag, and with SAR A backscatter channels + an
availability flag (also the auxiliary modality of ACor / STM). Frame features:
:data:`~.tasks.FRAME_FEATURES`. Times are in days, so the temporal embedding resolves periods
from about a week to decades.

It predicts the clean state x1 (``FlowMatcher(target="x1")``, :data:`MATCHER`); the solvers get
the velocity from the matcher's path (:func:`velocity_field`), never from a conversion written
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from sciflow.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from sciflow.devices import resolve_device
from sciflow.errors import InputError
from sciflow.matcher import FlowMatcher, VelocityModel
from sciflow.nn.spacetime import SpaceTimeCondition, SpaceTimeTransformer

from .calibration import Calibration
from .config import Config
from .data import Standardizer
from .tasks import FRAME_FEATURES

__all__ = ["KIND", "MATCHER", "RSNetwork", "build_network", "Model", "load", "velocity_field",
           "estimate_bytes", "read_meta", "RSModelSpec", "RSModel", "load_rs", "build_model"]

KIND = "remote_sensing"

#: linear path, Gaussian source, the network predicts x1 (the clean state)
MATCHER = FlowMatcher(target="x1")


class RSNetwork(nn.Module):
    """The transformer, predicting the clean state as a correction to the interpolation prior.

    With ``config.prior`` the reflectance part of the prediction is
    x1_hat = prior + f(x_t, t, cond), the prior being the linear interpolation of the given
    values carried in the condition channels; f starts at zero (adaLN-Zero and zero heads), so
    an untrained model reproduces linear interpolation and training learns what it misses.
    Used with ``FlowMatcher(target="x1")``. Shapes as :class:`SpaceTimeTransformer`.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.n_bands, self.prior = len(config.bands), config.prior
        self.net = SpaceTimeTransformer(
            config.channels,
            frame_channels=config.frame_channels,
            aux_channels=config.aux_channels,
            frame_features=FRAME_FEATURES,
            patch_size=config.patch_size,
            dim=config.dim,
            depth=config.depth,
            heads=config.heads,
            mlp_ratio=config.mlp_ratio,
            acor=config.acor,
            stm=config.stm,
            pixel_head=config.pixel_head,
            time_scale=1.0,
        )

    def forward(self, x: Tensor, t: Tensor | float, *, cond: SpaceTimeCondition | None = None,
                batch: Tensor | None = None) -> Tensor:
        out = self.net(x, t, cond=cond, batch=batch)
        if not self.prior:
            return out
        c = self.n_bands
        base = cond.frames[:, -x.shape[1]:, c:2 * c].to(out.dtype)
        return out + nn.functional.pad(base, (0, 0, 0, 0, 0, out.shape[2] - c))


def build_network(config: Config) -> RSNetwork:
    """The (untrained) network of ``config``; its initial weights come from torch's global
    generator (:func:`~.training.train` seeds it first)."""
    return RSNetwork(config)


@dataclass(frozen=True)
class Model:
    """A trained model: ``net`` (EMA weights, eval mode), its ``config``, the ``standardizer``
    that scales cube values for it (fitted on the training data), the ``calibration`` of its
    ensemble spread (:class:`~.calibration.Calibration`, None: not calibrated), and, when it
    was loaded from a file, that file (``checkpoint``) and its tensors' ``digest``."""

    net: RSNetwork
    config: Config
    standardizer: Standardizer
    calibration: Calibration | None = None
    checkpoint: str | None = None
    digest: str | None = None

    @property
    def spec(self) -> Config:
        """The config (the name of sciflow 0.1, where it was an ``RSModelSpec``)."""
        return self.config

    @property
    def device(self) -> Any:
        """Where the network's weights live."""
        return next(self.net.parameters()).device

    def meta(self) -> dict[str, Any]:
        """What a checkpoint stores besides the weights (JSON)."""
        meta = {"config": self.config.to_dict(), "standardizer": self.standardizer.to_dict()}
        if self.calibration is not None:
            meta["calibration"] = self.calibration.to_dict()
        return meta

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (kind ``"remote_sensing"``, digest checked on load)."""
        return save_checkpoint(path, self.net, kind=KIND, meta=self.meta())


def velocity_field(model: Model) -> VelocityModel:
    """The velocity field ``v(x, t, *, cond, batch)`` of a model, for the ODE solvers: the
    network's x1 prediction converted by the path (:meth:`FlowMatcher.velocity`)."""
    return MATCHER.velocity(model.net)


def read_meta(meta: dict[str, Any], path: str | Path) -> tuple[Config, Standardizer]:
    """The Config and Standardizer in a checkpoint's metadata (this version's or sciflow 0.1's);
    CheckpointError naming ``path`` when there are none."""
    if "config" in meta and "standardizer" in meta:
        config_dict, std = meta["config"], meta["standardizer"]
    elif "remote_sensing" in meta:  # sciflow 0.1: {"remote_sensing": {"spec", "standardizer"}}
        config_dict, std = meta["remote_sensing"]["spec"], meta["remote_sensing"]["standardizer"]
    else:
        raise CheckpointError(f"{str(path)!r} is not a remote-sensing checkpoint (its metadata "
                              "holds no config and standardiser); pass a model written by "
                              "`sciflow rs train`")
    try:
        return Config.from_dict(config_dict), Standardizer.from_dict(std)
    except (InputError, TypeError) as err:
        raise CheckpointError(f"{str(path)!r}: its remote-sensing config cannot be read "
                              f"({err})") from err


def load(path: str | Path, *, device: str = "cpu") -> Model:
    """Load a model written by :meth:`Model.save`, by :func:`~.training.train` (its
    ``model.pt`` or any ``checkpoints/step_*.pt``; EMA weights) or by sciflow 0.1 (untagged
    files whose metadata has a ``remote_sensing`` entry). The model remembers the file and its
    digest (written into the provenance of its outputs) and any calibration stored with it.

    Raises FileNotFoundError for a missing file and CheckpointError for a file of another kind,
    a damaged one, or one whose weights do not fit its config.
    """
    ck = load_checkpoint(path)
    if ck.kind not in (KIND, ""):
        raise CheckpointError(f"{str(path)!r} holds a {ck.kind} checkpoint, not a "
                              f"{KIND} one; pass a model written by `sciflow rs train`")
    config, standardizer = read_meta(ck.meta, path)
    net = build_network(config)
    load_weights(net, ck.state_dict, path)
    calibration = None
    if ck.meta.get("calibration") is not None:
        try:
            calibration = Calibration.from_dict(ck.meta["calibration"])
        except (InputError, KeyError, TypeError) as err:
            raise CheckpointError(f"{str(path)!r}: its calibration cannot be read ({err})") from err
    return Model(net.to(resolve_device(device)).eval(), config, standardizer,
                 calibration=calibration, checkpoint=str(path), digest=ck.digest)


def estimate_bytes(config: Config, *, tiles: int, training: bool) -> int:
    """A rough upper bound of the memory one network call on ``tiles`` windows of
    ``config.frames`` dates x ``config.tile``^2 px needs (activations and attention logits of
    every block when ``training``, two blocks' worth at inference), for
    :func:`sciflow.resources.check_memory`."""
    n = (config.tile // config.patch_size) ** 2  # patches per frame
    frames = config.frames
    block = tiles * frames * n * config.dim * 4 * (12 + 4 * config.mlp_ratio)
    block += tiles * config.heads * 4 * frames * n * (n + frames) * (2 if config.stm else 1)
    pixels = tiles * frames * config.tile ** 2 * 4 * (config.channels + config.frame_channels
                                                      + 2 * config.pixel_head)
    if training:
        return int(3 * (pixels + block * config.depth))
    return int(pixels + 2 * block)


# sciflow 0.1's names (RSModelSpec lived here)
RSModelSpec = Config
RSModel = Model
load_rs = load
build_model = build_network

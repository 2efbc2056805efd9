"""The remote-sensing velocity network: a :class:`~sciflow.nn.spacetime.SpaceTimeTransformer`
sized and wired for optical bands, land-cover classes and an optional SAR auxiliary.

x per date: C standardised bands + K class channels. Per-frame conditions: C observed values,
C interpolated values (``prior``), given-clear flag, given-cloudy flag, and with SAR A backscatter channels + an availability flag
(also the auxiliary modality of ACor / STM). Frame features: :data:`~.data.FRAME_FEATURES`.
Times are in days, so the temporal embedding resolves periods from about a week to decades.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn

from sciflow.datasets.sentinel import LANDCOVER_CLASSES, S2_BANDS, SAR_POLARIZATIONS
from sciflow.domains.remote_sensing.data import FRAME_FEATURES
from sciflow.nn.spacetime import SpaceTimeCondition, SpaceTimeTransformer

__all__ = ["RSModelSpec", "RSNetwork", "build_model"]


@dataclass(frozen=True, kw_only=True)
class RSModelSpec:
    """What a remote-sensing model is: its inputs, outputs and network size (kept in checkpoints).

    bands: optical band names, matched by name against cubes. classes: land-cover class names
    (() for a model without change detection). sar: SAR polarisations (() for optical only).
    frames: dates per temporal window; tile: pixels per spatial tile side (a multiple of
    patch_size). patch_size, dim, depth, heads, mlp_ratio, acor, stm, pixel_head: see
    :class:`~sciflow.nn.spacetime.SpaceTimeTransformer`.
    """

    bands: tuple[str, ...] = S2_BANDS
    classes: tuple[str, ...] = LANDCOVER_CLASSES
    sar: tuple[str, ...] = SAR_POLARIZATIONS
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

    def __post_init__(self) -> None:
        for name in ("bands", "classes", "sar"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"RSModelSpec.{name} must be a tuple of names, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if not self.bands:
            raise ValueError("RSModelSpec.bands must name at least one optical band")
        if len(set(self.bands)) != len(self.bands):
            raise ValueError(f"RSModelSpec.bands has duplicates: {self.bands}")
        if self.tile % self.patch_size or self.tile < self.patch_size:
            raise ValueError(f"RSModelSpec.tile={self.tile} must be a positive multiple of "
                             f"patch_size={self.patch_size}")
        if not isinstance(self.frames, int) or self.frames < 2:
            raise ValueError(f"RSModelSpec.frames must be an integer >= 2, got {self.frames!r}")

    @property
    def channels(self) -> int:
        """C + K: channels of the generated state per date."""
        return len(self.bands) + len(self.classes)

    @property
    def aux_channels(self) -> int:
        return len(self.sar) + 1 if self.sar else 0

    @property
    def frame_channels(self) -> int:
        return len(self.bands) * (2 if self.prior else 1) + 2 + self.aux_channels

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RSModelSpec:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class RSNetwork(nn.Module):
    """The transformer, predicting the clean state as a correction to the interpolation prior.

    With ``spec.prior`` the reflectance part of the prediction is
    x1_hat = prior + f(x_t, t, cond), the prior being the linear interpolation of the given
    values carried in the condition channels; f starts at zero (adaLN-Zero and zero heads), so
    an untrained model reproduces linear interpolation and training learns what it misses.
    Used with ``FlowMatcher(target="x1")``. Shapes as :class:`SpaceTimeTransformer`.
    """

    def __init__(self, spec: RSModelSpec) -> None:
        super().__init__()
        self.n_bands, self.prior = len(spec.bands), spec.prior
        self.net = SpaceTimeTransformer(
            spec.channels,
            frame_channels=spec.frame_channels,
            aux_channels=spec.aux_channels,
            frame_features=FRAME_FEATURES,
            patch_size=spec.patch_size,
            dim=spec.dim,
            depth=spec.depth,
            heads=spec.heads,
            mlp_ratio=spec.mlp_ratio,
            acor=spec.acor,
            stm=spec.stm,
            pixel_head=spec.pixel_head,
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


def build_model(spec: RSModelSpec) -> RSNetwork:
    """The network of ``spec`` (untrained)."""
    return RSNetwork(spec)

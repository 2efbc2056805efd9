"""FlowChef steering of the remote-sensing sampler towards observed pixels (optional).

FlowChef (Patel et al. 2024, "Steering rectified flow models in the vector field for controlled
image generation") pulls every Euler step towards a masked measurement y = M x of the state
(:func:`make_measurement`: the standardised clear reflectance of chosen pixels and dates), with no
backpropagation through the network. With v = v_theta(x_t, t) frozen,
x1_hat = x_t + (1 - t) v and L(x1_hat) = ||M (x1_hat - y)||^2,

    x1_hat <- x1_hat - eta grad L(x1_hat) = x1_hat - 2 eta M (x1_hat - y),
    x_{t+dt} = x1_hat - (1 - t - dt) v

(x_t moves with x1_hat, since d x1_hat / d x_t = I on the linear path). The residual on the
measured entries shrinks by the factor 1 - 2 eta per step, so eta = 1/2 is the exact projection
onto the measurement, and the last step (1 - t = dt) lands on it. It helps for pixels that are
observed but not given to the model's condition (a date withheld from it: benchmarks/inference.py,
section 5). On pixels that are in the condition it only enforces while sampling the consistency
that pasting them back enforces afterwards. The steps themselves are
:func:`sciflow.steering.flowchef`'s; this module builds the measurement and checks the step size.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow.errors import InputError
from sciflow.steering import SteeringLoss, masked_measurement_loss

from .data import CubeInputError, SeriesBatch
from .model import Model

__all__ = ["Measurement", "make_measurement", "check_steer", "pixel_mask"]


def check_steer(steer: float | None) -> float | None:
    """Validate a FlowChef step size: None (no steering) or a finite eta in (0, 1).

    Each step multiplies the residual M (x1_hat - y) by 1 - 2 eta: eta in (0, 1) shrinks it,
    eta = 1/2 removes it, eta >= 1 no longer shrinks it. Returns ``float(steer)`` or None.
    """
    if steer is None:
        return None
    if isinstance(steer, bool) or not isinstance(steer, numbers.Real):
        raise TypeError(f"steer (the FlowChef step size eta) must be a number or None, got "
                        f"{type(steer).__name__} {steer!r}")
    eta = float(steer)
    if not (math.isfinite(eta) and 0.0 < eta < 1.0):
        raise InputError(f"steer (the FlowChef step size eta) must be a finite number in (0, 1), "
                         f"got {steer!r}: each step scales the residual on the measured pixels "
                         "by 1 - 2 eta, so 0.5 matches them exactly and eta >= 1 diverges or "
                         "oscillates; use None for the plain ODE")
    return eta


@dataclass(frozen=True)
class Measurement:
    """A masked measurement y = M x of the generated state, the target of steering.

    y (B, T, C + K, H, W): the standardised clear reflectance on the measured entries, 0 elsewhere.
    mask (B, T, C + K, H, W) float: 1 on the C band channels of the measured pixels, 0 elsewhere
    (class channels are never measured).
    """

    y: Tensor
    mask: Tensor

    def loss(self) -> SteeringLoss:
        """L(x1_hat) = ||M (x1_hat - y)||^2 per series
        (:func:`sciflow.steering.masked_measurement_loss`)."""
        return masked_measurement_loss(self.y, self.mask)

    def to(self, device: torch.device | str) -> Measurement:
        return Measurement(self.y.to(device), self.mask.to(device))


def pixel_mask(name: str, mask: Tensor, series: SeriesBatch) -> Tensor:
    """Check a (B, T, H, W) bool pixel mask against a series; returns it on the series' device."""
    b, t, _, h, w = series.shape
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (B, T, H, W), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if tuple(mask.shape) != (b, t, h, w):
        raise InputError(f"{name} has shape {tuple(mask.shape)}, expected (B, T, H, W) = "
                         f"{(b, t, h, w)} like the series")
    return mask.to(series.reflectance.device)


def make_measurement(model: Model, series: SeriesBatch, observed: Tensor | None = None
                     ) -> Measurement:
    """The masked measurement of a batch of series: which pixels of which dates are observed.

    ``observed`` (B, T, H, W) bool, a subset of ``series.clear`` (default: every clear pixel);
    y holds those pixels' reflectance standardised with ``model.standardizer``, in the layout of
    the state the model generates (the C bands, then K class channels that are never measured).
    Shapes: series (B, T, C, H, W) -> Measurement.y, .mask (B, T, C + K, H, W).
    """
    b, t, c, h, w = series.shape
    bands = model.config.bands
    if c != len(bands):
        raise CubeInputError(f"the series has {c} bands, the model was trained on {len(bands)} "
                             f"({list(bands)})")
    observed = series.clear if observed is None else pixel_mask("observed", observed, series)
    cloudy = observed & ~series.clear
    if bool(cloudy.any()):
        raise InputError(f"observed marks {int(cloudy.sum())} pixels that are not clear "
                         "observations of the series (cloudy or not acquired); a measurement "
                         "can only hold clear reflectance")
    m = observed[:, :, None].to(series.reflectance.dtype)
    shape = (b, t, model.config.channels, h, w)
    mask = series.reflectance.new_zeros(shape)
    y = series.reflectance.new_zeros(shape)
    mask[:, :, :c] = m
    y[:, :, :c] = model.standardizer.bands(series.reflectance) * m
    return Measurement(y=y, mask=mask)

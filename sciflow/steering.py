"""Gradient-free steering of a trained flow (FlowChef): guidance without backpropagating the network.

FlowChef (Patel et al. 2024, "Steering rectified flow models in the vector field for controlled
image generation") steers the sampling trajectory with the gradient of a loss on the data estimate
while treating the velocity as a constant:

    v = v_theta(x_t, t)                                   (no graph through the network)
    x1_hat(x) = path.velocity_to_x1(v, x, t)             (linear path: x + (1 - t) v)
    x_t <- x_t - eta_t grad_x L(x1_hat(x_t))             (v frozen; ``inner_steps`` times)
    x_{t+dt} = x_t + dt v                                 (Euler, with the same v)

For the linear path d x1_hat / d x = I with v frozen, so the update is eta grad L(x1_hat) itself:
no vector-Jacobian product with the network, and the network's parameters never see a gradient.
The sampler is an advance function on the one time loop of :mod:`sciflow.solvers`
(:func:`~sciflow.solvers.time_loop` over :func:`~sciflow.solvers.uniform_grid`), so hooks such as
a precision emulation plug into it as they do into :func:`~sciflow.solvers.odeint`.

Losses (each returns one value per sample, or per graph with ``batch``):
:func:`masked_measurement_loss` (inpainting, cloud removal: observed entries y under a mask),
:func:`linear_measurement_loss` (y = A x for a matrix or operator A), :func:`classifier_loss`
(-log p(class | x) of any differentiable classifier) and any callable ``loss(x1_hat, *, cond,
batch)`` (property guidance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.paths import AffinePath, ProbPath
from sciflow.solvers import Interval, StepHook, time_loop, uniform_grid

__all__ = [
    "SteeringLoss",
    "SteeringResult",
    "flowchef",
    "masked_measurement_loss",
    "linear_measurement_loss",
    "classifier_loss",
]


class SteeringLoss(Protocol):
    """L(x1_hat, *, cond, batch) -> (B,) per sample (graph) or a scalar; lower is better."""

    def __call__(self, x1_hat: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor: ...


@dataclass(frozen=True)
class SteeringResult:
    """x: (N, *) steered samples; nfe: velocity evaluations per sample (= steps);
    loss_history: (steps,) mean loss of x1_hat at each step before its update."""

    x: Tensor
    nfe: int
    loss_history: tuple[float, ...]


def _per_sample(err: Tensor, batch: Tensor | None) -> Tensor:
    rows = err.reshape(err.shape[0], -1).sum(1)
    return rows if batch is None else graphs.graph_sum(rows, batch)


def masked_measurement_loss(y: Tensor, mask: Tensor) -> SteeringLoss:
    """L = sum over observed entries of (x1_hat - y)^2: ||M (x1_hat - y)||^2 per sample.

    Shapes: y (N, *) and mask (N, *) or broadcastable to it (1 = observed, 0 = missing).
    """
    if not isinstance(y, Tensor) or not isinstance(mask, Tensor):
        raise TypeError("y and mask must be tensors")
    try:
        torch.broadcast_shapes(mask.shape, y.shape)
    except RuntimeError as err:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast against y of "
                         f"shape {tuple(y.shape)}") from err
    m = mask.to(y.dtype)

    def loss(x1_hat: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
        if x1_hat.shape != y.shape:
            raise ValueError(f"x1_hat has shape {tuple(x1_hat.shape)} but the measurement y has "
                             f"{tuple(y.shape)}")
        return _per_sample(m * (x1_hat - y) ** 2, batch)

    return loss


def linear_measurement_loss(operator: Tensor | Callable[[Tensor], Tensor], y: Tensor) -> SteeringLoss:
    """L = ||A x1_hat - y||^2 per sample, A a matrix (M, D) on flattened samples or a callable.

    Shapes: y (N, M); x1_hat (N, *) with D = prod(*) for a matrix A.
    """
    if isinstance(operator, Tensor):
        if operator.dim() != 2:
            raise ValueError(f"operator must be a (M, D) matrix, got shape {tuple(operator.shape)}")
        mat = operator

        def apply(x: Tensor) -> Tensor:
            flat = x.reshape(x.shape[0], -1)
            if flat.shape[1] != mat.shape[1]:
                raise ValueError(f"operator expects D={mat.shape[1]} values per sample, x1_hat has "
                                 f"{flat.shape[1]}")
            return flat @ mat.T.to(flat.dtype)
    elif callable(operator):
        apply = operator
    else:
        raise TypeError(f"operator must be a matrix or a callable, got {type(operator).__name__}")

    def loss(x1_hat: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
        return _per_sample((apply(x1_hat) - y) ** 2, None)

    return loss


def classifier_loss(classifier: Callable[[Tensor], Tensor], target: Tensor | int) -> SteeringLoss:
    """L = -log softmax(classifier(x1_hat))[target] per sample (classifier returns logits (N, C))."""

    def loss(x1_hat: Tensor, *, cond: Any = None, batch: Tensor | None = None) -> Tensor:
        logits = classifier(x1_hat)
        labels = torch.as_tensor(target, device=logits.device).expand(logits.shape[0])
        return torch.nn.functional.cross_entropy(logits, labels.long(), reduction="none")

    return loss


class _FlowChefAdvance:
    """One FlowChef step per interval (module docstring); keeps the loss history."""

    def __init__(self, model: Callable[..., Tensor], loss: SteeringLoss,
                 eta: Callable[[float], float], inner_steps: int, stop_at: float, path: ProbPath,
                 cond: Any, batch: Tensor | None, n: int) -> None:
        self.model, self.loss, self.eta, self.inner_steps = model, loss, eta, inner_steps
        self.stop_at, self.path, self.cond, self.batch, self.n = stop_at, path, cond, batch, n
        self.history: list[float] = []

    def __call__(self, x: Tensor, s: Interval) -> Tensor:
        t, cond, batch = s.t, self.cond, self.batch
        tt = torch.full((self.n,), t, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            v = self.model(x, tt, cond=cond, batch=batch)
        t_rows = graphs.expand_per_graph(tt, batch)
        lr = float(self.eta(t))
        for k in range(self.inner_steps if t < self.stop_at else 0):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                values = self.loss(self.path.velocity_to_x1(v, xg, t_rows), cond=cond, batch=batch)
                if k == 0:
                    self.history.append(float(values.detach().mean()))
                (grad,) = torch.autograd.grad(values.sum(), xg)
            x = (x - lr * grad).detach()
        if len(self.history) < s.index + 1:
            with torch.no_grad():
                self.history.append(float(self.loss(self.path.velocity_to_x1(v, x, t_rows),
                                                    cond=cond, batch=batch).mean()))
        return x + s.dt * v


def flowchef(
    model: Callable[..., Tensor],
    x0: Tensor,
    *,
    loss: SteeringLoss,
    steps: int,
    step_size: float | Callable[[float], float] = 1.0,
    inner_steps: int = 1,
    stop_at: float = 1.0,
    path: ProbPath | None = None,
    cond: Any = None,
    batch: Tensor | None = None,
    hooks: Sequence[StepHook] = (),
) -> SteeringResult:
    """Sample from t = 0 to 1 with FlowChef steering (equations in the module docstring).

    Parameters
    ----------
    step_size:
        eta_t, a constant or a function of t.
    inner_steps:
        Gradient updates of x_t per time step (each reuses the frozen v: no extra NFE).
    stop_at:
        Steer only while t < ``stop_at`` (late steps then refine freely).
    path:
        The path the model was trained on, for x1_hat; the linear path by default.
    hooks:
        Run after every step, as in :func:`sciflow.solvers.odeint`.

    Notes
    -----
    The network is called under ``torch.no_grad`` once per step; gradients flow only through the
    loss and the (affine) conversion to x1_hat. Shapes: x0 (N, *) -> SteeringResult.x (N, *).
    """
    if not isinstance(x0, Tensor) or not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got {type(x0).__name__}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not isinstance(inner_steps, int) or inner_steps < 0:
        raise ValueError(f"inner_steps must be an integer >= 0, got {inner_steps!r}")
    eta = step_size if callable(step_size) else (lambda t, c=float(step_size): c)
    n = graphs.num_graphs(batch, x0.shape[0]) if batch is not None else x0.shape[0]
    advance = _FlowChefAdvance(model, loss, eta, inner_steps, stop_at,
                               path if path is not None else AffinePath(), cond, batch, n)
    x = time_loop(advance, x0.detach(), uniform_grid(0.0, 1.0, steps), hooks=hooks)
    return SteeringResult(x=x, nfe=steps, loss_history=tuple(advance.history))

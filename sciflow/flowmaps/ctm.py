"""Training a flow map with the Consistency Trajectory Model objective (Kim et al., ICLR 2024).

CTM teaches one network every jump of the teacher's probability-flow ODE. In sciflow time (0
source, 1 data), for a batch of data x1 and source draws:

    a ~ time sampler,  c = a + (1 - a) r1,  b = a + min(c - a, span) r2      (a <= b <= c)
    x_a      = alpha_a x1 + sigma_a x0                       (a point on the path, from data)
    x_b      = ODE_teacher(x_a, a -> b)                      (teacher targets; no gradient)
    target   = sg X(x_b, b, c)                               (the student's own jump from there)
    L_ctm    = E || X(x_a, a, c) - target ||^2               (soft consistency between jumps)
    L_fm     = E || F(x_t, t, t) - u_t ||^2                  (flow matching on the diagonal)
    L        = L_ctm + fm_weight L_fm

b = c makes the target the teacher's own solution (X(x_c, c, c) = x_c exactly), b = a the
student's self-consistency; in between the teacher covers part of the jump ("soft" consistency
matching). ``span`` bounds the stretch the teacher integrates, so a few solver steps stay
accurate. The flow-matching term keeps the t -> s limit of the map a velocity of the data
(:meth:`~sciflow.flowmaps.FlowMap.velocity`). With ``final_jump`` both sides are first carried to
t = 1 by the student with its parameters frozen (CTM measures its distance after a final jump to
the data; gradients still reach the first jump through the input).

CTM's optional adversarial term and its feature-space (LPIPS) distance are image-specific and
left out; the distance here is the mean squared error per coordinate, averaged per graph first
for ragged batches.

The teacher's ODE between per-sample times is :func:`solve_between`: the interval of each row
is rescaled to [0, 1], so any solver of :data:`sciflow.solvers.SOLVERS` integrates it on its
ordinary grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.flowmaps.map import FlowMap
from sciflow.flowmaps.training import FlowBatch, mean_squared
from sciflow.matcher import FlowMatcher
from sciflow.solvers import SOLVERS

__all__ = ["solve_between", "CTMLoss"]


def _rows(value: Tensor, like: Tensor, batch: Tensor | None) -> Tensor:
    """A per-sample (per-graph) value (B,) broadcast against ``like`` (N, *)."""
    return graphs.expand_per_graph(value, batch).reshape(-1, *([1] * (like.dim() - 1)))


@torch.no_grad()
def solve_between(
    model: Callable[..., Tensor],
    x: Tensor,
    t_from: Tensor,
    t_to: Tensor,
    *,
    method: str = "heun",
    steps: int = 1,
    cond: Any = None,
    batch: Tensor | None = None,
) -> Tensor:
    """Integrate dx/dt = model(x, t) from ``t_from`` to ``t_to``, a different interval per sample.

    With tau in [0, 1], y(tau) = x(t_from + (t_to - t_from) tau) solves
    dy/dtau = (t_to - t_from) model(y, t_from + (t_to - t_from) tau): one ODE on a common grid,
    solved by ``SOLVERS[method]`` with ``steps`` steps (each row takes ``steps`` steps of its
    own length). Fixed-step methods only (an adaptive step size would be shared by all rows).

    Shapes: x (N, *); t_from, t_to (B,) per sample (per graph with ``batch``) -> (N, *).
    """
    kind = SOLVERS.get(method)
    if kind is None or kind.adaptive:
        fixed = sorted(k for k, v in SOLVERS.items() if not v.adaptive)
        raise ValueError(f"method must be a fixed-step solver, one of {fixed}; got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    span = t_to - t_from
    scale = _rows(span, x, batch)

    def f(y: Tensor, tau: float) -> Tensor:
        return scale * model(y, t_from + tau * span, cond=cond, batch=batch)

    out, _ = kind().integrate(f, x, 0.0, 1.0, steps=steps)
    return out


def _frozen(model: FlowMap) -> Callable[..., Tensor]:
    """The flow map with its parameters detached: gradients reach its inputs only."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def jump(x: Tensor, s: Tensor, t: Tensor, **kw: Any) -> Tensor:
        return torch.func.functional_call(model, params, (x, s, t), kw)

    return jump


@dataclass(frozen=True, kw_only=True)
class CTMLoss:
    """The CTM objective as a Trainer loss: ``loss(flow_map, FlowBatch(x1, cond, batch))``.

    Parameters
    ----------
    teacher:
        The trained velocity field (core contract), frozen; its ODE gives the targets.
    matcher:
        Source, coupling, path and time sampler of the data points x_a and of the flow-matching
        term (the teacher's own matcher, usually).
    teacher_method, teacher_steps:
        The fixed-step solver of the teacher's stretch a -> b (:func:`solve_between`);
        2 * teacher_steps teacher evaluations per sample with Heun.
    span:
        The longest stretch b - a the teacher integrates.
    fm_weight:
        Weight of the flow-matching term (0 drops it). That term carries the irreducible variance
        of u_t given x_t, far above the consistency term: on the 2-D toy (W2 at 1 jump after
        1,000 updates) weight 1 gave 1.04, 0.1 gave 0.79, 0.01 gave 0.61; the defaults
        (span 0.5, 2 Heun steps, 0.01) are the best of the settings tried there.
    final_jump:
        Compare both sides after a frozen jump to t = 1 (CTM's distance in data space).

    Notes
    -----
    Returns the loss and the two terms as extras (``ctm``, ``fm``) for the Trainer's log.
    """

    teacher: Callable[..., Tensor]
    matcher: FlowMatcher = field(default_factory=FlowMatcher)
    teacher_method: str = "heun"
    teacher_steps: int = 2
    span: float = 0.5
    fm_weight: float = 0.01
    final_jump: bool = False

    def __post_init__(self) -> None:
        if not callable(self.teacher):
            raise TypeError(f"teacher must be a velocity field, got {type(self.teacher).__name__}")
        if not 0.0 < self.span <= 1.0:
            raise ValueError(f"span must lie in (0, 1], got {self.span}")
        if self.fm_weight < 0:
            raise ValueError(f"fm_weight must be >= 0, got {self.fm_weight}")
        kind = SOLVERS.get(self.teacher_method)
        if kind is None or kind.adaptive:
            raise ValueError(f"teacher_method must be a fixed-step solver, got {self.teacher_method!r}")

    def __call__(self, model: FlowMap, data: FlowBatch) -> tuple[Tensor, dict[str, float]]:
        x1, cond, batch = data
        sample = self.matcher.training_sample(x1, cond=cond, batch=batch)
        x_a, a, cond = sample.path.x_t, sample.t_model, sample.cond
        r1, r2 = torch.rand(2, a.shape[0], dtype=a.dtype, device=a.device)
        c = a + (1 - a) * r1
        b = a + torch.minimum(c - a, torch.full_like(a, self.span)) * r2
        x_b = solve_between(self.teacher, x_a, a, b, method=self.teacher_method,
                            steps=self.teacher_steps, cond=cond, batch=batch)
        with torch.no_grad():
            target = model(x_b, b, c, cond=cond, batch=batch)
        pred = model(x_a, a, c, cond=cond, batch=batch)
        if self.final_jump:
            end = torch.ones_like(c)
            frozen = _frozen(model)
            pred = frozen(pred, c, end, cond=cond, batch=batch)
            with torch.no_grad():
                target = frozen(target, c, end, cond=cond, batch=batch)
        ctm = mean_squared(pred - target, batch)
        loss = ctm
        extras = {"ctm": float(ctm.detach())}
        if self.fm_weight > 0:
            fm = self.matcher.loss(model.velocity, x1, cond=data.cond, batch=batch)
            loss = loss + self.fm_weight * fm
            extras["fm"] = float(fm.detach())
        return loss, extras

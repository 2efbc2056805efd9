"""Data-free flow-map distillation: learn a teacher's flow from source draws alone.

After Tong, Ma, Xie & Jaakkola 2025 ("Flow map distillation without data"): the teacher follows its
source distribution by construction, so drawing the training states from the source, and from
the student's own jumps out of it, never shows the student a state the teacher was not built for
(no teacher-data mismatch), and needs no data at all.

For source draws z (with their conditions), times 0 <= s <= t <= 1 (s = 0 for a fraction
``start_at_source`` of the samples):

    x_s   = sg X(z, 0, s)                                 (the student's own state at s; z at s = 0)
    L_path = E || d/dt X(x_s, s, t) - v_T(sg X(x_s, s, t), t) ||^2
    L_vel  = E || F(x_s, s, s) - v_T(x_s, s) ||^2
    L      = L_path + velocity_weight L_vel

L_path is the Lagrangian condition of the flow map (Boffi, Albergo & Vanden-Eijnden 2024): the
student's generating velocity along its jump must be the teacher's velocity *where the student
is*. That is what makes the student learn the teacher's sampling path and correct its own
compounding error along it: where its trajectory has drifted from the teacher's, the target is
the teacher's velocity at the drifted state (the way back onto the teacher's flow), not a
teacher trajectory it has already left; and because the start states x_s are the student's own,
the map is trained exactly where its multi-step sampling takes it. L_vel is the same condition at
t = s (the map's velocity, the t -> s limit). d/dt X comes from forward-mode AD
(:meth:`~sciflow.flowmaps.FlowMap.jump_and_rate`).

Cost per step: 2 student passes without gradient and one forward-mode pass with it, 2 teacher
evaluations per sample; no teacher trajectories are integrated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.flowmaps.map import FlowMap
from sciflow.flowmaps.training import FlowBatch, mean_squared

__all__ = ["DataFreeLoss"]


@dataclass(frozen=True, kw_only=True)
class DataFreeLoss:
    """The data-free objective as a Trainer loss: ``loss(flow_map, FlowBatch(x0, cond, batch))``
    with x0 drawn from the teacher's source (equations in the module docstring).

    Parameters
    ----------
    teacher:
        The trained velocity field (core contract), frozen.
    start_at_source:
        Fraction of samples whose jump starts at s = 0 from the source draw itself (the one-step
        jump); the others start at s ~ U[0, 1) from the student's own state there.
    velocity_weight:
        Weight of the diagonal term F(x, s, s) = v_T(x, s) (0 drops it).
    scale:
        None, or a function of the time, (B,) -> (B,), that multiplies every residual: the path
        residual of a jump ending at t by scale(t), the diagonal one by scale(s). For a teacher
        that predicts the data, ``lambda t: 1 - t`` measures the residuals in data units:
        v_T = (x1hat - x) / (1 - t) grows as t -> 1, and with t ~ U[s, 1] the unscaled squared
        residual has unbounded variance (its gradient is then a few samples near t = 1).

    Notes
    -----
    Returns the loss and its terms as extras (``path``, ``velocity``).
    """

    teacher: Callable[..., Tensor]
    start_at_source: float = 0.5
    velocity_weight: float = 1.0
    scale: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if not callable(self.teacher):
            raise TypeError(f"teacher must be a velocity field, got {type(self.teacher).__name__}")
        if not 0.0 <= self.start_at_source <= 1.0:
            raise ValueError(f"start_at_source is a fraction in [0, 1], got {self.start_at_source}")
        if self.velocity_weight < 0:
            raise ValueError(f"velocity_weight must be >= 0, got {self.velocity_weight}")
        if self.scale is not None and not callable(self.scale):
            raise TypeError(f"scale must be None or a function of the time, got "
                            f"{type(self.scale).__name__}")

    def _scaled(self, err: Tensor, time: Tensor, batch: Tensor | None) -> Tensor:
        if self.scale is None:
            return err
        w = graphs.expand_per_graph(self.scale(time).to(err.dtype), batch)
        return err * w.reshape(-1, *([1] * (err.dim() - 1)))

    def __call__(self, model: FlowMap, data: FlowBatch) -> tuple[Tensor, dict[str, float]]:
        z, cond, batch = data
        n = graphs.num_graphs(batch, z.shape[0]) if batch is not None else z.shape[0]
        u = torch.rand(3, n, dtype=z.dtype, device=z.device)
        s = torch.where(u[0] < self.start_at_source, torch.zeros_like(u[1]), u[1])
        t = s + (1 - s) * u[2]
        with torch.no_grad():
            x_s = model(z, torch.zeros_like(s), s, cond=cond, batch=batch)
        x_t, rate = model.jump_and_rate(x_s, s, t, cond=cond, batch=batch)
        with torch.no_grad():
            v_t = self.teacher(x_t.detach(), t, cond=cond, batch=batch)
        path = mean_squared(self._scaled(rate - v_t, t, batch), batch)
        loss, extras = path, {"path": float(path.detach())}
        if self.velocity_weight > 0:
            with torch.no_grad():
                v_s = self.teacher(x_s, s, cond=cond, batch=batch)
            vel = mean_squared(self._scaled(model.velocity(x_s, s, cond=cond, batch=batch) - v_s,
                                              s, batch), batch)
            loss = loss + self.velocity_weight * vel
            extras["velocity"] = float(vel.detach())
        return loss, extras

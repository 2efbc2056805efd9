"""FlowChef steering: lowers the measurement error, never differentiates the network."""

from __future__ import annotations

import pytest
import torch
from gaussian_flow import GaussianTargetVelocity, rotated_cov

from sciflow.nn.mlp import MLPVelocity
from sciflow.paths import AffinePath, CosineScheduler
from sciflow.reparam import to_vp
from sciflow.solvers import odeint
from sciflow.steering import (
    classifier_loss,
    flowchef,
    linear_measurement_loss,
    masked_measurement_loss,
)


class NoGradGuard(torch.nn.Module):
    """Fails if the network is ever called with autograd recording, i.e. if anything could backprop."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x, t, *, cond=None, batch=None):
        assert not torch.is_grad_enabled(), "the network was called with autograd on"
        return self.inner(x, t, cond=cond, batch=batch)


def _gaussian(d=4):
    mean = torch.linspace(-1, 1, d, dtype=torch.float64)
    return GaussianTargetVelocity(mean, rotated_cov(d))


def test_linear_inverse_problem_error_drops_against_unguided():
    d, m, n = 4, 2, 128
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, d, generator=g, dtype=torch.float64)
    model = _gaussian(d)
    truth = odeint(model, torch.randn(n, d, generator=g, dtype=torch.float64), method="rk4", steps=20).x
    y = truth @ a.T
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    loss = linear_measurement_loss(a, y)
    plain = odeint(model, x0, method="euler", steps=20).x
    steered = flowchef(NoGradGuard(model), x0, loss=loss, steps=20, step_size=0.05)
    err_plain, err_steered = loss(plain).mean(), loss(steered.x).mean()
    assert err_steered < 0.2 * err_plain
    assert steered.nfe == 20 and len(steered.loss_history) == 20


def test_no_gradient_reaches_the_network_parameters():
    torch.manual_seed(0)
    net = MLPVelocity(dim=3, hidden=16, layers=2)
    assert all(p.requires_grad for p in net.parameters())
    x0 = torch.randn(32, 3)
    y = torch.zeros(32, 3)
    mask = torch.tensor([1.0, 0.0, 1.0])
    res = flowchef(NoGradGuard(net), x0, loss=masked_measurement_loss(y, mask.expand(32, 3)),
                   steps=8, step_size=0.5)
    assert all(p.grad is None for p in net.parameters())
    assert not res.x.requires_grad
    with torch.no_grad():
        plain = odeint(net, x0, method="euler", steps=8).x
    assert (res.x[:, [0, 2]] ** 2).mean() < (plain[:, [0, 2]] ** 2).mean()


def test_masked_loss_ignores_unobserved_entries_and_graph_batches():
    batch = torch.tensor([0, 0, 1, 1, 1])
    y = torch.ones(5, 3)
    mask = torch.zeros(5, 3)
    mask[:, 0] = 1
    loss = masked_measurement_loss(y, mask)
    x = torch.ones(5, 3)
    x[:, 1:] = 7.0  # unobserved: free
    assert loss(x, batch=batch).tolist() == [0.0, 0.0]
    x[2, 0] = 3.0
    assert loss(x, batch=batch).tolist() == [0.0, 4.0]


def test_general_schedule_uses_the_path_conversion():
    # a VP view of the same model: steering with its path still lowers the error
    d, n = 3, 64
    g = torch.Generator().manual_seed(1)
    model = to_vp(_gaussian(d))
    y = torch.full((n, 1), 2.0, dtype=torch.float64)
    loss = linear_measurement_loss(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), y)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    plain = odeint(model, x0, method="euler", steps=16).x
    res = flowchef(model, x0, loss=loss, steps=16, step_size=0.2, path=AffinePath(CosineScheduler()))
    assert loss(res.x).mean() < 0.2 * loss(plain).mean()


def test_classifier_guidance_moves_mass_to_the_class():
    model = _gaussian(2)
    x0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def logits(x):  # class 1 iff x_0 > 1
        return torch.stack([torch.zeros_like(x[:, 0]), 4.0 * (x[:, 0] - 1.0)], dim=1)

    plain = odeint(model, x0, method="euler", steps=10).x
    res = flowchef(model, x0, loss=classifier_loss(logits, 1), steps=10, step_size=0.3)
    assert (res.x[:, 0] > 1).float().mean() > (plain[:, 0] > 1).float().mean() + 0.2


def test_bad_inputs():
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_measurement_loss(torch.zeros(4, 3), torch.ones(4, 2))
    with pytest.raises(ValueError, match="expects D=3"):
        linear_measurement_loss(torch.zeros(2, 3), torch.zeros(4, 2))(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="steps"):
        flowchef(_gaussian(2), torch.zeros(2, 2, dtype=torch.float64),
                 loss=masked_measurement_loss(torch.zeros(2, 2), torch.ones(2, 2)), steps=0)


def test_flowchef_runs_on_the_time_loop_with_hooks():
    # a hook sees every step (index, time) and may change the state, as in odeint
    model = _gaussian(2)
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    loss = masked_measurement_loss(torch.zeros(16, 2, dtype=torch.float64), torch.ones(16, 2))
    seen = []
    res = flowchef(model, x0, loss=loss, steps=4, step_size=0.1,
                   hooks=[lambda x, s: seen.append((s.index, s.t, s.last)) or x])
    assert seen == [(0, 0.0, False), (1, 0.25, False), (2, 0.5, False), (3, 0.75, True)]
    rounded = flowchef(model, x0, loss=loss, steps=4, step_size=0.1,
                       hooks=[lambda x, s: torch.round(x * 8) / 8])
    assert torch.equal(rounded.x, torch.round(rounded.x * 8) / 8) and not torch.equal(rounded.x, res.x)

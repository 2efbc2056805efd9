"""Flow maps: identity at equal times, warm starts, equivariance, sampling, and both objectives
learning the exact flow map of a Gaussian target (known in closed form)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from sciflow.flowmaps import (
    CTMLoss,
    DataFreeLoss,
    FlowBatch,
    FlowMap,
    GraphFlowMapNet,
    TwoTimeMLP,
    fit_flow_map,
    sample_flow_map,
    solve_between,
    warm_start,
)
from sciflow.matcher import FlowMatcher
from sciflow.nn import EGNN, GraphContext, GraphVelocityField, MLPVelocity
from sciflow.solvers import odeint
from sciflow.testing import assert_equivariant, default_dtype, random_orthogonal
from sciflow.train import TrainConfig


class DiagonalGaussianFlow(torch.nn.Module):
    """The exact velocity of the linear path from N(0, I) to N(m, diag(s^2)), coordinate-wise:
    v = m + (t s^2 - (1 - t)) (x - t m) / D_t^2, D_t^2 = t^2 s^2 + (1 - t)^2, whose flow map is
    X(x, a, b) = b m + (D_b / D_a) (x - a m)."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("var", std**2)

    def _d(self, t: Tensor) -> Tensor:
        return torch.sqrt(t**2 * self.var + (1 - t) ** 2)

    def forward(self, x, t, *, cond=None, batch=None):
        t = t.reshape(-1, 1).to(x.dtype)
        return self.mean + (t * self.var - (1 - t)) * (x - t * self.mean) / self._d(t) ** 2

    def exact_map(self, x: Tensor, a: float, b: float) -> Tensor:
        ta, tb = torch.tensor(a, dtype=x.dtype), torch.tensor(b, dtype=x.dtype)
        return tb * self.mean + self._d(tb) / self._d(ta) * (x - ta * self.mean)


def molecules(dtype=torch.float64) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch.from_data_list([Data(pos=torch.randn(n, 3, generator=g, dtype=dtype),
                                      z=torch.randint(1, 9, (n,), generator=g)) for n in (3, 5, 4)])


def graph_flow_map(**kw) -> FlowMap:
    return FlowMap(GraphFlowMapNet(EGNN(hidden=16, layers=2, graph_scalar_dim=8, **kw),
                                   target_dim=8))


def test_the_map_is_the_identity_at_equal_times_dense_and_graphs():
    fmap = FlowMap(TwoTimeMLP(dim=3, hidden=16, layers=2))
    x, s = torch.randn(7, 3), torch.rand(7)
    assert torch.equal(fmap(x, s, s), x)
    mol = molecules(torch.float32)
    gmap = graph_flow_map()
    st = torch.rand(3)
    ctx = GraphContext(z=mol.z)
    assert torch.equal(gmap(mol.pos, st, st, cond=ctx, batch=mol.batch), mol.pos)


def test_warm_start_makes_the_student_one_euler_step_of_its_teacher():
    torch.manual_seed(0)
    teacher = MLPVelocity(dim=2, hidden=32, layers=2)
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=32, layers=2))
    report = warm_start(fmap.net, teacher)
    assert report.widened == ("net.0.weight",) and not report.missing
    x, s, t = torch.randn(9, 2), torch.rand(9) * 0.5, 0.5 + torch.rand(9) * 0.5
    with torch.no_grad():
        expected = x + (t - s)[:, None] * teacher(x, s)
        assert torch.allclose(fmap(x, s, t), expected, atol=1e-6)
        assert torch.allclose(fmap.velocity(x, s), teacher(x, s), atol=1e-6)


def test_a_data_predicting_teacher_warm_starts_a_map_that_converts_its_output():
    torch.manual_seed(0)
    matcher = FlowMatcher(target="x1")
    net = MLPVelocity(dim=2, hidden=16, layers=2)
    teacher = matcher.velocity(net)  # x1 predictions turned into the velocity of the path
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=16, layers=2), matcher=matcher)
    warm_start(fmap.net, net)
    x, s, t = torch.randn(6, 2), torch.rand(6) * 0.5, torch.ones(6)
    with torch.no_grad():
        assert torch.equal(fmap(x, s, s), x)
        assert torch.allclose(fmap(x, s, t), x + (t - s)[:, None] * teacher(x, s), atol=1e-5)


def test_warm_start_of_a_graph_flow_map_from_a_graph_velocity_field():
    torch.manual_seed(0)
    mol = molecules(torch.float32)
    teacher = GraphVelocityField(EGNN(hidden=16, layers=2))
    fmap = graph_flow_map()
    report = warm_start(fmap.net, teacher)
    assert "net.encoder.0.weight" in report.widened
    ctx = GraphContext(z=mol.z)
    s, t = torch.full((3,), 0.2), torch.full((3,), 0.7)
    with torch.no_grad():
        expected = mol.pos + 0.5 * teacher(mol.pos, s, cond=ctx, batch=mol.batch)
        assert torch.allclose(fmap(mol.pos, s, t, cond=ctx, batch=mol.batch), expected, atol=1e-6)


def test_warm_start_rejects_networks_of_other_sizes():
    with pytest.raises(ValueError, match="only extra input columns"):
        warm_start(TwoTimeMLP(dim=2, hidden=32, layers=2), MLPVelocity(dim=2, hidden=16, layers=2))
    with pytest.raises(ValueError, match="no entry of the teacher"):
        warm_start(TwoTimeMLP(dim=2, hidden=8, layers=1), torch.nn.Linear(2, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_graph_flow_map_is_equivariant(dtype):
    with default_dtype(dtype):
        torch.manual_seed(1)
        fmap = graph_flow_map()
        for p in fmap.parameters():  # EGNN starts with a tiny coordinate head; make F non-trivial
            torch.nn.init.normal_(p, std=0.3)
        mol = molecules(dtype)

    def average_velocity(x, t, *, cond, batch):  # F(x, t / 2, t) as a field of the check's time t
        return fmap.net(x, t / 2, t, cond=cond, batch=batch)

    assert_equivariant(average_velocity, mol)
    # the map itself: X(Q x + b) = Q X(x) + b per graph
    s = torch.tensor([0.1, 0.4, 0.2], dtype=dtype)
    ctx, t = GraphContext(z=mol.z), torch.tensor([0.9, 0.6, 1.0], dtype=dtype)
    g = torch.Generator().manual_seed(3)
    q = random_orthogonal(3, proper=False, generator=g, dtype=dtype)[mol.batch]
    b = torch.randn(3, 3, generator=g, dtype=dtype)[mol.batch]
    with torch.no_grad():
        moved = fmap(torch.einsum("nij,nj->ni", q, mol.pos) + b, s, t, cond=ctx, batch=mol.batch)
        base = fmap(mol.pos, s, t, cond=ctx, batch=mol.batch)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    assert torch.allclose(moved, torch.einsum("nij,nj->ni", q, base) + b, atol=tol * base.abs().max())


def test_jump_and_rate_is_the_time_derivative_of_the_jump():
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        fmap = FlowMap(TwoTimeMLP(dim=2, hidden=16, layers=2))
    x, s, t = torch.randn(5, 2, dtype=torch.float64), torch.rand(5, dtype=torch.float64) * 0.5, \
        0.5 + 0.4 * torch.rand(5, dtype=torch.float64)
    jump, rate = fmap.jump_and_rate(x, s, t)
    h = 1e-6
    with torch.no_grad():
        fd = (fmap(x, s, t + h) - fmap(x, s, t - h)) / (2 * h)
    assert torch.allclose(jump, fmap(x, s, t))
    assert torch.allclose(rate, fd, atol=1e-6 * max(1.0, float(fd.abs().max())))


def test_sampling_takes_one_evaluation_a_jump_and_is_deterministic():
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=16, layers=2)).eval()
    x0 = torch.randn(6, 2)
    one = sample_flow_map(fmap, x0, jumps=3, return_trajectory=True)
    two = sample_flow_map(fmap, x0, jumps=3)
    assert one.nfe == 3 and one.times == (0.0, 1 / 3, 2 / 3, 1.0) and len(one.trajectory) == 4
    assert torch.equal(one.x, two.x) and torch.equal(one.trajectory[0], x0)
    with torch.no_grad():
        step = fmap(fmap(x0, 0.0, 0.5), 0.5, 1.0)
    assert torch.equal(sample_flow_map(fmap, x0, times=(0.0, 0.5, 1.0)).x, step)
    with pytest.raises(ValueError, match="jumps must be an integer >= 1"):
        sample_flow_map(fmap, x0, jumps=0)
    with pytest.raises(ValueError, match="strictly monotone"):
        sample_flow_map(fmap, x0, times=(0.0, 0.5, 0.5, 1.0))
    with pytest.raises(ValueError, match="t must lie in"):
        fmap(x0, 0.0, 1.5)


def test_solve_between_integrates_each_row_over_its_own_interval():
    decay = lambda x, t, cond=None, batch=None: -x  # noqa: E731  x(b) = x(a) exp(-(b - a))
    x = torch.randn(4, 3, dtype=torch.float64)
    a = torch.tensor([0.0, 0.2, 0.5, 0.9], dtype=torch.float64)
    b = torch.tensor([1.0, 0.3, 0.5, 0.1], dtype=torch.float64)
    out = solve_between(decay, x, a, b, method="rk4", steps=8)
    assert torch.allclose(out, x * torch.exp(-(b - a))[:, None], atol=1e-7)
    whole = solve_between(decay, x, torch.zeros(4, dtype=torch.float64),
                          torch.ones(4, dtype=torch.float64), method="heun", steps=5)
    assert torch.allclose(whole, odeint(decay, x, method="heun", steps=5).x, atol=1e-12)
    with pytest.raises(ValueError, match="fixed-step solver"):
        solve_between(decay, x, a, b, method="dopri5")


def _one_jump_error(fmap: FlowMap, flow: DiagonalGaussianFlow, z: Tensor) -> float:
    with torch.no_grad():
        return float((sample_flow_map(fmap, z, jumps=1).x - flow.exact_map(z, 0.0, 1.0)).norm(dim=1).mean())


@pytest.mark.slow
@pytest.mark.parametrize(("objective", "steps"), [("ctm", 400), ("data_free", 800)])
def test_both_objectives_learn_the_exact_gaussian_flow_map(objective, steps):
    torch.manual_seed(0)
    flow = DiagonalGaussianFlow(torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5]))
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=64, layers=2))
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        euler = float((odeint(flow, z, steps=1).x - flow.exact_map(z, 0.0, 1.0)).norm(dim=1).mean())
    if objective == "ctm":
        loss = CTMLoss(teacher=flow, matcher=FlowMatcher(), fm_weight=0.01)
        data = lambda step, g: FlowBatch(flow.mean + flow.var.sqrt() * torch.randn(256, 2, generator=g))  # noqa: E731
    else:
        loss = DataFreeLoss(teacher=flow)
        data = lambda step, g: FlowBatch(torch.randn(256, 2, generator=g))  # noqa: E731  source only
    cfg = TrainConfig(steps=steps, lr=3e-3, schedule="cosine", ema_decay=0.9, progress=False)
    result = fit_flow_map(fmap, loss, data, cfg)
    error = _one_jump_error(result.model, flow, z)
    assert error < 0.25 * euler, (error, euler)
    assert all(not p.requires_grad for p in result.model.parameters())


@pytest.mark.parametrize("objective", ["ctm", "data_free"])
def test_training_runs_on_ragged_graph_batches(objective):
    torch.manual_seed(0)
    mol = molecules(torch.float32)
    teacher = GraphVelocityField(EGNN(hidden=16, layers=2)).eval().requires_grad_(False)
    fmap = graph_flow_map()
    warm_start(fmap.net, teacher)
    ctx = GraphContext(z=mol.z)
    if objective == "ctm":
        loss = CTMLoss(teacher=teacher, teacher_steps=1)
        data = lambda step, g: FlowBatch(mol.pos, ctx, mol.batch)  # noqa: E731
    else:
        loss = DataFreeLoss(teacher=teacher)
        data = lambda step, g: FlowBatch(torch.randn(mol.pos.shape, generator=g), ctx, mol.batch)  # noqa: E731
    result = fit_flow_map(fmap, loss, data, TrainConfig(steps=3, progress=False, log_every=1))
    assert result.train.step == 3 and math.isfinite(result.train.final_loss)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="graph_scalar_dim=2 but the target time needs"):
        GraphFlowMapNet(EGNN(hidden=8, layers=1, graph_scalar_dim=2), target_dim=8)
    with pytest.raises(ValueError, match="span must lie in"):
        CTMLoss(teacher=lambda x, t, cond=None, batch=None: x, span=0.0)
    with pytest.raises(ValueError, match="start_at_source"):
        DataFreeLoss(teacher=lambda x, t, cond=None, batch=None: x, start_at_source=2.0)
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=8, layers=1))
    loss = DataFreeLoss(teacher=lambda x, t, cond=None, batch=None: x)
    with pytest.raises(TypeError, match="return sciflow.flowmaps.FlowBatch"):
        fit_flow_map(fmap, loss, lambda step, g: torch.randn(4, 2), TrainConfig(steps=1, progress=False))


def test_fit_flow_map_refuses_to_run_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=8, layers=1))
    loss = DataFreeLoss(teacher=lambda x, t, cond=None, batch=None: x)
    with pytest.raises(RuntimeError, match="run fit_flow_map in one process"):
        fit_flow_map(fmap, loss, lambda step, g: FlowBatch(torch.randn(4, 2)),
                     TrainConfig(steps=1, progress=False))


def test_data_free_scale_multiplies_each_residual_by_its_time_weight():
    """scale(t) multiplies the path residual of a jump ending at t (and the diagonal one at s):
    with the same random draws, scale = 1 - t gives the per-sample squared residuals times
    (1 - t)^2, and a constant scale c multiplies the whole loss by c^2."""
    torch.manual_seed(0)
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=8, layers=1))
    teacher = MLPVelocity(2, 8, 1).requires_grad_(False)
    x0 = FlowBatch(torch.randn(16, 2))

    def run(scale, velocity_weight=1.0):
        torch.manual_seed(5)
        return DataFreeLoss(teacher=teacher, scale=scale, velocity_weight=velocity_weight)(fmap, x0)

    plain, _ = run(None)
    doubled, _ = run(lambda t: torch.full_like(t, 2.0))
    torch.testing.assert_close(doubled, 4 * plain)
    torch.manual_seed(5)
    u = torch.rand(3, 16)
    s = torch.where(u[0] < 0.5, torch.zeros_like(u[1]), u[1])
    t = s + (1 - s) * u[2]
    with torch.no_grad():
        x_s = fmap(x0.x, torch.zeros_like(s), s)
        x_t, rate = fmap.jump_and_rate(x_s, s, t)
        expected = (((rate - teacher(x_t, t)) * (1 - t)[:, None]) ** 2).mean()
    scaled, extras = run(lambda tt: 1 - tt, velocity_weight=0.0)
    torch.testing.assert_close(scaled.detach(), expected)
    assert set(extras) == {"path"}
    with pytest.raises(TypeError, match="scale"):
        DataFreeLoss(teacher=teacher, scale=2.0)

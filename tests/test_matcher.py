import pytest
import torch

from sciflow.datasets.toy2d import eight_gaussians, moons
from sciflow.matcher import FlowMatcher, GaussianSource, LogitNormalTime
from sciflow.metrics import wasserstein2
from sciflow.nn.mlp import MLPVelocity
from sciflow.paths import AffinePath, CosineScheduler
from sciflow.solvers import odeint


class Oracle(torch.nn.Module):
    """Returns a fixed tensor: lets a test read back what the matcher asked for."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def forward(self, x, t, *, cond=None, batch=None):
        self.seen.update(x=x, t=t, cond=cond, batch=batch)
        return torch.zeros_like(x)


def test_loss_equals_mean_squared_target_for_zero_model():
    fm = FlowMatcher()
    x1 = torch.randn(64, 3)
    g = torch.Generator().manual_seed(0)
    loss = fm.loss(Oracle(), x1, generator=g)
    s = fm.training_sample(x1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, (s.path.u_t ** 2).mean())


def test_graph_loss_weighs_graphs_equally_and_time_is_per_graph():
    fm = FlowMatcher(source=GaussianSource(center_graphs=True))
    batch = torch.tensor([0] * 9 + [1])
    x1 = torch.randn(10, 3)
    oracle = Oracle()
    g = torch.Generator().manual_seed(1)
    loss = fm.loss(oracle, x1, batch=batch, generator=g)
    assert oracle.seen["t"].shape == (2,)
    s = fm.training_sample(x1, batch=batch, generator=torch.Generator().manual_seed(1))
    err = (s.path.u_t ** 2).mean(1)
    torch.testing.assert_close(loss, 0.5 * (err[:9].mean() + err[9]))
    # centred source: each graph's noise has zero mean
    torch.testing.assert_close(s.path.x0[:9].mean(0), torch.zeros(3), atol=1e-6, rtol=0)


def test_mask_ignores_entries():
    fm = FlowMatcher()
    x1 = torch.randn(8, 4)
    mask = torch.ones(8, 4)
    mask[:, 2:] = 0
    g0, g1 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    masked = fm.loss(Oracle(), x1, mask=mask, generator=g0)
    s = fm.training_sample(x1, generator=g1)
    torch.testing.assert_close(masked, (s.path.u_t[:, :2] ** 2).mean())


def test_x1_target_and_velocity_conversion():
    fm = FlowMatcher(target="x1", path=AffinePath(CosineScheduler()))
    x1 = torch.randn(16, 2, dtype=torch.float64)
    x0 = torch.randn(16, 2, dtype=torch.float64)

    def perfect_x1(x, t, *, cond=None, batch=None):
        return x1

    # a model that knows x1 yields exactly the conditional velocity
    t = torch.rand(16, dtype=torch.float64) * 0.8 + 0.1
    s = fm.path.sample(x0, x1, t)
    torch.testing.assert_close(fm.velocity(perfect_x1)(s.x_t, t), s.u_t)


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda fm: fm.loss(Oracle(), torch.tensor([[1.0, float("nan")]])), ValueError, "NaN"),
        (lambda fm: fm.loss(Oracle(), torch.ones(4, 2, dtype=torch.long)), TypeError, "floating"),
        (lambda fm: fm.loss(Oracle(), torch.ones(4, 2), batch=torch.zeros(3, dtype=torch.long)),
         ValueError, "batch"),
        (lambda fm: fm.loss(lambda x, t, cond=None, batch=None: x[:, :1], torch.ones(4, 2)),
         ValueError, "shaped like x"),
        (lambda fm: FlowMatcher(target="eps"), ValueError, "target"),
    ],
)
def test_bad_input(call, err, words):
    with pytest.raises(err, match=words):
        call(FlowMatcher())


def test_logit_normal_time_in_unit_interval():
    t = LogitNormalTime()(1000, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                          dtype=torch.float32)
    assert float(t.min()) > 0 and float(t.max()) < 1 and abs(float(t.mean()) - 0.5) < 0.05


def test_2d_flow_trains_8gaussians_to_moons():
    """8 gaussians -> moons with an MLP: W2 of samples must fall below 0.5.

    Why 0.5: on 1,000 points W2(moons, fresh moons) ~ 0.28 is the sampling floor, W2(8 gaussians,
    moons) ~ 1.85 is where training starts and a flow that collapses onto the mean of the moons
    scores ~3.0. This recipe measured 0.36 (1,500 steps, 2 s on one thread); 0.5 leaves room for
    platform noise while failing any flow that has not learned the two arcs.
    """
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = MLPVelocity(dim=2, hidden=64, layers=3)
    fm = FlowMatcher()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / 1500)
    for _ in range(1500):
        x0, x1 = eight_gaussians(256, generator=g), moons(256, generator=g)
        loss = fm.loss(model, x1, x0=x0, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
    with torch.no_grad():
        x0 = eight_gaussians(1000, generator=g)
        x = odeint(model, x0, method="midpoint", steps=20).x
    target = moons(1000, generator=g)
    w2 = float(wasserstein2(x, target))
    floor = float(wasserstein2(moons(1000, generator=g), target))
    start = float(wasserstein2(x0, target))
    assert start > 1.5 and floor < 0.4
    assert w2 < 0.5, (w2, floor, start)

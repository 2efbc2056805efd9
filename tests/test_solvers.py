import math

import pytest
import torch
from gaussian_flow import GaussianTargetVelocity, rotated_cov

from sciflow.paths import AffinePath
from sciflow.solvers import (
    SOLVERS,
    ButcherTableau,
    Dopri5,
    Interval,
    RungeKutta,
    SDEStep,
    log_likelihood,
    odeint,
    sde_sample,
    time_loop,
    uniform_grid,
)
from sciflow.sources import GaussianSource


def linear_field(x, t, *, cond=None, batch=None):
    # dx/dt = -x (1 + t): x(1) = x0 exp(-1.5)
    return -x * (1 + t)[:, None]


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_fixed_step_solvers_show_their_order(method, order):
    x0 = torch.ones(2, 1, dtype=torch.float64)
    exact = math.exp(-1.5)
    errs = [abs(float(odeint(linear_field, x0, method=method, steps=n).x[0, 0]) - exact)
            for n in (8, 16, 32)]
    slopes = [math.log2(a / b) for a, b in zip(errs[:-1], errs[1:])]
    assert SOLVERS[method].order == order
    for s in slopes:
        assert abs(s - order) < 0.25, (method, errs, slopes)


def test_nfe_counts_evaluations():
    sol = odeint(linear_field, torch.ones(1, 1), method="rk4", steps=5)
    assert sol.nfe == 20 and len(sol.times) == 6


def test_dopri5_is_accurate_and_adapts():
    x0 = torch.ones(3, 1, dtype=torch.float64)
    sol = odeint(linear_field, x0, method="dopri5", atol=1e-9, rtol=1e-9)
    assert abs(float(sol.x[0, 0]) - math.exp(-1.5)) < 1e-7
    loose = odeint(linear_field, x0, method="dopri5", atol=1e-3, rtol=1e-3)
    assert loose.nfe < sol.nfe


def test_backward_integration_inverts_forward():
    x0 = torch.randn(4, 2, dtype=torch.float64)
    fwd = odeint(linear_field, x0, method="rk4", steps=40).x
    back = odeint(linear_field, fwd, method="rk4", steps=40, t0=1.0, t1=0.0).x
    torch.testing.assert_close(back, x0, rtol=1e-6, atol=1e-6)


def test_step_hook_and_trajectory():
    sol = odeint(linear_field, torch.ones(2, 1), method="euler", steps=4,
                 step_hook=lambda x: torch.round(x * 4) / 4, return_trajectory=True)
    assert len(sol.trajectory) == 5
    assert all(torch.equal(s, torch.round(s * 4) / 4) for s in sol.trajectory[1:])


def test_graph_batches_get_per_graph_time():
    seen = []

    def f(x, t, *, cond=None, batch=None):
        seen.append(t.shape)
        return torch.zeros_like(x)

    odeint(f, torch.randn(7, 3), method="euler", steps=2, batch=torch.tensor([0, 0, 0, 1, 1, 2, 2]))
    assert seen == [torch.Size([3])] * 2


def test_ode_transports_to_gaussian_target():
    mean = torch.tensor([2.0, -1.0], dtype=torch.float64)
    model = GaussianTargetVelocity(mean, rotated_cov(2))
    g = torch.Generator().manual_seed(0)
    x = odeint(model, torch.randn(20000, 2, generator=g, dtype=torch.float64), method="rk4", steps=20).x
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), model.cov, atol=0.06, rtol=0)


def test_sde_with_true_score_recovers_mean_and_variance():
    mean = torch.tensor([1.5, -0.5], dtype=torch.float64)
    cov = torch.tensor([[0.3, 0.0], [0.0, 2.0]], dtype=torch.float64)
    model = GaussianTargetVelocity(mean, cov)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    x = sde_sample(model, x0, path=AffinePath(), steps=400, diffusion=2.0, generator=g)
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(x.var(0), torch.diagonal(cov), rtol=0.06, atol=0)
    # the noise really acted: trajectories differ from the ODE's
    ode = odeint(model, x0, method="euler", steps=400).x
    assert float((x - ode).abs().mean()) > 0.1


class ShiftedSourceVelocity(torch.nn.Module):
    """Exact linear-path velocity from N(m, s^2 I) to N(mu, S): E[x1 - x0 | x_t = x].

    x_t ~ N(t mu + (1 - t) m, C_t), C_t = t^2 S + (1 - t)^2 s^2 I, and
    v = mu - m + (t S - (1 - t) s^2 I) C_t^{-1} (x - E x_t).
    """

    def __init__(self, m, s, mu, cov) -> None:
        super().__init__()
        self.m, self.s, self.mu, self.cov = m, s, mu, cov

    def forward(self, x, t, *, cond=None, batch=None):
        eye = torch.eye(x.shape[1], dtype=x.dtype)
        tt = t[:, None, None]
        c_t = tt**2 * self.cov + (1 - tt) ** 2 * self.s**2 * eye
        a_t = tt * self.cov - (1 - tt) * self.s**2 * eye
        mean_t = t[:, None] * self.mu + (1 - t[:, None]) * self.m
        return self.mu - self.m + (a_t @ torch.linalg.solve(c_t, (x - mean_t)[:, :, None]))[:, :, 0]


@pytest.mark.parametrize("mean_as", ["none", "tensor", "function of cond"])
def test_sde_keeps_the_marginals_for_a_shifted_and_scaled_source(mean_as):
    shifted = mean_as != "none"
    m = torch.tensor([1.0, -1.0], dtype=torch.float64) if shifted else torch.zeros(2, dtype=torch.float64)
    s = 0.3 if shifted else 1.0
    mu, cov = torch.tensor([2.0, 0.5], dtype=torch.float64), rotated_cov(2)
    model = ShiftedSourceVelocity(m, s, mu, cov)
    n = 6000
    g = torch.Generator().manual_seed(0)
    x0 = m + s * torch.randn(n, 2, generator=g, dtype=torch.float64)
    source_mean = {"none": None, "tensor": m, "function of cond": lambda cond: cond["mean"]}[mean_as]
    x = sde_sample(model, x0, steps=100, diffusion=1.5, source_scale=s, source_mean=source_mean,
                   cond={"mean": m.expand(n, 2)}, generator=g)
    torch.testing.assert_close(x.mean(0), mu, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.08, rtol=0)
    # the noise acted, in the source's units: the end points are not the ODE's
    ode = odeint(model, x0, steps=100).x
    assert float((x - ode).abs().mean()) > 0.1 * s


def test_sde_ignoring_the_source_shift_and_scale_is_biased():
    # the same flow sampled as if the source were N(0, I): the score is wrong, the marginals drift
    m, s = torch.tensor([1.0, -1.0], dtype=torch.float64), 0.3
    mu, cov = torch.tensor([2.0, 0.5], dtype=torch.float64), rotated_cov(2)
    model = ShiftedSourceVelocity(m, s, mu, cov)
    g = torch.Generator().manual_seed(0)
    x0 = m + s * torch.randn(6000, 2, generator=g, dtype=torch.float64)
    x = sde_sample(model, x0, steps=100, diffusion=1.5, generator=g)
    assert float((torch.cov(x.T) - cov).abs().max()) > 0.3


def test_sde_step_rejects_bad_settings():
    with pytest.raises(ValueError, match="source_scale"):
        SDEStep(source_scale=0.0)
    with pytest.raises(ValueError, match="diffusion"):
        SDEStep(diffusion=-1.0)
    with pytest.raises(TypeError, match="source_mean"):
        SDEStep(source_mean=[1.0, 2.0])
    with pytest.raises(ValueError, match="does not broadcast"):
        sde_sample(lambda x, t, **k: x, torch.zeros(4, 2), steps=2, source_mean=torch.zeros(3))
    with pytest.raises(ValueError, match="diffusion must be >= 0"):
        sde_sample(lambda x, t, **k: x, torch.zeros(4, 2), steps=2, diffusion=lambda t: -1.0)


def test_exact_likelihood_matches_gaussian_closed_form():
    mean = torch.tensor([0.5, 1.0, -1.0], dtype=torch.float64)
    model = GaussianTargetVelocity(mean, rotated_cov(3))
    x1 = torch.randn(6, 3, dtype=torch.float64) + mean
    logp = log_likelihood(model, x1, method="rk4", steps=60)
    torch.testing.assert_close(logp, model.log_prob(x1), atol=1e-4, rtol=0)


def test_hutchinson_likelihood_is_unbiased():
    mean = torch.tensor([0.5, 1.0, -1.0], dtype=torch.float64)
    model = GaussianTargetVelocity(mean, rotated_cov(3))
    point = torch.tensor([[1.0, 0.0, -0.5]], dtype=torch.float64)
    copies = point.repeat(4000, 1)
    est = log_likelihood(model, copies, divergence="hutchinson", steps=20,
                         generator=torch.Generator().manual_seed(0))
    assert float(est.std()) > 1e-3  # the probe noise is real (non-diagonal Jacobian)
    assert abs(float(est.mean()) - float(model.log_prob(point))) < 4 * float(est.std()) / math.sqrt(4000) + 1e-3


def test_likelihood_on_graph_batches_sums_over_nodes():
    # independent nodes: per-graph log-likelihood = sum of per-node ones
    mean = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    model = GaussianTargetVelocity(mean, torch.eye(3, dtype=torch.float64) * 0.5)
    x = torch.randn(5, 3, dtype=torch.float64)
    batch = torch.tensor([0, 0, 1, 1, 1])
    per_graph = log_likelihood(model, x, batch=batch, steps=30)
    per_node = model.log_prob(x)
    torch.testing.assert_close(per_graph, torch.stack([per_node[:2].sum(), per_node[2:].sum()]), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "kwargs, err, words",
    [
        (dict(method="rk5", steps=4), ValueError, "unknown ODE method"),
        (dict(method="dopri5", atol=0.0), ValueError, "atol"),
        (dict(method="euler"), ValueError, "steps"),
        (dict(method="euler", steps=4, t1=1.5), ValueError, "t1"),
        (dict(method="euler", steps=4, t0=1.0, t1=1.0), ValueError, "differ"),
    ],
)
def test_bad_solver_input(kwargs, err, words):
    with pytest.raises(err, match=words):
        odeint(linear_field, torch.ones(2, 1), **kwargs)


def test_integer_start_is_rejected():
    with pytest.raises(TypeError, match="floating"):
        odeint(linear_field, torch.ones(2, 1, dtype=torch.long), method="euler", steps=2)


def test_time_loop_owns_the_grid_and_runs_hooks_after_each_step():
    seen = []

    def advance(state, s):
        seen.append((s.index, s.t, s.t_next, s.last))
        return state + [s.index]

    def hook(state, s):
        return state + ["hook"]

    out = time_loop(advance, [], uniform_grid(0.0, 1.0, 3), hooks=[hook])
    assert out == [0, "hook", 1, "hook", 2, "hook"]
    assert seen == [(0, 0.0, 1 / 3, False), (1, 1 / 3, 2 / 3, False), (2, 2 / 3, 1.0, True)]
    assert Interval(index=0, t=0.25, t_next=0.5, last=False).dt == 0.25
    with pytest.raises(ValueError, match="steps"):
        uniform_grid(0.0, 1.0, 0)


def test_every_solver_is_a_tableau_on_one_base():
    for name, kind in SOLVERS.items():
        assert issubclass(kind, RungeKutta), name
        tab = kind.tableau
        assert kind.order == tab.order and kind.evals == tab.stages
        # consistency of the tableau: c_i = sum_j a_ij and sum_i b_i = denominator
        for c, row in zip(tab.c, tab.a):
            assert abs(c - sum(row)) < 1e-12, name
        assert abs(sum(tab.b) - tab.denominator) < 1e-12, name
    assert SOLVERS["dopri5"].adaptive and not SOLVERS["rk4"].adaptive
    with pytest.raises(ValueError, match="lower-triangular"):
        ButcherTableau(order=1, c=(0.0, 1.0), a=((), (0.5, 0.5)), b=(0.5, 0.5))


def test_dopri5_as_a_fixed_step_method_has_order_five():
    x0 = torch.ones(1, 1, dtype=torch.float64)
    exact = math.exp(-1.5)
    f = lambda x, t: linear_field(x, torch.full((1,), t, dtype=torch.float64))  # noqa: E731
    errs = []
    for n in (4, 8):
        x = x0
        for s in (Interval(index=i, t=i / n, t_next=(i + 1) / n, last=i == n - 1) for i in range(n)):
            x = Dopri5().step(f, x, s.t, s.dt)
        errs.append(abs(float(x[0, 0]) - exact))
    assert 4.5 < math.log2(errs[0] / errs[1]) < 6.5


def test_hooks_in_the_adaptive_loop_keep_the_nfe_unless_they_change_the_state():
    x0 = torch.ones(3, 1, dtype=torch.float64)
    plain = odeint(linear_field, x0, method="dopri5")
    seen = []
    watched = odeint(linear_field, x0, method="dopri5", return_trajectory=True,
                     hooks=[lambda x, s: seen.append(s) or x])
    assert watched.nfe == plain.nfe and torch.equal(watched.x, plain.x)
    assert len(seen) == len(watched.times) - 1 == len(watched.trajectory) - 1
    assert seen[-1].last and not seen[0].last and seen[-1].t_next == watched.times[-1]
    rounded = odeint(linear_field, x0, method="dopri5", step_hook=lambda x: x.clone())
    assert rounded.nfe == plain.nfe + len(rounded.times) - 1  # FSAL voided by a new state


def test_sde_step_for_a_gaussian_source_and_sde_hooks():
    mean = torch.tensor([1.0, -1.0], dtype=torch.float64)
    src = GaussianSource(scale=0.3, center_graphs=True, mean=lambda cond: cond)
    step = SDEStep.for_source(src, diffusion=0.5)
    assert step.source_scale == 0.3 and step.center_noise and step.source_mean is src.mean
    count = []
    x = sde_sample(lambda x, t, **k: torch.zeros_like(x), mean.expand(4, 2).clone(), steps=5,
                   hooks=[lambda x, s: count.append(s.index) or x])
    assert count == [0, 1, 2, 3, 4] and x.shape == (4, 2)

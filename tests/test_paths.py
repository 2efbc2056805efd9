import pytest
import torch
from torch.func import jvp

from sciflow.paths import (
    ENDPOINT_EPS,
    PATHS,
    AffinePath,
    BrownianGamma,
    CondOTScheduler,
    CosineScheduler,
    PolynomialScheduler,
    ProbPath,
    StochasticInterpolant,
    VPScheduler,
    guarded_divide,
)

SCHEDULERS = [CondOTScheduler(), CosineScheduler(), VPScheduler(), PolynomialScheduler(3.0)]


def _data(dtype, n=16, d=3):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, d, generator=g, dtype=dtype)
    x1 = torch.randn(n, d, generator=g, dtype=dtype) * 2 + 1
    t = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    return x0, x1, t


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: type(s).__name__)
def test_velocity_is_time_derivative_of_sample(scheduler, dtype):
    path = AffinePath(scheduler)
    x0, x1, t = _data(dtype)
    _, dx_dt = jvp(lambda tt: path.sample(x0, x1, tt).x_t, (t,), (torch.ones_like(t),))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(path.sample(x0, x1, t).u_t, dx_dt, rtol=tol, atol=tol)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: type(s).__name__)
def test_endpoints(scheduler):
    path = AffinePath(scheduler)
    x0, x1, _ = _data(torch.float64)
    at1 = path.sample(x0, x1, torch.ones(len(x0), dtype=torch.float64)).x_t
    torch.testing.assert_close(at1, x1)
    if not isinstance(scheduler, VPScheduler):  # VP's alpha_0 is small but not zero, by design
        at0 = path.sample(x0, x1, torch.zeros(len(x0), dtype=torch.float64)).x_t
        torch.testing.assert_close(at0, x0)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: type(s).__name__)
def test_conversions_recover_the_pair_and_round_trip(scheduler):
    path = AffinePath(scheduler)
    x0, x1, t = _data(torch.float64)
    s = path.sample(x0, x1, t)
    # the conditional velocity at x_t pins down both ends of the pair
    torch.testing.assert_close(path.velocity_to_x1(s.u_t, s.x_t, t), x1)
    torch.testing.assert_close(path.velocity_to_x0(s.u_t, s.x_t, t), x0)
    sigma = scheduler(t).sigma[:, None]
    torch.testing.assert_close(path.velocity_to_score(s.u_t, s.x_t, t), -x0 / sigma)
    v = torch.randn_like(x0)
    x = torch.randn_like(x0)
    torch.testing.assert_close(path.x1_to_velocity(path.velocity_to_x1(v, x, t), x, t), v)
    torch.testing.assert_close(path.x0_to_velocity(path.velocity_to_x0(v, x, t), x, t), v)
    torch.testing.assert_close(path.score_to_velocity(path.velocity_to_score(v, x, t), x, t), v)


def test_linear_path_score_closed_form():
    path = AffinePath(CondOTScheduler())
    x, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    t = torch.full((5,), 0.3, dtype=torch.float64)
    torch.testing.assert_close(path.velocity_to_score(v, x, t), (0.3 * v - x) / 0.7)
    torch.testing.assert_close(path.velocity_to_x1(v, x, t), x + 0.7 * v)


def test_stochastic_interpolant_drift_is_derivative():
    path = StochasticInterpolant(CosineScheduler(), BrownianGamma(0.5))
    x0, x1, t = _data(torch.float64)
    z = torch.randn_like(x0)
    _, dx_dt = jvp(lambda tt: path.sample(x0, x1, tt, z=z).x_t, (t,), (torch.ones_like(t),))
    torch.testing.assert_close(path.sample(x0, x1, t, z=z).u_t, dx_dt)


def test_graph_batches_take_per_row_time():
    path = AffinePath()
    batch = torch.tensor([0, 0, 0, 1, 1])
    t_graph = torch.tensor([0.2, 0.7])
    x0, x1 = torch.randn(5, 3), torch.randn(5, 3)
    s = path.sample(x0, x1, t_graph[batch])
    torch.testing.assert_close(s.x_t[3], 0.7 * x1[3] + 0.3 * x0[3])


@pytest.mark.parametrize(
    "x0, x1, t, err, words",
    [
        (torch.zeros(4, 2), torch.zeros(4, 3), torch.rand(4), ValueError, "same shape"),
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.tensor([0.1, 0.2, 1.5, 0.3]), ValueError, "[0, 1]"),
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.tensor([0.1, float("nan"), 0.5, 0.3]), ValueError, "[0, 1]"),
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.rand(3), ValueError, "one value per row"),
        (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2), torch.rand(4), TypeError, "floating"),
    ],
)
def test_bad_input_raises_clear_errors(x0, x1, t, err, words):
    with pytest.raises(err, match=words.replace("[", r"\[").replace("]", r"\]")):
        AffinePath().sample(x0, x1, t)


def test_polynomial_rejects_nonpositive_exponent():
    with pytest.raises(ValueError, match="exponent"):
        PolynomialScheduler(0.0)


# --- the near-endpoint rule, the interface, the interpolant's conversions -----------------------


def test_guarded_divide_is_exact_above_eps_continuous_and_zero_at_zero():
    num = torch.tensor([2.0, 2.0, 2.0, 2.0, 2.0], dtype=torch.float64)
    den = torch.tensor([0.5, 1e-3, 5e-4, 0.0, -5e-4], dtype=torch.float64)
    out = guarded_divide(num, den, 1e-3)
    assert torch.equal(out[:2], num[:2] / den[:2])  # bit-exact where |den| >= eps
    torch.testing.assert_close(out[2:], torch.tensor([1000.0, 0.0, -1000.0], dtype=torch.float64))
    below = guarded_divide(num[:1], torch.tensor([1e-3 * (1 - 1e-12)], dtype=torch.float64), 1e-3)
    torch.testing.assert_close(below, torch.tensor([2000.0], dtype=torch.float64))  # continuous
    assert float(guarded_divide(num, den, 1e-3).abs().max()) <= 2.0 / 1e-3 + 1e-9


def test_guarded_divide_has_finite_gradients_at_zero():
    num = torch.tensor([1.0, 3.0], requires_grad=True)
    den = torch.tensor([0.0, 2.0], requires_grad=True)
    guarded_divide(num, den).sum().backward()
    assert bool(torch.isfinite(num.grad).all() and torch.isfinite(den.grad).all())


@pytest.mark.parametrize(
    "coefficient",
    [lambda t: VPScheduler()(t).d_sigma, lambda t: BrownianGamma()(t)[1],
     lambda t: PolynomialScheduler(0.5)(t).d_alpha],
    ids=["vp d_sigma", "brownian d_gamma", "polynomial(0.5) d_alpha"],
)
def test_diverging_derivatives_are_capped_and_exact_inside(coefficient):
    t = torch.tensor([0.0, 1.0, 0.3, 0.7], dtype=torch.float64)
    out = coefficient(t)
    assert bool(torch.isfinite(out).all())
    _, dx = jvp(lambda tt: torch.stack([VPScheduler()(tt).sigma, BrownianGamma()(tt)[0],
                                        PolynomialScheduler(0.5)(tt).alpha]), (t[2:],),
                (torch.ones(2, dtype=torch.float64),))
    inside = torch.stack([VPScheduler()(t[2:]).d_sigma, BrownianGamma()(t[2:])[1],
                          PolynomialScheduler(0.5)(t[2:]).d_alpha])
    torch.testing.assert_close(inside, dx)  # the cap never touches the interior


def test_every_path_implements_the_interface_and_validates():
    for family in PATHS.values():
        path = family(CosineScheduler())
        assert isinstance(path, ProbPath) and path.eps == ENDPOINT_EPS
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            path.sample(torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([0.5, 2.0]), validate=True)
    with pytest.raises(ValueError, match="eps"):
        AffinePath(eps=0.0)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: type(s).__name__)
def test_interpolant_coefficients_are_the_gaussian_marginal_and_its_derivative(scheduler):
    path = StochasticInterpolant(scheduler, BrownianGamma(0.7))
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    like = torch.zeros(7, 1, dtype=torch.float64)
    c = path.coefficients(t, like)
    sched = scheduler(t[:, None])
    g, _ = BrownianGamma(0.7)(t[:, None])
    torch.testing.assert_close(c.sigma, torch.sqrt(sched.sigma**2 + g**2))
    _, ds = jvp(lambda tt: path.coefficients(tt, like).sigma, (t,), (torch.ones_like(t),))
    torch.testing.assert_close(torch.as_tensor(c.d_sigma).expand_as(ds), ds)


@pytest.mark.parametrize("scheduler", [CondOTScheduler(), CosineScheduler()], ids=lambda s: type(s).__name__)
def test_interpolant_conversions_are_exact_for_gaussian_data(scheduler):
    # x1 ~ N(mu, S), x0, z ~ N(0, I): E[x1 | x_t] and E[u_t | x_t] in closed form; the path's
    # conversion must map the exact drift to the exact data estimate (and back)
    path = StochasticInterpolant(scheduler, BrownianGamma(0.8))
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
    s_cov = torch.tensor([[1.5, 0.4], [0.4, 0.6]], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    t = torch.linspace(0.1, 0.9, 5, dtype=torch.float64)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = scheduler(t)
    g, dg = BrownianGamma(0.8)(t)
    a, s, da = c.alpha[:, None, None], c.sigma[:, None, None], torch.as_tensor(c.d_alpha)
    ds = torch.as_tensor(c.d_sigma)
    cov = a**2 * s_cov + (s**2 + g[:, None, None] ** 2) * eye
    resid = torch.linalg.solve(cov, (x - c.alpha[:, None] * mu)[:, :, None])
    x1_hat = mu + (a * s_cov @ resid)[:, :, 0]
    da_b = da.reshape(-1, 1, 1) if da.dim() else da
    ds_b = ds.reshape(-1, 1, 1) if ds.dim() else ds
    cross = da_b * a * s_cov + (s * ds_b + (g * dg)[:, None, None]) * eye
    drift = (da.reshape(-1, 1) if da.dim() else da) * mu + (cross @ resid)[:, :, 0]
    torch.testing.assert_close(path.velocity_to_x1(drift, x, t), x1_hat)
    torch.testing.assert_close(path.x1_to_velocity(x1_hat, x, t), drift)

import pytest
import torch
from torch.func import jvp

from sciflow.paths import (
    AffinePath,
    BrownianGamma,
    CondOTScheduler,
    CosineScheduler,
    PolynomialScheduler,
    StochasticInterpolant,
    VPScheduler,
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

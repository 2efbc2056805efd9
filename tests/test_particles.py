"""Particle searches: exact NFE accounting within the budget, best-of-N is a max, graph batches."""

from __future__ import annotations

import pytest
import torch
from gaussian_flow import GaussianTargetVelocity, rotated_cov

from sciflow import graphs
from sciflow.particles import (
    SDEStep,
    _systematic_resample,
    best_of_n,
    gaussian_source,
    rollover_budget_forcing,
    smc,
    take_samples,
)

GOAL = torch.tensor([2.0, 0.0], dtype=torch.float64)


class Counting(torch.nn.Module):
    """Wraps a velocity field and counts sample (graph) evaluations."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.evals = inner, 0

    def forward(self, x, t, *, cond=None, batch=None):
        assert t.shape[0] == (graphs.num_graphs(batch, x.shape[0]) if batch is not None else x.shape[0])
        self.evals += t.shape[0]
        return self.inner(x, t, cond=cond, batch=batch)


def reward_dense(x, *, cond=None, batch=None):
    return -((x - GOAL) ** 2).sum(1)


def reward_graph(x, *, cond=None, batch=None):
    # per graph: closeness of each node to its own per-node target in cond
    return -graphs.graph_sum(((x - cond["target"]) ** 2).sum(1), batch)


def _model():
    return Counting(GaussianTargetVelocity(torch.zeros(2, dtype=torch.float64), rotated_cov(2)))


SEARCHES = [best_of_n, smc, rollover_budget_forcing]


@pytest.mark.parametrize("search", SEARCHES)
@pytest.mark.parametrize("budget,steps", [(8, 4), (13, 4), (20, 5), (3, 3)])
def test_nfe_never_exceeds_budget_and_is_counted_exactly(search, budget, steps):
    model = _model()
    like = torch.zeros(6, 2, dtype=torch.float64)
    res = search(model, like, reward=reward_dense, budget=budget, steps=steps,
                 generator=torch.Generator().manual_seed(0))
    assert res.x.shape == like.shape and res.reward.shape == (6,)
    assert bool((res.nfe <= budget).all())
    assert int(res.nfe.sum()) == model.evals <= budget * 6
    torch.testing.assert_close(res.reward, reward_dense(res.x))


def test_best_of_n_is_the_max_of_n_independent_draws():
    model = _model()
    like = torch.zeros(5, 2, dtype=torch.float64)
    ode = SDEStep(diffusion=0.0)
    res = best_of_n(model, like, reward=reward_dense, budget=16, steps=4, dynamics=ode,
                    generator=torch.Generator().manual_seed(3))
    assert res.particles == 4 and res.rewards_seen.shape == (4, 5)
    # replay the same 4 x 5 draws one by one: the ODE makes each end sample a function of x0
    x0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = x0
    for i in range(4):
        x = x + 0.25 * model(x, torch.full((20,), i / 4, dtype=torch.float64))
    draws = reward_dense(x).reshape(4, 5)
    torch.testing.assert_close(res.rewards_seen, draws)
    torch.testing.assert_close(res.reward, draws.max(0).values)


def test_searches_beat_a_single_trajectory_on_average():
    model = _model()
    like = torch.zeros(64, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    single = best_of_n(model, like, reward=reward_dense, budget=8, steps=8, generator=g)
    for search in SEARCHES:
        res = search(model, like, reward=reward_dense, budget=64, steps=8, generator=g)
        assert res.reward.mean() > single.reward.mean() + 0.5, search.__name__


@pytest.mark.parametrize("search", SEARCHES)
def test_graph_batches_keep_layout_and_conditions(search):
    sizes = torch.tensor([3, 1, 4])
    batch = torch.repeat_interleave(torch.arange(3), sizes)
    like = torch.zeros(8, 2, dtype=torch.float64)
    target = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = _model()
    res = search(model, like, reward=reward_graph, budget=12, steps=3, batch=batch,
                 cond={"target": target}, dynamics=SDEStep(center_noise=False),
                 generator=torch.Generator().manual_seed(2))
    assert res.x.shape == like.shape
    assert int(res.nfe.sum()) == model.evals and bool((res.nfe <= 12).all())
    torch.testing.assert_close(res.reward, reward_graph(res.x, cond={"target": target}, batch=batch))


def test_take_samples_picks_whole_graphs_with_their_conditions():
    batch = torch.tensor([1, 0, 1, 2, 0, 2, 2])  # unsorted rows
    x = torch.arange(7.0)[:, None]
    cond = {"node": torch.arange(7) * 10, "graph": torch.tensor([100, 200, 300])}
    out, nb, c = take_samples(x, torch.tensor([2, 0, 2]), batch=batch, cond=cond)
    assert nb.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert out[:, 0].tolist() == [3.0, 5.0, 6.0, 1.0, 4.0, 3.0, 5.0, 6.0]
    assert c["node"].tolist() == [30, 50, 60, 10, 40, 30, 50, 60]
    assert c["graph"].tolist() == [300, 100, 300]


def test_systematic_resampling_counts_follow_the_weights():
    w = torch.tensor([[0.5, 0.05], [0.3, 0.05], [0.2, 0.9]], dtype=torch.float64).repeat_interleave(4, 0) / 4
    idx = _systematic_resample(w, torch.Generator().manual_seed(0))
    for col in range(2):
        counts = torch.bincount(idx[:, col], minlength=12).to(torch.float64)
        assert bool(((counts - 12 * w[:, col]).abs() < 1.0 + 1e-9).all())


def test_centered_noise_and_source_for_point_clouds():
    batch = torch.tensor([0, 0, 1, 1, 1])
    src = gaussian_source(center_graphs=True)
    x0 = src(torch.zeros(5, 3), batch=batch, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(graphs.graph_mean(x0, batch), torch.zeros(2, 3), atol=1e-6, rtol=0)


def test_bad_budget_and_reward_shape():
    model = _model()
    like = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="budget=3"):
        best_of_n(model, like, reward=reward_dense, budget=3, steps=4)
    with pytest.raises(ValueError, match="one value per sample"):
        smc(model, like, reward=lambda x, **k: x.sum(), budget=4, steps=2)
    with pytest.raises(ValueError, match="temperature"):
        smc(model, like, reward=reward_dense, budget=4, steps=2, temperature=0.0)


class _ShiftedSourceVelocity(torch.nn.Module):
    """Exact linear-path velocity from N(m, s^2 I) to N(mu, S): E[x1 - x0 | x_t = x]."""

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


@pytest.mark.parametrize("shifted", [False, True])
def test_sde_step_keeps_the_marginals_for_scaled_and_shifted_sources(shifted):
    m = torch.tensor([1.0, -1.0], dtype=torch.float64) if shifted else torch.zeros(2, dtype=torch.float64)
    s = 0.3 if shifted else 1.0
    mu, cov = torch.tensor([2.0, 0.5], dtype=torch.float64), rotated_cov(2)
    model = _ShiftedSourceVelocity(m, s, mu, cov)
    n = 6000
    dyn = SDEStep(diffusion=1.5, source_scale=s,
                  source_mean=(lambda cond: m.expand(n, 2)) if shifted else None)
    src = lambda like, **k: m + s * torch.randn(like.shape, generator=k["generator"], dtype=like.dtype)  # noqa: E731
    res = best_of_n(model, torch.zeros(n, 2, dtype=torch.float64), reward=lambda x, **k: x[:, 0] * 0,
                    budget=100, steps=100, dynamics=dyn, source=src, generator=torch.Generator().manual_seed(0))
    x = res.x
    torch.testing.assert_close(x.mean(0), mu, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.08, rtol=0)


def test_nan_rewards_are_rejected_and_minus_inf_still_advances():
    model = _model()
    like = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN"):
        rollover_budget_forcing(model, like, reward=lambda x, **k: x[:, 0] * float("nan"), budget=8, steps=4)
    # with budget == steps every step has one proposal, which must be taken whatever its reward:
    # RBF is then exactly one SDE trajectory (same random stream as best-of-1)
    plain = best_of_n(model, like, reward=reward_dense, budget=4, steps=4,
                      generator=torch.Generator().manual_seed(0))
    for reward in (reward_dense, lambda x, **k: torch.full((3,), -float("inf"))):
        res = rollover_budget_forcing(model, like, reward=reward, budget=4, steps=4,
                                      generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(res.x, plain.x)

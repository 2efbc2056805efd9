"""Particle searches: exact NFE accounting within the budget, best-of-N is a max, graph batches."""

from __future__ import annotations

import pytest
import torch
from gaussian_flow import GaussianTargetVelocity, rotated_cov

from sciflow import graphs, solvers
from sciflow.particles import (
    ParticleSource,
    SDEStep,
    _systematic_resample,
    best_of_n,
    gaussian_source,
    rollover_budget_forcing,
    smc,
    take_samples,
)
from sciflow.solvers import sde_sample
from sciflow.sources import GaussianSource, Source

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


def test_particle_steps_and_sde_sample_are_one_code_path():
    # a shifted, scaled source: best-of-1 on the SDE replays sde_sample bit for bit
    m, s = torch.tensor([1.0, -1.0], dtype=torch.float64), 0.3
    model = _model()
    n = 7
    dyn = SDEStep(diffusion=1.5, source_scale=s, source_mean=lambda cond: cond["mean"])
    cond = {"mean": m.expand(n, 2)}

    def src(like, *, cond=None, batch=None, generator=None):
        return m + s * torch.randn(like.shape, generator=generator, dtype=like.dtype)

    res = best_of_n(model, torch.zeros(n, 2, dtype=torch.float64), reward=reward_dense, budget=5,
                    steps=5, dynamics=dyn, source=src, cond=cond,
                    generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    x0 = src(torch.zeros(n, 2, dtype=torch.float64), generator=g)
    x = sde_sample(model, x0, steps=5, diffusion=1.5, source_scale=s,
                   source_mean=lambda cond: cond["mean"], cond=cond, generator=g)
    assert torch.equal(res.x, x)
    assert SDEStep is solvers.SDEStep


@pytest.mark.parametrize("budget,steps", [(8, 4), (13, 4), (40, 8), (9, 2)])
@pytest.mark.parametrize("graph", [False, True])
def test_rollover_budget_forcing_spends_the_whole_budget(budget, steps, graph):
    # unused evaluations roll over to the last proposal step, which spends them all
    model = _model()
    if graph:
        batch = torch.repeat_interleave(torch.arange(3), torch.tensor([2, 1, 3]))
        like = torch.zeros(6, 2, dtype=torch.float64)
        target = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        kw = dict(reward=reward_graph, batch=batch, cond={"target": target})
    else:
        like, kw = torch.zeros(6, 2, dtype=torch.float64), dict(reward=reward_dense)
    res = rollover_budget_forcing(model, like, budget=budget, steps=steps,
                                  generator=torch.Generator().manual_seed(1), **kw)
    assert res.nfe.tolist() == [budget] * (3 if graph else 6)
    assert int(res.nfe.sum()) == model.evals
    assert res.particles == budget // steps


def test_rollover_budget_forcing_with_one_step_is_best_of_n():
    # one step: no proposal steps, the search is the best of its `budget` starts (linear path:
    # x1_hat(x0) is the one-step sample itself), drawn from the same random stream
    model = _model()
    like = torch.zeros(5, 2, dtype=torch.float64)
    a = rollover_budget_forcing(model, like, reward=reward_dense, budget=6, steps=1,
                                generator=torch.Generator().manual_seed(2))
    b = best_of_n(model, like, reward=reward_dense, budget=6, steps=1,
                  generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.x, b.x) and torch.equal(a.reward, b.reward)


def test_rollover_budget_forcing_last_step_keeps_its_best_proposal():
    # two steps: the only proposal step is the last; it must not stop at the first proposal that
    # beats the start but return the best of all budget - 1 proposals
    model = _model()
    r, budget = 4, 9
    like = torch.zeros(r, 2, dtype=torch.float64)
    res = rollover_budget_forcing(model, like, reward=reward_dense, budget=budget, steps=2,
                                  initial_particles=1, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(r, 2, generator=g, dtype=torch.float64)
    v0 = model(x0, torch.zeros(r, dtype=torch.float64))
    dyn, half = SDEStep(), torch.full((r,), 0.5, dtype=torch.float64)
    best = torch.full((r,), -float("inf"), dtype=torch.float64)
    for _ in range(budget - 1):
        xp = dyn(v0, x0, 0.0, 0.5, generator=g)
        best = torch.maximum(best, reward_dense(xp + 0.5 * model(xp, half)))
    torch.testing.assert_close(res.reward, best)


def test_bad_initial_particles():
    like = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="initial_particles"):
        rollover_budget_forcing(_model(), like, reward=reward_dense, budget=8, steps=4,
                                initial_particles=6)


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


@pytest.mark.parametrize("search", SEARCHES)
def test_searches_take_a_source_object_with_a_conditional_mean(search):
    # the TS-style source m(cond) + s z, given once as a Source and once as the matching SDE step
    m = torch.tensor([1.0, -1.0], dtype=torch.float64)
    src = GaussianSource(scale=0.3, mean=lambda cond: cond["mean"])
    model = _model()
    like = torch.zeros(5, 2, dtype=torch.float64)
    res = search(model, like, reward=reward_dense, budget=8, steps=4, source=src,
                 dynamics=SDEStep.for_source(src), cond={"mean": m.expand(5, 2)},
                 generator=torch.Generator().manual_seed(0))
    assert res.x.shape == like.shape and bool(torch.isfinite(res.x).all())
    assert int(res.nfe.sum()) == model.evals
    assert ParticleSource is Source and isinstance(gaussian_source(0.5), GaussianSource)

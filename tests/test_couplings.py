"""Couplings: exact OT is an optimal permutation, entropic plans have the right marginals, OT within
a condition stays inside its label, Kabsch alignment is a proper per-graph rotation."""

from __future__ import annotations

import itertools
import math

import ot
import pytest
import torch

from sciflow.couplings import (
    ConditionalOTCoupling,
    CouplingResult,
    ExactOTCoupling,
    IndependentCoupling,
    KabschCoupling,
    PairedCoupling,
    SchrodingerBridgeCoupling,
    SinkhornCoupling,
    auto_solver,
    kabsch_align,
    kabsch_rotation,
    permutation_match,
    sinkhorn_plan,
    squared_distance_cost,
)

DTYPES = [torch.float32, torch.float64]
SOLVERS = ["auto", "emd", "hungarian"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair_cost(r: CouplingResult) -> float:
    return float((r.x0 - r.x1).reshape(r.x0.shape[0], -1).square().sum(1).mean())


def _random_rotation(d: int, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


# ------------------------------------------------------------------ exact OT


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_exact_ot_is_a_permutation_and_lowers_the_cost(dtype: torch.dtype, solver: str) -> None:
    g = _gen(1)
    x0 = torch.randn(200, 2, generator=g, dtype=dtype)
    x1 = torch.randn(200, 2, generator=g, dtype=dtype) * 0.5 + torch.tensor(
        [3.0, -1.0], dtype=dtype
    )
    r = ExactOTCoupling(solver=solver)(x0, x1)
    assert torch.equal(torch.sort(r.index0).values, torch.arange(200))
    assert torch.equal(r.x0, x0[r.index0]) and torch.equal(r.x1, x1)
    assert r.x0.dtype == dtype
    assert _pair_cost(r) < _pair_cost(IndependentCoupling()(x0, x1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_exact_ot_equals_brute_force_optimum(dtype: torch.dtype, solver: str) -> None:
    g = _gen(2)
    for _ in range(3):
        x0 = torch.randn(6, 3, generator=g, dtype=dtype)
        x1 = torch.randn(6, 3, generator=g, dtype=dtype)
        cost = squared_distance_cost(x0, x1)
        best = min(float(cost[list(p), range(6)].sum()) for p in itertools.permutations(range(6)))
        r = ExactOTCoupling(solver=solver)(x0, x1)
        got = float(cost[r.index0, torch.arange(6)].sum())
        assert got == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_exact_ot_solvers_agree_and_handle_ties() -> None:
    g = _gen(3)
    x0 = torch.randn(64, 5, generator=g, dtype=torch.float64)
    x1 = torch.randn(64, 5, generator=g, dtype=torch.float64) + 1.0
    a = ExactOTCoupling(solver="emd")(x0, x1)
    b = ExactOTCoupling(solver="hungarian")(x0, x1)
    assert _pair_cost(a) == pytest.approx(_pair_cost(b), rel=1e-12)
    # Many identical sources: every assignment is optimal, the result must stay a permutation.
    same = torch.zeros(32, 2)
    same[16:] = 1.0
    r = ExactOTCoupling()(same, torch.randn(32, 2, generator=g))
    assert torch.equal(torch.sort(r.index0).values, torch.arange(32))


def test_exact_ot_on_images_flattens_samples() -> None:
    g = _gen(4)
    x0 = torch.randn(8, 1, 3, 3, generator=g)
    x1 = x0[torch.randperm(8, generator=g)] + 0.01 * torch.randn(8, 1, 3, 3, generator=g)
    r = ExactOTCoupling()(x0, x1)
    assert torch.allclose(r.x0, x1, atol=0.1)


def test_independent_and_paired_keep_the_order() -> None:
    x0, x1 = torch.randn(5, 2), torch.randn(5, 2)
    cond = {"c": torch.arange(5)}
    for coupling in (IndependentCoupling(), PairedCoupling()):
        r = coupling(x0, x1, cond=cond)
        assert torch.equal(r.x0, x0) and torch.equal(r.x1, x1) and r.cond is cond
        assert torch.equal(r.index0, torch.arange(5))
        ragged = coupling(x0, x1, batch=torch.tensor([0, 0, 1, 1, 1]))
        assert torch.equal(ragged.x0, x0)


# ------------------------------------------------------------------ entropic OT


@pytest.mark.parametrize("dtype", DTYPES)
def test_sinkhorn_plan_marginals_and_limits(dtype: torch.dtype) -> None:
    g = _gen(5)
    x0 = torch.randn(30, 2, generator=g, dtype=dtype)
    x1 = torch.randn(20, 2, generator=g, dtype=dtype) + 1.0
    cost = squared_distance_cost(x0, x1)
    plan = sinkhorn_plan(cost, reg=0.3, tol=1e-10)
    assert torch.allclose(plan.sum(1), torch.full((30,), 1 / 30, dtype=plan.dtype), atol=1e-10)
    assert torch.allclose(plan.sum(0), torch.full((20,), 1 / 20, dtype=plan.dtype), atol=1e-12)
    assert bool((plan > 0).all())
    uniform_a = torch.full((30,), 1 / 30, dtype=torch.float64).numpy()
    uniform_b = torch.full((20,), 1 / 20, dtype=torch.float64).numpy()
    # Agrees with POT's (independent) implementation.
    reference = ot.sinkhorn(
        uniform_a, uniform_b, cost.numpy(), 1.0, stopThr=1e-13, numItermax=10_000
    )
    assert torch.allclose(
        sinkhorn_plan(cost, reg=1.0, tol=1e-12), torch.from_numpy(reference), atol=1e-10
    )
    # Entropic cost bracket: OT <= <P_reg, C> <= OT + reg log(n m), and it decreases with reg.
    exact = float(ot.emd2(uniform_a, uniform_b, cost.numpy()))
    costs = []
    for reg in (1.0, 0.3, 0.1):
        costs.append(float((sinkhorn_plan(cost, reg=reg, tol=1e-9, max_iter=5000) * cost).sum()))
        assert exact - 1e-9 <= costs[-1] <= exact + reg * math.log(30 * 20)
    assert costs[0] > costs[1] > costs[2]
    # Huge reg: the independent plan 1/(n m).
    assert torch.allclose(
        sinkhorn_plan(cost, reg=1e6), torch.full((30, 20), 1 / 600, dtype=torch.float64), rtol=1e-4
    )


def test_sinkhorn_warns_without_convergence() -> None:
    cost = squared_distance_cost(
        torch.randn(10, 2, generator=_gen(6)), torch.randn(10, 2, generator=_gen(7))
    )
    with pytest.warns(RuntimeWarning, match="did not converge"):
        sinkhorn_plan(cost, reg=1e-3, max_iter=3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sinkhorn_and_bridge_couplings_sample_from_columns(dtype: torch.dtype) -> None:
    g = _gen(8)
    x0 = torch.randn(64, 2, generator=g, dtype=dtype)
    x1 = torch.randn(64, 2, generator=g, dtype=dtype) + 4.0
    cond = torch.randn(64, 3, generator=g)
    r = SinkhornCoupling(reg=0.05)(x0, x1, cond=cond, generator=_gen(9))
    assert torch.equal(r.x1, x1) and r.cond is cond and r.x0.dtype == dtype
    assert int(r.index0.min()) >= 0 and int(r.index0.max()) < 64
    assert torch.equal(r.x0, x0[r.index0])
    assert _pair_cost(r) < _pair_cost(IndependentCoupling()(x0, x1))
    # Reproducible from the generator; the bridge is Sinkhorn with reg = 2 sigma^2.
    sigma = 0.3
    a = SchrodingerBridgeCoupling(sigma=sigma)(x0, x1, generator=_gen(10))
    b = SinkhornCoupling(reg=2 * sigma**2)(x0, x1, generator=_gen(10))
    assert torch.equal(a.index0, b.index0)


def test_sinkhorn_sampling_follows_the_plan_columns() -> None:
    # Two sources and two targets: column j of the plan is the law of target j's partner.
    x0 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    x1 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    coupling = SinkhornCoupling(reg=1.0)
    plan = coupling.plan(x0, x1)
    gen = _gen(11)
    hits = torch.stack([coupling.pair_indices(x0, x1, generator=gen) for _ in range(1500)])
    freq = (hits[:, 0] == 0).double().mean()
    expected = plan[0, 0] / plan[:, 0].sum()  # = e^0 / (e^0 + e^-1)
    assert float(expected) == pytest.approx(1 / (1 + math.exp(-1.0)), rel=1e-6)
    assert abs(float(freq - expected)) < 0.05  # 4 standard errors


# ------------------------------------------------------------------ OT within a condition


@pytest.mark.parametrize("base", [None, SinkhornCoupling(reg=0.1)])
def test_conditional_ot_never_pairs_across_labels(base: SinkhornCoupling | None) -> None:
    g = _gen(12)
    labels = torch.randint(0, 4, (120,), generator=g)
    x0 = torch.randn(120, 2, generator=g)
    x1 = torch.randn(120, 2, generator=g) + labels[:, None].float()
    r = ConditionalOTCoupling(base=base)(x0, x1, cond=labels)
    assert torch.equal(labels[r.index0], labels)
    if base is None:
        assert torch.equal(torch.sort(r.index0).values, torch.arange(120))
        for k in range(4):
            rows = (labels == k).nonzero(as_tuple=True)[0]
            alone = ExactOTCoupling()(x0[rows], x1[rows])
            assert torch.equal(r.index0[rows], rows[alone.index0])


def test_conditional_ot_reads_dict_conditions_and_vector_labels() -> None:
    g = _gen(13)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (40,), generator=g), 3).float()
    cond = {"label": onehot, "temperature": torch.rand(40, generator=g)}
    x0, x1 = torch.randn(40, 2, generator=g), torch.randn(40, 2, generator=g)
    r = ConditionalOTCoupling(key="label")(x0, x1, cond=cond)
    assert torch.equal(onehot[r.index0], onehot)
    assert r.cond is cond
    with pytest.raises(ValueError, match="key="):
        ConditionalOTCoupling()(x0, x1, cond=cond)
    with pytest.raises(KeyError, match="nope"):
        ConditionalOTCoupling(key="nope")(x0, x1, cond=cond)
    with pytest.raises(ValueError, match="needs cond"):
        ConditionalOTCoupling()(x0, x1)


def test_auto_solver_follows_the_measured_crossovers() -> None:
    assert ExactOTCoupling().solver == "auto"
    assert [auto_solver(n, 2) for n in (64, 191, 192, 1024)] == [
        "hungarian", "hungarian", "emd", "emd"]
    assert [auto_solver(n, 16) for n in (128, 256)] == ["hungarian", "emd"]
    assert [auto_solver(n, 64) for n in (256, 511, 512)] == ["hungarian", "hungarian", "emd"]
    # both sides of a crossover give the same optimum
    x0, x1 = torch.randn(200, 2, generator=_gen(5)), torch.randn(200, 2, generator=_gen(6))
    costs = {s: _pair_cost(ExactOTCoupling(solver=s)(x0, x1)) for s in ("emd", "hungarian")}
    assert costs["emd"] == pytest.approx(costs["hungarian"], rel=1e-6)


def test_independent_coupling_returns_the_sources_themselves() -> None:
    x0, x1 = torch.randn(6, 3), torch.randn(6, 3)
    r = IndependentCoupling()(x0, x1)
    assert r.x0 is x0 and r.x1 is x1 and r.index0.tolist() == list(range(6))
    with pytest.raises(ValueError, match="rows"):
        IndependentCoupling()(x0, x1, cond=torch.zeros(5))


# ------------------------------------------------------------------ bad inputs


def test_dense_couplings_reject_bad_input() -> None:
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="same shape"):
        ExactOTCoupling()(x, torch.randn(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        ExactOTCoupling()(x, torch.full((4, 2), float("nan")))
    with pytest.raises(TypeError, match="floating"):
        ExactOTCoupling()(x, torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        ExactOTCoupling()(x.numpy(), x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="KabschCoupling"):
        ExactOTCoupling()(x, x, batch=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="rows"):
        ExactOTCoupling()(x, x, cond=torch.zeros(3))
    with pytest.raises(ValueError, match="solver"):
        ExactOTCoupling(solver="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reg"):
        SinkhornCoupling(reg=0.0)
    with pytest.raises(ValueError, match="sigma"):
        SchrodingerBridgeCoupling(sigma=-1.0)
    with pytest.raises(ValueError, match="at least one row"):
        ExactOTCoupling()(torch.zeros(0, 2), torch.zeros(0, 2))


# ------------------------------------------------------------------ point clouds


def _ragged(
    sizes: list[int], g: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return torch.randn(sum(sizes), 3, generator=g, dtype=dtype), batch


@pytest.mark.parametrize("dtype", DTYPES)
def test_kabsch_recovers_a_known_rotation(dtype: torch.dtype) -> None:
    g = _gen(14)
    x = torch.randn(9, 3, generator=g, dtype=dtype)
    rot = _random_rotation(3, g, dtype)
    y = x @ rot.T + torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    r = kabsch_rotation(x, y)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert r.shape == (1, 3, 3)
    assert torch.allclose(r[0], rot, atol=tol)
    assert torch.linalg.det(r[0]).item() == pytest.approx(1.0, abs=tol)
    assert torch.allclose(kabsch_align(x, y, translate=True), y, atol=10 * tol)
    # Default: rotation about x's own centroid, which stays put.
    aligned = kabsch_align(x, y)
    assert torch.allclose(aligned.mean(0), x.mean(0), atol=tol)
    assert torch.allclose(aligned - aligned.mean(0), y - y.mean(0), atol=10 * tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kabsch_never_matches_a_mirror_image(dtype: torch.dtype) -> None:
    g = _gen(15)
    x = torch.randn(8, 3, generator=g, dtype=dtype)
    mirror = _random_rotation(3, g, dtype) @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=dtype))
    y = x @ mirror.T
    r = kabsch_rotation(x, y)[0]
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=dtype), atol=1e-5)
    residual = (kabsch_align(x, y, translate=True) - y).norm()
    assert residual > 0.1 * y.norm()  # a reflection would make it zero
    # The better of the two parities: any other proper rotation does no better.
    for _ in range(20):
        other = _random_rotation(3, g, dtype)
        xc = x - x.mean(0)
        assert (xc @ other.T + y.mean(0) - y).norm() >= residual - 1e-5


@pytest.mark.parametrize("dtype", DTYPES)
def test_kabsch_is_per_graph_on_ragged_batches(dtype: torch.dtype) -> None:
    g = _gen(16)
    sizes = [4, 7, 1, 5]
    x, batch = _ragged(sizes, g, dtype)
    rots = torch.stack([_random_rotation(3, g, dtype) for _ in sizes])
    y = (
        torch.einsum("nij,nj->ni", rots[batch], x)
        + torch.randn(len(sizes), 3, generator=g, dtype=dtype)[batch]
    )
    aligned = kabsch_align(x, y, batch, translate=True)
    assert torch.allclose(aligned, y, atol=1e-4 if dtype == torch.float32 else 1e-10)
    # Graphs are independent: changing graph 1's target leaves the other graphs' output alone.
    y2 = y.clone()
    y2[batch == 1] = torch.randn(7, 3, generator=g, dtype=dtype)
    aligned2 = kabsch_align(x, y2, batch, translate=True)
    assert torch.equal(aligned2[batch != 1], aligned[batch != 1])
    # Row order does not matter (batch need not be sorted).
    perm = torch.randperm(x.shape[0], generator=g)
    assert torch.allclose(
        kabsch_align(x[perm], y[perm], batch[perm], translate=True), aligned[perm], atol=1e-5
    )


def test_kabsch_weights_ignore_zero_weight_atoms() -> None:
    g = _gen(17)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    rot = _random_rotation(3, g, torch.float64)
    y = x @ rot.T
    y[7:] += 5.0 * torch.randn(3, 3, generator=g, dtype=torch.float64)  # outliers
    w = torch.ones(10, dtype=torch.float64)
    w[7:] = 0.0
    assert torch.allclose(kabsch_rotation(x, y, weights=w)[0], rot, atol=1e-10)
    assert not torch.allclose(kabsch_rotation(x, y)[0], rot, atol=1e-3)


def test_permutation_match_stays_within_graphs_and_types() -> None:
    g = _gen(18)
    sizes = [6, 9, 5]
    x0, batch = _ragged(sizes, g, torch.float64)
    types = torch.randint(0, 3, (x0.shape[0],), generator=g)
    # Target = the source with atoms shuffled inside each (graph, type) group, slightly moved.
    truth = torch.arange(x0.shape[0])
    for b in range(3):
        for k in range(3):
            rows = ((batch == b) & (types == k)).nonzero(as_tuple=True)[0]
            truth[rows] = rows[torch.randperm(rows.numel(), generator=g)]
    x1 = x0[truth] + 1e-3 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    index = permutation_match(x0, x1, types, batch)
    assert torch.equal(torch.sort(index).values, torch.arange(x0.shape[0]))
    assert torch.equal(batch[index], batch) and torch.equal(types[index], types)
    assert torch.equal(index, truth)


def test_permutation_match_is_optimal_within_a_type() -> None:
    g = _gen(19)
    x0 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    x1 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    types = torch.zeros(6, dtype=torch.long)
    index = permutation_match(x0, x1, types)
    c0, c1 = x0 - x0.mean(0), x1 - x1.mean(0)
    got = float((c0[index] - c1).square().sum())
    best = min(float((c0[list(p)] - c1).square().sum()) for p in itertools.permutations(range(6)))
    assert got == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kabsch_coupling_rotates_noise_onto_targets(dtype: torch.dtype) -> None:
    g = _gen(20)
    sizes = [5, 8, 3]
    x1, batch = _ragged(sizes, g, dtype)
    x0, _ = _ragged(sizes, g, dtype)
    types = torch.randint(0, 2, (x1.shape[0],), generator=g)
    plain = KabschCoupling()(x0, x1, batch=batch)
    assert torch.equal(plain.index0, torch.arange(x0.shape[0]))
    # A rotation about each centroid: per-node distances to the centroid are unchanged.
    from sciflow.graphs import center

    def radii(z: torch.Tensor) -> torch.Tensor:
        return center(z, batch).norm(dim=1)

    assert torch.allclose(radii(plain.x0), radii(x0), atol=1e-5)
    before = (center(x0, batch) - center(x1, batch)).square().sum()
    after = (center(plain.x0, batch) - center(x1, batch)).square().sum()
    assert after <= before + 1e-5
    cond = {"types": types, "label": torch.ones(3)}
    matched = KabschCoupling(types_key="types")(x0, x1, cond=cond, batch=batch)
    assert torch.equal(types[matched.index0], types) and torch.equal(batch[matched.index0], batch)
    assert matched.cond is cond
    explicit = KabschCoupling()(x0, x1, batch=batch, atom_types=types)
    assert torch.equal(explicit.x0, matched.x0)
    after_perm = (center(matched.x0, batch) - center(x1, batch)).square().sum()
    assert after_perm <= after + 1e-5
    with pytest.raises(ValueError, match="types_key"):
        KabschCoupling(types_key="types")(x0, x1, batch=batch)


def test_point_cloud_functions_reject_bad_input() -> None:
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match="batch"):
        kabsch_align(x, x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        kabsch_align(torch.randn(5), torch.randn(5))
    with pytest.raises(ValueError, match="weights"):
        kabsch_align(x, x, weights=-torch.ones(5))
    with pytest.raises(ValueError, match="atom types"):
        permutation_match(x, x, torch.zeros(5))

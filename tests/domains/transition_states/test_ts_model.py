"""The TS velocity field: E(3)-equivariant in (x, R, P) together, per molecule, with every network."""

import pytest
import torch

from sciflow.domains.transition_states import Config, TSModelConfig, make_source
from sciflow.domains.transition_states.data import TSCondition
from sciflow.domains.transition_states.network import TSVelocity, build_model
from sciflow.errors import InputError
from sciflow.graphs import graph_sum
from sciflow.paths import AffinePath
from sciflow.sources import Source
from sciflow.testing import default_dtype, random_orthogonal

SIZES = (4, 6, 5)


def _inputs(dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES))
    n = batch.numel()
    features = torch.nn.functional.one_hot(torch.randint(4, (n,), generator=g), 4).to(dtype)
    x, r, p = (torch.randn(n, 3, generator=g, dtype=torch.float64).to(dtype) * 1.5 for _ in range(3))
    t = torch.rand(len(SIZES), generator=g, dtype=torch.float64).to(dtype)
    return x, t, TSCondition(features, r, p), batch


def _model(network: str, dtype: torch.dtype, target: str = "x1") -> TSVelocity:
    torch.manual_seed(0)
    with default_dtype(dtype):
        return TSVelocity(Config(network=network, hidden=16, layers=2, vector_channels=3,
                                 num_rbf=8, time_dim=8, target=target, elements=(1, 6, 7, 8)))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@pytest.mark.parametrize("network, target", [("egnn", "x1"), ("painn", "x1"), ("e3nn", "x1"),
                                             ("egnn", "velocity")])
def test_velocity_is_equivariant(network, target, dtype, tol):
    model = _model(network, dtype, target)
    x, t, cond, batch = _inputs(dtype)
    with torch.no_grad():
        v = model.velocity(x, t, cond=cond, batch=batch)
        x1 = model(x, t, cond=cond, batch=batch)  # x1hat or v: moves with the molecule
        scale = v.abs().max()
        assert scale > 0
        g = torch.Generator().manual_seed(1)
        for proper in (True, False, True, False):
            q = random_orthogonal(len(SIZES), proper=proper, generator=g, dtype=dtype)[batch]
            b = torch.randn(len(SIZES), 3, generator=g, dtype=torch.float64).to(dtype)[batch] * 3

            def move(y, q=q, b=b):
                return torch.einsum("nij,nj->ni", q, y) + b

            moved = TSCondition(cond.features, move(cond.reactant), move(cond.product))
            v2 = model.velocity(move(x), t, cond=moved, batch=batch)
            err = (v2 - torch.einsum("nij,nj->ni", q, v)).abs().max() / scale
            assert err < tol, f"{'rotation' if proper else 'reflection'} error {err:.2e}"
            if target == "x1":
                x1_moved = model(move(x), t, cond=moved, batch=batch)
                assert (x1_moved - move(x1)).abs().max() / x1.abs().max() < tol
        # permuting atoms inside each molecule permutes the velocity
        perm = torch.argsort(batch.double() + torch.rand(batch.numel(), generator=g, dtype=torch.float64))
        permuted = TSCondition(cond.features[perm], cond.reactant[perm], cond.product[perm])
        err = (model.velocity(x[perm], t, cond=permuted, batch=batch[perm]) - v[perm]).abs().max() / scale
        assert err < tol
        # a molecule's velocity does not depend on the others in the batch
        for k in range(len(SIZES)):
            m = batch == k
            alone = TSCondition(cond.features[m], cond.reactant[m], cond.product[m])
            v_k = model.velocity(x[m], t[k:k + 1], cond=alone,
                                 batch=torch.zeros(int(m.sum()), dtype=torch.long))
            assert (v_k - v[m]).abs().max() / scale < tol
        # zero net velocity per molecule (the centred x, R, P): the centre of mass never drifts
        centred = [c - graph_sum(c, batch)[batch] / torch.tensor(SIZES, dtype=dtype)[batch, None]
                   for c in (x, cond.reactant, cond.product)]
        v_c = model.velocity(centred[0], t, cond=TSCondition(cond.features, *centred[1:]), batch=batch)
        assert graph_sum(v_c, batch).abs().max() / scale < tol


@pytest.mark.parametrize("network", ["egnn", "painn"])
def test_velocity_depends_on_reactant_and_product(network):
    model = _model(network, torch.float64)
    x, t, cond, batch = _inputs(torch.float64)
    with torch.no_grad():
        v = model.velocity(x, t, cond=cond, batch=batch)
        other_p = TSCondition(cond.features, cond.reactant, cond.product + 0.3 * torch.randn_like(x))
        other_r = TSCondition(cond.features, cond.reactant + 0.3 * torch.randn_like(x), cond.product)
        assert (model.velocity(x, t, cond=other_p, batch=batch) - v).abs().max() > 1e-6
        assert (model.velocity(x, t, cond=other_r, batch=batch) - v).abs().max() > 1e-6


def test_source_is_centred_and_around_midpoint():
    x, t, cond, batch = _inputs(torch.float32)
    cond = TSCondition(cond.features, cond.reactant - graph_sum(cond.reactant, batch)[batch] / 5,
                       cond.product)
    model = build_model(hidden=8, layers=1, source="midpoint", source_scale=0.2)
    x0 = model.sample_source(cond, batch, generator=torch.Generator().manual_seed(0))
    noise = x0 - 0.5 * (cond.reactant + cond.product)
    assert graph_sum(noise, batch).abs().max() < 1e-5  # noise centred per molecule
    assert 0.1 < noise.std() < 0.3
    gauss = build_model(hidden=8, layers=1, source="gaussian", source_scale=1.0)
    x0 = gauss.sample_source(cond, batch, generator=torch.Generator().manual_seed(0))
    assert graph_sum(x0, batch).abs().max() < 1e-5 and 0.7 < x0.std() < 1.3


@pytest.mark.parametrize("source", ["midpoint", "gaussian"])
def test_source_is_a_core_source_and_the_network_draws_from_it(source):
    _, _, cond, batch = _inputs(torch.float32)
    config = Config(hidden=8, layers=1, source=source)
    src = make_source(config)
    assert isinstance(src, Source)
    a = src.sample(cond.reactant, cond=cond, batch=batch, generator=torch.Generator().manual_seed(3))
    b = TSVelocity(config).sample_source(cond, batch, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    ({"network": "gcn"}, "network='gcn': choose from"),
    ({"source": "uniform"}, "source='uniform': choose from"),
    ({"source_scale": 0.0}, "source_scale=0.0: expected a finite number > 0"),
    ({"target": "score"}, "target='score': choose from"),
    ({"hidden": 0}, "hidden=0: expected an integer >= 1"),
    ({"batch_size": -1}, "batch_size=-1: expected an integer >= 1"),
    ({"elements": (1, 1)}, "elements=(1, 1): expected distinct atomic numbers"),
    ({"distance_weight": -0.5}, "distance_weight=-0.5"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config(**kwargs)


def test_config_contains_the_train_config_and_round_trips():
    from sciflow.train import TrainConfig

    cfg = Config(network="painn", hidden=32, elements=(1, 6, 8), source="gaussian").replace(
        train={"steps": 7, "lr": 3e-3})
    assert isinstance(cfg.train, TrainConfig) and cfg.train.steps == 7 and cfg.train.lr == 3e-3
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert TSModelConfig is Config  # the former name
    with pytest.raises(InputError, match="unknown TS model settings"):
        Config.from_dict({**cfg.to_dict(), "hiden": 3})
    # no TrainConfig field is re-declared on the domain's Config
    import dataclasses

    mine = {f.name for f in dataclasses.fields(Config)} - {"train"}
    assert not mine & {f.name for f in dataclasses.fields(TrainConfig)}


def test_former_settings_build_a_config():
    from sciflow.domains.transition_states import TSTrainSettings

    cfg = TSTrainSettings(steps=12, batch_size=3, lr=2e-3, reverse=False)
    assert cfg.train.steps == 12 and cfg.train.lr == 2e-3 and cfg.batch_size == 3
    assert not cfg.reverse and cfg.hidden == Config().hidden
    with pytest.raises(InputError, match="unknown training settings"):
        TSTrainSettings(stpes=3)


def test_wrong_condition_type_is_a_clear_error():
    model = build_model(hidden=8, layers=1)
    with pytest.raises(TypeError, match="needs cond=TSCondition"):
        model(torch.zeros(3, 3), torch.zeros(1), cond=None)


def test_x1_target_falls_back_to_the_midpoint_and_gives_the_linear_path_velocity():
    model = _model("egnn", torch.float64)
    x, t, cond, batch = _inputs(torch.float64)
    with torch.no_grad():
        for p in model.net.parameters():
            p.zero_()
        x1 = model(x, t, cond=cond, batch=batch)
        torch.testing.assert_close(x1, 0.5 * (cond.reactant + cond.product))
        v = model.velocity(x, t, cond=cond, batch=batch)
        torch.testing.assert_close(v, (x1 - x) / (1 - t[batch, None]))


@pytest.mark.parametrize("target", ["x1", "velocity"])
def test_velocity_is_the_core_conversion_and_finite_at_t_1(target):
    """v of an x1-prediction comes from the path with the source's conditional mean (finite and
    exact at t = 1: v = x1_hat - m there), never a hand-written division."""
    model = _model("egnn", torch.float64, target)
    x, _, cond, batch = _inputs(torch.float64)
    path = AffinePath()
    m = make_source(model.config).mean_of(x, cond=cond)
    with torch.no_grad():
        for tv in (0.0, 0.5, 0.999, 1.0):
            t = torch.full((len(SIZES),), tv, dtype=torch.float64)
            v = model.velocity(x, t, cond=cond, batch=batch)
            assert torch.isfinite(v).all()
            out = model(x, t, cond=cond, batch=batch)
            expected = out if target == "velocity" else path.x1_to_velocity(out, x, t[batch],
                                                                          x0_mean=m)
            torch.testing.assert_close(v, expected, rtol=0, atol=0)
            if target == "x1" and tv == 1.0:
                torch.testing.assert_close(v, out - m)

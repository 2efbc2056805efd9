"""The population-conditioned velocity network: contract, conditioning, invariances, units."""

import pytest
import torch

from sciflow.domains.single_cell import CellFlowModel, Config
from sciflow.errors import InputError


def _spec(model_type, **kw):
    base = dict(dim=3, hidden=16, layers=2, time_dim=8, fourier=4, gnn_hidden=8, gnn_layers=2,
                knn=3)
    if model_type == "cgfm":
        base["populations"] = ("p0", "p1")
        base["spare_slots"] = 3
    base.update(kw)
    return Config(model_type=model_type, **base)


def _groups(sizes, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), dim, generator=g)
    return x, torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])


@pytest.mark.parametrize("method", ["mfm", "fm", "cgfm"])
def test_velocity_contract_per_group_equals_per_row(method):
    torch.manual_seed(0)
    model = CellFlowModel(_spec(method, conditions=("a", "b")))
    x, batch = _groups([7, 9])
    cond = model.condition(x, batch, populations=["p0", "p7"], conditions=["a", "b"])
    assert cond.shape == (2, model.config.cond_dim)
    t = torch.tensor([0.2, 0.7])
    v = model(x, t, cond=cond, batch=batch)
    assert v.shape == x.shape
    torch.testing.assert_close(v, model(x, t[batch], cond=cond[batch]))


def test_fm_without_conditions_needs_no_cond_and_ignores_population():
    model = CellFlowModel(_spec("fm"))
    assert model.config.cond_dim == 0
    x, batch = _groups([5, 5])
    c = model.condition(x, batch, populations=["u", "v"], conditions=[None, None])
    assert c.shape == (2, 0)
    torch.testing.assert_close(model(x, 0.3), model(x, 0.3, cond=c, batch=batch))


def test_mfm_condition_is_invariant_to_cell_order_and_sees_the_population():
    torch.manual_seed(1)
    model = CellFlowModel(_spec("mfm")).double()
    x, batch = _groups([10, 12])
    x = x.double()
    perm = torch.randperm(22)
    names = dict(populations=["a", "b"], conditions=[None, None])
    c1 = model.condition(x, batch, **names)
    torch.testing.assert_close(model.condition(x[perm], batch[perm], **names), c1)
    c2 = model.condition(x + 1.0, batch, **names)
    assert not torch.allclose(c1, c2)


def test_cgfm_unseen_population_gets_a_stable_spare_slot():
    model = CellFlowModel(_spec("cgfm"))
    assert model.population_slot("p1") == 1
    slot = model.population_slot("never-seen")
    assert 2 <= slot < 5 and slot == model.population_slot("never-seen")
    x, batch = _groups([4])
    c = model.condition(x, batch, populations=["never-seen"], conditions=[None])
    assert c[0, slot] == 1 and c.sum() == 1
    no_spare = CellFlowModel(_spec("cgfm", spare_slots=0))
    with pytest.raises(ValueError, match="not seen in training"):
        no_spare.population_slot("never-seen")


def test_standardisation_makes_the_field_unit_equivariant():
    """Cells in other units (x' = a x + b per feature) with matching standardisation give
    v' = a v: the model does not care about the user's units."""
    torch.manual_seed(2)
    spec = _spec("mfm")
    m1 = CellFlowModel(spec).double()
    m2 = CellFlowModel(spec).double()
    m2.load_state_dict(m1.state_dict())
    cells = torch.randn(50, 3, dtype=torch.float64)
    a = torch.tensor([2.0, 0.5, 10.0], dtype=torch.float64)
    b = torch.tensor([1.0, -3.0, 0.0], dtype=torch.float64)
    m1.set_standardization(cells)
    m2.set_standardization(a * cells + b)
    x, batch = _groups([9, 8])
    x = x.double()
    names = dict(populations=["p", "q"], conditions=[None, None])
    c1 = m1.condition(x, batch, **names)
    c2 = m2.condition(a * x + b, batch, **names)
    torch.testing.assert_close(c2, c1)
    t = torch.tensor([0.1, 0.9], dtype=torch.float64)
    torch.testing.assert_close(m2(a * x + b, t, cond=c2, batch=batch),
                               a * m1(x, t, cond=c1, batch=batch))


def test_config_round_trip_and_bad_values():
    spec = _spec("cgfm", conditions=("x",)).replace(train={"steps": 7, "lr": 0.01})
    assert Config.from_dict(spec.to_dict()) == spec
    assert Config.from_dict({"method": "fm", "dim": 2}).model_type == "fm"  # a sciflow 0.1 spec
    with pytest.raises(InputError, match="model_type='gfm'"):
        Config(model_type="gfm", dim=2)
    with pytest.raises(InputError, match="needs the training population names"):
        CellFlowModel(Config(model_type="cgfm", dim=2))
    with pytest.raises(InputError, match="needs config.dim"):
        CellFlowModel(Config(model_type="fm"))
    with pytest.raises(InputError, match="knn=-1: expected an integer >= 0"):
        Config(model_type="mfm", dim=2, knn=-1)
    with pytest.raises(InputError, match="cells_per_population=10: MFM"):
        Config(knn=20, cells_per_population=10)


def test_bad_calls_are_explained():
    model = CellFlowModel(_spec("mfm", conditions=("a",)))
    x, batch = _groups([6])
    with pytest.raises(ValueError, match="condition 'z' is unknown"):
        model.condition(x, batch, populations=["p"], conditions=["z"])
    with pytest.raises(ValueError, match="needs cond of width"):
        model(x, 0.5)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        model(torch.randn(4, 2), 0.5)

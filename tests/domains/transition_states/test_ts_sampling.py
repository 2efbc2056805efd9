"""Sampling: equivariance, every solver finite, the core's conversion, NaN refused with its place."""

import numpy as np
import pytest
import torch
from ase import Atoms

from sciflow.domains.transition_states import (
    Config,
    Model,
    TSGenerator,
    TSInputError,
    TSVelocity,
    generate_ts,
    load_generator,
    pair_rmsd,
    prepare_endpoints,
    sample,
    sample_many,
)
from sciflow.domains.transition_states.data import stack_endpoints
from sciflow.errors import NonFiniteError
from sciflow.testing import random_orthogonal


def test_generated_ts_follows_rigid_motions_of_the_input(make_reaction):
    torch.manual_seed(0)
    model = Model(TSVelocity(Config(hidden=16, layers=2, source_scale=1e-9)),
                  meta={"default_steps": 4})
    rxn = make_reaction(1)
    ts = sample(model, rxn.reactant, rxn.product).best.get_positions()
    g = torch.Generator().manual_seed(2)
    for proper in (True, False):
        q1, q2 = random_orthogonal(2, proper=proper, generator=g).numpy()
        r = Atoms(rxn.reactant.numbers, positions=rxn.reactant.get_positions() @ q1.T + [1, 2, 3])
        # the product may come in any orientation and position: it is aligned onto the reactant
        p = Atoms(rxn.product.numbers, positions=rxn.product.get_positions() @ q2.T - [4, 0, 1])
        moved = sample(model, r, p).best.get_positions()
        if proper:
            np.testing.assert_allclose(moved, ts @ q1.T + [1, 2, 3], atol=1e-4)
        else:
            # a mirrored reactant with a mirrored product gives the mirrored TS up to alignment
            assert pair_rmsd(moved, ts @ q1.T) < 1e-4


def test_elements_outside_the_model_are_refused(tiny):
    r = Atoms("CSi", positions=[[0, 0, 0], [1.8, 0, 0]])
    with pytest.raises(TSInputError, match=r"Si are outside the model's training set \(H, C, N, O, F, P, S, Cl\)"):
        sample(Model(TSVelocity(tiny)), r, r.copy())


def test_shipped_checkpoint_generates_for_its_held_out_reactions(shipped, shipped_test):
    assert shipped.elements == (1, 6, 7, 8, 9, 15, 16, 17)  # H C N O F P S Cl
    split = shipped.meta["splits"]["random"]
    train_ids, val_ids, test_ids = (set(split[k]) for k in ("train", "val", "test"))
    assert train_ids and test_ids and not (train_ids & test_ids) and not (train_ids & val_ids)
    results = sample_many(shipped, [(r.reactant, r.product) for r in shipped_test], samples=2)
    for rxn, res in zip(shipped_test, results):
        x = res.best.get_positions()
        assert x.shape == (len(rxn.numbers), 3) and np.isfinite(x).all()
        assert pair_rmsd(x, rxn.transition_state.get_positions()) < 1.0


@pytest.mark.parametrize("solver, steps", [("heun", 4), ("rk4", 2), ("dopri5", None)])
def test_every_solver_stays_finite_and_close_to_euler(shipped, shipped_test, solver, steps):
    """Solvers that evaluate the field at t = 1 (heun, rk4, dopri5) get the core's finite
    conversion there; their TSs agree with the validated Euler sampler within 0.1 A RMSD."""
    pairs = [(r.reactant, r.product) for r in shipped_test[:2]]
    euler = sample_many(shipped, pairs)
    other = sample_many(shipped, pairs, solver=solver, sample_steps=steps)
    for a, b in zip(euler, other):
        assert np.isfinite(b.best.get_positions()).all()
        assert pair_rmsd(a.best.get_positions(), b.best.get_positions()) < 0.1


def test_euler_on_the_core_velocity_is_the_linear_path_update(shipped, shipped_test):
    """The sampler's Euler step equals x + dt (x1hat - x) / (1 - t) on the grid (t < 1)."""
    rxn = shipped_test[0]
    ep = prepare_endpoints(rxn.reactant, rxn.product, elements=shipped.elements)
    cond, ids = stack_endpoints([ep], elements=shipped.elements)
    x = shipped.source.sample(cond.reactant, cond=cond, batch=ids,
                              generator=torch.Generator().manual_seed(0))
    steps = 4
    with torch.no_grad():
        for k in range(steps):
            t = torch.full((1,), k / steps)
            x = x + (shipped.net(x, t, cond=cond, batch=ids) - x) / (1 - k / steps) / steps
    got = sample(shipped, rxn.reactant, rxn.product, sample_steps=steps).best.get_positions()
    np.testing.assert_allclose(got - ep.origin, x.double().numpy(), atol=1e-5)


def test_a_diverging_sample_is_a_nonfinite_error_naming_sample_and_step(tiny, make_reaction,
                                                                         monkeypatch):
    model = Model(TSVelocity(tiny), meta={"default_steps": 4})
    calls = {"n": 0}
    forward = TSVelocity.forward

    def blow_up(self, x, t, *, cond=None, batch=None):
        calls["n"] += 1
        out = forward(self, x, t, cond=cond, batch=batch)
        if calls["n"] >= 3:  # the third evaluation returns NaN for the second reaction's rows
            out = torch.where((batch == 1)[:, None], torch.nan, out)
        return out

    monkeypatch.setattr(TSVelocity, "forward", blow_up)
    pairs = [(make_reaction(s).reactant, make_reaction(s).product) for s in range(2)]
    with pytest.raises(NonFiniteError, match=r"reaction 1 \(5 atoms\), sample 0, holds NaN or inf "
                                             r"after solver step 3 of 4 \(euler\)"):
        sample_many(model, pairs)
    calls["n"] = 0
    kept = sample_many(model, pairs, nonfinite="keep")  # evaluation keeps it as a failure
    assert not np.isfinite(kept[1].best.get_positions()).all()
    assert np.isfinite(kept[0].best.get_positions()).all()


def test_former_names_generate_like_sample(shipped, shipped_test):
    rxn = shipped_test[0]
    assert TSGenerator is Model and isinstance(load_generator(), Model)
    new = sample(shipped, rxn.reactant, rxn.product, samples=2, sample_steps=3, seed=4)
    old = shipped.generate(rxn.reactant, rxn.product, samples=2, steps=3, seed=4, method="euler")
    np.testing.assert_array_equal(new.best.get_positions(), old.best.get_positions())
    one = generate_ts(rxn.reactant, rxn.product, steps=3, seed=4)
    np.testing.assert_array_equal(
        one.get_positions(), sample(shipped, rxn.reactant, rxn.product, sample_steps=3,
                                    seed=4).best.get_positions())

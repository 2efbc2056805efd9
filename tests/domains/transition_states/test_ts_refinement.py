"""Sella refinement from a generated TS, against the IDPP start; failures are counted, not raised."""

import math

import pytest
from ase.calculators.emt import EMT

from sciflow.domains.transition_states import pair_rmsd, refine, sample
from sciflow.errors import InputError


def test_refine_counts_sella_steps_against_the_idpp_start(shipped, shipped_test):
    rxn = shipped_test[0]
    ts = sample(shipped, rxn.reactant, rxn.product).best
    res = refine(ts, reactant=rxn.reactant, product=rxn.product, calculator=EMT, max_steps=3)
    assert 1 <= res.steps <= 3 and 1 <= res.idpp_steps <= 3
    assert res.steps_saved == res.idpp_steps - res.steps
    assert math.isfinite(res.energy) and res.fmax >= 0
    assert res.converged or res.steps == 3
    assert pair_rmsd(res.atoms.get_positions(), ts.get_positions()) > 0  # Sella moved it
    with pytest.raises(InputError, match="needs reactant= and product="):
        refine(ts, calculator=EMT)
    for kwargs, match in (({"fmax": 0.0}, "fmax=0.0"), ({"max_steps": 0}, "max_steps=0")):
        with pytest.raises(InputError, match=match):
            refine(ts, calculator=EMT, compare_idpp=False, **kwargs)


def test_a_sella_failure_is_a_failed_refinement_not_a_crash(monkeypatch, shipped_test):
    import sella

    def give_up(self, *args, **kwargs):
        raise RuntimeError("Geometry update ODE is taking too long to converge!")

    monkeypatch.setattr(sella.Sella, "run", give_up)
    rxn = shipped_test[0]
    res = refine(rxn.transition_state, reactant=rxn.reactant, product=rxn.product, calculator=EMT,
                 max_steps=7)
    assert not res.converged and res.steps == 7  # charged the whole budget
    assert not res.idpp_converged and res.idpp_steps == 7
    assert math.isfinite(res.energy)

"""TS-guess provider route, the transition-state domain adapter, and GFN2-xTB runs of the new kinds."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from ase import Atoms

from sciflow.datasets.reactions import PipelineSettings
from sciflow.datasets.reactions.candidates import enumerate_candidates, seed_from_smiles
from sciflow.datasets.reactions.conformers import conformer_candidates


def _gfn2():
    pytest.importorskip("tblite")
    pytest.importorskip("sella")
    from sciflow.datasets.reactions import GFN2

    return GFN2()


def _formamide_shift():
    seed = seed_from_smiles("NC=O")
    (cand,) = [c for c in enumerate_candidates(seed) if len(c.broken) == 1 and len(c.formed) == 1
               and 0 in c.broken[0] and 2 in c.formed[0]]
    return cand


# ----------------------------------------------------------------------------- the adapter (no model runs)
class _FakeResult:
    def __init__(self, atoms):
        self.samples = tuple(atoms)


def _fake_domain(monkeypatch, *, new_api: bool, pairs: bool = False):
    from sciflow.datasets.reactions import cli

    calls = []
    mod = types.ModuleType("sciflow.domains.transition_states")

    def shift(r, k):
        return [Atoms(numbers=r.numbers, positions=r.positions + 0.01 * (j + 1)) for j in range(k)]

    if new_api:
        mod.load = lambda path=None: calls.append(("load", path)) or "model"
        if pairs:
            def sample(model, inputs, *, samples=1):
                calls.append(("sample-pairs", model, samples))
                return [_FakeResult(shift(r, samples)) for r, _ in inputs]
        else:
            def sample(model, reactant, product, *, samples=1):
                calls.append(("sample", model, samples))
                return _FakeResult(shift(reactant, samples))
        mod.sample = sample
    else:
        class Gen:
            def generate(self, r, p, *, samples=1):
                calls.append(("generate", samples))
                return _FakeResult(shift(r, samples))

        mod.load_generator = lambda path=None: calls.append(("load_generator", path)) or Gen()
    monkeypatch.setitem(sys.modules, "sciflow.domains.transition_states", mod)
    monkeypatch.setattr(cli, "_MODELS", {})
    return calls


@pytest.mark.parametrize("new_api, pairs", [(True, False), (True, True), (False, False)])
def test_domain_adapter_prefers_load_and_sample_and_falls_back(monkeypatch, new_api, pairs):
    import pickle

    from sciflow.datasets.reactions.cli import DomainGuesses

    calls = _fake_domain(monkeypatch, new_api=new_api, pairs=pairs)
    provider = pickle.loads(pickle.dumps(DomainGuesses(samples=3)))  # workers receive it pickled
    r = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    out = provider(r, r.copy())
    again = provider(r, r.copy())
    assert len(out) == len(again) == 3 and all(isinstance(a, Atoms) for a in out)
    assert np.allclose(out[0].positions, r.positions + 0.01)
    names = [c[0] for c in calls]
    assert names[0] == ("load" if new_api else "load_generator") and names.count(names[0]) == 1  # loaded once
    assert names[1] == ("sample-pairs" if pairs else "sample" if new_api else "generate")


def test_cli_wires_the_provider(tmp_path):
    from sciflow.datasets.reactions.cli import DomainGuesses, _guess_provider, main

    ns = types.SimpleNamespace(ts_guesses=0, ts_checkpoint=None)
    assert _guess_provider(ns) is None
    ns = types.SimpleNamespace(ts_guesses=5, ts_checkpoint=tmp_path / "m.pt")
    assert _guess_provider(ns) == DomainGuesses(samples=5, checkpoint=str(tmp_path / "m.pt"))
    for bad in (["--ts-guesses", "-1"], ["--kinds", "rotation"], ["--elements", "HCSi"], ["--seed-sets", "big"]):
        with pytest.raises(SystemExit) as err:
            main(["build-dataset", "--out", str(tmp_path), *bad])
        assert err.value.code == 2


def test_cli_enumerates_the_requested_kinds(tmp_path, capsys):
    from sciflow.datasets.reactions import ReactionStore
    from sciflow.datasets.reactions.cli import main

    assert main(["build-dataset", "--out", str(tmp_path), "--no-default-seeds", "--smiles", "CC(N)=O", "CS(C)=O",
                 "C=CCOC=C", "--kinds", "bond_edit", "template", "conformational", "inversion",
                 "--max-atoms", "14", "--max-candidates", "0", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "3 seeds" in err
    for kind in ("bond_edit", "template", "conformational", "inversion"):
        assert f"{kind} " in err
    assert ReactionStore(tmp_path).records == []


# ----------------------------------------------------------------------------- GFN2-xTB runs
@pytest.mark.slow
def test_guess_provider_route_and_fallback():
    """A failing provider falls back to CI-NEB; a provider's valid guess verifies through Sella (guess<k>)."""
    calc = _gfn2()
    from sciflow.datasets.reactions.builder import run_candidate

    cand = _formamide_shift()
    s = PipelineSettings(time_limit=120)

    def broken(r: Atoms, p: Atoms) -> list:
        raise ValueError("elements outside the model")

    fallback = run_candidate(cand, calc, s, broken)
    assert fallback["status"] == "accepted" and fallback["route"] == "neb", fallback
    assert any("provider failed: ValueError" in a for a in fallback["attempts"])
    saddle = fallback["reaction"].transition_state

    def guesses(r: Atoms, p: Atoms) -> list:
        # a wrong-shaped guess first (dropped and noted), then a rigidly moved copy of the known saddle
        return [np.zeros((2, 3)), Atoms(numbers=saddle.numbers, positions=saddle.positions @ np.diag([1, -1, -1]) + 5)]

    res = run_candidate(cand, calc, s, guesses)
    assert res["status"] == "accepted", res
    assert res["route"] == "guess1" and any("guess0: wrong atoms" in a for a in res["attempts"])
    assert res["guess_provider"] and fallback["guess_provider"]
    assert 0.0 <= res["guess_cpu_seconds"] <= res["cpu_seconds"]
    assert res["cpu_seconds"] < fallback["cpu_seconds"]  # no path to relax
    assert abs(res["barrier_ev"] - fallback["barrier_ev"]) * 23.06 < 0.1  # the same saddle


def test_gfn2_ammonia_inversion_and_enol_rotation():
    calc = _gfn2()
    from sciflow.datasets.reactions.builder import run_candidate

    (inv,) = conformer_candidates(seed_from_smiles("N"))
    res = run_candidate(inv, calc, PipelineSettings(time_limit=60))
    assert res["status"] == "accepted" and res["kind"] == "inversion" and res["group"] == "inversion:N", res
    assert res["route"] == "planar" and "guess_provider" not in res
    rxn = res["reaction"]
    assert rxn.kind == "inversion" and rxn.family == "inv:N(HHH)" and rxn.reactant.get_chemical_formula() == "H3N"
    r, ts, p = (float(x) for x in rxn.key_coordinate.split(":")[2].split("/"))
    assert r * p < 0 and abs(ts) < 0.05  # the pyramid flips through a planar saddle
    assert 2.0 < rxn.barrier * 23.06 < 12.0 and rxn.imaginary_frequency > 500  # NH3: ~6 kcal/mol, ~1000i cm-1
    (rot,) = [c for c in conformer_candidates(seed_from_smiles("OC=C")) if c.family == "rot:partial:C-O"]
    res = run_candidate(rot, calc, PipelineSettings(time_limit=60))
    assert res["status"] == "accepted" and res["origin"] == "intended", res
    rxn = res["reaction"]
    r, ts, p = (float(x) for x in rxn.key_coordinate.split(":")[2].split("/"))
    assert abs(((r - p + 180) % 360) - 180) > 120  # syn -> anti enol
    assert 45 < abs(((ts - r + 180) % 360) - 180) < 135  # OH perpendicular at the saddle
    assert rxn.reactant.positions.shape == rxn.product.positions.shape and rxn.barrier > 0

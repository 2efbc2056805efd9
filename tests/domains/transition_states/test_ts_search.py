"""`ts search` / search(): candidates from R and P, the guess route and its fallback, the
written frames (verified flag, route, winner, barrier, timings) and resumable output."""

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from sciflow.cli import main
from sciflow.domains.transition_states import (
    TSInputError,
    candidate_from_endpoints,
    search,
)


def _rotated_ethane(angle: float = 60.0):
    from sciflow.datasets.reactions.conformers import moving_side, rotate_about_bond
    from sciflow.datasets.reactions.molgraph import bond_graph

    r = molecule("C2H6")
    side = moving_side(len(r), bond_graph(r), 0, 1)
    return r, Atoms(r.numbers, positions=rotate_about_bond(r.get_positions(), 0, 1, side, angle))


def test_candidates_are_bond_edits_rotations_or_inversions(make_reaction):
    from sciflow.datasets.reactions.conformers import dihedral, mirror_through_plane
    from sciflow.datasets.reactions.molgraph import bond_graph

    rxn = make_reaction(0)
    c = candidate_from_endpoints(rxn.reactant, rxn.product, id="x")
    gr, gp = bond_graph(rxn.reactant), bond_graph(rxn.product)
    assert c.kind == "bond_edit" and set(c.broken) == gr - gp and set(c.formed) == gp - gr
    r, p = _rotated_ethane(60.0)
    c = candidate_from_endpoints(r, p)
    assert c.kind == "conformational" and c.r_graph == c.p_graph and len(c.key) == 4
    a, i, j, b = c.key
    assert {i, j} == {0, 1} and abs(abs(c.angle) - 60.0) < 1e-6
    assert abs(dihedral(p.get_positions(), *c.key) - dihedral(r.get_positions(), *c.key)) > 45
    nh3 = molecule("NH3")
    inv = Atoms(nh3.numbers, positions=mirror_through_plane(nh3.get_positions(), [1, 2, 3]))
    c = candidate_from_endpoints(nh3, inv)
    assert c.kind == "inversion" and c.key[0] == 0 and sorted(c.key[1:]) == [1, 2, 3]
    with pytest.raises(TSInputError, match="same minimum"):
        candidate_from_endpoints(r, r.copy())


class _FakeChain:
    """Stands in for the builder's verify_candidate: guess ``win`` verifies (None: the NEB
    route does; "reject": nothing does)."""

    def __init__(self, win):
        self.win, self.calls = win, []

    def __call__(self, cand, calculator, settings, *, guesses=None, reactant_cache=None):
        from sciflow.datasets.reactions import Rejected
        from sciflow.datasets.reactions.pipeline import VerifiedPath

        r = cand.reactant_atoms()
        got = []
        if guesses is not None:
            try:
                got = list(guesses(r, r.copy()))
            except Exception as err:
                got = [f"provider failed: {err}"]
        self.calls.append((cand, settings, got))
        if self.win == "reject":
            err = Rejected("saddle_not_converged")
            err.info.update(route="neb", attempts=["guess0: wrong_connectivity"])
            raise err
        route = "neb" if self.win is None or not got or isinstance(got[0], str) else \
            f"guess{self.win}"
        ts = got[self.win] if route != "neb" else r
        return VerifiedPath(reactant=r, transition_state=ts, product=r, energies=(0.0, 1.0, 0.25),
                            imaginary_frequency=812.0, frequencies=np.array([-812.0, 100.0]),
                            neb_converged=route == "neb", stages={"start": 0.0, "saddle": 0.5},
                            r_graph=cand.r_graph, p_graph=cand.p_graph, origin="intended",
                            kind=cand.kind, route=route, attempts=("guess0: no_imaginary_mode",)
                            if route == "guess1" else ())


@pytest.fixture
def fake(monkeypatch):
    import sciflow.datasets.reactions as rx

    def use(win):
        chain = _FakeChain(win)
        monkeypatch.setattr(rx, "verify_candidate", chain)
        return chain

    return use


def test_search_reports_the_winning_guess_or_the_fallback(fake, shipped, shipped_test):
    rxn = shipped_test[0]
    chain = fake(1)
    res = search(rxn.reactant, rxn.product, model=shipped, samples=3, sample_steps=1,
                 reference=rxn.transition_state, id=rxn.id)
    cand, settings, guesses = chain.calls[0]
    assert len(guesses) == 3 and settings.max_guesses == 3 and not settings.accept_discovered
    assert res.verified and res.winner == 1 and not res.fallback and res.guesses == 3
    assert res.barrier == pytest.approx(1.0) and res.imaginary_frequency == 812.0
    info = res.info()
    assert info["winner"] == 1 and info["route"] == "guess1" and info["verified"]
    assert info["barrier_ev"] == pytest.approx(1.0) and info["imag_freq_cm1"] == 812.0
    assert info["seconds_saddle"] == 0.5 and info["seconds_generate"] >= 0
    assert "guess0: no_imaginary_mode" in info["attempts"]
    # a charge the model was not trained on: no guesses, the CI-NEB route, and it says so
    fake(0)
    res = search(rxn.reactant, rxn.product, model=shipped, samples=2, charge=2)
    assert res.verified and res.route == "neb" and res.fallback and res.winner is None
    assert any("model refused" in a and "charge +2" in a for a in res.attempts)
    fake("reject")
    res = search(rxn.reactant, rxn.product, model=shipped, samples=2, sample_steps=1)
    assert not res.verified and res.reason == "saddle_not_converged" and res.fallback
    assert res.ts is not None and res.info()["ts_geometry"].endswith("NOT verified")


def test_search_command_appends_and_resumes(tmp_path, fake, shipped_test, capsys):
    from sciflow.datasets.reactions import write_reactions

    fake(0)
    data = tmp_path / "three.extxyz"
    write_reactions(data, shipped_test[:3])
    out = tmp_path / "found.extxyz"
    base = ["ts", "search", "--reactions", str(data), "--samples", "2", "--sample-steps", "1",
            "-o", str(out)]
    assert main(base) == 0
    frames = ase.io.read(out, index=":")
    assert [f.info["reaction_id"] for f in frames] == [r.id for r in shipped_test[:3]]
    info = frames[0].info
    assert info["verified"] and info["winner"] == 0 and info["wrote"] == "ts search"
    assert len(info["checkpoint_sha256"]) == 64 and info["rmsd_to_reference_A"] >= 0
    assert "verified 3 of 3: 3 from a generated guess" in capsys.readouterr().out
    assert main(base) == 2 and "--overwrite" in capsys.readouterr().err
    # a run cut short: drop the last frame, then resume -> only that reaction runs again
    ase.io.write(out, frames[:2], format="extxyz")
    chain = fake(0)
    assert main(base + ["--resume"]) == 0
    assert len(chain.calls) == 1 and "2 reaction(s) already in" in capsys.readouterr().err
    assert [f.info["reaction_id"] for f in ase.io.read(out, index=":")] == \
        [r.id for r in shipped_test[:3]]


def test_search_command_refuses_bad_input_before_any_work(tmp_path, capsys):
    r, _ = _rotated_ethane()
    ase.io.write(tmp_path / "r.xyz", r)
    ase.io.write(tmp_path / "p.xyz", molecule("CH4"))
    out = tmp_path / "o.extxyz"
    assert main(["ts", "search", "--reactant", str(tmp_path / "r.xyz"), "--product",
                 str(tmp_path / "p.xyz"), "-o", str(out)]) == 2
    assert "reactant has 8 atoms but product has 5" in capsys.readouterr().err
    assert main(["ts", "search", "--reactant", str(tmp_path / "r.xyz"), "--reactions",
                 str(tmp_path / "r.xyz"), "-o", str(out)]) == 2
    assert "give one of --reactions FILE" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_real_search_verifies_the_reference_saddle(shipped, shipped_test):
    rxn = min(shipped_test, key=lambda r: len(r.numbers))
    res = search(rxn.reactant, rxn.product, model=shipped, samples=2,
                 reference=rxn.transition_state, id=rxn.id)
    assert res.verified and res.imaginary_frequency > 50 and res.barrier > 0
    assert res.rmsd_to_reference < 0.1 and res.seconds > res.seconds_generate > 0

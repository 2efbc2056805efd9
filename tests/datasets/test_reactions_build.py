"""The builder end to end: EMT surface tier, resume, executors, bad input, one tiny GFN2-xTB reaction."""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.calculator import CalculationFailed

from sciflow.datasets.reactions import (
    EMT_SETTINGS,
    EMTFactory,
    PipelineSettings,
    Reaction,
    ReactionStore,
    build_dataset,
    emt_candidates,
    finalize_store,
    read_reactions,
)
from sciflow.datasets.reactions.pipeline import harmonic_frequencies


def _check_emt_reaction(r):
    e_r, e_ts, e_p = r.energies
    assert e_ts > e_r and e_ts > e_p
    assert r.imaginary_frequency > EMT_SETTINGS.imag_threshold
    assert r.reactant.pbc.any() and np.allclose(r.reactant.cell, r.transition_state.cell)


class _Broken:
    """A calculator factory whose calculators always fail, like an SCF that never converges."""

    def __call__(self):
        from ase.calculators.emt import EMT

        class Failing(EMT):
            def calculate(self, *args, **kwargs):
                raise CalculationFailed("SCF did not converge in 250 iterations")

        return Failing()


def test_emt_build_resumes_and_skips_done(tmp_path):
    cands = emt_candidates(metals=("Al",), adatoms=("Au",), facets=("100",))
    assert [c.id for c in cands] == ["emt/Al(100)+Au/hop", "emt/Al(100)+Au/exchange"]
    with cf.ThreadPoolExecutor(1) as pool:
        first = build_dataset(cands, tmp_path, calculator=EMTFactory(), settings=EMT_SETTINGS, executor=pool,
                              max_candidates=1, progress=False)
        assert first.accepted + first.rejected == 1
        # a restart skips the finished candidate and does only the other one
        second = build_dataset(cands, tmp_path, calculator=EMTFactory(), settings=EMT_SETTINGS, executor=pool,
                               progress=False)
    assert second.accepted + second.rejected == 1
    store = ReactionStore(tmp_path)
    assert store.done_ids() == {c.id for c in cands}
    rxns = list(store.reactions())
    assert len(rxns) == 2
    for r in rxns:
        _check_emt_reaction(r)
    hop, exchange = rxns
    assert exchange.barrier > hop.barrier  # pushing into the surface costs more than hopping over it
    paths = finalize_store(tmp_path, target=0)
    assert (tmp_path / "README.md").read_text().count("sha256") >= 1
    assert all(p.exists() for p in paths)


def test_bad_calculator_is_a_logged_rejection_not_a_crash(tmp_path):
    cands = emt_candidates(metals=("Cu",), adatoms=("Cu",), facets=("111",))[:1]
    with cf.ThreadPoolExecutor(1) as pool:
        summary = build_dataset(cands, tmp_path, calculator=_Broken(), settings=EMT_SETTINGS, executor=pool,
                                progress=False)
    assert summary.rejected == 1 and summary.accepted == 0
    (record,) = ReactionStore(tmp_path).records
    assert record["reason"] == "calculator_failed" and "SCF" in record["detail"]


def test_unknown_metal_is_refused():
    with pytest.raises(ValueError, match="EMT"):
        emt_candidates(metals=("Fe",))


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    cands = emt_candidates(metals=("Ni",), adatoms=("Ni",), facets=("100",))[:1]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        summary = build_dataset(cands, tmp_path, calculator=EMTFactory(), settings=EMT_SETTINGS,
                                scheduler_address=cluster.scheduler_address, progress=False)
    assert summary.accepted == 1
    _check_emt_reaction(next(ReactionStore(tmp_path).reactions()))


def test_frequencies_of_water_are_rotation_invariant():
    pytest.importorskip("tblite")
    from ase.optimize import LBFGS

    from sciflow.datasets.reactions import GFN2

    w = molecule("H2O")
    w.calc = GFN2()()
    LBFGS(w, logfile=None).run(fmax=0.005)
    f1, modes = harmonic_frequencies(w)
    assert f1.shape == (3,) and np.all(f1 > 1000)  # bend and two stretches, no rigid-body leftovers
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    w.positions = w.positions @ q.T
    f2, _ = harmonic_frequencies(w)
    np.testing.assert_allclose(f1, f2, rtol=1e-3)
    assert modes.shape == (3, 3, 3)


def test_one_gfn2_reaction_formamide_tautomerism():
    pytest.importorskip("tblite")
    pytest.importorskip("sella")
    from sciflow.datasets.reactions import GFN2, enumerate_candidates, seed_from_smiles
    from sciflow.datasets.reactions.builder import run_candidate

    seed = seed_from_smiles("NC=O")
    n_idx, o_idx = 0, 2
    (cand,) = [c for c in enumerate_candidates(seed) if len(c.broken) == 1 and len(c.formed) == 1
               and n_idx in c.broken[0] and o_idx in c.formed[0]]
    res = run_candidate(cand, GFN2(), PipelineSettings(time_limit=120))
    assert res["status"] == "accepted" and res["origin"] == "intended", res
    rxn = res["reaction"]
    assert rxn.smiles == cand.smiles and rxn.family == "b:H-N|f:H-O" and "tblite=" in rxn.software
    e_r, e_ts, e_p = rxn.energies
    assert e_ts > e_r and e_ts > e_p
    assert rxn.imaginary_frequency > 500  # an H transfer: one large imaginary mode
    (h,) = [a for a in cand.broken[0] if cand.numbers[a] == 1]
    ts = rxn.transition_state.positions
    d_nh, d_oh = np.linalg.norm(ts[h] - ts[n_idx]), np.linalg.norm(ts[h] - ts[o_idx])
    assert 1.05 < d_nh < 1.8 and 1.0 < d_oh < 1.8  # the moving H is between N and O at the saddle


def test_cli_help_and_emt_run(tmp_path, capsys):
    from sciflow.datasets.reactions.cli import main

    with pytest.raises(SystemExit):
        main(["build-dataset", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--scheduler" in text and "--tier" in text
    # the default executor: one local worker process
    assert main(["build-dataset", "--out", str(tmp_path), "--tier", "emt", "--max-candidates", "1",
                 "--no-progress"]) == 0
    (record,) = ReactionStore(tmp_path).records
    assert record["status"] == "accepted"
    _check_emt_reaction(read_reactions(tmp_path / ReactionStore.REACTIONS)[0])
    assert main(["build-dataset", "--out", str(tmp_path), "--finalize"]) == 0
    assert (tmp_path / "splits" / "split_random.json").exists()


class _Crash:
    """A calculator factory that kills its worker process, like a segfault in native code."""

    def __call__(self):
        import os

        os._exit(1)


def test_a_dying_worker_is_recorded_and_the_pool_replaced(tmp_path):
    cands = emt_candidates(metals=("Ag",), adatoms=("Ag",), facets=("100",))[:1]
    summary = build_dataset(cands, tmp_path, calculator=_Crash(), settings=EMT_SETTINGS, max_workers=1,
                            progress=False)
    assert summary.rejected == 1
    (record,) = ReactionStore(tmp_path).records
    assert record["reason"] == "worker_crashed"


def test_known_reaction_is_skipped_without_compute(tmp_path):
    from sciflow.datasets.reactions import enumerate_candidates, seed_from_smiles
    from sciflow.datasets.reactions.molgraph import reaction_key

    cand = enumerate_candidates(seed_from_smiles("NC=O", name="first"))[0]
    twin = enumerate_candidates(seed_from_smiles("NC=O", name="second"))[0]
    assert twin.id != cand.id
    store = ReactionStore(tmp_path)
    rxn = Reaction(
        id=cand.id, reactant=molecule("H2O"), transition_state=molecule("H2O"), product=molecule("H2O"),
        energies=(0.0, 1.0, 0.0))
    store.append({"id": cand.id, "key": reaction_key(cand.numbers, cand.r_graph, cand.p_graph)}, rxn)
    with cf.ThreadPoolExecutor(1) as pool:  # a failing calculator proves nothing is computed
        summary = build_dataset([cand, twin], store, calculator=_Broken(), executor=pool, progress=False)
    assert summary.rejected == 1
    record = ReactionStore(tmp_path).records[-1]
    assert record["id"] == twin.id and record["reason"] == "duplicate" and "not computed" in record["detail"]

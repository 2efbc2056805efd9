"""What a written TS says about itself: extxyz info round trips, rank scores only when ranked,
the refinement's status, strict JSON from evaluate, and the --plot figures."""

import json

import ase.io
import numpy as np
import pytest

from sciflow.cli import main


@pytest.fixture
def ends(tmp_path, shipped_test):
    rxn = shipped_test[0]
    r, p, ref = tmp_path / "r.xyz", tmp_path / "p.xyz", tmp_path / "ref.xyz"
    ase.io.write(r, rxn.reactant)
    ase.io.write(p, rxn.product)
    ase.io.write(ref, rxn.transition_state)
    return rxn, r, p, ref


def test_generated_ts_carries_its_provenance_in_extxyz_info(tmp_path, ends, shipped, capsys):
    import sciflow

    rxn, r, p, ref = ends
    out = tmp_path / "ts.extxyz"
    assert main(["ts", "generate", "--reactant", str(r), "--product", str(p), "--seed", "3",
                 "--sample-steps", "2", "--reference", str(ref), "--plot", "-o", str(out)]) == 0
    info = ase.io.read(out).info
    assert info["sciflow"] == sciflow.__version__ and info["created"] and info["python"]
    assert info["checkpoint_sha256"] == shipped.checkpoint["digest"]
    assert len(info["checkpoint_sha256"]) == 64 and info["checkpoint"] == shipped.checkpoint["path"]
    assert "command" in info and info["model_network"].startswith("egnn")
    assert (info["seed"], info["solver"], info["sample_steps"], info["samples"]) == (3, "euler", 2, 1)
    assert info["charge"] == 0 and info["multiplicity"] == 1
    # one sample: nothing was ranked, so no rank score that would read as certainty
    assert "rank_score" not in info and info["rank_rule"] == "medoid"
    assert info["uncertainty_kind"] == "reverse" and info["uncertainty_A"] > 0
    assert "P->R" in info["uncertainty_meaning"]
    assert "refined" not in info and "energy_xtb_ev" not in info  # no calculator ran
    assert info["rmsd_to_reference_A"] == pytest.approx(
        float(capsys.readouterr().out.split("RMSD to --reference: ")[1].split()[0]), abs=1e-3)
    png = tmp_path / "ts.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ranked_samples_carry_their_scores_and_meaning(tmp_path, ends):
    _, r, p, _ = ends
    every = tmp_path / "all.extxyz"
    assert main(["ts", "generate", "--reactant", str(r), "--product", str(p), "--samples", "3",
                 "--sample-steps", "2", "--samples-out", str(every), "-o",
                 str(tmp_path / "ts.extxyz")]) == 0
    best = ase.io.read(tmp_path / "ts.extxyz").info
    frames = ase.io.read(every, index=":")
    scores = [f.info["rank_score"] for f in frames]
    assert scores == sorted(scores) and best["rank_score"] == pytest.approx(scores[0])
    assert [f.info["sample_rank"] for f in frames] == [0, 1, 2]
    assert "mean Kabsch RMSD" in best["rank_score_meaning"]
    assert best["uncertainty_kind"] == "spread"
    assert best["uncertainty_A"] == pytest.approx(best["rank_score"])  # medoid: the same mean


@pytest.mark.slow
def test_refine_reports_convergence_steps_fmax_and_imaginary_modes(tmp_path, ends, capsys):
    _, r, p, _ = ends
    out = tmp_path / "ts.extxyz"
    assert main(["ts", "generate", "--reactant", str(r), "--product", str(p), "--refine",
                 "--no-idpp", "-o", str(out)]) == 0
    info = ase.io.read(out).info
    text = capsys.readouterr().out
    assert info["refined"] and info["refine_converged"] and info["refine_steps"] >= 1
    assert 0 < info["refine_fmax_ev_A"] <= 0.01 and info["imaginary_modes"] == 1
    assert info["imaginary_frequency_cm1"] < -50 and np.isfinite(info["energy_xtb_ev"])
    assert "exactly one imaginary mode" in text and "converged in" in text


def test_evaluate_json_is_strict_and_says_what_was_scored(tmp_path, shipped_test, capsys):
    from sciflow.datasets.reactions import write_reactions

    data = tmp_path / "few.extxyz"
    write_reactions(data, shipped_test[:3])
    out = tmp_path / "ev.json"
    assert main(["ts", "evaluate", "--data", str(data), "--no-energies", "--sample-steps", "2",
                 "--plot", "-o", str(out)]) == 0

    def refuse(token):
        raise ValueError(f"bare {token}")

    doc = json.loads(out.read_text(), parse_constant=refuse)
    assert "test part (held out from training)" in doc["scored"]
    assert doc["uncertainty"] == "reverse" and "P->R" in doc["uncertainty_meaning"]
    assert all(row["uncertainty"] is not None and row["uncertainty"] > 0 for row in doc["rows"])
    assert doc["provenance"]["checkpoint_sha256"] and doc["meaning"]["rmsd"].startswith("Kabsch")
    assert (tmp_path / "ev.png").read_bytes()[:4] == b"\x89PNG"
    assert "scoring the 3 reactions" in capsys.readouterr().out

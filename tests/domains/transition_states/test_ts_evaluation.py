"""Evaluation: scores against the reference, strict JSON, diverged samples counted as failures."""

import json
import math

import numpy as np
import pytest
from ase.calculators.emt import EMT

from sciflow.domains.transition_states import Model, TSVelocity, evaluate, summarize
from sciflow.domains.transition_states.metrics import ReactionScore


def test_evaluate_scores_against_the_reference(tiny, make_reaction):
    data = [make_reaction(s, ts_at_midpoint=True) for s in range(3)]
    ev = evaluate(Model(TSVelocity(tiny), meta={"default_steps": 2}), data, samples=2,
                  calculator=EMT)
    assert len(ev.rows) == 3 and ev.steps == 2 and ev.solver == "euler" and ev.seconds_single > 0
    for row in ev.rows:
        assert row.rmsd_midpoint < 1e-6  # the reference TS is the exact midpoint here
        assert row.rmsd_tsgen <= min(row.rmsd, 1.0) + 1e-12
        assert math.isfinite(row.energy_generated) and math.isfinite(row.energy_reference)
    rmsd = np.array([r.rmsd for r in ev.rows])
    assert ev.summary.rmsd_median == pytest.approx(np.median(rmsd))
    assert ev.summary.rmsd_below_0_1 == pytest.approx(np.mean(rmsd < 0.1))
    de = np.abs([r.energy_error for r in ev.rows]) * 23.060547830619
    assert ev.summary.abs_de_mean == pytest.approx(de.mean())
    assert ev.summary.energies == 3 and ev.summary.energy_failures == 0
    assert ev.summary.generation_failures == 0


def _strict(text: str) -> dict:
    def refuse(token: str) -> None:
        raise ValueError(f"bare {token} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_and_a_diverged_reaction_is_a_counted_failure(tiny, make_reaction):
    ev = evaluate(Model(TSVelocity(tiny), meta={"default_steps": 2}), [make_reaction(0)],
                  time_single=False)  # no energies: NaN fields
    doc = _strict(ev.to_json())
    assert doc["summary"]["abs_de_mean"] is None and doc["rows"][0]["energy_generated"] is None
    failed = ReactionScore(id="x", family="f", atoms=5, rmsd=math.inf, rmsd_tsgen=1.0,
                           rmsd_midpoint=0.3)
    s = summarize([ev.rows[0], failed])
    assert s.generation_failures == 1 and math.isinf(s.rmsd_mean) and s.rmsd_below_0_1 <= 0.5
    doc = _strict(type(ev)(rows=(ev.rows[0], failed), summary=s, samples=1, steps=2,
                           solver="euler", seconds_batched=0.1, seconds_single=None).to_json())
    assert doc["rows"][1]["rmsd"] is None and doc["summary"]["generation_failures"] == 1

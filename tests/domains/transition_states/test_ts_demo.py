"""The `sciflow demo` TS section runs on the shipped checkpoint and reports measured numbers."""

import re

import pytest

from sciflow.domains.transition_states.demo import demo


@pytest.mark.slow
def test_demo_section_reports_the_held_out_evaluation(tmp_path):
    text = demo(tmp_path)
    assert text.startswith("## Transition states")
    assert (tmp_path / "ts_rmsd.png").stat().st_size > 0
    rows = [line for line in text.splitlines() if line.startswith("| generated")]
    assert len(rows) == 2
    # every generated row carries measured RMSDs
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:4]]
        assert all(re.fullmatch(r"\d+\.\d{3}", c) for c in cells)

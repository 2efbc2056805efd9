"""The study: arms, thresholds, a tiny sweep end to end, the report folder and the CLI."""


import pytest
import torch

from sciflow.domains.climate import cli, study
from sciflow.domains.climate.runner import StudyConfig, run_study
from sciflow.precision import FLOAT64

# tiny runs cannot decide their verdicts; test_climate_uncertainty checks the warning
pytestmark = pytest.mark.filterwarnings(
    "ignore::sciflow.domains.climate.uncertainty.UndecidedWarning")


def test_sweep_arms_put_the_reference_and_nulls_first() -> None:
    arms = study.sweep_arms([8, 12], nulls=2)
    assert [a.fmt for a in arms[:3]] == [FLOAT64] * 3
    assert [a.name for a in arms[3:]] == ["sbits8-RN", "sbits8-SR", "sbits12-RN", "sbits12-SR"]
    with pytest.raises(ValueError, match="out of range"):
        study.sweep_arms([0])


def _row(k: int, rounding: str, ratio: float, var: str = "x") -> study.SweepRow:
    return study.SweepRow(f"sbits{k}", k, rounding, var, ratio, 1.0, ratio, 1.5)


def test_threshold_allows_chance_exceedances_but_not_a_trend() -> None:
    rows = (
        _row(4, "nearest", 9.0), _row(8, "nearest", 1.2), _row(12, "nearest", 3.0),
        _row(16, "nearest", 1.0), _row(16, "nearest", 1.4, "y"), _row(20, "nearest", 0.5),
        _row(24, "nearest", 1.6, "y"), _row(24, "nearest", 0.4),
        _row(8, "stochastic", 7.0), _row(20, "stochastic", 2.0),
    )
    # limit 1.5: 8 passes but from 8 on 2 of 7 cells are beyond the null (chance rate 1/4)
    sweep = study.TestbedSweep("t", ("x", "y"), rows, "", 0.0, nulls=3)
    assert sweep.outside("nearest", 12) == ["x"] and sweep.outside("nearest", 16) == []
    assert sweep.threshold("nearest") == 16  # from 16 on 1 of 5 cells beyond: <= 1/4
    assert sweep.threshold("stochastic") is None
    # with 9 nulls the chance rate is 1/10: the exceedance at 24 bits is no longer excused
    strict = study.TestbedSweep("t", ("x", "y"), rows, "", 0.0, nulls=9)
    assert strict.threshold("nearest") is None
    assert sweep.ratios("nearest", "x")[0] == (4, 9.0)


def test_tiny_lorenz_sweep_end_to_end() -> None:
    res = study.lorenz_sweep(bits=(6, 23), members=3, steps=300, spinup=200, every=5, nulls=2)
    assert {(r.sbits, r.rounding) for r in res.rows} == {
        (6, "nearest"), (6, "stochastic"), (23, "nearest"), (23, "stochastic")
    }
    by = {(r.sbits, r.rounding, r.variable): r for r in res.rows}
    # 23 bits barely leave the float64 trajectory in 3 time units; 6 bits are far off it
    assert by[(23, "nearest", "x")].w1 < by[(6, "nearest", "x")].w1
    assert all(r.null > 0 and r.limit >= 1.0 for r in res.rows)


def test_stagnation_rn_stands_still_sr_follows_the_sum() -> None:
    res = study.stagnation(steps=400, members=64, record=4)
    assert float(res.mean["nearest"][-1]) == 1.0
    assert abs(float(res.mean["stochastic"][-1]) - float(res.exact[-1])) < 0.01


def test_run_study_writes_the_report(tmp_path) -> None:  # noqa: ANN001
    cfg = StudyConfig(testbeds=("lorenz", "stagnation"), bits=(8, 23), lorenz_members=2,
                      lorenz_steps=200, stagnation_steps=200)
    path, body = run_study(cfg, tmp_path, command="test", progress=None)
    assert path.exists() and "Indistinguishable from float64" in body
    for name in ("w1_ratio_vs_sbits.png", "stagnation.png", "results.csv", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
    said: list[str] = []
    _, again = run_study(cfg, tmp_path, command="test", progress=said.append)
    assert any("reusing" in line for line in said)
    assert again.split("## lorenz")[1].split("\n\n")[2] == body.split("## lorenz")[1].split("\n\n")[2]
    with pytest.raises(ValueError, match="unknown testbed"):
        StudyConfig(testbeds=("speedy",))


def test_cli_parses_bits_and_runs_formats_and_round(capsys) -> None:  # noqa: ANN001
    assert cli.parse_bits("4-8:2,23") == (4, 6, 8, 23)
    with pytest.raises(ValueError, match="cannot read"):
        cli.parse_bits("four")
    with pytest.raises(ValueError, match="1..52"):
        cli.parse_bits("0-3")
    from sciflow.cli import main

    assert main(["precision", "formats"]) == 0
    assert "fp8_e4m3" in capsys.readouterr().out
    assert main(["precision", "round", "70000", "0.1", "--format", "float16"]) == 0
    assert capsys.readouterr().out.split() == ["inf", "0.09997558594"]
    torch.set_num_threads(1)


@pytest.mark.slow
def test_demo_section_runs_and_links_its_figures(tmp_path) -> None:  # noqa: ANN001
    from sciflow.domains.climate.demo import demo

    section = demo(tmp_path)
    assert section.startswith("## Low precision")
    for link in ("precision/w1_ratio_vs_sbits.png", "precision/heat_profiles.png",
                 "precision/flow_sweep.png", "precision/stagnation.png"):
        assert link in section and (tmp_path / link).exists()

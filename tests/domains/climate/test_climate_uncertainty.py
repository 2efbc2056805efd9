"""The verdicts' uncertainty: the paired block bootstrap, the interval of k and its rule, and
what a report says with it (intervals, marks, units, provenance, warnings)."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest
import torch

from sciflow.domains.climate import Config, UndecidedWarning, results, run_study
from sciflow.domains.climate.uncertainty import (
    MAX_WIDTH,
    MIN_UNITS,
    block_units,
    first_qualifying,
    paired_w1,
    resample_counts,
    verdict,
)
from sciflow.precision import wasserstein1_1d


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_paired_w1_with_unit_weights_is_the_exact_w1(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(120, 3, 4, generator=g).to(dtype)
    b = (torch.randn(120, 3, 4, generator=g) * 1.5 + 0.2).to(dtype)
    units = block_units(120, 7)
    ones = torch.ones(2, int(units.max()) + 1)
    got = paired_w1(a, b, units, ones)
    assert got.shape == (2, 3, 4)
    torch.testing.assert_close(got[0], wasserstein1_1d(a, b), rtol=1e-5, atol=1e-6)


def test_paired_w1_equals_the_w1_of_the_resampled_samples() -> None:
    """Integer weights are repetitions: resample r is the W1 of the drawn units' samples."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(60, dtype=torch.float64, generator=g)
    b = torch.randn(60, dtype=torch.float64, generator=g) + 0.5
    units = block_units(20, 4, members=3)  # 3 members x 5 blocks, record-major samples
    counts = resample_counts(units, 5, generator=g)
    assert torch.equal(counts.sum(1), torch.full((5,), 15.0))  # every resample draws 15 units
    got = paired_w1(a, b, units, counts)
    for r in range(5):
        rep = torch.repeat_interleave(torch.arange(60), counts[r, units].long())
        torch.testing.assert_close(got[r], wasserstein1_1d(a[rep], b[rep]), rtol=1e-5, atol=1e-7)


def test_block_units_group_records_of_one_member() -> None:
    units = block_units(10, 4, members=2)  # blocks of 4, the last 2 records join block 1
    per = units.reshape(10, 2)  # record-major: (record, member)
    assert per[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert per[:, 1].tolist() == [2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    assert block_units(3, 100, members=4).unique().numel() == 4  # short series: one unit each


def test_first_qualifying_matches_a_plain_loop() -> None:
    g = torch.Generator().manual_seed(2)
    within = torch.rand(300, 7, 3, generator=g) < 0.7
    within[:, 5:] = True
    present = torch.rand(1, 7, 3, generator=g) < 0.9
    for chance in (0.0, 0.25):
        got = first_qualifying(within, present, chance=chance)
        for r in range(0, 300, 17):
            expected = 7
            for i in range(7):
                cells = [(j, v) for j in range(i, 7) for v in range(3) if present[0, j, v]]
                beyond = sum(not within[r, j, v] for j, v in cells)
                if all(within[r, i, v] or not present[0, i, v] for v in range(3)) and \
                        beyond <= chance * len(cells) + 1e-9:
                    expected = i
                    break
            assert int(got[r]) == expected


def test_the_rule_decides_only_a_narrow_interval_from_enough_units() -> None:
    bits = (6, 8, 10, 12, 14, 16)
    narrow = verdict(2, torch.tensor([2] * 90 + [3] * 10), bits, units=MIN_UNITS)
    assert narrow.decided and narrow.text() == "10 [90%: 10-12]"
    few = verdict(2, torch.tensor([2] * 100), bits, units=MIN_UNITS - 1)
    assert not few.decided and f"fewer than {MIN_UNITS}" in few.reason
    wide = verdict(1, torch.tensor([0] * 20 + [1] * 40 + [4] * 40), bits, units=50)
    assert not wide.decided and wide.text().startswith("undecided: 8 [90%: 6-14]")
    assert f"more than {MAX_WIDTH}" in wide.reason
    none = verdict(5, torch.tensor([5] * 80 + [6] * 20), bits, units=50)
    assert not none.decided and "reaches 'none'" in none.reason and "20%" in none.reason
    never = verdict(6, torch.tensor([6] * 100), bits, units=50)
    assert never.decided and never.text() == "none [90%: none]"
    fewest = verdict(0, torch.tensor([0] * 100), bits, units=50)
    assert fewest.text() == "6 or fewer [90%: 6]"
    outside = verdict(0, torch.tensor([3] * 100), bits, units=50)
    assert not outside.decided and "outside the interval" in outside.reason
    cached = verdict(2, None, bits, units=0)
    assert not cached.decided and "no interval" in cached.text() and "--fresh" in cached.reason


def _sweep(boot: bool) -> results.TestbedSweep:
    rows = tuple(results.SweepRow(f"sbits{k}-RN", k, "nearest", "x", 1.0, 1.0, ratio, 1.5)
                 for k, ratio in ((6, 9.0), (10, 1.2), (16, 0.5)))
    if not boot:
        return results.TestbedSweep("t", ("x",), rows, "", 0.0, 3)
    # resamples: 10 bits within in 30 of 100, 16 always, 6 never
    ratio = torch.tensor([[9.0, 1.2 if r < 30 else 2.0, 0.5] for r in range(100)],
                         dtype=torch.float64)
    return results.TestbedSweep("t", ("x",), rows, "", 0.0, 3, ratio,
                                torch.full_like(ratio, 1.5), 40, "40 units")


def test_sweep_verdict_interval_and_cell_shares_survive_the_cache_form() -> None:
    sweep = _sweep(boot=True)
    again = results.TestbedSweep.from_dict(sweep.to_dict())
    assert torch.equal(again.boot_ratio, sweep.boot_ratio) and again.units == 40
    v = again.verdict("nearest")
    assert sweep.threshold("nearest") == 10 and v.k == 10 and (v.low, v.high) == (10, 16)
    assert not v.decided  # 10..16 spans 6 bits
    assert again.within_share().tolist() == [0.0, 0.3, 1.0]
    old = results.TestbedSweep.from_dict({k: v for k, v in sweep.to_dict().items()
                                  if not k.startswith("boot")})
    assert old.verdict("nearest").resamples == 0 and old.within_share() is None


def _tiny(**kw: object) -> Config:
    base = dict(testbeds=("lorenz", "stagnation"), bits=(8, 23), lorenz_members=2,
                lorenz_steps=100, lorenz_nulls=2, stagnation_steps=50)
    return Config(**{**base, **kw})


def test_report_has_intervals_units_provenance_and_warns(tmp_path: Path) -> None:
    out = tmp_path / "study"
    with pytest.warns(UndecidedWarning, match="only 2 independent resampling units"):
        _, body = run_study(_tiny(), out, command="sciflow precision study --test",
                            progress=None)
    assert "()" not in body and "[90%:" in body and "undecided:" in body
    assert "RN x (dimensionless)" in body and "RN x (ratio, dimensionless)" in body
    assert "Command: `sciflow precision study --test`; seed 0; sciflow " in body
    info = json.loads((out / "provenance.json").read_text())
    import sciflow

    assert info["sciflow"] == sciflow.__version__ and info["seed"] == 0
    assert info["command"] == "sciflow precision study --test" and "T" in info["time"]
    lines = (out / "results.csv").read_text().splitlines()
    preamble = [line for line in lines if line.startswith("#")]
    assert lines[:len(preamble)] == preamble  # the preamble comes first, then the table
    assert f"# sciflow: {sciflow.__version__}" in preamble and "# seed: 0" in preamble
    table = list(csv.DictReader(lines[len(preamble):]))
    assert {r["unit"] for r in table} == {"dimensionless"}
    assert all(0.0 <= float(r["within_share"]) <= 1.0 for r in table)
    assert all(float(r["ratio_low"]) <= float(r["ratio_high"]) for r in table)
    # a second run reuses the caches and says when and by what they were computed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecidedWarning)
        _, again = run_study(_tiny(), out, command="again", progress=None)
    assert f"computed {info['time']} by `sciflow precision study --test`" in again


def test_a_long_enough_run_decides_and_does_not_warn(tmp_path: Path) -> None:
    """Stagnation and a flow sampler with many samples: verdicts decided, no warning."""
    cfg = Config(testbeds=("flow",), bits=(6, 23), flow_samples=300, flow_sample_steps=4,
                 train=Config().train.__class__(steps=40, progress=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndecidedWarning)
        _, body = run_study(cfg, tmp_path / "flow", progress=None)
    assert "Every verdict above is decided" in body and "300 samples" in body


def test_cli_prints_undecided_verdicts_as_warnings(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    from sciflow.cli import main

    code = main(["precision", "study", "--testbeds", "lorenz", "--bits", "8,23",
                 "--lorenz-members", "2", "--lorenz-steps", "100", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 0
    assert "sciflow precision: warning: too short or too small to decide: lorenz RN" in err
    torch.set_num_threads(1)


def test_cli_round_native_prints_the_native_dtype(capsys: pytest.CaptureFixture) -> None:
    from sciflow.cli import main

    values = [0.1, 3.14159, 70000.0]
    assert main(["precision", "round", *map(str, values), "--format", "bfloat16",
                 "--native"]) == 0
    head, line = capsys.readouterr().out.splitlines()
    assert head == "# dtype torch.bfloat16"
    expected = torch.tensor(values, dtype=torch.float64).to(torch.bfloat16).double().tolist()
    assert [float(v) for v in line.split()] == expected

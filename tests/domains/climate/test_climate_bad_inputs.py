"""Bad input to the climate domain, row by row: each is refused before any work with a typed
error (or exit status 2 and ``sciflow GROUP: error:``) that names the culprit, and every file
that was there before is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from sciflow.checkpoint import CheckpointError, save_checkpoint
from sciflow.errors import InputError, OutputError, ResourceError
from sciflow.train import TrainConfig

# tiny runs cannot decide their verdicts; test_climate_uncertainty checks the warning
pytestmark = pytest.mark.filterwarnings(
    "ignore::sciflow.domains.climate.uncertainty.UndecidedWarning")

CLI_ERROR = re.compile(r"sciflow (climate|precision)( \w+)?: error:")

# the settings of the study folder every row starts from (one testbed, fast)
STUDY = ["--testbeds", "stagnation"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder, a folder of someone's files, a plain file, a crafted and a foreign cache."""
    from sciflow.domains.climate import Config, run_study

    root = tmp_path_factory.mktemp("climate_bad")
    run_study(Config(testbeds=("stagnation",)), root / "study", progress=None)
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("my own results\n")
    (root / "afile.txt").write_text("not a folder\n")
    for name in ("crafted", "foreign", "flipped"):
        folder = root / name
        (folder / "cache").mkdir(parents=True)
        (folder / "config.json").write_bytes((root / "study" / "config.json").read_bytes())
    torch.save({"key": {}, "value": _Evil()}, root / "crafted" / "cache" / "stagnation.pt")
    save_checkpoint(root / "foreign" / "cache" / "stagnation.pt", torch.nn.Linear(2, 2),
                    kind="toy")
    data = bytearray((root / "study" / "cache" / "stagnation.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "flipped" / "cache" / "stagnation.pt").write_bytes(bytes(data))
    return root


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, ("touch /tmp/sciflow-climate-crafted-cache-ran",))


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# (id, argv with {root} for the fixture folder, a regex the message must contain)
CLI_ROWS = [
    ("bits-text", ["study", "--bits", "four"], "cannot read significand bits from 'four'"),
    ("bits-range", ["study", "--bits", "0-3"], r"'0-3' must name values in 1\.\.52"),
    ("bits-step", ["study", "--bits", "4-23:0"], "cannot read significand bits from '4-23:0'"),
    ("testbed", ["study", "--testbeds", "speedy"], r"unknown testbed\(s\) \['speedy'\]"),
    ("lorenz-steps-0", ["study", "--lorenz-steps", "0"], "--lorenz-steps.*integer >= 1"),
    ("lorenz-steps-5", ["study", "--lorenz-steps", "5"], r"lorenz_steps=5: expected an integer >= 10"),
    ("heat-years", ["study", "--heat-years", "-1"], "--heat-years.*number > 0"),
    ("sw-nx-odd", ["study", "--testbeds", "shallow_water", "--sw-nx", "7"], "sw_nx=7"),
    ("flow-samples-1", ["study", "--flow-samples", "1"], r"flow_samples=1: expected an integer >= 2"),
    ("solver", ["study", "--solver", "rk45"], "--solver.*invalid choice: 'rk45'"),
    ("seed", ["study", "--seed", "-1"], "--seed.*integer >= 0"),
    ("steps-0", ["study", "--steps", "0"], "--steps.*integer >= 1"),
    ("absurd-lorenz", ["study", "--testbeds", "lorenz", "--lorenz-steps", "10000000000000"],
     "lorenz_steps.*would need about"),
    ("absurd-flow", ["study", "--testbeds", "flow", "--flow-samples", "100000000"],
     "flow_samples.*would need about"),
    ("device", ["study", "--testbeds", "flow", "--device", "cuda:7"], "device.*cuda:7"),
    ("device-name", ["study", "--testbeds", "flow", "--device", "gpu"], "device.*'gpu'"),
    ("out-is-file", ["study", *STUDY, "--out", "{root}/afile.txt"], "afile.txt' is a file"),
    ("out-under-file", ["study", *STUDY, "--out", "{root}/afile.txt/sub"], "is a file, not a folder"),
    ("out-foreign-folder", ["study", *STUDY, "--out", "{root}/mine"], "no study in it.*--overwrite"),
    ("out-is-reuse-from", ["study", *STUDY, "--out", "{root}/study", "--reuse-from",
                           "{root}/study"], "is the input"),
    ("out-inside-reuse-from", ["study", *STUDY, "--out", "{root}/study/sub", "--reuse-from",
                               "{root}/study"], "lies inside the input"),
    ("reuse-from-missing", ["study", *STUDY, "--out", "{root}/new", "--reuse-from",
                            "{root}/nowhere"], "--reuse-from.*nowhere' is not a folder"),
    ("cache-other-settings", ["study", *STUDY, "--out", "{root}/study", "--seed", "1"],
     r"stagnation results and it was saved with other settings \(seed 0 -> 1\).*--overwrite"),
    ("cache-fresh", ["study", *STUDY, "--out", "{root}/study", "--fresh"], "--fresh.*--overwrite"),
    ("cache-crafted", ["study", *STUDY, "--out", "{root}/crafted"],
     "refusing to load.*stagnation.pt.*--overwrite"),
    ("cache-foreign-kind", ["study", *STUDY, "--out", "{root}/foreign"],
     "not a 'climate' cache"),
    ("cache-flipped", ["study", *STUDY, "--out", "{root}/flipped"],
     "stagnation.pt' is corrupted"),
    ("round-format", ["round", "0.1", "--format", "float12"], "unknown number format 'float12'"),
    ("round-sbits", ["round", "0.1", "--format", "sbits99"], "sbits=99 is out of range"),
    ("round-draws", ["round", "0.1", "--draws", "0"], "--draws.*integer >= 1"),
    ("round-rounding", ["round", "0.1", "--rounding", "up"], "--rounding.*invalid choice: 'up'"),
    ("round-value", ["round", "zero"], "invalid float value: 'zero'"),
    ("round-native-sbits", ["round", "0.1", "--format", "sbits5", "--native"],
     "--native with --format sbits5: sbits5 has no torch dtype"),
]


@pytest.mark.parametrize("argv,pattern", [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_cli_bad_input(world: Path, argv: list[str], pattern: str,
                       capsys: pytest.CaptureFixture) -> None:
    from sciflow.cli import main

    argv = [a.replace("{root}", str(world)) for a in argv]
    if argv[0] == "study" and "--out" not in argv:
        argv += ["--out", str(world / "never")]
    before = _hashes(world)
    capsys.readouterr()
    try:
        code = main(["precision", *argv])
    except SystemExit as exc:  # argparse refuses the flag itself
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert CLI_ERROR.search(err), err
    assert "Traceback" not in err
    assert re.search(pattern, err, flags=re.DOTALL), err
    assert _hashes(world) == before
    assert not (world / "never").exists() and not (world / "new").exists()
    assert not Path("/tmp/sciflow-climate-crafted-cache-ran").exists()


def _api_rows() -> list[tuple[str, Callable[[Path], object], type[Exception], str]]:
    from sciflow.domains.climate import (
        Config,
        block_units,
        evaluate,
        paired_w1,
        run_study,
        stagnation,
        sweep_arms,
    )
    from sciflow.domains.climate.flow import flow_sweep

    stag = Config(testbeds=("stagnation",))
    return [
        ("bits-empty", lambda r: Config(bits=()), InputError, "bits is empty"),
        ("bits-53", lambda r: Config(sw_bits=(10, 53)), InputError, r"sw_bits.*\[53\]"),
        ("members-0", lambda r: Config(lorenz_members=0), InputError, "lorenz_members=0"),
        ("nulls-bool", lambda r: Config(lorenz_nulls=True), InputError, "lorenz_nulls=True"),
        ("heat-nan", lambda r: Config(heat_years=float("nan")), InputError, "heat_years=nan"),
        ("spinup-negative", lambda r: Config(sw_spinup_days=-1.0), InputError,
         "sw_spinup_days=-1.0"),
        ("solver", lambda r: Config(flow_solver="rk45"), InputError, "flow_solver='rk45'"),
        ("testbeds-empty", lambda r: Config(testbeds=()), InputError, "testbeds is empty"),
        ("train-type", lambda r: Config(train={"steps": 3}), InputError,
         "train must be a sciflow.train.TrainConfig"),
        ("train-out-dir", lambda r: Config(train=TrainConfig(steps=3, out_dir=str(r))),
         InputError, "train.out_dir"),
        ("train-steps-0", lambda r: Config(testbeds=("flow",), train=TrainConfig(steps=0)),
         InputError, "train.steps=0"),
        ("from-dict-unknown", lambda r: Config.from_dict({"speed": 3}), InputError,
         r"unknown study settings \['speed'\]"),
        ("arms-range", lambda r: sweep_arms([0]), InputError, "sbits 0 is out of range"),
        ("arms-rounding", lambda r: sweep_arms([8], ["up"]), InputError, "rounding 'up'"),
        ("stagnation-0", lambda r: stagnation(steps=0), InputError, "steps and members"),
        ("evaluate-memory", lambda r: evaluate(Config(testbeds=("flow",), flow_samples=10**8),
                                               progress=None),
         ResourceError, "flow_samples"),
        ("sw-nx", lambda r: evaluate(Config(testbeds=("shallow_water",), sw_nx=9), progress=None),
         InputError, "sw_nx=9"),
        ("out-empty", lambda r: run_study(stag, "", progress=None), InputError, "--out is required"),
        ("out-foreign", lambda r: run_study(stag, r / "mine", progress=None), OutputError,
         "no study in it"),
        ("out-input", lambda r: run_study(stag, r / "afile.txt", progress=None,
                                          inputs=[r / "afile.txt"]),
         OutputError, "is the input"),
        ("cache-crafted", lambda r: run_study(stag, r / "crafted", progress=None),
         CheckpointError, "refusing to load"),
        ("flow-sweep-bits", lambda r: flow_sweep(bits=(0,), train=TrainConfig(steps=1)),
         InputError, "sbits 0 is out of range"),
        ("bootstrap-unpaired", lambda r: paired_w1(torch.zeros(4), torch.zeros(5),
                                                   torch.zeros(4, dtype=torch.long),
                                                   torch.ones(2, 1)),
         InputError, r"paired samples; got shapes \(4,\) and \(5,\)"),
        ("bootstrap-units", lambda r: paired_w1(torch.zeros(4), torch.zeros(4),
                                                torch.zeros(3, dtype=torch.long),
                                                torch.ones(2, 1)),
         InputError, r"units has shape \(3,\); expected \(4,\)"),
        ("bootstrap-block-0", lambda r: block_units(10, 0), InputError, "block=0"),
    ]


@pytest.mark.parametrize("row", range(25), ids=lambda i: f"api-{i}")
def test_api_bad_input(world: Path, row: int) -> None:
    rows = _api_rows()
    assert len(rows) == 25
    _, call, error, pattern = rows[row]
    before = _hashes(world)
    with pytest.raises(error, match=pattern):
        call(world)
    assert _hashes(world) == before


def test_there_are_enough_rows() -> None:
    assert len(CLI_ROWS) + len(_api_rows()) >= 18

"""The climate domain's shape and guarantees: config, caches that cannot run code, the study
folder's rules, seeds, shipped caches, start-up imports."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sciflow.checkpoint import CheckpointError, digest, save_checkpoint
from sciflow.domains import climate
from sciflow.domains.climate import Config, StudyConfig, evaluate, run_study
from sciflow.domains.climate.evaluation import cache_key
from sciflow.domains.climate.folder import cache_path, read_cache
from sciflow.errors import InputError, OutputError

# tiny runs cannot decide their verdicts; test_climate_uncertainty checks the warning
pytestmark = pytest.mark.filterwarnings(
    "ignore::sciflow.domains.climate.uncertainty.UndecidedWarning")

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "benchmarks" / "results" / "precision_study"


def _tiny(**kw) -> Config:
    base = dict(testbeds=("lorenz", "stagnation"), bits=(8, 23), lorenz_members=2,
                lorenz_steps=100, lorenz_nulls=2, stagnation_steps=50)
    return Config(**{**base, **kw})


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_export_resolves_and_old_names_are_aliases() -> None:
    for name in climate.__all__:
        assert getattr(climate, name) is not None, name
    assert StudyConfig is Config
    assert climate.run is climate.run_study
    from sciflow.domains.climate import cli, study

    assert cli.QUICK == climate.quick_config() and cli.parse_bits is climate.parse_bits
    assert study.lorenz_sweep is climate.lorenz_sweep and study.SweepRow is climate.SweepRow


def test_config_round_trip_legacy_json_and_train_inside() -> None:
    cfg = _tiny().replace(seed=5, train={"steps": 7})
    assert cfg.seed == cfg.train.seed == 5 and cfg.train.steps == 7
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # the flat config.json of sciflow 0.1 (the shipped study's until it was rewritten)
    legacy = {"testbeds": ["lorenz", "heat", "shallow_water", "flow", "stagnation"],
              "bits": list(range(4, 24)), "sw_bits": [6, 8, 10, 12, 16, 23], "seed": 0,
              "lorenz_members": 30, "lorenz_steps": 50000, "lorenz_nulls": 8,
              "heat_years": 100.0, "sw_nx": 50, "sw_spinup_days": 200.0, "sw_days": 30.0,
              "flow_train_steps": 1500, "flow_samples": 2000, "flow_steps": 32,
              "stagnation_steps": 2000}
    old = Config.from_dict(legacy)
    assert old.train.steps == legacy["flow_train_steps"] and old.seed == legacy["seed"]
    assert old.flow_sample_steps == legacy["flow_steps"]
    assert old == Config()  # sciflow 0.1's full study is today's default
    with pytest.raises(InputError, match="out_dir"):
        Config(train=cfg.train.__class__(steps=3, out_dir="runs/x"))


def test_the_cli_rounding_names_are_the_precision_modules() -> None:
    from sciflow.domains.climate.cli import ROUNDINGS
    from sciflow.precision import ROUNDINGS as CORE

    assert tuple(ROUNDINGS) == tuple(CORE)


def test_a_crafted_cache_is_refused_and_never_runs(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    """Issue 16, finding 1: a pickle in OUT/cache/<testbed>.pt must not execute."""
    out = tmp_path / "study"
    cfg = _tiny(testbeds=("stagnation",))
    run_study(cfg, out, progress=None)
    marker = tmp_path / "PWNED"
    script = ("import os, torch\n"
              "class Evil:\n"
              "    def __reduce__(self):\n"
              f"        return (os.system, ('touch {marker}',))\n"
              f"torch.save({{'key': {{}}, 'value': Evil()}}, "
              f"{str(cache_path(out, 'stagnation'))!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True)
    before = _hashes(out)
    with pytest.raises(CheckpointError, match="refusing to load") as err:
        run_study(cfg, out, progress=None)
    assert "--overwrite" in str(err.value) and "stagnation.pt" in str(err.value)
    assert not marker.exists() and _hashes(out) == before
    # the same through the command line: exit 2, nothing ran, nothing changed
    from sciflow.cli import main

    capsys.readouterr()
    assert main(["precision", "study", "--out", str(out), "--testbeds", "stagnation"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sciflow precision: error: refusing to load") and "Traceback" not in err
    assert not marker.exists() and _hashes(out) == before
    # --overwrite recomputes the testbed without loading the crafted file
    run_study(cfg, out, progress=None, overwrite=True)
    assert not marker.exists()
    key, _ = read_cache(cache_path(out, "stagnation"), "stagnation")
    assert key == cache_key("stagnation", cfg)


def test_a_cache_of_another_kind_or_with_flipped_bytes_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "study"
    run_study(_tiny(testbeds=("stagnation",)), out, progress=None)
    path = cache_path(out, "stagnation")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        read_cache(path, "stagnation")
    save_checkpoint(path, torch.nn.Linear(2, 2), kind="toy")
    with pytest.raises(CheckpointError, match="not a 'climate' cache"):
        read_cache(path, "stagnation")


def test_cached_results_equal_fresh_ones(tmp_path: Path) -> None:
    cfg = _tiny()
    fresh = evaluate(cfg, progress=None)
    said: list[str] = []
    run_study(cfg, tmp_path / "s", progress=None)
    _, body = run_study(cfg, tmp_path / "s", progress=said.append)
    assert sum("reusing" in line for line in said) == 2
    from sciflow.domains.climate.folder import StudyFolder

    keys = {t: cache_key(t, cfg) for t in cfg.testbeds}
    with StudyFolder(tmp_path / "s", keys=keys, files=[]) as folder:
        again = evaluate(cfg, progress=None, cache=folder)
    assert again.reused == ("lorenz", "stagnation")

    def plain(r):  # noqa: ANN001, ANN202
        d = r.to_dict()
        d.pop("reused")
        for s in d["sweeps"]:
            s.pop("seconds")
        return d

    assert digest(plain(again)) == digest(plain(fresh))


def test_study_folder_rules(tmp_path: Path) -> None:
    stag = _tiny(testbeds=("stagnation",))
    out = tmp_path / "study"
    run_study(stag, out, progress=None)
    before = _hashes(out)
    # other settings for a cached testbed / --fresh on it: refused, nothing touched
    with pytest.raises(OutputError, match=r"other settings \(steps 50 -> 60\)"):
        run_study(stag.replace(stagnation_steps=60), out, progress=None)
    with pytest.raises(OutputError, match="--fresh"):
        run_study(stag, out, progress=None, reuse=False)
    assert _hashes(out) == before
    # a new testbed into the same study: the cached one is reused, the report rewritten
    said: list[str] = []
    flow = stag.replace(testbeds=("stagnation", "flow"), flow_samples=50, flow_sample_steps=2,
                        train={"steps": 5})
    run_study(flow, out, progress=said.append)
    assert any(line.startswith("stagnation: reusing") for line in said)
    assert (out / "flow_sweep.png").exists() and cache_path(out, "flow").exists()
    # a folder of other files: refused without --overwrite, kept with it
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="no study in it"):
        run_study(stag, other, progress=None)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    run_study(stag, other, progress=None, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine" and (other / "README.md").exists()
    # --reuse-from: read only, never the output itself
    with pytest.raises(OutputError, match="is the input"):
        run_study(flow, out, progress=None, reuse_from=out)
    copy = tmp_path / "copy"
    said.clear()
    snapshot = _hashes(out)
    run_study(flow, copy, progress=said.append, reuse_from=out)
    assert sum("reusing" in line for line in said) == 2 and _hashes(out) == snapshot
    assert read_cache(cache_path(copy, "flow"), "flow")[0] == cache_key("flow", flow)
    assert [p.name for p in tmp_path.rglob(".sciflow-*")] == []


def test_flow_weights_are_bit_identical_in_two_processes() -> None:
    """train.seed fixes everything from the MLP's initialisation on (seed_everything first):
    this process and a fresh one give the same weights, bit for bit."""
    script = ("import dataclasses, hashlib, torch\n"
              "from sciflow.domains.climate.config import default_train\n"
              "from sciflow.domains.climate.flow import train_flow\n"
              "torch.randn(11)  # unrelated draws before training must not matter\n"
              "net = train_flow(dataclasses.replace(default_train(), steps=5, seed=3))\n"
              "h = hashlib.sha256()\n"
              "for k, v in sorted(net.state_dict().items()):\n"
              "    h.update(k.encode()); h.update(v.numpy().tobytes())\n"
              "print(h.hexdigest())\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env=env).stdout.strip()
    here = {}
    exec(compile(script.replace("print(h.hexdigest())", "here['h'] = h.hexdigest()"),
                 "<seed>", "exec"), {"here": here})
    assert here["h"] == other and len(other) == 64


def test_the_shipped_caches_load_with_the_keys_of_the_shipped_study() -> None:
    """benchmarks/results/precision_study reproduces from its caches: every one is a safe
    save_tensors cache whose key is what its config.json asks for."""
    config = Config.from_dict(json.loads((SHIPPED / "config.json").read_text()))
    for testbed in config.testbeds:
        key, state = read_cache(cache_path(SHIPPED, testbed), testbed)
        assert key == cache_key(testbed, config), testbed
        assert state


def test_cli_and_package_import_no_torch() -> None:
    code = ("import sys, argparse\n"
            "import sciflow.domains.climate as c\n"
            "from sciflow.domains.climate.cli import configure, DOMAIN\n"
            "p = argparse.ArgumentParser(); configure(p)\n"
            "try:\n    p.parse_args(['study', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out, out[-400:]


def test_cli_flags_map_onto_the_config() -> None:
    import argparse

    from sciflow.domains.climate.cli import _config, configure

    parser = argparse.ArgumentParser()
    configure(parser)
    full = _config(parser.parse_args(["study"]))
    assert full == Config()
    quick = _config(parser.parse_args(["study", "--quick", "--flow-train-steps", "5", "--seed",
                                       "3", "--sample-steps", "7", "--solver", "heun"]))
    assert quick == climate.quick_config(flow_sample_steps=7, flow_solver="heun",
                                         train={"steps": 5, "seed": 3})

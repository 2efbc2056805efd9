"""The toy domain: the template's API, CLI and guarantees (seeds, outputs, legacy files)."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sciflow.checkpoint import save_checkpoint
from sciflow.cli import main
from sciflow.domains.toy import Config, Model, evaluate, load, sample, train
from sciflow.domains.toy.cli import DENSITIES
from sciflow.errors import InputError


def _quick(**kw) -> Config:
    return Config(**kw).replace(train={"steps": 20, "progress": False})


def test_api_round_trip(tmp_path: Path) -> None:
    model = train(_quick(coupling="ot"))
    x = sample(model, 64, solver="heun", steps=4)
    assert x.shape == (64, 2) and bool(torch.isfinite(x).all())
    path = model.save(tmp_path / "toy.pt")
    again = load(path)
    assert again.config == model.config
    assert torch.equal(sample(again, 16, steps=2), sample(model, 16, steps=2))
    scores = evaluate(model, n=200, nfes=(1, 4))
    assert set(scores) == {"euler-1", "euler-4", "dopri5", "dopri5-nfe", "floor"}


def test_same_seed_same_weights_in_two_processes(tmp_path: Path) -> None:
    """seed= fixes everything from model initialisation on: two processes, bit-identical."""
    script = ("import sys, hashlib, torch\n"
              "from sciflow.domains.toy import Config, train\n"
              "torch.randn(7)  # unrelated draws before training must not matter\n"
              "m = train(Config().replace(train={'steps': 5, 'seed': 3, 'progress': False}))\n"
              "h = hashlib.sha256()\n"
              "for k, v in sorted(m.net.state_dict().items()):\n"
              "    h.update(v.numpy().tobytes())\n"
              "print(h.hexdigest())\n")
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 64


def test_bad_inputs_are_input_errors() -> None:
    model = train(_quick())
    for kwargs, match in (({"n": 0}, "n=0"), ({"n": -3}, "n=-3"),
                          ({"n": 10, "steps": 0}, "steps=0"),
                          ({"n": 10, "solver": "rk45"}, "solver='rk45'")):
        with pytest.raises(InputError, match=match):
            sample(model, **kwargs)
    with pytest.raises(InputError, match="n: 10000000000 samples would need"):
        sample(model, 10**10)
    with pytest.raises(InputError, match="coupling='sinkhorn'"):
        Config(coupling="sinkhorn")


def test_legacy_checkpoint_loads(tmp_path: Path) -> None:
    model = train(_quick())
    old = save_checkpoint(tmp_path / "old.pt", model.net,
                          meta={"toy": {"source": "8gaussians", "target": "moons",
                                        "coupling": "independent", "hidden": 64, "layers": 3}})
    assert isinstance(load(old), Model)


def test_densities_listed_by_the_cli_are_the_datasets() -> None:
    from sciflow.datasets.toy2d import TOY2D

    assert tuple(sorted(TOY2D)) == DENSITIES


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_train_sample_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["toy", "train", "--steps", "20", "--out", str(run)]) == 0
    ckpt = run / "model.pt"
    out_csv = tmp_path / "s.csv"
    assert main(["toy", "sample", "--checkpoint", str(ckpt), "-n", "50", "-o", str(out_csv)]) == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["x", "y"] and len(rows) == 51
    before = {p: _digest(p) for p in (ckpt, out_csv)}
    capsys.readouterr()
    # the output is the checkpoint itself / exists / has an unknown format
    assert main(["toy", "sample", "--checkpoint", str(ckpt), "-o", str(ckpt)]) == 2
    assert "input" in capsys.readouterr().err
    assert main(["toy", "sample", "--checkpoint", str(ckpt), "-o", str(out_csv)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["toy", "sample", "--checkpoint", str(ckpt), "-o", str(tmp_path / "s.parquet")]) == 2
    assert "unknown output format" in capsys.readouterr().err
    # a second training into the same folder without --resume
    assert main(["toy", "train", "--steps", "20", "--out", str(run)]) == 2
    assert "exists" in capsys.readouterr().err
    assert {p: _digest(p) for p in before} == before
    with pytest.raises(SystemExit) as exc:
        main(["toy", "sample", "--checkpoint", str(ckpt), "-n", "-3"])
    assert exc.value.code == 2
    assert main(["toy", "sample", "--checkpoint", str(ckpt), "-n", "50", "-o", str(out_csv),
                 "--overwrite"]) == 0

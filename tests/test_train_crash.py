"""kill -9 a training run at random moments: resuming gives the uninterrupted run bit for bit,
and the metrics log has every record exactly once."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sciflow.checkpoint import read_state

SCRIPT = r"""
import sys, time, torch
from torch import nn
from sciflow.train import TrainConfig, Trainer

out, resume = sys.argv[1], sys.argv[2] == "resume"
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 3))

def batch_fn(step, g):
    if step == 0 or resume:
        print("training", flush=True)
    time.sleep(0.01)  # long enough for a kill to land between steps or inside a save
    return torch.randn(16, 3, generator=g)

def loss_fn(model, x):
    return ((model(x) - x.flip(-1)) ** 2).mean()

cfg = TrainConfig(steps=60, lr=1e-2, log_every=5, checkpoint_every=5, keep_checkpoints=2,
                  out_dir=out, seed=5, progress=False)
Trainer(net, loss_fn, cfg).fit(batch_fn, resume=resume)
"""


def _run(out: Path, mode: str) -> None:
    subprocess.run([sys.executable, "-c", SCRIPT, str(out), mode], check=True,
                   capture_output=True, timeout=300)


def _final(out: Path) -> dict[str, torch.Tensor]:
    state = read_state(sorted((out / "checkpoints").glob("step_*.pt"))[-1])
    assert state["step"] == 60
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"ema.{k}": v for k, v in state["ema"].items()}}


@pytest.mark.parametrize("trial", range(2))
def test_kill_at_a_random_moment_then_resume_is_bit_exact(tmp_path: Path, trial: int) -> None:
    reference = tmp_path / "reference"
    _run(reference, "fresh")
    crashed = tmp_path / "crashed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(crashed), "fresh"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "training"
    time.sleep(random.Random(trial).uniform(0.05, 0.6))
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    _run(crashed, "resume")
    ref, got = _final(reference), _final(crashed)
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref), "resumed weights differ"
    steps = [json.loads(line)["step"] for line in (crashed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(5, 61, 5)), f"log records lost or duplicated: {steps}"
    leftovers = [p.name for p in (crashed / "checkpoints").iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporaries of the killed run were not swept: {leftovers}"

"""DDP under torchrun: 2 gloo processes on halves of a batch == 1 process on the whole batch."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from sciflow.checkpoint import read_state
from sciflow.train import Trainer, load_checkpoint

_spec = importlib.util.spec_from_file_location("_ddp_worker", Path(__file__).with_name(
    "_ddp_worker.py"))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_equals_one_process_on_the_union(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", CI="true")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
           "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(Path(worker.__file__)), str(out)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    reference = Trainer(worker.make_net(seed=0), worker.loss_fn, worker.config(tmp_path / "one"))
    reference.fit(lambda step, g: worker.full_batch(step))
    ranks = [read_state(out / f"rank{r}.pt") for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["seed"] for r in ranks] == [11, 12]  # each rank its own data generator seed
    for key, module in (("model", reference.model), ("ema", reference.ema_model)):
        for name, value in module.state_dict().items():
            assert torch.equal(ranks[0][key][name], ranks[1][key][name])  # ranks stay in sync
            torch.testing.assert_close(ranks[0][key][name], value, rtol=0, atol=1e-12)

    # rank 0 alone wrote the checkpoint (holding both ranks' RNG states) and the log
    ckpt = out / "checkpoints" / f"step_{worker.STEPS:08d}.pt"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [ckpt.name]
    assert len(read_state(ckpt)["rng"]) == 2
    weights = load_checkpoint(ckpt, ema=False).state_dict
    for name, value in reference.model.state_dict().items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=1e-12)
    logs = [[json.loads(ln) for ln in (d / "metrics.jsonl").read_text().splitlines()]
            for d in (out, tmp_path / "one")]
    assert [r["step"] for r in logs[0]] == list(range(1, worker.STEPS + 1))  # no duplicates
    for ddp, one in zip(*logs):  # logged loss = mean over ranks = loss of the whole batch
        assert abs(ddp["loss"] - one["loss"]) < 1e-12
        assert abs(ddp["grad_norm"] - one["grad_norm"]) < 1e-12

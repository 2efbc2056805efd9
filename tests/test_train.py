"""Tests of sciflow.train: exact resume, atomic and safe checkpoints, NaN guard, EMA, logs."""

from __future__ import annotations

import json
import math
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

import sciflow.train as train_mod
from sciflow.checkpoint import read_state
from sciflow.train import (
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

DIM = 3


class Crash(Exception):
    """Stands in for a job killed mid-run."""


def make_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(DIM + 1, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, DIM))


def fm_loss(model: nn.Module, x1: Tensor) -> tuple[Tensor, dict[str, float]]:
    """A flow-matching loss that draws from the torch, numpy and python RNGs (all must resume)."""
    x0 = torch.randn_like(x1)
    t = torch.rand(x1.shape[0], 1)
    xt = (1 - t) * x0 + t * x1
    scale = 1.0 + 0.01 * float(np.random.rand()) + 0.01 * random.random()
    loss = ((model(torch.cat([xt, t], dim=-1)) - (x1 - x0)) ** 2).mean() * scale
    return loss, {"t_mean": float(t.mean())}


def batch_fn(step: int, g: torch.Generator) -> Tensor:
    return 2.0 * torch.randn(16, DIM, generator=g) + 1.0


def crash_at(k: int, inner: Any = batch_fn) -> Any:
    def fn(step: int, g: torch.Generator) -> Tensor:
        if step == k:
            raise Crash(f"killed at step {k}")
        return inner(step, g)

    return fn


def config(out: Path | None, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "steps": 12, "lr": 5e-3, "weight_decay": 1e-2, "ema_decay": 0.9, "grad_clip": 0.5,
        "warmup_steps": 3, "schedule": "cosine", "log_every": 2, "checkpoint_every": 5,
        "out_dir": out, "seed": 7, "progress": False}
    return TrainConfig(**{**base, **kw})


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive bitwise equality of nested checkpoint states."""
    if isinstance(a, Tensor):
        assert isinstance(b, Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def read_ckpt(path: Path) -> dict[str, Any]:
    state = read_state(path)
    # wall time and out_dir differ between runs, and so does the digest over them
    del state["elapsed"], state["config_json"], state["digest"]
    return state


def read_log(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------ bit-exact resume
def test_resume_with_batch_fn_is_bit_exact(tmp_path: Path) -> None:
    straight = Trainer(make_net(), fm_loss, config(tmp_path / "a"))
    straight.fit(batch_fn)

    out = tmp_path / "b"
    with pytest.raises(Crash):
        Trainer(make_net(), fm_loss, config(out)).fit(crash_at(7))
    assert latest_checkpoint(out).name == "step_00000005.pt"
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 8, "lo')  # a record cut short by the kill
    resumed = Trainer(make_net(seed=99), fm_loss, config(out))  # other init: all must come back
    result = resumed.fit(batch_fn, resume=True)
    assert (result.start_step, result.step) == (5, 12)

    for a, b in ((straight.model, resumed.model), (straight.ema_model, resumed.ema_model)):
        assert_same(a.state_dict(), b.state_dict())
    assert_same(straight.optimizer.state_dict(), resumed.optimizer.state_dict())
    assert_same(straight.scheduler.state_dict(), resumed.scheduler.state_dict())
    assert_same(read_ckpt(tmp_path / "a/checkpoints/step_00000012.pt"), read_ckpt(result.checkpoint))
    # the crashed run's records after step 5 were dropped: the log reads as one clean run
    log_a, log_b = read_log(tmp_path / "a"), read_log(out)
    assert [r["step"] for r in log_b] == [r["step"] for r in log_a] == list(range(2, 13, 2))
    assert [r["loss"] for r in log_b] == [r["loss"] for r in log_a]


@pytest.mark.parametrize("loader_seed", [None, 5])
def test_resume_with_shuffled_dataloader_is_bit_exact(tmp_path: Path, loader_seed: int | None
                                                      ) -> None:
    data = TensorDataset(torch.randn(40, DIM, generator=torch.Generator().manual_seed(1)))

    def loader() -> DataLoader:
        g = None if loader_seed is None else torch.Generator().manual_seed(loader_seed)
        return DataLoader(data, batch_size=8, shuffle=True, generator=g)  # 5 batches an epoch

    def loss(model: nn.Module, batch: list[Tensor]) -> Tensor:
        return fm_loss(model, batch[0])[0]

    straight = Trainer(make_net(), loss, config(tmp_path / "a", steps=13, checkpoint_every=6))
    straight.fit(loader())

    calls = {"n": 0}

    def crashing(model: nn.Module, batch: list[Tensor]) -> Tensor:
        calls["n"] += 1
        if calls["n"] == 9:  # mid epoch 1, three updates after the step-6 checkpoint
            raise Crash
        return loss(model, batch)

    out = tmp_path / "b"
    cfg = config(out, steps=13, checkpoint_every=6)
    with pytest.raises(Crash):
        Trainer(make_net(), crashing, cfg).fit(loader())
    resumed = Trainer(make_net(seed=3), loss, cfg)
    resumed.fit(loader(), resume=latest_checkpoint(out))
    assert_same(straight.model.state_dict(), resumed.model.state_dict())
    assert_same(straight.ema_model.state_dict(), resumed.ema_model.state_dict())
    assert_same(straight.optimizer.state_dict(), resumed.optimizer.state_dict())


# ----------------------------------------------------------------------------------- EMA
def test_cpu_update_is_the_per_tensor_adamw_bit_for_bit(tmp_path: Path) -> None:
    """On the CPU the Trainer runs AdamW's multi-tensor update (faster); it must give the weights
    of torch's per-tensor loop bit for bit, and keep its choice when resuming a checkpoint
    written with the other one."""
    cfg = config(tmp_path / "slow", steps=20, checkpoint_every=0)
    fast = Trainer(make_net(), fm_loss, config(None, steps=20))
    slow = Trainer(make_net(), fm_loss, cfg)
    for group in slow.optimizer.param_groups:
        group["foreach"] = False
    assert fast.optimizer.param_groups[0]["foreach"] is True
    fast.fit(batch_fn)
    slow.fit(batch_fn)
    assert_same(fast.model.state_dict(), slow.model.state_dict())
    assert_same(fast.ema_model.state_dict(), slow.ema_model.state_dict())
    assert_same(fast.optimizer.state_dict()["state"], slow.optimizer.state_dict()["state"])
    resumed = Trainer(make_net(), fm_loss, cfg)
    resumed.restore(latest_checkpoint(tmp_path / "slow"))
    assert all(g["foreach"] is True for g in resumed.optimizer.param_groups)


def test_ema_matches_closed_form() -> None:
    torch.manual_seed(0)
    net = nn.Linear(2, 2).double()
    seen: list[list[Tensor]] = []

    def loss(model: nn.Module, x: Tensor) -> Tensor:
        seen.append([p.detach().clone() for p in model.parameters()])  # theta_i before update i
        return (model(x) ** 2).mean()

    d, n = 0.8, 6
    trainer = Trainer(net, loss, TrainConfig(steps=n, lr=0.05, ema_decay=d, grad_clip=None,
                                             progress=False))
    trainer.fit(lambda step, g: torch.randn(8, 2, generator=g, dtype=torch.float64))
    thetas = seen + [[p.detach() for p in net.parameters()]]  # theta_0 .. theta_n
    for j, ema_p in enumerate(trainer.ema_model.parameters()):
        closed = d**n * thetas[0][j] + (1 - d) * sum(d ** (n - i) * thetas[i][j]
                                                     for i in range(1, n + 1))
        torch.testing.assert_close(ema_p, closed, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(ema_p, thetas[n][j])  # EMA lags the weights


# ---------------------------------------------------------------------- checkpoint safety
class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_pickle_is_refused_not_executed(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    payload = {"format": train_mod.CHECKPOINT_FORMAT, "model": Evil(marker)}
    path = tmp_path / "evil.pt"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path, make_net())
    trainer = Trainer(make_net(), fm_loss, config(None))
    with pytest.raises(CheckpointError):
        trainer.fit(batch_fn, resume=path)
    assert not marker.exists()
    if writer == "pickle":  # control: the payload is live, an unsafe load would have run it
        pickle.loads(path.read_bytes())
        assert marker.exists()


def crash_replace(real: Any) -> Any:
    def fake(src: Any, dst: Any) -> None:
        if str(dst).endswith(".pt"):
            raise OSError("simulated crash before rename")
        real(src, dst)

    return fake


def crash_save(obj: Any, f: Any) -> None:
    f.write(b"PK\x03\x04 half a checkpoint")
    raise OSError("simulated crash while writing")


@pytest.mark.parametrize("where", ["torch.save", "os.replace"])
def test_crash_during_save_keeps_previous_checkpoint(tmp_path: Path, where: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    Trainer(make_net(), fm_loss, config(out, steps=5)).fit(batch_fn)
    good = out / "checkpoints/step_00000005.pt"
    before = good.read_bytes()

    trainer = Trainer(make_net(), fm_loss, config(out, steps=8))
    if where == "torch.save":
        monkeypatch.setattr(torch, "save", crash_save)
    else:
        monkeypatch.setattr(os, "replace", crash_replace(os.replace))
    with pytest.raises(OSError, match="simulated"):
        trainer.fit(batch_fn, resume=True)  # trains 5 -> 8, then the final save crashes
    with pytest.raises(OSError, match="simulated"):
        trainer.save_checkpoint(good)  # overwriting in place must not clobber it either
    monkeypatch.undo()

    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [good.name]  # no temp left
    assert good.read_bytes() == before
    assert load_checkpoint(good).step == 5
    # a temp file left by a hard kill (no cleanup ran) is never taken as a checkpoint
    (out / "checkpoints" / ".step_00000008.pt.x1y2.tmp").write_bytes(b"PK\x03\x04 partial")
    assert latest_checkpoint(out) == good
    assert Trainer(make_net(), fm_loss, config(out, steps=6)).fit(batch_fn, resume=True).step == 6


# -------------------------------------------------------------------------------- NaN guard
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(tmp_path: Path, bad: float
                                                             ) -> None:
    def poisoned(step: int, g: torch.Generator) -> Tensor:
        x = batch_fn(step, g)
        return x * bad if step == 7 else x

    trainer = Trainer(make_net(), fm_loss, config(tmp_path))
    with pytest.raises(NonFiniteLossError, match="at step 7") as info:
        trainer.fit(poisoned)
    assert info.value.step == 7
    assert info.value.checkpoint == tmp_path / "checkpoints/step_00000005.pt"
    assert trainer.step == 7 and all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000005.pt"]
    net = make_net(seed=1)
    ck = load_checkpoint(info.value.checkpoint, net)
    assert ck.step == 5 and ck.weights == "ema"
    assert all(torch.isfinite(p).all() for p in net.parameters())


# ------------------------------------------------------------------ logs, clipping, helpers
def test_metric_log_clipping_and_pruning(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=10, checkpoint_every=2, keep_checkpoints=2, grad_clip=1e-3)
    trainer = Trainer(make_net(), fm_loss, cfg)
    result = trainer.fit(batch_fn)
    records = read_log(tmp_path)
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10]
    assert set(records[0]) == {"step", "loss", "grad_norm", "lr", "time", "t_mean"}
    assert [r["loss"] for r in records] == [loss for _, loss in result.loss_history]
    assert result.final_loss == records[-1]["loss"]
    assert all(r["grad_norm"] > cfg.grad_clip for r in records)  # logged before clipping
    clipped = torch.cat([p.grad.flatten() for p in trainer.params]).norm()
    assert clipped <= cfg.grad_clip * (1 + 1e-5)  # the last update used clipped gradients
    times = [r["time"] for r in records]
    assert times == sorted(times)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000008.pt", "step_00000010.pt"]
    assert result.checkpoint == tmp_path / "checkpoints/step_00000010.pt"


def test_progress_bar_on_off(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal the default still reports (a plain line), unless silenced."""
    Trainer(make_net(), fm_loss, config(None, steps=3, progress=None)).fit(batch_fn)
    assert "[train] 3/3 (100%)" in capsys.readouterr().err
    Trainer(make_net(), fm_loss, config(None, steps=3, progress=False)).fit(batch_fn)
    assert "train" not in capsys.readouterr().err
    monkeypatch.setenv("SCIFLOW_PROGRESS", "0")
    Trainer(make_net(), fm_loss, config(None, steps=3, progress=None)).fit(batch_fn)
    assert "train" not in capsys.readouterr().err
    Trainer(make_net(), fm_loss, config(None, steps=3, progress=True)).fit(batch_fn)
    assert "[train] 3/3" in capsys.readouterr().err


def test_save_and_load_a_shipped_model(tmp_path: Path) -> None:
    net = make_net(seed=4)
    path = save_checkpoint(tmp_path / "deep/model.pt", net, meta={"hidden": 16, "dim": DIM})
    fresh = make_net(seed=5)
    ck = load_checkpoint(path, fresh)
    assert_same(fresh.state_dict(), net.state_dict())
    assert (ck.meta, ck.config, ck.weights, ck.step) == ({"hidden": 16, "dim": DIM}, None,
                                                         "model", 0)
    with pytest.raises(CheckpointError, match="no EMA"):
        load_checkpoint(path, ema=True)
    with pytest.raises(CheckpointError, match="not written by Trainer"):
        Trainer(make_net(), fm_loss, config(None)).restore(path)
    trainer = Trainer(make_net(), fm_loss, config(tmp_path / "t", steps=2), meta={"k": 1})
    ck = load_checkpoint(trainer.fit(batch_fn).checkpoint, ema=False)
    assert ck.config["steps"] == 2 and ck.meta == {"k": 1}
    assert_same(ck.state_dict, trainer.model.state_dict())


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(("field", "value"), [
    ("steps", -1), ("steps", 2.5), ("lr", 0.0), ("ema_decay", 1.0), ("grad_clip", -1.0),
    ("log_every", 0), ("schedule", "step"), ("betas", (0.9, 1.0)), ("seed", -3)])
def test_config_rejects_bad_values(field: str, value: Any) -> None:
    kw: dict[str, Any] = {"steps": 5, field: value}
    with pytest.raises(ValueError, match=f"TrainConfig.{field}="):
        TrainConfig(**kw)


def test_config_is_frozen_and_keyword_only() -> None:
    cfg = TrainConfig(steps=1)
    with pytest.raises(AttributeError):
        cfg.steps = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrainConfig(1)  # type: ignore[misc]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    def vector_loss(model: nn.Module, x: Tensor) -> Tensor:
        return fm_loss(model, x)[0].repeat(4)

    with pytest.raises(ValueError, match=r"\(4,\) at step 0; expected a scalar"):
        Trainer(make_net(), vector_loss, config(None)).fit(batch_fn)
    with pytest.raises(ValueError, match="does not require grad"):
        Trainer(make_net(), lambda m, x: torch.tensor(1.0), config(None)).fit(batch_fn)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        Trainer(make_net(), fm_loss, config(None)).fit(batch_fn, resume=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="out_dir"):
        Trainer(make_net(), fm_loss, config(None)).fit(batch_fn, resume=True)
    with pytest.raises(TypeError, match="data must be"):
        Trainer(make_net(), fm_loss, config(None)).fit(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no batches"):
        Trainer(make_net(), fm_loss, config(None)).fit(iter([torch.randn(4, DIM)]))
    with pytest.raises(TypeError, match="meta must be JSON"):
        Trainer(make_net(), fm_loss, config(None), meta={"f": object()})
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(make_net(), fm_loss, {"steps": 3})  # type: ignore[arg-type]
    Trainer(make_net(), fm_loss, config(tmp_path / "run", steps=2)).fit(batch_fn)
    with pytest.raises(FileExistsError, match="resume=True"):
        Trainer(make_net(), fm_loss, config(tmp_path / "run", steps=4)).fit(batch_fn)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)


def test_restore_refuses_a_checkpoint_of_another_model_and_leaves_the_trainer_as_it_was(
        tmp_path: Path) -> None:
    ck = Trainer(make_net(), fm_loss, config(tmp_path / "t", steps=2)).fit(batch_fn).checkpoint
    wider = nn.Sequential(nn.Linear(DIM + 1, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, DIM))
    trainer = Trainer(wider, fm_loss, config(None))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"other shapes.*0\.weight \(16, 4\) vs \(32, 4\)"):
        trainer.restore(ck)
    assert_same(trainer.model.state_dict(), before)
    assert trainer.step == 0
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(ck, wider)
    assert_same(wider.state_dict(), before)
    # same tensors, another optimiser layout (two parameter groups): refused before anything loads
    net = make_net()
    split = Trainer(net, fm_loss, config(None))
    split.optimizer = torch.optim.AdamW([{"params": list(net[0].parameters())},
                                         {"params": list(net[3].parameters())}])
    with pytest.raises(CheckpointError, match="parameter groups"):
        split.restore(ck)

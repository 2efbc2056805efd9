"""The Trainer's prepare hook and coupling prefetch: the same weights bit for bit with and without
the worker thread, exact resume mid-prefetch, errors at the step they belong to."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import sciflow.prefetch as prefetch_mod
from sciflow.checkpoint import read_state
from sciflow.couplings import ExactOTCoupling, SinkhornCoupling
from sciflow.matcher import CoupledBatch, FlowMatcher
from sciflow.nn.mlp import MLPVelocity
from sciflow.train import TrainConfig, Trainer, step_seed

STEPS = 14


class Crash(Exception):
    """Stands in for a job killed mid-run."""


def batch_fn(step: int, g: torch.Generator) -> Tensor:
    return torch.randn(32, 2, generator=g) + torch.tensor([3.0, 0.0])


def run(out: Path | None, *, prefetch: bool, coupling: Any, crash_at: int | None = None,
        resume: bool = False, threads: list[str] | None = None) -> Trainer:
    """Train an MLP with OT-CFM whose coupling step is the prepare hook; x0 from the per-step
    generator, the time and the dropout-free loss from the global stream."""
    torch.manual_seed(0)
    net = MLPVelocity(dim=2, hidden=16, layers=2)
    fm = FlowMatcher(coupling=coupling)

    def prepare(x1: Tensor, g: torch.Generator) -> CoupledBatch:
        if threads is not None:
            threads.append(threading.current_thread().name)
        return fm.couple(x1, generator=g)

    def data(step: int, g: torch.Generator) -> Tensor:
        if step == crash_at:
            raise Crash(step)
        return batch_fn(step, g)

    cfg = TrainConfig(steps=STEPS, lr=1e-2, log_every=3, checkpoint_every=4, seed=3,
                      out_dir=out, progress=False, prefetch=prefetch)
    trainer = Trainer(net, lambda m, pair: fm.loss(m, pair), cfg, prepare=prepare)
    trainer.fit(data, resume=resume)
    return trainer


def same_state(a: Trainer, b: Trainer) -> bool:
    pairs = [(a.model.state_dict(), b.model.state_dict()),
             (a.ema_model.state_dict(), b.ema_model.state_dict())]
    return all(torch.equal(x[k], y[k]) for x, y in pairs for k in x)


@pytest.fixture
def always_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the worker whatever the hook costs (tiny batches would stay inline)."""
    monkeypatch.setattr(prefetch_mod, "_AHEAD_MIN_SECONDS", 0.0)


@pytest.mark.parametrize("coupling", [ExactOTCoupling(), SinkhornCoupling(reg=0.5)],
                         ids=["exact-ot", "sinkhorn-draws"])
def test_prefetch_is_bit_identical_to_the_serial_path(always_ahead: None, coupling: Any) -> None:
    threads: list[str] = []
    ahead = run(None, prefetch=True, coupling=coupling, threads=threads)
    assert any(name.startswith("sciflow-prepare") for name in threads)  # the worker ran it
    serial_threads: list[str] = []
    serial = run(None, prefetch=False, coupling=coupling, threads=serial_threads)
    assert set(serial_threads) == {threading.current_thread().name}
    assert same_state(ahead, serial)
    assert torch.equal(ahead.generator.get_state(), serial.generator.get_state())


def test_resume_from_a_checkpoint_written_mid_prefetch_is_bit_exact(always_ahead: None,
                                                                    tmp_path: Path) -> None:
    straight = run(tmp_path / "a", prefetch=True, coupling=ExactOTCoupling())
    with pytest.raises(Crash):  # batch 10 was drawn ahead while step 9 trained
        run(tmp_path / "b", prefetch=True, coupling=ExactOTCoupling(), crash_at=10)
    assert sorted(p.name for p in (tmp_path / "b/checkpoints").iterdir())[-1] == \
        "step_00000008.pt"
    resumed = run(tmp_path / "b", prefetch=True, coupling=ExactOTCoupling(), resume=True)
    assert same_state(straight, resumed)
    a = read_state(tmp_path / "a/checkpoints/step_00000014.pt")
    b = read_state(tmp_path / "b/checkpoints/step_00000014.pt")
    assert torch.equal(a["rng"][0]["generator"], b["rng"][0]["generator"])


def test_a_failing_draw_ahead_raises_at_its_own_step(always_ahead: None) -> None:
    seen: list[int] = []

    def loss(model: nn.Module, x: Tensor) -> Tensor:
        seen.append(len(seen))
        return model(x, torch.zeros(x.shape[0])).square().mean()

    def data(step: int, g: torch.Generator) -> Tensor:
        if step == 5:
            raise Crash(step)
        return batch_fn(step, g)

    torch.manual_seed(0)
    trainer = Trainer(MLPVelocity(dim=2, hidden=8, layers=1), loss,
                      TrainConfig(steps=9, progress=False), prepare=lambda x, g: x)
    with pytest.raises(Crash):
        trainer.fit(data)
    assert trainer.step == 5 and seen == [0, 1, 2, 3, 4]  # steps 0-4 trained, as serially


def test_prepare_gets_a_per_step_generator_on_the_device_and_no_grad() -> None:
    seeds: list[tuple[int, bool]] = []

    def prepare(x: Tensor, g: torch.Generator) -> Tensor:
        seeds.append((g.initial_seed(), torch.is_grad_enabled()))
        assert g.device == x.device
        return x

    torch.manual_seed(0)
    net = nn.Linear(2, 2)
    Trainer(net, lambda m, x: m(x).square().mean(), TrainConfig(steps=4, seed=9, progress=False),
            prepare=prepare).fit(batch_fn)
    assert seeds == [(step_seed(9, k), False) for k in range(4)]
    assert len({step_seed(s, k) for s in range(3) for k in range(100)}) == 300


def test_prepare_runs_inline_with_an_iterable_feed() -> None:
    data = [torch.randn(8, 2, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    names: list[str] = []

    def prepare(x: Tensor, g: torch.Generator) -> Tensor:
        names.append(threading.current_thread().name)
        return 2 * x

    torch.manual_seed(0)
    Trainer(nn.Linear(2, 2), lambda m, x: m(x).square().mean(),
            TrainConfig(steps=5, progress=False), prepare=prepare).fit(data)
    assert names == [threading.current_thread().name] * 5


def test_prepare_must_be_callable() -> None:
    with pytest.raises(TypeError, match="prepare"):
        Trainer(nn.Linear(2, 2), lambda m, x: m(x).sum(), TrainConfig(steps=1),
                prepare=3)  # type: ignore[arg-type]

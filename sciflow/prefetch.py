"""Batches for the Trainer's loop, prepared inline or one step ahead in a worker thread.

The :class:`~sciflow.train.Trainer` runs an optional ``prepare(batch, generator)`` hook (a flow
matcher's coupling step, :meth:`sciflow.matcher.FlowMatcher.couple`) on every batch before the
loss. :class:`Batches` decides where: inline, or — with ``TrainConfig.prefetch``, a ``batch_fn``
feed and a hook that costs more than a thread handoff — in one worker thread, on batch k+1 while
batch k trains. POT's ``emd`` and SciPy's ``linear_sum_assignment`` release the GIL while they
solve (``benchmarks/core_2d.py`` measures it), so the solve runs beside the forward and backward
passes when the machine has a second core free; on a saturated machine the kernel's fair share
gives the second thread no extra time and prefetch cannot gain.

Every step's batch is the same either way (bit-identical training): the hook's only random source
is its per-step generator, seeded by :func:`step_seed` from (seed + rank, step).
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sciflow.train import Trainer

__all__ = ["Batches", "step_seed"]

_MASK64 = (1 << 64) - 1


def step_seed(seed: int, step: int) -> int:
    """The seed of the per-step generator ``prepare`` gets: splitmix64 of (seed, step), so
    neighbouring steps and seeds give unrelated streams. Returns an integer in [0, 2**64)."""
    z = (seed * 0x9E3779B97F4A7C15 + step + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


_PROBE_STEPS = 3
_AHEAD_MIN_SECONDS = 1e-3
"""``prepare`` moves to the worker thread once it took this much CPU time (median of the first
``_PROBE_STEPS`` steps, run inline). Handing a batch to a thread and back costs 20-40 us of CPU,
but on a loaded machine every hand-over of the GIL may wait for the other thread to be scheduled
(milliseconds; measured: I-CFM steps 2.8x slower in wall time through the worker), so only a hook
that costs more than that runs ahead: an exact OT solve of a few hundred points (2-5 ms), not
independent pairs (~0.05-0.2 ms)."""


class Batches:
    """Prepared batches for the loop. Without a ``prepare`` hook, prefetch or a ``batch_fn``,
    each step draws and prepares inline. Otherwise the first steps time the hook, and if it is
    slow enough to gain, batch k+1 is drawn on the training thread (in step order, from the
    trainer's generator) and prepared in one worker thread while batch k trains. The generator
    state before a draw ahead is kept for checkpoints, and put back if the batch is never
    trained, so a resumed or continued run draws it again. Either way every step's batch is the
    same: the hook's only random source is its per-step generator."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        cfg, feed = trainer.config, trainer._feed
        self.can_ahead = (trainer.prepare is not None and cfg.prefetch and feed is not None
                          and feed.batch_fn is not None)
        self.ahead = False
        self.probe: list[float] = []  # CPU seconds of the first inline calls
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.pending: tuple[int, concurrent.futures.Future[Any]] | None = None

    def get(self, step: int) -> Any:
        """The prepared batch of ``step``."""
        t = self.trainer
        if not self.ahead:
            batch = t._draw(step)
            if not self.can_ahead or len(self.probe) == _PROBE_STEPS:
                return t._prepared(batch, step)
            t0 = time.thread_time()  # CPU time: a loaded machine does not inflate it
            batch = t._prepared(batch, step)
            self.probe.append(time.thread_time() - t0)
            self.ahead = (len(self.probe) == _PROBE_STEPS
                          and sorted(self.probe)[_PROBE_STEPS // 2] >= _AHEAD_MIN_SECONDS)
            return batch
        if self.pending is None or self.pending[0] != step:
            self._submit(step)
        assert self.pending is not None
        future = self.pending[1]
        self.pending, t._ahead_state = None, None
        if step + 1 < t.config.steps:
            self._submit(step + 1)  # drawn now, prepared while this step trains
        return future.result()

    def _submit(self, step: int) -> None:
        t = self.trainer
        if self.pool is None:
            self.pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="sciflow-prepare")
        t._ahead_state = t.generator.get_state()
        try:
            batch = t._draw(step)
        except Exception as err:  # raise it at ``step``, where the serial path would
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_exception(err)
        else:
            future = self.pool.submit(t._prepared, batch, step)
        self.pending = (step, future)

    def close(self) -> None:
        t = self.trainer
        if self.pending is not None:
            self.pending[1].cancel()
            if t._ahead_state is not None:
                t.generator.set_state(t._ahead_state)
            self.pending, t._ahead_state = None, None
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

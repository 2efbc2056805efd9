"""Training loop: AdamW, EMA weights, gradient clipping, safe checkpoints, exact resume, DDP.

The trainer is model-agnostic: it needs a module, a ``loss_fn(model, batch) -> loss`` and a data
feed. Everything a run needs to continue bit-exactly lives in its checkpoints: the weights, the EMA
weights, the AdamW and LR-scheduler state, the step counter and every random state (torch, numpy,
python, the trainer's data generator and the position inside a data loader's epoch).

Checkpoints are written atomically and read (weights only, digest checked) by
:mod:`sciflow.checkpoint`: a crash mid-save never leaves a half-written file where a checkpoint is
expected, and a crafted pickle cannot execute code. Its ``save_checkpoint``, ``load_checkpoint``,
``latest_checkpoint``, ``LoadedCheckpoint``, ``CheckpointError`` and ``CHECKPOINT_FORMAT`` are
re-exported here for existing callers.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the model is wrapped in
``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA); gradients are averaged over ranks, so the
update equals one process on the union of the ranks' batches with a mean loss. Only rank 0 writes
checkpoints, logs and the progress bar; each rank has its own seeds (``seed + rank``).

Prefetch: a ``prepare(batch, generator)`` hook (the coupling step of a flow matcher,
:meth:`sciflow.matcher.FlowMatcher.couple`) runs on each batch before ``loss_fn``. With
``TrainConfig.prefetch`` (the default) and a ``batch_fn`` feed, batch k+1 is drawn on the training
thread and prepared in a worker thread while batch k trains, so an exact OT solve (POT and SciPy
release the GIL) overlaps the forward and backward passes. The result is bit-identical to
``prefetch=False`` because of the contract on random numbers:

- ``batch_fn(step, generator)`` draws from its ``generator`` only (the trainer's, used by nothing
  else); it runs on the training thread, one step ahead when prefetching;
- ``prepare(batch, generator)`` draws from its ``generator`` only: a generator on the training
  device reseeded every step from (seed + rank, step) (:func:`sciflow.prefetch.step_seed`;
  valid during the call only), so both paths and a resumed run derive it alike. It must not touch a
  global RNG, the model or anything ``loss_fn`` mutates; it runs under ``torch.no_grad()``, in a
  worker thread when prefetching;
- ``loss_fn(model, prepared)`` runs on the training thread and may use the global RNGs (they are
  checkpointed).

With an iterable feed (a DataLoader), ``prepare`` runs inline: a loader may draw from the global
stream when an epoch starts, which reading ahead would reorder. A hook cheaper than a thread
handoff (independent pairs) stays inline too, and the overlap pays only where a second core is
free (:mod:`sciflow.prefetch`).

EMA (Polyak averaging; used for diffusion / flow models since Song & Ermon 2020 and Karras et al.
2022): theta_ema <- d * theta_ema + (1 - d) * theta after every update, so after n updates
theta_ema_n = d^n theta_0 + (1 - d) sum_{i=1..n} d^(n-i) theta_i.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sciflow.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    LoadedCheckpoint,
    atomic_write,
    json_text,
    latest_checkpoint,
    load_checkpoint,
    read_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    weights_mismatch,
    write_state,
)
from sciflow.devices import resolve_device
from sciflow.errors import OutputError
from sciflow.outputs import sweep_stale
from sciflow.prefetch import Batches, step_seed
from sciflow.progress import progress
from sciflow.seeding import seed_everything

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "ExistingRunError",
    "LoadedCheckpoint",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "step_seed",
]

LossOutput = Tensor | tuple[Tensor, Mapping[str, float]]
LossFn = Callable[[nn.Module, Any], LossOutput]
BatchFn = Callable[[int, torch.Generator], Any]
PrepareFn = Callable[[Any, torch.Generator], Any]
"""``prepare(batch, generator) -> batch``: the model-free step before the loss (a coupling)."""


class ExistingRunError(OutputError, FileExistsError):
    """``out_dir`` holds checkpoints of another run and ``fit`` was not asked to resume it."""


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN/inf loss or gradient norm; raised before the bad update is applied.

    Attributes: ``step`` (0-based index of the update that failed, the one ``batch_fn`` got),
    ``checkpoint`` (the last good checkpoint, untouched, or None).
    """

    def __init__(self, step: int, what: str, value: float, checkpoint: Path | None) -> None:
        self.step, self.checkpoint = step, checkpoint
        last = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was written"
        super().__init__(f"non-finite {what} ({value}) at step {step}; training stopped before "
                         f"this update ({last}). Lower lr, set grad_clip, or check the data.")


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"TrainConfig.{name}={value!r}; expected {expected}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of one training run (keyword-only, immutable, stored as JSON in checkpoints).

    steps: optimiser updates in total (a resumed run continues up to it).
    lr, weight_decay, betas: AdamW (Loshchilov & Hutter 2019). schedule: "constant" or "cosine"
    (to 0 at ``steps``), after ``warmup_steps`` of linear warm-up.
    ema_decay: d in [0, 1) of the weight EMA. grad_clip: max global L2 norm, None for no clipping.
    log_every: updates between JSONL records. checkpoint_every: updates between checkpoints
    (0: only at the end); ``keep_checkpoints`` newest are kept. out_dir: where checkpoints/ and
    metrics.jsonl go (None: write nothing). seed: base seed (rank r uses seed + r).
    device: "cpu", "cuda", "cuda:1", "mps" or "auto" (:func:`sciflow.devices.resolve_device`).
    progress: True/None show a bar on a terminal and a log line every ~10 s elsewhere
    (:func:`sciflow.progress.progress`; ``SCIFLOW_PROGRESS=0`` silences None); False hides it.
    find_unused_parameters: passed to DistributedDataParallel. prefetch: run the Trainer's
    ``prepare`` hook on batch k+1 in a worker thread while batch k trains (bit-identical to
    False; no effect without a hook or with an iterable feed).
    """

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = 0.999
    grad_clip: float | None = 1.0
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    log_every: int = 50
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    out_dir: str | Path | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool | None = None
    find_unused_parameters: bool = False
    prefetch: bool = True

    def __post_init__(self) -> None:
        _check(_is_int(self.steps) and self.steps >= 0, "steps", self.steps, "an integer >= 0")
        _check(self.lr > 0 and math.isfinite(self.lr), "lr", self.lr, "a finite float > 0")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a float >= 0")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
               self.betas, "two floats in [0, 1)")
        _check(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "a float in [0, 1)")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", self.grad_clip,
               "None or a float > 0")
        _check(_is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps",
               self.warmup_steps, "an integer >= 0")
        _check(self.schedule in ("constant", "cosine"), "schedule", self.schedule,
               "'constant' or 'cosine'")
        for name, low in (("log_every", 1), ("checkpoint_every", 0), ("keep_checkpoints", 1)):
            value = getattr(self, name)
            _check(_is_int(value) and value >= low, name, value, f"an integer >= {low}")
        _check(_is_int(self.seed) and 0 <= self.seed < 2**31, "seed", self.seed,
               "an integer in [0, 2**31)")

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` for update ``step`` (0-based): warm-up, then constant or cosine."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "cosine":
            span = max(self.steps - self.warmup_steps, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min((step - self.warmup_steps) / span, 1.0)))
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (paths as strings, tuples as lists)."""
        d = dataclasses.asdict(self)
        d["out_dir"] = None if self.out_dir is None else str(self.out_dir)
        d["betas"] = list(self.betas)
        return d


@dataclass(frozen=True)
class TrainResult:
    """Outcome of ``Trainer.fit``.

    step: updates done in total; start_step: where this call began (> 0 after a resume);
    final_loss: mean loss of the last log window (None if no update ran); loss_history:
    (step, window-mean loss) at each log point of this call; checkpoint: last checkpoint
    written or resumed from (None without out_dir); wall_time: seconds this call took.
    """

    step: int
    start_step: int
    final_loss: float | None
    loss_history: tuple[tuple[int, float], ...]
    checkpoint: Path | None
    wall_time: float


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors inside (nested dicts/lists/tuples, PyG batches) to ``device``."""
    if hasattr(batch, "to") and not isinstance(batch, nn.Module):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        items = [_to_device(v, device) for v in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch


class _Feed:
    """Turns ``data`` into one batch per step and records where it is, so resume is exact.

    For a ``batch_fn`` this is trivial (the batch is a function of step and generator). For an
    iterable it keeps the epoch, the batches drawn in it and the RNG states at the epoch start;
    resuming replays the epoch start and skips the drawn batches.
    """

    def __init__(self, data: Iterable[Any] | BatchFn) -> None:
        if not isinstance(data, Iterable) and not callable(data):
            raise TypeError(f"data must be an iterable/DataLoader or batch_fn(step, generator), "
                            f"got {type(data).__name__}")
        self.data, self.batch_fn = data, None if isinstance(data, Iterable) else data
        self.epoch, self.drawn, self.it = 0, 0, None
        self.epoch_rng: dict[str, Tensor] = {}

    def _generators(self) -> dict[str, torch.Generator]:
        gens = {"loader": getattr(self.data, "generator", None),
                "sampler": getattr(getattr(self.data, "sampler", None), "generator", None)}
        return {k: g for k, g in gens.items() if isinstance(g, torch.Generator)}

    def _start_epoch(self) -> None:
        sampler = getattr(self.data, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
            sampler.set_epoch(self.epoch)
        self.epoch_rng = {"torch": torch.get_rng_state()}
        self.epoch_rng.update({k: g.get_state() for k, g in self._generators().items()})
        self.it, self.drawn = iter(self.data), 0

    def next(self, step: int, generator: torch.Generator) -> Any:
        if self.batch_fn is not None:
            return self.batch_fn(step, generator)
        for _ in range(2):
            if self.it is None:
                self._start_epoch()
            try:
                batch = next(self.it)
                self.drawn += 1
                return batch
            except StopIteration:
                if self.drawn == 0:
                    raise ValueError(f"data yielded no batches in epoch {self.epoch}; pass a "
                                     "re-iterable (list, DataLoader) or a batch_fn") from None
                self.epoch, self.it = self.epoch + 1, None
        raise AssertionError("unreachable")

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "drawn": self.drawn, "epoch_rng": self.epoch_rng}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replay the recorded epoch start and skip its drawn batches (global RNG set after)."""
        self.epoch, self.it = int(state["epoch"]), None
        if self.batch_fn is not None or not state["epoch_rng"]:
            return
        torch.set_rng_state(state["epoch_rng"]["torch"])
        for k, g in self._generators().items():
            if k in state["epoch_rng"]:
                g.set_state(state["epoch_rng"][k])
        self._start_epoch()
        for i in range(int(state["drawn"])):
            if next(self.it, None) is None:
                raise CheckpointError(f"data ran out after {i} batches while replaying epoch "
                                      f"{self.epoch} to resume; is it the same data?")
        self.drawn = int(state["drawn"])


def _dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from an initialised process group or torchrun's env."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


class Trainer:
    """Train ``model`` by minimising ``loss_fn(model, batch)`` with AdamW, EMA and clipping.

    Parameters
    ----------
    model : nn.Module; moved to ``config.device``. Under torchrun ``loss_fn`` receives it wrapped
        in DistributedDataParallel: call it (its ``forward``), not its submodules.
    loss_fn : ``loss_fn(model, batch) -> loss`` with loss a 0-d tensor, or ``(loss, extras)`` with
        extras a dict of floats that is averaged over each log window and logged too.
    config : TrainConfig.
    meta : JSON-able dict saved in every checkpoint (e.g. what rebuilds the network).
    kind : the checkpoint kind tag (the domain's name, e.g. ``"transition_states"``) that
        ``sciflow.checkpoint.load_checkpoint(..., kind=...)`` checks.
    prepare : optional ``prepare(batch, generator) -> batch`` run on every batch (moved to the
        device) before ``loss_fn``, which then receives its result: the coupling step, e.g.
        ``lambda b, g: matcher.couple(b[1], x0=b[0], generator=g)``. With
        ``config.prefetch`` it runs one step ahead in a worker thread; see the module docstring
        for what it may draw random numbers from.

    Notes
    -----
    Data (``fit(data)``): a ``batch_fn(step, generator) -> batch`` (preferred: exact resume for
    free; ``generator`` is the trainer's CPU torch.Generator, seeded ``seed + rank``), or any
    re-iterable / DataLoader (cycled over epochs; a resume replays the epoch start and skips the
    batches already drawn). Batches (tensors, dicts, lists, PyG batches) are moved to the device.

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 2))
    >>> def loss_fn(model, x):                      # x: (B, 2)
    ...     return ((model(x) - x.flip(-1)) ** 2).mean()
    >>> cfg = TrainConfig(steps=20, lr=1e-2, log_every=10, progress=False)
    >>> result = Trainer(net, loss_fn, cfg).fit(lambda step, g: torch.randn(32, 2, generator=g))
    >>> result.step
    20

    ``trainer.ema_model`` holds the EMA weights (eval mode) for evaluation and sampling.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, config: TrainConfig, *,
                 meta: Mapping[str, Any] | None = None, kind: str = "",
                 prepare: PrepareFn | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable(model, batch), got {type(loss_fn).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if prepare is not None and not callable(prepare):
            raise TypeError(f"prepare must be callable(batch, generator) or None, got "
                            f"{type(prepare).__name__}")
        self.loss_fn, self.config, self.kind, self.prepare = loss_fn, config, str(kind), prepare
        self.meta_json = json_text(dict(meta or {}), "meta")
        self.rank, self.world_size, local_rank = _dist_env()
        dev = config.device
        if dev in ("cuda", "auto") and self.world_size > 1 and torch.cuda.is_available():
            dev = f"cuda:{local_rank}"
        self.device = resolve_device(dev, name="TrainConfig.device")
        self.model = model.to(self.device)
        self.ema_model = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no parameters with requires_grad=True; nothing to train")
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay,
                                           foreach=self._foreach())

        def lr_lambda(step: int) -> float:  # a plain function: LambdaLR then saves no callable
            return config.lr_factor(step)

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda)
        self.generator = torch.Generator()
        self.step = 0
        self.out_dir = None if config.out_dir is None else Path(config.out_dir)
        self.last_checkpoint: Path | None = None
        self._elapsed0, self._t0 = 0.0, time.perf_counter()
        self._pending: dict[str, Any] | None = None
        self._feed: _Feed | None = None
        self._window: list[dict[str, float]] = []  # metrics since the last log record
        # state of ``generator`` before the batch that was drawn ahead and not trained yet
        self._ahead_state: Tensor | None = None
        self._prepare_generator: torch.Generator | None = None

    # ---------------------------------------------------------------- state
    def _foreach(self) -> bool | None:
        """AdamW's multi-tensor update on the CPU too (torch picks it only on accelerators): the
        same operations on every parameter, so bit-identical to the per-tensor loop, in a few
        calls instead of a few per parameter (halves the update of a small MLP,
        ``benchmarks/results/profile.md``). None elsewhere: torch's own choice."""
        return True if self.device.type == "cpu" else None

    def _elapsed(self) -> float:
        return self._elapsed0 + time.perf_counter() - self._t0

    def _rng_state(self) -> dict[str, Any]:
        state = {**rng_state(self.generator, self.device),
                 "feed": self._feed.state() if self._feed is not None else None}
        if self._ahead_state is not None:  # a resumed run draws that batch again
            state["generator"] = self._ahead_state
        return state

    def _set_rng_state(self, s: Mapping[str, Any]) -> None:
        if s["feed"] is not None and self._feed is not None:
            self._feed.restore(s["feed"])  # first: replaying the epoch start uses the torch RNG
        set_rng_state(s, self.generator, self.device)

    def _seed(self) -> None:
        seed = self.config.seed + self.rank
        seed_everything(seed)
        self.generator.manual_seed(seed)

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Atomically write the full training state (collective under DDP: call on every rank).

        Default path: ``out_dir/checkpoints/step_{step:08d}.pt`` (older ones pruned to
        ``keep_checkpoints``). Only rank 0 writes. Returns the path, or None without a path.
        """
        rngs = [self._rng_state()]
        if self.world_size > 1:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        default = path is None
        if default and self.out_dir is None:
            return None
        target = Path(path) if path is not None else \
            self.out_dir / "checkpoints" / f"step_{self.step:08d}.pt"
        if self.rank == 0:
            write_state(target, {"step": self.step, "elapsed": self._elapsed(), "kind": self.kind,
                                 "model": self.model.state_dict(),
                                 "ema": self.ema_model.state_dict(),
                                 "optimizer": self.optimizer.state_dict(),
                                 "scheduler": self.scheduler.state_dict(), "rng": rngs,
                                 "log_window": list(self._window),
                                 "config_json": json_text(self.config.to_dict(), "config"),
                                 "meta_json": self.meta_json})
            if default:
                for old in sorted(target.parent.glob("step_*.pt"))[:-self.config.keep_checkpoints]:
                    old.unlink()
        if self.world_size > 1:
            dist.barrier()
        self.last_checkpoint = target
        return target

    def restore(self, path: str | Path) -> int:
        """Load a Trainer checkpoint (weights, EMA, optimiser, scheduler, step, RNG); returns the
        step. The random states are applied when ``fit`` starts (they need the data feed)."""
        state = read_state(path, self.device)
        missing = {"model", "ema", "optimizer", "scheduler", "rng", "log_window"} - state.keys()
        if missing:
            raise CheckpointError(f"{str(path)!r} lacks {sorted(missing)}: it was not written by "
                                  "Trainer.save_checkpoint, so training cannot resume from it")
        for name, module in (("model", self.model), ("ema", self.ema_model)):
            problem = weights_mismatch(module, state[name])
            if problem is not None:
                raise CheckpointError(f"{str(path)!r}: its {name} weights do not fit this model "
                                      f"(was it trained with other sizes?): {problem}")
        saved = [len(g.get("params", ())) for g in state["optimizer"].get("param_groups", ())]
        ours = [len(g["params"]) for g in self.optimizer.param_groups]
        if saved != ours:
            raise CheckpointError(f"{str(path)!r}: its optimiser holds parameter groups of "
                                  f"{saved} tensors, this Trainer's of {ours}: another model or "
                                  "optimiser set-up wrote it")
        self.model.load_state_dict(state["model"])
        self.ema_model.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # a checkpoint keeps the writer's choice
            group["foreach"] = self._foreach()
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self._elapsed0 = int(state["step"]), float(state["elapsed"])
        self._window = list(state["log_window"])
        rngs = state["rng"]
        if self.rank < len(rngs):
            self._pending = rngs[self.rank]
        else:
            warnings.warn(f"checkpoint has RNG states of {len(rngs)} ranks, this is rank "
                          f"{self.rank}: reseeding it; the run is not an exact continuation")
            self._pending = None
        self.last_checkpoint = Path(path)
        return self.step

    # ----------------------------------------------------------------- loop
    def _ema_lists(self) -> None:
        """The tensors the EMA update touches, listed once a fit (foreach kernels take lists)."""
        pairs = list(zip(self.ema_model.parameters(), self.model.parameters()))
        floats = [(e, p.detach()) for e, p in pairs if e.is_floating_point()]
        self._ema_float = ([e for e, _ in floats], [p for _, p in floats])
        copies = [(e, p.detach()) for e, p in pairs if not e.is_floating_point()]
        copies += list(zip(self.ema_model.buffers(), self.model.buffers()))
        self._ema_copy = ([e for e, _ in copies], [p for _, p in copies])

    def _update_ema(self) -> None:
        """theta_ema <- d theta_ema + (1 - d) theta (one lerp over all parameters); buffers and
        non-float parameters are copied. No tensor here requires grad (the sources are
        detached), so no autograd context is needed."""
        ema, params = self._ema_float
        if ema:
            torch._foreach_lerp_(ema, params, 1.0 - self.config.ema_decay)
        dst, src = self._ema_copy
        if dst:
            torch._foreach_copy_(dst, src)

    def _clip_gradients(self) -> float:
        """The global L2 norm of the gradients before clipping; scales them to ``grad_clip`` when
        above it, as ``clip_grad_norm_`` does, but skips its no-op scaling by 1."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return 0.0
        value = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        clip = self.config.grad_clip
        if clip is not None and value + 1e-6 > clip:  # NaN never scales; the caller raises
            torch._foreach_mul_(grads, clip / (value + 1e-6))
        return value

    def _step_generator(self, step: int) -> torch.Generator:
        """The generator ``prepare`` gets at ``step``: on the device, seeded from (seed, step).
        One object, reseeded every step (prepare calls never overlap: one thread runs them)."""
        if self._prepare_generator is None:
            self._prepare_generator = torch.Generator(device=self.device)
        return self._prepare_generator.manual_seed(step_seed(self.config.seed + self.rank, step))

    def _draw(self, step: int) -> Any:
        assert self._feed is not None
        return _to_device(self._feed.next(step, self.generator), self.device)

    def _prepared(self, batch: Any, step: int) -> Any:
        if self.prepare is None:
            return batch
        with torch.no_grad():
            return self.prepare(batch, self._step_generator(step))

    def _loss(self, net: nn.Module, batch: Any, step: int) -> tuple[Tensor, dict[str, float]]:
        out = self.loss_fn(net, batch)
        loss, extras = out if isinstance(out, tuple) else (out, {})
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn returned {shape} at step {step}; expected a scalar (0-d) "
                             "tensor, e.g. reduce with .mean(), optionally with a dict of floats")
        if not loss.requires_grad:
            raise ValueError(f"loss_fn's loss at step {step} does not require grad: it does not "
                             "depend on the model's trainable parameters")
        return loss, {str(k): float(v) for k, v in dict(extras).items()}

    def _mean_over_ranks(self, value: Tensor) -> float:
        value = value.detach()
        if self.world_size > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return float(value)

    def _write_log(self, record: dict[str, Any]) -> None:
        if self.rank == 0 and self.out_dir is not None:
            with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _truncate_log(self) -> None:
        """On resume, drop the records a crashed run wrote after the checkpoint's step."""
        log = None if self.out_dir is None else self.out_dir / "metrics.jsonl"
        if self.rank == 0 and log is not None and log.exists():
            keep = []
            for line in log.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= self.step:
                        keep.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by the crash
            text = "".join(ln + "\n" for ln in keep).encode()
            atomic_write(log, lambda f: f.write(text))

    def fit(self, data: Iterable[Any] | BatchFn, *,
            resume: bool | str | os.PathLike[str] = False) -> TrainResult:
        """Train until ``config.steps`` updates are done; see the class docstring for ``data``.

        resume: True continues from ``latest_checkpoint(out_dir)`` when there is one (else starts
        fresh); a path continues from that checkpoint (FileNotFoundError if missing).
        Raises NonFiniteLossError on a NaN/inf loss or gradient norm (no bad update, no
        checkpoint of it). Records in ``out_dir/metrics.jsonl``: step, loss, grad_norm (window
        means, before clipping), lr (of the last update), time (s), and loss_fn's extras
        (window means; rank 0's under DDP, where loss is the mean over ranks).
        """
        cfg, wall0 = self.config, time.perf_counter()
        self._feed = _Feed(data)
        if resume is True and self.out_dir is None:
            raise ValueError("fit(resume=True) needs TrainConfig.out_dir to find checkpoints in")
        owns_group = self.world_size > 1 and not dist.is_initialized()
        if owns_group:
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        try:
            path = latest_checkpoint(self.out_dir) if resume is True else resume or None
            if path is not None:
                self.restore(path)
            fresh = self.step == 0 and self._pending is None
            if fresh and self.out_dir is not None and latest_checkpoint(self.out_dir):
                raise ExistingRunError(
                    f"out_dir {str(self.out_dir)!r} already holds checkpoints of another run; "
                    "pass fit(..., resume=True) to continue it, or use a new or empty out_dir")
            if self._pending is not None:
                self._set_rng_state(self._pending)
                self._pending = None
            elif self.step == 0:
                self._seed()
            if self.out_dir is not None and self.rank == 0:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                for folder in (self.out_dir, self.out_dir / "checkpoints"):
                    sweep_stale(folder)  # temporaries of a killed run
                self._truncate_log()
            net: nn.Module = self.model
            if self.world_size > 1:  # DDP broadcasts rank 0's weights to all ranks here
                net = nn.parallel.DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                    else None, find_unused_parameters=cfg.find_unused_parameters)
                if fresh:
                    self.ema_model.load_state_dict(self.model.state_dict())
            return self._loop(net, wall0)
        finally:
            if owns_group:
                dist.destroy_process_group()

    def _loop(self, net: nn.Module, wall0: float) -> TrainResult:
        cfg, start = self.config, self.step
        self._t0 = time.perf_counter()
        bar = progress(total=cfg.steps, initial=start, desc="train", unit="step",
                       enabled=cfg.progress if self.rank == 0 else False)
        history: list[tuple[int, float]] = []
        batches = Batches(self)
        self._ema_lists()
        net.train()
        try:
            while self.step < cfg.steps:
                step = self.step
                batch = batches.get(step)
                for p in self.params:  # zero_grad(set_to_none=True) without its wrappers
                    p.grad = None
                loss, extras = self._loss(net, batch, step)
                loss.backward()
                loss_value = self._mean_over_ranks(loss)
                grad_norm = self._clip_gradients()
                for what, value in (("loss", loss_value), ("gradient norm", grad_norm)):
                    if not math.isfinite(value):
                        raise NonFiniteLossError(step, what, value, self.last_checkpoint)
                lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                self._update_ema()
                self.step += 1
                bar.update(1)
                self._window.append({**extras, "loss": loss_value, "grad_norm": grad_norm})
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    window = self._window
                    means = {k: sum(w.get(k, math.nan) for w in window) / len(window)
                             for k in window[-1]}
                    history.append((self.step, means["loss"]))
                    self._write_log({"step": self.step, "lr": lr, "time": self._elapsed(),
                                     **means})
                    bar.set_postfix(loss=f"{means['loss']:.4g}")
                    self._window = []
                if self.step == cfg.steps or (cfg.checkpoint_every
                                              and self.step % cfg.checkpoint_every == 0):
                    self.save_checkpoint()
        finally:
            batches.close()
            bar.close()
            self._elapsed0 = self._elapsed()
            self._t0 = time.perf_counter()
        return TrainResult(step=self.step, start_step=start,
                           final_loss=history[-1][1] if history else None,
                           loss_history=tuple(history), checkpoint=self.last_checkpoint,
                           wall_time=time.perf_counter() - wall0)

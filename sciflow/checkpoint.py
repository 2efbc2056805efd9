"""Safe checkpoint files: atomic writes, weights-only reads, random states as plain tensors.

A checkpoint is a ``torch.save`` dict stamped ``"format": CHECKPOINT_FORMAT`` that holds only
tensors, numbers, strings and containers of them, so it loads with ``torch.load(weights_only=True)``
and a crafted pickle cannot execute code. Configuration and user metadata travel as JSON text
(``config_json``, ``meta_json``), never as pickled objects.

Files are written atomically (a hidden temporary file in the same folder, ``fsync``,
``os.replace``, then ``fsync`` of the folder), so a crash mid-save never leaves a half-written file
where a checkpoint is expected, and a temporary file left by a hard kill never looks like one.

:func:`save_checkpoint` / :func:`load_checkpoint` store and restore a model's weights (and its EMA
copy); :class:`sciflow.train.Trainer` writes its full training state with :func:`write_state`
and :func:`rng_state` so that a resumed run continues bit-exactly.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "LoadedCheckpoint",
    "atomic_write",
    "json_text",
    "latest_checkpoint",
    "load_checkpoint",
    "read_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_state",
]

CHECKPOINT_FORMAT = "sciflow.train/1"


class CheckpointError(ValueError):
    """A file is not a safe, loadable sciflow checkpoint (or lacks what the caller needs)."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What ``load_checkpoint`` read: the chosen weights, which ones ("ema"/"model"), the step,
    the ``TrainConfig`` as a dict (None if saved outside a Trainer) and the user's JSON ``meta``."""

    path: Path
    step: int
    weights: Literal["ema", "model"]
    state_dict: dict[str, Tensor]
    config: dict[str, Any] | None
    meta: dict[str, Any]


# ------------------------------------------------------------------------------- file writes
def _fsync_dir(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write via a hidden temp file in the same folder, fsync, then os.replace onto ``path``.

    ``write(f)`` gets the open binary file. On any error the temp file is removed and ``path``
    keeps its previous content (or stays absent). Returns ``path``.
    Example: ``atomic_write(p, lambda f: torch.save(obj, f))``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def json_text(obj: Any, what: str) -> str:
    """``json.dumps(obj)``; TypeError naming ``what`` when ``obj`` is not JSON-serialisable."""
    try:
        return json.dumps(obj)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{what} must be JSON-serialisable (dicts, lists, str, numbers): {err}"
        ) from err


def write_state(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Atomically ``torch.save`` a tensor-only ``state`` dict, stamped with CHECKPOINT_FORMAT."""
    stamped = {"format": CHECKPOINT_FORMAT, **state}
    return atomic_write(path, lambda f: torch.save(stamped, f))


def read_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint's state dict with ``weights_only=True`` and check its format stamp.

    Raises FileNotFoundError for a missing file and CheckpointError for anything that is not a
    tensor-only sciflow checkpoint (a malicious pickle is refused, never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # weights-only unpickler refusal, truncated or foreign file
        raise CheckpointError(f"refusing to load {str(path)!r}: not a safe tensor-only sciflow "
                              f"checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} loads but is not a {CHECKPOINT_FORMAT} checkpoint")
    return state


# ------------------------------------------------------------------------------------ models
def save_checkpoint(path: str | Path, model: nn.Module, *, ema_model: nn.Module | None = None,
                    meta: Mapping[str, Any] | None = None, step: int = 0) -> Path:
    """Atomically save a model (and optionally its EMA copy) for later ``load_checkpoint``.

    ``meta`` is a JSON-able dict (e.g. the hyper-parameters that rebuild the network); it is
    stored as JSON text, so loading never unpickles objects. Returns the path written.
    Example: ``save_checkpoint("ts.pt", net, meta={"hidden": 64})``.
    """
    state: dict[str, Any] = {"step": int(step), "model": model.state_dict(), "config_json": "null",
                             "meta_json": json_text(dict(meta or {}), "meta")}
    if ema_model is not None:
        state["ema"] = ema_model.state_dict()
    return write_state(path, state)


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    ema: bool | None = None, map_location: str | torch.device = "cpu",
                    strict: bool = True) -> LoadedCheckpoint:
    """Safely read a checkpoint and (if ``model`` is given) load its weights into the model.

    ema: True = EMA weights (error if absent), False = raw weights, None = EMA when present.
    Raises FileNotFoundError for a missing file and CheckpointError for anything that is not a
    tensor-only sciflow checkpoint (a malicious pickle is refused, never executed).
    Example: ``ck = load_checkpoint(p, net); net.eval()`` then sample; ``ck.meta`` has the config.
    """
    state = read_state(path, map_location)
    use_ema = ("ema" in state) if ema is None else ema
    if use_ema and "ema" not in state:
        raise CheckpointError(f"{str(path)!r} has no EMA weights; pass ema=False")
    weights = state["ema" if use_ema else "model"]
    if model is not None:
        model.load_state_dict(weights, strict=strict)
    return LoadedCheckpoint(path=Path(path), step=int(state["step"]),
                            weights="ema" if use_ema else "model", state_dict=weights,
                            config=json.loads(state["config_json"]),
                            meta=json.loads(state["meta_json"]))


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """Newest complete ``out_dir/checkpoints/step_*.pt`` (temp files never match), or None."""
    found = sorted(Path(out_dir, "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


# ----------------------------------------------------------------------------- random states
def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every global random state (torch, CUDA on ``device``, numpy, python) and ``generator``'s,
    as tensors and numbers that a weights-only load accepts; :func:`set_rng_state` undoes it."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "generator": generator.get_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": version, "state": torch.tensor(py_state), "gauss": py_gauss}}


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator,
                  device: torch.device) -> None:
    """Restore the random states recorded by :func:`rng_state` (CUDA only on a CUDA device)."""
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))

"""Safe checkpoint files: atomic writes, weights-only reads, a digest of every tensor, a kind tag.

A checkpoint is a ``torch.save`` dict stamped ``"format": CHECKPOINT_FORMAT`` that holds only
tensors, numbers, strings and containers of them, so it loads with ``torch.load(weights_only=True)``
and a crafted pickle cannot execute code. Configuration and user metadata travel as JSON text
(``config_json``, ``meta_json``), never as pickled objects.

Integrity: at save time a SHA-256 digest of the whole state (every tensor's dtype, shape and bytes,
every number and string, in key order) is stored beside it, and every load recomputes it: a file
with flipped bytes inside a tensor is a :class:`CheckpointError` naming the file, never weights
that load silently. Files of the first format (``sciflow.train/1``, no digest) still load, with a
warning; :func:`upgrade_checkpoint` rewrites one with its digest.

Kind: ``kind`` (e.g. ``"transition_states"``) says which domain's model a file holds;
``load_checkpoint(path, kind=...)`` refuses a file of another kind with a message that names both.

Files are written atomically (:func:`sciflow.outputs.replace_atomically`: a hidden temporary in the
same folder, ``fsync``, ``os.replace``, ``fsync`` of the folder), so a crash mid-save never leaves
a half-written file where a checkpoint is expected; temporaries of killed runs are swept by
:func:`sciflow.outputs.sweep_stale` when the next run starts. **Every** ``torch.load`` in sciflow
goes through :func:`read_state` (or :func:`load_tensors` for caches); a test greps for others.

:func:`save_checkpoint` / :func:`load_checkpoint` store and restore a model's weights (and its EMA
copy); :class:`sciflow.train.Trainer` writes its full training state with :func:`write_state`
and :func:`rng_state` so that a resumed run continues bit-exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from sciflow.errors import SciflowError
from sciflow.outputs import replace_atomically

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "LoadedCheckpoint",
    "atomic_write",
    "digest",
    "load_foreign_weights",
    "load_tensors",
    "load_weights",
    "save_tensors",
    "upgrade_checkpoint",
    "json_text",
    "latest_checkpoint",
    "load_checkpoint",
    "read_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "weights_mismatch",
    "write_state",
]

CHECKPOINT_FORMAT = "sciflow.train/2"
LEGACY_FORMATS = ("sciflow.train/1",)
DIGEST_ALGORITHM = "sha256/state-v1"


class CheckpointError(SciflowError):
    """A file is not a safe, intact sciflow checkpoint of the kind asked for."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What ``load_checkpoint`` read: the chosen weights, which ones ("ema"/"model"), the step,
    the ``TrainConfig`` as a dict (None if saved outside a Trainer), the user's JSON ``meta``, the
    kind tag ("" when none was given) and the state digest (None for a legacy file)."""

    path: Path
    step: int
    weights: Literal["ema", "model"]
    state_dict: dict[str, Tensor]
    config: dict[str, Any] | None
    meta: dict[str, Any]
    kind: str = ""
    digest: str | None = None


# ------------------------------------------------------------------------------- file writes
def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` atomically through an open binary file: ``write(f)`` fills it.

    Built on :func:`sciflow.outputs.replace_atomically`; on any error ``path`` keeps its previous
    content (or stays absent). Example: ``atomic_write(p, lambda f: torch.save(obj, f))``.
    """

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    return replace_atomically(path, fill)


def _feed(h: Any, obj: Any, key: str) -> None:
    """Hash ``obj`` at ``key`` into ``h``: tensors by dtype, shape and bytes; the rest by repr."""
    h.update(key.encode() + b"\0")
    if isinstance(obj, Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        h.update(b"D%d" % len(obj))
        for k in sorted(obj, key=str):
            _feed(h, obj[k], f"{key}/{k}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d" % len(obj))
        for i, v in enumerate(obj):
            _feed(h, v, f"{key}[{i}]")
    elif isinstance(obj, float):
        h.update(b"F" + struct.pack("<d", obj))
    else:
        h.update(f"{type(obj).__name__}:{obj!r}".encode())


def digest(state: Mapping[str, Any]) -> str:
    """SHA-256 of a checkpoint state (every entry but ``digest`` itself), as hex text."""
    h = hashlib.sha256(DIGEST_ALGORITHM.encode())
    _feed(h, {k: v for k, v in state.items() if k != "digest"}, "")
    return h.hexdigest()


def json_text(obj: Any, what: str) -> str:
    """``json.dumps(obj)``; TypeError naming ``what`` when ``obj`` is not JSON-serialisable."""
    try:
        return json.dumps(obj)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{what} must be JSON-serialisable (dicts, lists, str, numbers): {err}"
        ) from err


def write_state(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Atomically ``torch.save`` a tensor-only ``state`` dict, stamped with CHECKPOINT_FORMAT and
    its :func:`digest`."""
    stamped = {"format": CHECKPOINT_FORMAT, **state}
    stamped["digest"] = digest(stamped)
    return atomic_write(path, lambda f: torch.save(stamped, f))


def read_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint's state dict with ``weights_only=True``, check its stamp and its digest.

    Raises FileNotFoundError for a missing file and CheckpointError for anything that is not an
    intact tensor-only sciflow checkpoint (a malicious pickle is refused, never executed; a file
    whose bytes changed after it was written fails the digest).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # weights-only unpickler refusal, truncated or foreign file
        raise CheckpointError(f"refusing to load {str(path)!r}: not a safe tensor-only sciflow "
                              f"checkpoint ({type(err).__name__}: {err})") from err
    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt in LEGACY_FORMATS:
        warnings.warn(f"{str(path)!r} is a {fmt} checkpoint without a digest, so corruption "
                      "cannot be detected; rewrite it with sciflow.checkpoint.upgrade_checkpoint",
                      UserWarning, stacklevel=3)
        return state
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} loads but is not a {CHECKPOINT_FORMAT} checkpoint")
    stored = state.get("digest")
    if not isinstance(stored, str) or stored != digest(state):
        raise CheckpointError(f"{str(path)!r} is corrupted: its contents do not match the digest "
                              "written with it (damaged on disk or in transfer); restore it from a "
                              "good copy or retrain")
    return state


def load_foreign_weights(path: str | Path, *, sha256: str | None = None,
                         what: str = "weights file") -> Any:
    """Read a third-party tensor file (e.g. an official ``*.pth`` state dict) weights-only.

    It carries no sciflow digest; pass ``sha256`` (hex) to check the whole file against a
    published checksum. Raises FileNotFoundError or CheckpointError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist (or is not a file)")
    if sha256 is not None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != sha256.lower():
            raise CheckpointError(f"{what} {str(path)!r} has sha256 {h.hexdigest()}, expected "
                                  f"{sha256}: a different or damaged file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"refusing to load {what} {str(path)!r}: not a tensor-only file "
                              f"({type(err).__name__}: {err})") from err


def upgrade_checkpoint(path: str | Path, out: str | Path | None = None, *,
                       kind: str | None = None) -> Path:
    """Rewrite a legacy (``sciflow.train/1``) checkpoint in the current format with its digest
    (and, optionally, a kind tag); ``out`` defaults to ``path`` (replaced atomically)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        state = read_state(path)
    state = {k: v for k, v in state.items() if k not in ("format", "digest")}
    if kind is not None:
        state["kind"] = kind
    return write_state(out if out is not None else path, state)


def save_tensors(path: str | Path, tensors: Mapping[str, Any], *, kind: str) -> Path:
    """Save a cache (tensors, numbers, strings, containers of them) with digest and kind tag."""
    return write_state(path, {"kind": kind, "tensors": dict(tensors)})


def load_tensors(path: str | Path, *, kind: str) -> dict[str, Any]:
    """Load what :func:`save_tensors` wrote; CheckpointError for a foreign, tampered or
    wrong-kind file (a crafted pickle is refused, never run)."""
    state = read_state(path)
    if state.get("kind") != kind or "tensors" not in state:
        raise CheckpointError(f"{str(path)!r} is not a {kind!r} cache "
                              f"(kind {state.get('kind')!r})")
    return state["tensors"]


# ------------------------------------------------------------------------------------ models
def save_checkpoint(path: str | Path, model: nn.Module, *, ema_model: nn.Module | None = None,
                    meta: Mapping[str, Any] | None = None, step: int = 0, kind: str = "",
                    config: Mapping[str, Any] | None = None) -> Path:
    """Atomically save a model (and optionally its EMA copy) for later ``load_checkpoint``.

    ``meta`` is a JSON-able dict (e.g. the hyper-parameters that rebuild the network); it is
    stored as JSON text, so loading never unpickles objects. ``kind`` tags the file with the domain
    whose model it is (``load_checkpoint(..., kind=...)`` checks it); ``config`` is the training
    configuration as a dict. Returns the path written.
    Example: ``save_checkpoint("ts.pt", net, meta={"hidden": 64}, kind="transition_states")``.
    """
    state: dict[str, Any] = {"step": int(step), "model": model.state_dict(), "kind": str(kind),
                             "config_json": json_text(None if config is None else dict(config),
                                                      "config"),
                             "meta_json": json_text(dict(meta or {}), "meta")}
    if ema_model is not None:
        state["ema"] = ema_model.state_dict()
    return write_state(path, state)


def weights_mismatch(model: nn.Module, weights: Mapping[str, Any]) -> str | None:
    """What keeps ``weights`` from loading into ``model`` strictly (missing or unexpected names,
    other shapes), in a few words; None when they fit."""
    own = model.state_dict()
    missing = sorted(own.keys() - weights.keys())
    extra = sorted(weights.keys() - own.keys())
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in weights and isinstance(weights[k], Tensor) and weights[k].shape != v.shape]
    parts = [f"{label} {names[:3]}{' ...' if len(names) > 3 else ''}"
             for label, names in (("missing", missing), ("unexpected", extra),
                                  ("other shapes:", shapes)) if names]
    return "; ".join(parts) or None


def load_weights(model: nn.Module, weights: Mapping[str, Any], path: str | Path, *,
                 strict: bool = True) -> None:
    """``model.load_state_dict(weights)``, checked first: weights that do not fit are a
    :class:`CheckpointError` naming ``path`` and the mismatch, and the model is left untouched."""
    problem = weights_mismatch(model, weights) if strict else None
    try:
        if problem is None:
            model.load_state_dict(weights, strict=strict)
    except RuntimeError as err:
        problem = str(err).splitlines()[0]
    if problem is not None:
        raise CheckpointError(f"{str(path)!r} does not fit this model (was it trained with other "
                              f"sizes?): {problem}")


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    ema: bool | None = None, map_location: str | torch.device = "cpu",
                    strict: bool = True, kind: str | None = None) -> LoadedCheckpoint:
    """Safely read a checkpoint and (if ``model`` is given) load its weights into the model.

    ema: True = EMA weights (error if absent), False = raw weights, None = EMA when present.
    kind: the kind tag the file must carry (its ``meta["kind"]`` for files written before tags
    moved into the state); None accepts any.
    Raises FileNotFoundError for a missing file and CheckpointError for anything that is not a
    tensor-only sciflow checkpoint (a malicious pickle is refused, never executed).
    Example: ``ck = load_checkpoint(p, net); net.eval()`` then sample; ``ck.meta`` has the config.
    """
    state = read_state(path, map_location)
    meta = json.loads(state["meta_json"])
    found = str(state.get("kind") or meta.get("kind") or "")
    if kind is not None and found != kind:
        raise CheckpointError(f"{str(path)!r} holds a {found or 'untagged'!s} checkpoint, not a "
                              f"{kind} one; pass a checkpoint written by the {kind} domain")
    use_ema = ("ema" in state) if ema is None else ema
    if use_ema and "ema" not in state:
        raise CheckpointError(f"{str(path)!r} has no EMA weights; pass ema=False")
    weights = state["ema" if use_ema else "model"]
    if model is not None:
        load_weights(model, weights, path, strict=strict)
    return LoadedCheckpoint(path=Path(path), step=int(state["step"]),
                            weights="ema" if use_ema else "model", state_dict=weights,
                            config=json.loads(state["config_json"]), meta=meta, kind=found,
                            digest=state.get("digest"))


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

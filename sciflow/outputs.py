"""One way to write a result: checked before any work, claimed, written aside, renamed into place.

Every command and pipeline that writes a file or a directory store (zarr) goes through
:func:`claim_output`, in two moves:

1. **Before any work**, ``out = claim_output(path, inputs=[...], overwrite=..., suffixes=...)``
   checks the request and claims the name:

   - the format is known (``suffixes``), else :class:`~sciflow.errors.InputError`;
   - the output is not, and does not resolve to, one of the inputs (also not inside an input
     store, nor a folder that holds an input), else :class:`~sciflow.errors.OutputError`;
   - an existing output is replaced only with ``overwrite=True`` (``--overwrite``);
   - the folder can be written;
   - no other live process is writing the same output (a lock file ``.sciflow-lock-<name>`` next
     to it holds the writer's pid; a dead writer's lock is taken over).

   Stale temporaries of dead sciflow processes in that folder are swept at the same time.
2. **When the result is ready**, ``out.write(fill)`` calls ``fill(tmp)`` with a hidden sibling path
   that has the same name suffix (so writers that pick the format from the suffix, such as ASE,
   xarray or anndata, behave as for the real name), fsyncs it, and moves it into place: a new file is
   hard-linked (which fails if someone created the name meanwhile: the last writer never silently
   wins), a replaced file is ``os.replace``-d, a directory store is renamed into place, or swapped
   with the old one, which is deleted only after the swap. A failure or a kill leaves the old output
   (or none) and at most a temporary that the next run sweeps.

``with claim_output(...) as out:`` releases the claim whatever happens. :func:`strict_json` makes
any result JSON-clean (NaN and inf become null) and :func:`ensure_finite` refuses NaN/inf output.

This module imports no torch: command lines claim their outputs at start-up.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sciflow.errors import InputError, NonFiniteError, OutputError

__all__ = ["ClaimedOutput", "claim_output", "replace_atomically", "sweep_stale", "strict_json",
           "dumps_json", "ensure_finite", "TMP_PREFIX", "LOCK_PREFIX"]

TMP_PREFIX = ".sciflow-tmp-"
OLD_PREFIX = ".sciflow-old-"
LOCK_PREFIX = ".sciflow-lock-"


# ----------------------------------------------------------------------------- small helpers
def _fsync_dir(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make a rename itself durable
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for p in path.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
    elif path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _tmp_name(prefix: str, name: str) -> str:
    return f"{prefix}{os.getpid()}-{secrets.token_hex(4)}-{name}"


def _parse_owner(entry: str, prefix: str) -> tuple[int, str] | None:
    """(pid, final name) of a temporary called <prefix><pid>-<token>-<name>, or None."""
    rest = entry[len(prefix):]
    parts = rest.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[2]


def sweep_stale(folder: str | Path) -> list[Path]:
    """Remove temporaries left in ``folder`` by sciflow processes that are no longer alive.

    A half-finished directory swap (``.sciflow-old-*`` of a dead process whose final name is
    missing) is put back in place rather than deleted. Returns what was removed or restored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    touched = []
    for entry in os.listdir(folder):
        for prefix in (TMP_PREFIX, OLD_PREFIX):
            if not entry.startswith(prefix):
                continue
            owner = _parse_owner(entry, prefix)
            if owner is None or _alive(owner[0]):
                continue
            path = folder / entry
            final = folder / owner[1]
            if prefix == OLD_PREFIX and not final.exists():
                os.rename(path, final)  # the swap died between its two renames: undo it
            else:
                _remove(path)
            touched.append(path)
        if entry.startswith(".") and entry.endswith(".tmp") and ".step_" in entry:
            _remove(folder / entry)  # temporaries of the checkpoint writer before this module
            touched.append(folder / entry)
    return touched


def replace_atomically(path: str | Path, fill: Callable[[Path], Any]) -> Path:
    """Write ``path`` by ``fill(tmp)`` on a hidden sibling, fsync, then ``os.replace`` it in place.

    The primitive under :meth:`ClaimedOutput.write` and the checkpoint writer (which replaces its
    own files without a claim). On any error the temporary is removed and ``path`` keeps its old
    content, or stays absent.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / _tmp_name(TMP_PREFIX, path.name)
    try:
        fill(tmp)
        if not tmp.exists():
            raise OutputError(f"the writer of {str(path)!r} produced no file")
        _fsync_tree(tmp)
        if tmp.is_dir():
            raise OutputError(f"replace_atomically writes files; {str(path)!r} came out a folder")
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)
    return path


# ----------------------------------------------------------------------------- the claim
def _resolved(p: str | Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(p)))).resolve()


def _same_or_nested(out: Path, inp: Path) -> str | None:
    """Why writing ``out`` would touch input ``inp`` (same file, inside it, or holding it)."""
    if out == inp:
        return "is"
    if out.exists() and inp.exists():
        try:
            if os.path.samefile(out, inp):
                return "is (a link to)"
        except OSError:
            pass
    if inp in out.parents:
        return "lies inside"
    if out in inp.parents:
        return "holds"
    return None


def _check_suffix(path: Path, suffixes: Sequence[str] | Mapping[str, Any] | None, name: str) -> None:
    if not suffixes:
        return
    lowered = path.name.lower()
    if any(lowered.endswith(s.lower()) for s in suffixes):
        return
    got = "".join(path.suffixes) or "(no suffix)"
    raise InputError(f"{name}={str(path)!r}: unknown output format {got}; choose a file name "
                     f"ending in one of {', '.join(suffixes)}")


def _writable_folder(path: Path, name: str) -> None:
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{name}={str(path)!r}: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{name}={str(path)!r}: cannot write in folder {str(probe)!r} "
                          "(permission denied); choose another output path")


class ClaimedOutput:
    """An output name checked and claimed by :func:`claim_output`; write it with :meth:`write`."""

    def __init__(self, path: Path, *, overwrite: bool, name: str, lock: Path,
                 created: tuple[Path, ...] = ()) -> None:
        self.path, self.overwrite, self.name, self._lock = path, overwrite, name, lock
        self._created = created  # folders the claim made, deepest first, removed if unused
        self.written = False

    def __repr__(self) -> str:
        return f"ClaimedOutput({str(self.path)!r}, overwrite={self.overwrite})"

    def __enter__(self) -> ClaimedOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        """Give the name back (idempotent); an unwritten claim leaves nothing behind, not even
        the folders it created for the output."""
        if self._lock is not None:
            try:
                if self._lock.read_text().split()[0] == str(os.getpid()):
                    self._lock.unlink()
            except (FileNotFoundError, IndexError):
                pass
            self._lock = None
            if not self.written:
                for folder in self._created:
                    try:
                        folder.rmdir()  # only if empty: someone else may have used it meanwhile
                    except OSError:
                        break

    def write(self, fill: Callable[[Path], Any]) -> Path:
        """Call ``fill(tmp)`` to produce the output on a hidden sibling, then move it into place.

        ``tmp`` has the same name as the output behind a hidden prefix, so its suffix picks the
        same format. ``fill`` may write a file or a directory (a zarr store). Returns the path.
        """
        if self._lock is None:
            raise OutputError(f"the claim on {str(self.path)!r} was already released")
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / _tmp_name(TMP_PREFIX, self.path.name)
        try:
            fill(tmp)
            if not tmp.exists():
                raise OutputError(f"the writer of {str(self.path)!r} produced nothing")
            _fsync_tree(tmp)
            self._move_into_place(tmp)
        finally:
            if tmp.exists() or tmp.is_symlink():
                _remove(tmp)
        _fsync_dir(folder)
        self.written = True
        return self.path

    def _move_into_place(self, tmp: Path) -> None:
        final = self.path
        exists = final.exists() or final.is_symlink()
        if exists and not self.overwrite:
            raise OutputError(f"{self.name}={str(final)!r} appeared while this command ran (another "
                              "process wrote it); nothing was replaced. Pass --overwrite to replace it")
        if not exists:
            if tmp.is_dir():
                os.rename(tmp, final)
            else:
                try:
                    os.link(tmp, final)  # fails if the name was taken meanwhile
                except FileExistsError:
                    raise OutputError(f"{self.name}={str(final)!r} appeared while this command ran; "
                                      "nothing was replaced") from None
                except OSError:
                    os.replace(tmp, final)  # file systems without hard links
            return
        if tmp.is_file() and final.is_file() and not final.is_symlink():
            os.replace(tmp, final)
            return
        old = final.parent / _tmp_name(OLD_PREFIX, final.name)
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(old, final)
            raise
        _remove(old)


def claim_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
    suffixes: Sequence[str] | Mapping[str, Any] | None = None,
    name: str = "--output",
) -> ClaimedOutput:
    """Check an output request before any work and claim its name (see the module docstring).

    Parameters
    ----------
    path: where the result goes (a file, or a directory store such as ``.zarr``).
    inputs: every file or store the command reads; the output may be none of them.
    overwrite: replace an existing output (``--overwrite``); refused otherwise.
    suffixes: the accepted endings (``(".xyz", ".extxyz")``), or None for any.
    name: how the argument is called in messages (``"--output"``, ``"out"``).

    Raises
    ------
    InputError
        an unknown format.
    OutputError
        the output is an input, exists (without ``overwrite``), is busy or cannot be written.
    """
    if path is None or str(path) == "":
        raise InputError(f"{name} is required: give the path of the file to write")
    raw = Path(os.path.expanduser(str(path)))
    final = _resolved(raw) if not raw.is_symlink() else Path(os.path.abspath(raw))
    for inp in inputs:
        if inp is None:
            continue
        why = _same_or_nested(final, _resolved(inp))
        if why:
            raise OutputError(f"{name}={str(path)!r} {why} the input {str(inp)!r}; writing it "
                              "would destroy the input. Choose another output path")
    _check_suffix(final, suffixes, name)
    if final.exists() and not overwrite:
        kind = "folder" if final.is_dir() else "file"
        raise OutputError(f"{name}={str(path)!r}: the {kind} exists; pass --overwrite "
                          "(overwrite=True) to replace it, or choose another path")
    _writable_folder(final, name)
    created = tuple(p for p in final.parents if not p.exists())  # deepest first
    lock = _take_lock(final, name)
    sweep_stale(final.parent)
    return ClaimedOutput(final, overwrite=overwrite, name=name, lock=lock, created=created)


def _take_lock(final: Path, name: str) -> Path:
    lock = final.parent / f"{LOCK_PREFIX}{final.name}"
    for _ in range(3):
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid_text, host = (lock.read_text().split() + ["", ""])[:2]
            except FileNotFoundError:
                continue
            pid = int(pid_text) if pid_text.isdigit() else -1
            if host == socket.gethostname() and _alive(pid) and pid != os.getpid():
                raise OutputError(f"{name}={str(final)!r} is being written by another sciflow "
                                  f"process (pid {pid}); wait for it or choose another path") from None
            if host not in ("", socket.gethostname()):
                raise OutputError(f"{name}={str(final)!r} is being written from host {host!r} "
                                  f"(lock {str(lock)!r}); remove the lock if that run is gone") from None
            _remove(lock)  # a dead writer's claim
            continue
        except OSError as err:
            raise OutputError(f"{name}={str(final)!r}: cannot write in folder "
                              f"{str(final.parent)!r} ({err.strerror}); choose another output "
                              "path") from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
        return lock
    raise OutputError(f"could not claim {name}={str(final)!r} (its lock {str(lock)!r} keeps changing)")


# ----------------------------------------------------------------------------- JSON and finiteness
def strict_json(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts: NaN/inf -> None,
    tuples -> lists, numpy/torch scalars -> Python numbers, Paths -> str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, str):
        return str(obj)  # a str subclass (torch's TorchVersion) becomes a plain str
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        return strict_json(obj.item())
    if hasattr(obj, "tolist"):
        return strict_json(obj.tolist())
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


def dumps_json(obj: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text (no bare NaN/Infinity) of ``obj`` after :func:`strict_json`."""
    return json.dumps(strict_json(obj), indent=indent, allow_nan=False) + "\n"


def ensure_finite(values: Any, what: str, *, axis_name: str = "sample", hint: str = "") -> None:
    """Raise :class:`~sciflow.errors.NonFiniteError` if ``values`` (an array or tensor whose first
    axis runs over ``axis_name``) holds NaN or inf, naming how many and the first offender."""
    import numpy as np

    arr = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    if arr.ndim == 0:
        raise NonFiniteError(f"{what} is {arr.item()}; nothing was written. {hint}".strip())
    rows = bad.reshape(arr.shape[0], -1).any(axis=1)
    first = int(np.flatnonzero(rows)[0])
    raise NonFiniteError(f"{what}: {int(rows.sum())} of {arr.shape[0]} {axis_name}s hold NaN or "
                         f"inf (first: {axis_name} {first}); nothing was written. {hint}".strip())

"""The study's ``--out`` folder: one output, checked and claimed before any work, and its caches.

A study writes ``README.md``, ``results.csv``, ``config.json``, its figures and, per testbed,
``cache/<testbed>.pt`` (the testbed's results, kept as soon as it finishes). The folder is one
output (:func:`sciflow.outputs.claim_output`: never one of the inputs, one writer at a time) and
every file in it is claimed before the work and written atomically with ``claim.write``.

Which existing folders may be written, without ``overwrite`` (``--overwrite``):

- a missing or empty folder;
- a folder that holds a study (its ``config.json`` or ``cache/``): the study is **resumed**.
  A testbed whose cache was saved with the same settings (:func:`~.evaluation.cache_key`, the seed
  included) is reused, the others are computed, and the report files are written anew from all of
  them. This is what lets the testbeds of one study run as separate processes, one after the
  other, into one folder (``--testbeds lorenz``, then ``--testbeds heat``, then all of them: the
  last run only writes the report). Refused: replacing a cache saved with other settings, a
  ``reuse=False`` (``--fresh``) recomputation of an existing cache, and a cache file that is not
  a safe, intact sciflow cache (a crafted pickle is refused, never run): ``--overwrite`` allows
  each of these (the unreadable cache is then recomputed, never loaded).

Anything else (a folder of other files, a file) needs ``overwrite``; files of others are never
deleted. ``reuse_from`` names another study folder whose caches are read (never written) when
their settings match; the hits are copied into this folder's cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sciflow.checkpoint import CheckpointError, load_tensors, save_tensors
from sciflow.errors import InputError, OutputError
from sciflow.outputs import LOCK_PREFIX, OLD_PREFIX, TMP_PREFIX, ClaimedOutput, claim_output

from .config import KIND, Config

__all__ = ["StudyFolder", "cache_path", "read_cache", "cache_provenance", "is_study_folder"]

_OURS = (LOCK_PREFIX, TMP_PREFIX, OLD_PREFIX)


def cache_path(folder: str | Path, testbed: str) -> Path:
    return Path(folder) / "cache" / f"{testbed}.pt"


def _load(path: Path, testbed: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    saved = load_tensors(path, kind=KIND)
    if saved.get("testbed") != testbed or not isinstance(saved.get("key"), dict) \
            or not isinstance(saved.get("state"), dict):
        raise CheckpointError(f"{str(path)!r} is a {KIND} cache but not of testbed {testbed!r}")
    info = saved.get("provenance")
    return saved["key"], saved["state"], info if isinstance(info, dict) else None


def read_cache(path: Path, testbed: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(key, state) of a testbed cache; CheckpointError if the file is not a safe, intact
    sciflow cache of that testbed (weights-only load, digest checked: nothing in it can run)."""
    key, state, _ = _load(path, testbed)
    return key, state


def cache_provenance(path: Path, testbed: str) -> dict[str, Any] | None:
    """The provenance of the run that computed a cache (None for caches written before it
    was kept): :func:`~.provenance.provenance` of that run."""
    return _load(path, testbed)[2]


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(_OURS)]


def is_study_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a study: a ``config.json`` of study settings, or a cache."""
    try:
        Config.from_dict(json.loads((folder / "config.json").read_text()))
        return True
    except (OSError, ValueError, TypeError):
        pass
    cache = folder / "cache"
    return cache.is_dir() and any(p.suffix == ".pt" for p in cache.iterdir())


def _differences(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(set(saved) | set(wanted))
    return ", ".join(f"{k} {saved.get(k)!r} -> {wanted.get(k)!r}" for k in keys
                     if saved.get(k) != wanted.get(k))


class StudyFolder:
    """The claimed ``--out`` folder of one study run; a :class:`~.evaluation.TestbedCache`.

    ``with StudyFolder(out, config=..., files=[...]) as folder:`` checks the request (see the
    module docstring) and claims the folder, each report file in ``files`` and each cache to be
    written; :meth:`get` / :meth:`put` serve the caches, :meth:`write` a report file.
    ``keys`` maps each testbed to run to its cache key (:func:`~.evaluation.cache_key`).
    ``info``: the run's :func:`~.provenance.provenance`, kept in each cache it writes;
    :attr:`provenance` maps each testbed to that of the run that computed its numbers.
    """

    def __init__(self, out: str | Path, *, keys: dict[str, dict[str, Any]], files: Iterable[str],
                 overwrite: bool = False, reuse: bool = True, cache: bool = True,
                 reuse_from: str | Path | None = None, inputs: Iterable[str | Path] = (),
                 info: dict[str, Any] | None = None) -> None:
        if out is None or str(out) == "":
            raise InputError("--out is required: the folder the study writes")
        self.path = Path(out)
        self.keys, self.files = dict(keys), list(files)
        self.overwrite, self.reuse, self.cache = overwrite, reuse, cache
        self.reuse_from = None if reuse_from is None else Path(reuse_from)
        self.inputs = [*inputs, *([self.reuse_from] if self.reuse_from is not None else [])]
        self._hits: dict[str, dict[str, Any]] = {}
        self.info = info
        self.provenance: dict[str, dict[str, Any]] = {}
        self._claims: dict[str, ClaimedOutput] = {}
        self._stack = ExitStack()

    def __enter__(self) -> StudyFolder:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self) -> None:
        out = self.path
        if self.reuse_from is not None and not self.reuse_from.is_dir():
            raise InputError(f"--reuse-from {str(self.reuse_from)!r} is not a folder; give the "
                             "--out folder of an earlier study")
        self._stack.enter_context(claim_output(out, inputs=self.inputs, overwrite=True,
                                               name="--out"))
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out={str(out)!r} is a file; the study writes a folder. Choose "
                              "another --out")
        if out.is_dir() and _visible(out) and not self.overwrite and not is_study_folder(out):
            raise OutputError(f"--out={str(out)!r} is a folder of other files (no study in it); "
                              "pass --overwrite to write the study into it anyway (nothing else "
                              "is deleted), or choose another --out")
        writes = list(self.files)
        if self.cache:
            for testbed, key in self.keys.items():
                if not self._find(testbed, key):
                    writes.append(f"cache/{testbed}.pt")
        for name in writes:
            self._claims[name] = self._stack.enter_context(
                claim_output(out / name, inputs=self.inputs, overwrite=True, name="--out"))

    def _find(self, testbed: str, key: dict[str, Any]) -> bool:
        """Load a matching cache into ``_hits``; False when the testbed must be computed.
        Raises when an existing cache would be replaced without ``overwrite``."""
        path = cache_path(self.path, testbed)
        if path.exists():
            try:
                saved_key, state, info = _load(path, testbed)
            except CheckpointError as err:
                if not self.overwrite:
                    raise CheckpointError(
                        f"{err}. It may have been written by an older sciflow (pickled caches are "
                        "no longer read, as they could run code); pass --overwrite to recompute "
                        "and replace it") from None
            else:
                if saved_key == key and self.reuse:
                    self._hits[testbed] = state
                    self._remember(testbed, info)
                    return True
                if not self.overwrite:
                    why = ("--fresh asks to recompute it" if saved_key == key else
                           f"it was saved with other settings ({_differences(saved_key, key)})")
                    raise OutputError(f"--out={str(self.path)!r}: cache/{path.name} holds "
                                      f"finished {testbed} results and {why}; pass --overwrite "
                                      "to replace it, or choose another --out")
        if self.reuse and self.reuse_from is not None:
            other = cache_path(self.reuse_from, testbed)
            if other.exists():
                saved_key, state, info = _load(other, testbed)
                if saved_key == key:
                    self._hits[testbed] = state  # copied into this folder's cache by get()
                    self._remember(testbed, info)
        return False

    def _remember(self, testbed: str, info: dict[str, Any] | None) -> None:
        if info is not None:
            self.provenance[testbed] = info

    def get(self, testbed: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The cached state of ``testbed`` for ``key`` (found when the folder was opened)."""
        if not self.cache or key != self.keys.get(testbed):
            return None
        state = self._hits.get(testbed)
        if state is not None and f"cache/{testbed}.pt" in self._claims:
            # a hit from --reuse-from: keep a copy here, with the provenance it came with
            self._write_cache(testbed, key, state, self.provenance.get(testbed))
        return state

    def put(self, testbed: str, key: dict[str, Any], state: dict[str, Any]) -> None:
        """Save a finished testbed's state as ``cache/<testbed>.pt`` (kind ``"climate"``)."""
        self._write_cache(testbed, key, state, self.info)
        if self.info is not None:
            self.provenance[testbed] = self.info

    def _write_cache(self, testbed: str, key: dict[str, Any], state: dict[str, Any],
                     info: dict[str, Any] | None) -> None:
        claim = self._claims.get(f"cache/{testbed}.pt")
        if claim is None or claim.written:
            return
        value = {"testbed": testbed, "key": key, "state": state}
        if info is not None:
            value["provenance"] = info
        claim.write(lambda tmp: save_tensors(tmp, value, kind=KIND))

    def write(self, name: str, fill: Callable[[Path], Any]) -> Path:
        """Write the report file ``name`` (claimed at opening) by ``fill(tmp)``."""
        if name not in self._claims:
            raise OutputError(f"{name!r} was not claimed when the study folder was opened")
        return self._claims[name].write(fill)

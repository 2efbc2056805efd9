"""A resumable, append-only store of finished candidates.

Layout of a store directory:

* ``reactions.extxyz.gz`` -- accepted reactions, one gzip *member* per reaction appended with a
  single write; concatenated members are an ordinary gzip file for ``gzip``/``ase.io.read``.
* ``records.jsonl`` -- one JSON line per finished candidate (accepted or rejected): ``id``,
  ``status``, ``reason``, ``detail``, ``seconds``, and for accepted ones the reaction ``key``,
  byte ``offset``/``length`` of its gzip member and summary numbers.

Each accepted reaction is written and fsync'ed before its record line, so a kill at any moment
loses at most the candidate in flight. Opening a store only reads it (safe while a builder is
appending: a torn last line is ignored and reactions are read through recorded offsets); the first
:meth:`ReactionStore.append` cuts off what a killed run left half-written. Only one process may
append at a time. :meth:`ReactionStore.done_ids` tells a restart what to skip.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .reaction import Reaction, reactions_from_text, reactions_to_text

__all__ = ["ReactionStore"]


class ReactionStore:
    """Append-only store of accepted reactions and per-candidate records (see module docstring)."""

    REACTIONS = "reactions.extxyz.gz"
    RECORDS = "records.jsonl"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.reactions_path = self.directory / self.REACTIONS
        self.records_path = self.directory / self.RECORDS
        self._records: list[dict] = []
        self._repaired = False
        self._records = self._load(repair=False)

    def _load(self, *, repair: bool) -> list[dict]:
        records: list[dict] = []
        good_bytes = 0
        if self.records_path.exists():
            raw = self.records_path.read_bytes()
            for line in raw.split(b"\n"):
                if not line.strip():
                    good_bytes += len(line) + 1
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # torn last line of a killed run
                good_bytes += len(line) + 1
            good_bytes = min(good_bytes, len(raw))
            if repair and good_bytes < len(raw):
                with open(self.records_path, "r+b") as fh:
                    fh.truncate(good_bytes)
        end = max((r["offset"] + r["length"] for r in records if r.get("status") == "accepted"), default=0)
        if repair and self.reactions_path.exists() and self.reactions_path.stat().st_size > end:
            with open(self.reactions_path, "r+b") as fh:
                fh.truncate(end)
        return records

    @property
    def records(self) -> list[dict]:
        """All finished-candidate records, in the order they finished."""
        return list(self._records)

    @contextlib.contextmanager
    def writer_lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the store's writer lock (``flock`` on ``records.jsonl``) for a build.

        Yields True when held; with ``wait=False`` yields False at once if another process holds
        it (a builder is appending), so readers can tell a live store from a finished one.
        """
        import fcntl

        self.records_path.touch(exist_ok=True)
        with open(self.records_path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def repair(self) -> None:
        """Cut what a killed writer left half-written (call only while holding :meth:`writer_lock`)."""
        self._records = self._load(repair=True)
        self._repaired = True

    def done_ids(self) -> set[str]:
        """Ids of every finished candidate (accepted or rejected)."""
        return {r["id"] for r in self._records}

    def accepted_keys(self) -> dict[str, str]:
        """Reaction key -> id of each accepted reaction (for duplicate detection)."""
        return {r["key"]: r["reaction_id"] for r in self._records if r.get("status") == "accepted"}

    def counts(self) -> Counter:
        """Number of records by status ('accepted' / 'rejected')."""
        return Counter(r["status"] for r in self._records)

    def rejection_reasons(self) -> Counter:
        """Number of rejected candidates by reason."""
        return Counter(r["reason"] for r in self._records if r["status"] == "rejected")

    def append(self, record: dict, reaction: Reaction | None = None) -> None:
        """Store one finished candidate; with ``reaction`` it is accepted and written first."""
        if not self._repaired:  # the writer cuts what a killed run left half-written, once
            self._records = self._load(repair=True)
            self._repaired = True
        record = dict(record)
        if reaction is not None:
            member = gzip.compress(reactions_to_text([reaction]).encode(), mtime=0)
            with open(self.reactions_path, "ab") as fh:
                offset = fh.tell()
                fh.write(member)
                fh.flush()
                os.fsync(fh.fileno())
            record.update(status="accepted", reaction_id=reaction.id, offset=offset, length=len(member))
        else:
            record.setdefault("status", "rejected")
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.records_path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._records.append(record)

    def reactions(self) -> Iterator[Reaction]:
        """Accepted reactions, read member by member through the record offsets."""
        if not self.reactions_path.exists():
            return
        with open(self.reactions_path, "rb") as fh:
            for r in self._records:
                if r.get("status") != "accepted":
                    continue
                fh.seek(r["offset"])
                text = gzip.decompress(fh.read(r["length"])).decode()
                yield from reactions_from_text(text)

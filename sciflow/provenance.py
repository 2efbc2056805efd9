"""Where a result came from, in one small dict every output format can carry.

``provenance(checkpoint=..., digest=..., seed=..., sampler=..., **settings)`` gives the sciflow,
torch and Python versions, the time (UTC, ISO 8601), the command line, the host, the checkpoint
(path and the sha256 digest of its tensors, :attr:`sciflow.checkpoint.LoadedCheckpoint.digest`),
and whatever settings the caller adds, all JSON-clean. Each domain puts it in its format's own
place: extxyz ``info``, AnnData ``uns['sciflow']``, xarray attrs (with :func:`history_line`),
a JSON side-car next to tensors.
"""

from __future__ import annotations

import platform
import shlex
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sciflow.outputs import strict_json

__all__ = ["provenance", "history_line", "file_sha256"]


def provenance(*, checkpoint: str | Path | None = None, digest: str | None = None,
               **settings: Any) -> dict[str, Any]:
    """The provenance record (see the module docstring); ``settings`` are added as given."""
    from sciflow import __version__

    record: dict[str, Any] = {
        "sciflow": __version__,
        "python": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv) if sys.argv and sys.argv[0] else "",
        "host": socket.gethostname(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        record["torch"] = torch.__version__
    if checkpoint is not None:
        record["checkpoint"] = str(checkpoint)
    if digest is not None:
        record["checkpoint_sha256"] = digest
    record.update(settings)
    return strict_json(record)


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks: the identity of an input in a record."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def history_line(what: str, record: dict[str, Any] | None = None) -> str:
    """A CF ``history`` entry: ``"<time> sciflow <version>: <what>"``."""
    record = record if record is not None else provenance()
    return f"{record['created']} sciflow {record['sciflow']}: {what}"

"""What made a study's outputs: sciflow and torch versions, the command, the seed, the time.

:func:`provenance` is written three ways into a study folder: ``provenance.json`` (strict
JSON), the ``#`` preamble of ``results.csv`` (:func:`csv_preamble`; read the table with
``pandas.read_csv(path, comment="#")`` or skip lines starting with ``#``) and the README's
provenance line. Every testbed's cache keeps the provenance of the run that computed it, so a
report built from caches says when and by what each testbed was measured.
"""

from __future__ import annotations

import datetime
import platform
from typing import Any

__all__ = ["provenance", "csv_preamble", "provenance_line"]


def provenance(*, command: str, seed: int) -> dict[str, Any]:
    """{sciflow, torch, python, machine, threads, command, seed, time (UTC, ISO 8601)}."""
    import torch

    import sciflow

    return {
        "sciflow": str(sciflow.__version__),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "command": command or "run_study(...)",
        "seed": int(seed),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def csv_preamble(info: dict[str, Any]) -> list[str]:
    """``# key: value`` lines (no newlines inside) for the head of a CSV file."""
    return [f"# {key}: {' '.join(str(value).split())}" for key, value in info.items()]


def provenance_line(info: dict[str, Any]) -> str:
    """One markdown sentence: the command, the seed, versions, machine, time."""
    return (f"Command: `{info['command']}`; seed {info['seed']}; sciflow {info['sciflow']}, "
            f"torch {info['torch']}, Python {info['python']}, {info['threads']} thread(s), "
            f"{info['machine']}; written {info['time']}.")

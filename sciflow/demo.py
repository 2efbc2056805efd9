"""``sciflow demo``: the main job. Runs one short, real section per domain into one report folder.

Each section is a ``demo(out_dir) -> markdown`` function named in :data:`SECTIONS` (an explicit
registry of module paths). Sections whose module is not part of this build are skipped; a section
that fails is reported in the report with its error, and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

__all__ = ["SECTIONS", "run_demo", "register"]

SECTIONS: dict[str, str] = {
    "core": "sciflow.toy",
    "ts": "sciflow.domains.transition_states.demo",
    "cells": "sciflow.domains.single_cell.demo",
    "precision": "sciflow.domains.climate.demo",
    "rs": "sciflow.domains.remote_sensing.demo",
    "vfm": "sciflow.domains.feature_forecasting.demo",
}


def run_demo(out_dir: str | Path, sections: list[str] | None = None, *, threads: int = 1) -> Path:
    """Run the chosen sections (all by default) and write ``report.md`` in ``out_dir``.

    ``threads`` sets torch's intra-op threads: the demo's models are small, and one thread is
    faster than two on a busy two-core machine (oversubscription costs 10-100x there).
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    names = list(SECTIONS) if not sections else sections
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown demo section(s) {unknown}; choose from {list(SECTIONS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = [
        "# sciflow demo report\n",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}.\n",
    ]
    timings = []
    for name in names:
        try:
            module = importlib.import_module(SECTIONS[name])
        except ModuleNotFoundError as exc:
            if exc.name and SECTIONS[name].startswith(exc.name):
                continue  # not part of this build
            raise
        t0 = time.perf_counter()
        print(f"[demo] {name} ...", flush=True)
        try:
            parts.append(module.demo(out))
            status = "ok"
        except Exception as exc:  # one broken section must not hide the others' results
            parts.append(f"## {name}: FAILED\n\n```\n{traceback.format_exc()}```\n")
            status = f"failed: {type(exc).__name__}: {exc}"
        timings.append((name, time.perf_counter() - t0, status))
        print(f"[demo] {name} {status} ({timings[-1][1]:.0f} s)", flush=True)
    parts.append("## Timings\n\n| section | seconds | status |\n|---|---|---|\n" + "\n".join(
        f"| {n} | {s:.1f} | {st} |" for n, s, st in timings))
    parts.append(f"\n\nTotal: {time.perf_counter() - started:.0f} s.\n")
    report = out / "report.md"
    report.write_text("\n".join(parts))
    return report


def _demo_cmd(args: argparse.Namespace) -> int:
    report = run_demo(args.out, args.sections.split(",") if args.sections else None,
                      threads=args.threads)
    print(report.read_text())
    print(f"\nreport and figures in: {report.parent.resolve()}")
    failed = "FAILED" in report.read_text()
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sciflow demo``."""
    p = subparsers.add_parser(
        "demo", help="the main job: a short real run of every domain, with a report",
        description="Train, sample and evaluate a small model per domain (about ten minutes on two "
                    "cores) and write report.md with tables and figures into one folder.\n"
                    "Example:\n  sciflow demo --out sciflow-out/demo\n"
                    "  sciflow demo --sections core,precision",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="sciflow-out/demo", help="report folder (created)")
    p.add_argument("--sections", default="",
                   help=f"comma-separated subset of: {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.set_defaults(func=_demo_cmd)

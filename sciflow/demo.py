"""``sciflow demo``: the main job. Runs one short, real section per domain into one report folder.

The sections are the ``demo`` functions of the registered domains (:mod:`sciflow.plugins`), in
their order; ``--sections`` picks some by name or alias. A section whose optional packages are
missing is skipped with a note; a section that fails is reported with its error, and the others
still run.
"""

from __future__ import annotations

import argparse
import platform
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from sciflow.plugins import Domain, domains, find_domain

__all__ = ["run_demo", "configure", "sections"]


def sections() -> list[Domain]:
    """The registered domains that have a demo section, in demo order."""
    return [d for d in domains().values() if d.demo is not None]


def _pick(names: list[str] | None) -> list[Domain]:
    if not names:
        return sections()
    picked = []
    for name in names:
        try:
            domain = find_domain(name)
        except KeyError:
            domain = None
        if domain is None or domain.demo is None:
            from sciflow.errors import InputError

            known = ", ".join("/".join(d.names()) for d in sections())
            raise InputError(f"--sections: unknown demo section {name!r}; choose from {known}")
        picked.append(domain)
    return picked


def run_demo(out_dir: str | Path, sections: list[str] | None = None, *, threads: int = 1) -> Path:
    """Run the chosen sections (all by default) and write ``report.md`` in ``out_dir``.

    ``threads`` sets torch's intra-op threads: the demo's models are small, and one thread is
    faster than two on a busy two-core machine (oversubscription costs 10-100x there).
    """
    from sciflow.errors import InputError

    if not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads={threads!r}: expected an integer >= 1")
    chosen = _pick(sections)
    import torch

    torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = [
        "# sciflow demo report\n",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}.\n",
    ]
    timings = []
    for domain in chosen:
        missing = domain.missing()
        if missing:
            parts.append(f"## {domain.name}: skipped (needs {', '.join(missing)})\n")
            continue
        t0 = time.perf_counter()
        print(f"[demo] {domain.name} ...", flush=True)
        try:
            parts.append(domain.load("demo")(out))
            status = "ok"
        except Exception as exc:  # one broken section must not hide the others' results
            parts.append(f"## {domain.name}: FAILED\n\n```\n{traceback.format_exc()}```\n")
            status = f"failed: {type(exc).__name__}: {exc}"
        timings.append((domain.name, time.perf_counter() - t0, status))
        print(f"[demo] {domain.name} {status} ({timings[-1][1]:.0f} s)", flush=True)
    parts.append("## Timings\n\n| section | seconds | status |\n|---|---|---|\n" + "\n".join(
        f"| {n} | {s:.1f} | {st} |" for n, s, st in timings))
    parts.append(f"\n\nTotal: {time.perf_counter() - started:.0f} s.\n")
    report = out / "report.md"
    report.write_text("\n".join(parts))
    return report


def _demo_cmd(args: argparse.Namespace) -> int:
    names = [s.strip() for s in args.sections.split(",") if s.strip()] if args.sections else None
    report = run_demo(args.out, names, threads=args.threads)
    text = report.read_text()
    print(text)
    print(f"\nreport and figures in: {report.parent.resolve()}")
    return 1 if "FAILED" in text else 0


def configure(p: argparse.ArgumentParser) -> None:
    """Fill the parser of ``sciflow demo``."""
    names = ", ".join("/".join(d.names()) for d in sections())
    p.description = ("Train, sample and evaluate a small model per domain (about ten minutes on "
                     "two cores) and write report.md with tables and figures into one folder.\n"
                     "Examples:\n  sciflow demo --out sciflow-out/demo\n"
                     "  sciflow demo --sections toy,climate")
    p.add_argument("--out", default="sciflow-out/demo", help="report folder (created)")
    p.add_argument("--sections", default="",
                   help=f"comma-separated subset of: {names} (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.set_defaults(func=_demo_cmd)

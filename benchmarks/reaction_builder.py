"""Reaction-builder throughput: verified reactions per core-hour (GFN2-xTB and EMT tiers).

Two measurements, one report:

1. the shipped store (datasets/reactions/data, built in the background by
   ``python -m sciflow.datasets.reactions build-dataset --out datasets/reactions/data --workers 1``):
   accepted / candidates, CPU core-hours from each candidate's worker CPU time (one thread), the
   wall-clock span of the build, and rejections by reason;
2. a fresh timed run here (``--measure N``, default 24): the first N candidates of the default
   GFN2-xTB candidate list and all EMT hops and exchanges of Cu and Au adatoms on Cu and Au surfaces, one worker, into
   a temporary store; CPU seconds from the worker records and wall seconds of the whole call.

Target (set by the project): ship >= 1,000 verified GFN2-xTB reactions; the table says whether
the store has reached it.

Writes benchmarks/results/reaction_builder.md.   Run: python benchmarks/reaction_builder.py [--measure 24]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sciflow.datasets.reactions import (  # noqa: E402
    DEFAULT_SMILES,
    EMT_SETTINGS,
    GFN2,
    EMTFactory,
    PipelineSettings,
    ReactionStore,
    build_dataset,
    emt_candidates,
    enumerate_candidates,
    g2_seeds,
    interleave,
    smiles_seeds,
    store_statistics,
)
from sciflow.datasets.reactions.candidates import unique_seeds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "reaction_builder.md"
STORE = ROOT / "datasets" / "reactions" / "data"
TARGET = 1000


def _target(accepted: int) -> str:
    if accepted >= TARGET:
        return "met"
    return f"not met yet ({accepted} of {TARGET}; re-running the build resumes it)"


def _fresh(cands, calculator, settings) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        summary = build_dataset(cands, tmp, calculator=calculator, settings=settings, max_workers=1, progress=False)
        wall = time.monotonic() - t0
        records = ReactionStore(tmp).records
    cpu = sum(r.get("cpu_seconds", 0.0) for r in records)
    return {"candidates": len(records), "accepted": summary.accepted, "cpu_s": cpu, "wall_s": wall,
            "per_core_hour": summary.accepted / (cpu / 3600) if cpu else 0.0,
            "per_wall_hour": summary.accepted / (wall / 3600) if wall else 0.0,
            "reasons": Counter(r["reason"] for r in records if r["status"] == "rejected")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measure", type=int, default=24, help="GFN2-xTB candidates in the fresh timed run (0: skip)")
    args = ap.parse_args()

    rows = []
    store_part = []
    if (STORE / ReactionStore.RECORDS).exists():
        st = store_statistics(ReactionStore(STORE))
        span = (st["last_finished"] - st["first_finished"]) / 3600 if st["first_finished"] else float("nan")
        store_part = [
            "## The shipped store (background build)",
            "",
            "| quantity | value |", "|---|---|",
            f"| candidates finished | {st['candidates']} |",
            f"| verified reactions | {st['accepted']} ({st['accepted'] / max(st['candidates'], 1):.0%} of candidates) |",
            f"| worker CPU time | {st['cpu_hours']:.2f} core-hours |",
            f"| verified per core-hour (CPU time) | **{st['accepted_per_core_hour']:.0f}** |",
            f"| wall-clock span of the {st['candidates_timed']} time-stamped candidates | {span:.2f} h (machine shared with other jobs) |",
            f"| verified per wall-hour, 1 worker | {st['accepted_timed'] / span if span > 0 else float('nan'):.0f} |",
            f"| target >= {TARGET} verified reactions | {_target(st['accepted'])} |",
            "",
            "| rejection reason | candidates |", "|---|---|",
            *[f"| {k} | {v} |" for k, v in st["reasons"].items()],
            "",
        ]
    if args.measure:
        seeds, _ = g2_seeds()
        more, _ = smiles_seeds(DEFAULT_SMILES)
        seeds, _ = unique_seeds(seeds + more)
        cands = interleave(c for s in seeds for c in enumerate_candidates(s))[: args.measure]
        rows.append(("GFN2-xTB molecules (first candidates of the default list)", _fresh(cands, GFN2(), PipelineSettings())))
    emt = emt_candidates(metals=("Cu", "Au"), adatoms=("Cu", "Au"))
    rows.append(("EMT Cu, Au adatoms on Cu, Au (100)/(111)", _fresh(emt, EMTFactory(), EMT_SETTINGS)))

    lines = [
        "# Reaction builder throughput",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPU cores shared with other jobs), Python {platform.python_version()}, "
        "one worker process, OMP_NUM_THREADS=1.",
        "",
        "Command: `python benchmarks/reaction_builder.py" + (f" --measure {args.measure}`" if args.measure != 24 else "`"),
        "",
        "Throughput counts verified reactions (all checks passed, duplicates removed) per core-hour of worker CPU "
        "time; wall-clock rates are lower here because the 2 cores were shared.",
        "",
        *store_part,
        "## Fresh timed runs",
        "",
        "| tier | candidates | verified | CPU s | wall s | verified / core-hour | verified / wall-hour |",
        "|---|---|---|---|---|---|---|",
        *[f"| {name} | {r['candidates']} | {r['accepted']} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | "
          f"{r['per_core_hour']:.0f} | {r['per_wall_hour']:.0f} |" for name, r in rows],
        "",
        *[f"- {name}: rejections {dict(r['reasons'])}" for name, r in rows],
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

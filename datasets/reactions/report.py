"""Provenance README, statistics and checksums of a reaction store (``--finalize``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np

from .splits import write_splits
from .store import ReactionStore

__all__ = ["store_statistics", "finalize_store", "sha256"]

EV_TO_KCAL = 23.060547830619


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def store_statistics(store: ReactionStore) -> dict:
    """Counts, rejection reasons, compute time, throughput and barrier statistics of a store."""
    records = store.records
    acc = [r for r in records if r["status"] == "accepted"]
    cpu = sum(r.get("cpu_seconds", r.get("seconds", 0.0)) for r in records)
    wall = sum(r.get("seconds", 0.0) for r in records)
    barriers = np.array([r["barrier_ev"] for r in acc]) * EV_TO_KCAL
    imag = np.array([r["imag_freq_cm1"] for r in acc])
    q = (lambda a: [float(x) for x in np.percentile(a, [0, 25, 50, 75, 100])]) if len(acc) else (lambda a: [])
    return {
        "candidates": len(records),
        "accepted": len(acc),
        "rejected": len(records) - len(acc),
        "reasons": dict(store.rejection_reasons().most_common()),
        "origins": dict(Counter(r.get("origin", "") for r in acc)),
        "families": dict(Counter(r.get("family", "") for r in acc).most_common()),
        "formulas": len({r.get("formula") for r in acc}),
        "seeds": len({r.get("seed") for r in acc}),
        "cpu_hours": cpu / 3600.0,
        "worker_wall_hours": wall / 3600.0,
        "accepted_per_core_hour": len(acc) / (cpu / 3600.0) if cpu else 0.0,
        "barrier_kcal_quantiles": q(barriers),
        "imag_freq_quantiles": q(imag),
        "accepted_timed": sum(1 for r in acc if "finished" in r),
        "candidates_timed": sum(1 for r in records if "finished" in r),
        "first_finished": min((r["finished"] for r in records if "finished" in r), default=None),
        "last_finished": max((r["finished"] for r in records if "finished" in r), default=None),
    }


def _table(rows: list[tuple], header: tuple) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |" for row in rows]
    return "\n".join(out)


_USAGE = """## Using it

```bash
# continue (or start) the GFN2-xTB build of this store; a killed run resumes where it stopped.
# --expand-products seeds from products already verified; each 30-min pass adds a generation
while :; do python -m sciflow.datasets.reactions build-dataset --out datasets/reactions/data \\
    --workers 1 --expand-products --time-budget 1800 || break; sleep 30; done
# the same through the main CLI, with a dask cluster, or the EMT surface tier for a quick run
sciflow ts build-dataset --out my_store --scheduler tcp://host:8786
sciflow ts build-dataset --out emt_store --tier emt
# splits, stats and this README from a store
python -m sciflow.datasets.reactions build-dataset --out datasets/reactions/data --finalize \\
    --readme datasets/reactions/README.md
```

```python
from sciflow.datasets.reactions import (ReactionGraphDataset, ReactionStore, Transition1xReader,
                                        read_reactions, read_split)
rxns = {r.id: r for r in read_reactions("datasets/reactions/data/reactions.extxyz.gz")}
split = read_split("datasets/reactions/data/splits/split_family.json")
train = ReactionGraphDataset([rxns[i] for i in split["train"]])      # PyG graphs, R/P/TS aligned
t1x = Transition1xReader("transition1x.h5", split="test")           # your own copy, streamed
```

Each reaction is three extxyz frames (reactant, transition state, product) on one atom order; the
keys (`energy_ev`, `barrier_ev`, `imag_freq_cm1`, `smiles`, `family`, `method`, `software`,
`settings`, `origin`, `source`, ...) are documented in `sciflow.datasets.reactions.reaction`.
"""


def _rel(path: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _progress(accepted: int, target: int) -> str:
    if not target:
        return ""
    if accepted >= target:
        return f"Target of {target} reached."
    return f"Target {target}: {target - accepted} to go (re-run the build command on this store to continue)."


def finalize_store(directory: str | Path, *, seed: int = 0, readme: str | Path | None = None,
                   target: int = 1000) -> list[Path]:
    """Write split files, ``stats.json`` and a provenance README.md next to a store.

    Safe while a builder is appending (it then only reads; the shipped files may end in a
    half-written reaction until the builder stops). The README records software versions and settings (from the stored reactions), compute time,
    acceptance and rejection statistics by reason, barrier statistics, the split files and
    SHA-256 checksums of every data file. Returns the written paths.
    """
    directory = Path(directory)
    store = ReactionStore(directory)
    with store.writer_lock(wait=False) as idle:
        if idle:  # no builder running: cut what a killed one left half-written, so files read cleanly
            store.repair()
    reactions = list(store.reactions())
    paths = write_splits(reactions, directory / "splits", seed=seed)
    stats = store_statistics(store)
    (directory / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    paths.append(directory / "stats.json")
    software = Counter(r.software for r in reactions)
    settings = Counter(r.settings for r in reactions)
    methods = Counter(r.method for r in reactions)
    target_path = Path(readme) if readme is not None else directory / "README.md"
    files = [directory / ReactionStore.REACTIONS, directory / ReactionStore.RECORDS] + paths
    sums = [(_rel(f, target_path.parent), f.stat().st_size, sha256(f)) for f in files if f.exists()]
    bq, fq = stats["barrier_kcal_quantiles"], stats["imag_freq_quantiles"]
    lines = [
        "# Verified reactions (built by `sciflow ts build-dataset`)",
        "",
        f"**{stats['accepted']} verified reactions** from {stats['candidates']} candidates "
        f"({stats['rejected']} rejected), {stats['formulas']} formulas, {stats['seeds']} seed molecules. "
        + _progress(stats["accepted"], target),
        "",
        "Files (in the store directory): `reactions.extxyz.gz` (three frames per reaction: reactant, transition "
        "state, product; keys in `sciflow.datasets.reactions.reaction`), `records.jsonl` (one line per candidate: "
        "accepted or rejected with the reason and CPU time), `splits/split_{random,family,composition}.json` "
        "(train/val/test reaction ids), `stats.json`. Regenerate this page (and its checksums) with `--finalize` "
        "after the store grows.",
        "",
        _USAGE,
        "## Method",
        "",
        "Seeds: ASE g2 closed-shell C/H/N/O molecules with <= 12 atoms, a curated list of small closed-shell "
        "molecules (`DEFAULT_SMILES`), and (`--expand-products`, seeds named `net/<SMILES>`) the single-molecule "
        "products of reactions already verified, so the set grows as a reaction network. Candidates: break <= 2 / form <= 2 bonds with closed-shell valence rules, "
        "atom-mapped. Verification per candidate: GFN2-xTB relaxation of R and P with bond-graph checks, Kabsch "
        "alignment, IDPP path, climbing-image NEB (ODE12r, k = 0.5 eV/A^2), Sella (order 1), finite-difference "
        "Hessian with exactly one imaginary mode above 50 cm^-1 (none between 30 and 50), nudge-and-minimise on both "
        "sides giving closed-shell minima with the stored bond graphs, every changed bond partial at the saddle. "
        "`origin=intended` reactions join the enumerated R and P; `origin=discovered` ones join another pair of "
        "closed-shell minima found from the same candidate (verified the same way). Duplicates (same reaction up to "
        "atom relabelling, either direction) are dropped. The stored R and P are the minima reached from the saddle, "
        "so barriers are measured from the connected conformer.",
        "",
        "Caveat: GFN2-xTB overestimates some small-molecule barriers (e.g. HCN -> HNC 73 kcal/mol vs ~48 at high "
        "level); treat barriers as GFN2-xTB values, not chemistry.",
        "",
        "## Provenance",
        "",
        _table([(m, n) for m, n in methods.items()], ("method", "reactions")),
        "",
        _table([(s, n) for s, n in software.most_common()], ("software versions", "reactions")),
        "",
        _table([(s, n) for s, n in settings.most_common()], ("settings", "reactions")),
        "",
        "## Compute",
        "",
        f"CPU time over all candidates: {stats['cpu_hours']:.2f} core-hours (one thread per worker); worker wall "
        f"time {stats['worker_wall_hours']:.2f} h on a shared 2-core machine. Throughput: "
        f"**{stats['accepted_per_core_hour']:.0f} verified reactions per core-hour**.",
        "",
        "## Statistics",
        "",
        _table([(k, v) for k, v in stats["reasons"].items()], ("rejection reason", "candidates")),
        "",
        _table([(k, v) for k, v in stats["origins"].items()], ("origin", "reactions")),
        "",
    ]
    if bq:
        lines += [
            _table([("barrier (kcal/mol)", *(f"{x:.1f}" for x in bq)), ("imaginary frequency (cm^-1)", *(f"{x:.0f}" for x in fq))],
                   ("quantity", "min", "25%", "median", "75%", "max")),
            "",
            "Most common families (bond edits by element):",
            "",
            _table(list(stats["families"].items())[:15], ("family", "reactions")),
            "",
        ]
    lines += ["## Checksums (SHA-256)", "", _table(sums, ("file", "bytes", "sha256")), ""]
    target_path.write_text("\n".join(lines))
    return paths + [target_path]

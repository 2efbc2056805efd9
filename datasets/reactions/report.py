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


LARGE = 14
"""Reactions with more than this many atoms count as large (the size buckets of the README)."""

TARGETS = {"total": 2500, "S/F/Cl/P": 250, "conformational + inversion": 150, f"> {LARGE} atoms": 300}
"""What issue 17 asks the shipped store to reach."""


def reaction_kind(reaction) -> str:
    """A reaction's kind; files written before kinds existed hold bond edits only."""
    return reaction.kind or "bond_edit"


def coverage(reactions) -> dict:
    """Reactions per element, per kind (templates and conformer classes split out) and per size bucket."""
    from ase.data import chemical_symbols

    elements: Counter = Counter()
    kinds: Counter = Counter()
    subkinds: Counter = Counter()
    sizes: Counter = Counter()
    hetero = 0
    for r in reactions:
        present = {chemical_symbols[int(z)] for z in set(r.numbers)}
        elements.update(present)
        hetero += bool(present & {"S", "F", "Cl", "P"})
        kind = reaction_kind(r)
        kinds[kind] += 1
        if kind == "template":
            subkinds[r.family.split("/", 1)[0]] += 1
        elif kind in ("conformational", "inversion"):
            subkinds[r.family.split(":")[0] + ":" + r.family.split(":")[1] if kind == "conformational"
                     else r.family.split("(")[0]] += 1
        sizes[f"<= {LARGE} atoms" if len(r.numbers) <= LARGE else f"> {LARGE} atoms"] += 1
    return {"elements": dict(elements.most_common()), "kinds": dict(kinds.most_common()),
            "subkinds": dict(sorted(subkinds.items())), "sizes": dict(sorted(sizes.items())),
            "with_S_F_Cl_P": hetero}


def _rates(records: list[dict], key) -> dict:
    """Verified per core-hour, acceptance and CPU per candidate by ``key(record)`` (None: left out)."""
    out: dict = {}
    for r in records:
        k = key(r)
        if k is None:
            continue
        row = out.setdefault(k, {"candidates": 0, "accepted": 0, "cpu_seconds": 0.0})
        row["candidates"] += 1
        row["accepted"] += r["status"] == "accepted"
        row["cpu_seconds"] += r.get("cpu_seconds", r.get("seconds", 0.0))
    for row in out.values():
        row["per_core_hour"] = row["accepted"] / (row["cpu_seconds"] / 3600) if row["cpu_seconds"] else 0.0
    return dict(sorted(out.items()))


def store_statistics(store: ReactionStore) -> dict:
    """Counts, rejection reasons, compute time, throughput (overall, by kind and group, by TS route)
    and barrier statistics of a store."""
    from .order import record_group

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
        "by_kind": _rates(records, lambda r: r.get("kind", "bond_edit") if r.get("reason") != "duplicate" else None),
        "by_group": _rates(records, lambda r: record_group(r) if r.get("reason") != "duplicate" else None),
        "by_route": _rates(records, lambda r: None if not r.get("guess_provider") else "model guess" if str(
            r.get("route", "")).startswith("guess") else "no guess verified"),
        "with_guesses": _rates(records, lambda r: "with the model" if r.get("guess_provider") else "without"),
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
# --expand-products seeds from products already verified; each 30-min pass adds a generation;
# every element, seed set and kind, groups in order of their measured acceptance
while :; do python -m sciflow.datasets.reactions build-dataset --out datasets/reactions/data \\
    --workers 1 --expand-products --time-budget 1800 --elements HCNOFPSCl \\
    --seed-sets default hetero large --max-atoms 25 \\
    --kinds bond_edit template conformational inversion || break; sleep 30; done
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


def _rate_rows(rows: dict) -> list[tuple]:
    return [(k, v["candidates"], v["accepted"], f"{v['accepted'] / max(v['candidates'], 1):.0%}",
             f"{v['cpu_seconds'] / max(v['candidates'], 1):.1f}", f"{v['per_core_hour']:.0f}") for k, v in rows.items()]


_RATE_HEADER = ("", "candidates", "verified", "acceptance", "CPU s / candidate", "verified / core-hour")


def _coverage_lines(stats: dict, target: int) -> list[str]:
    cov = stats["coverage"]
    have = {"total": stats["accepted"], "S/F/Cl/P": cov["with_S_F_Cl_P"],
            "conformational + inversion": cov["kinds"].get("conformational", 0) + cov["kinds"].get("inversion", 0),
            f"> {LARGE} atoms": cov["sizes"].get(f"> {LARGE} atoms", 0)}
    goals = dict(TARGETS, total=target)
    return [
        "## Coverage",
        "",
        _table([(k, have[k], goals[k], "met" if have[k] >= goals[k] else f"{goals[k] - have[k]} to go")
                for k in goals], ("reactions", "have", "target", "")),
        "",
        _table(list(cov["elements"].items()), ("element", "reactions containing it")),
        "",
        _table(list(cov["kinds"].items()), ("kind", "reactions")),
        "",
        *([_table(list(cov["subkinds"].items()), ("template / class", "reactions")), ""] if cov["subkinds"] else []),
        _table(list(cov["sizes"].items()), ("size", "reactions")),
        "",
    ]


def _compute_lines(stats: dict) -> list[str]:
    lines = ["By kind and by group (duplicates, which cost nothing, left out):", "",
             _table(_rate_rows(stats["by_kind"]), ("kind", *_RATE_HEADER[1:])), "",
             _table(_rate_rows(stats["by_group"]), ("group", *_RATE_HEADER[1:])), ""]
    if "with the model" in stats["with_guesses"]:
        lines += ["With the TS model's guesses (`--ts-guesses`) and without (every candidate of the store):", "",
                  _table(_rate_rows(stats["with_guesses"]), ("", *_RATE_HEADER[1:])), "",
                  _table(_rate_rows(stats["by_route"]), ("route that won", *_RATE_HEADER[1:])), ""]
    return lines


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
                   target: int = TARGETS["total"]) -> list[Path]:
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
    stats["coverage"] = coverage(reactions)
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
        "Elements H, C, N, O, F, P, S, Cl, closed shell, neutral (valences H/F/Cl 1, O 2, N 3, C 4, S 2/4/6 and P 3/5 "
        "as in sulfoxides, sulfones and phosphine oxides; no formal charges, so no nitro groups or N-oxides). "
        "Seeds: ASE g2 closed-shell molecules with <= `--max-atoms` atoms, curated SMILES lists (`--seed-sets`: "
        "`default` small C/H/N/O molecules, `hetero` S/F/Cl/P chemistry, `large` 10-25-atom substituted versions "
        "of the reacting motifs), and (`--expand-products`, seeds named `net/<SMILES>`) the single-molecule "
        "products of reactions already verified, so the set grows as a reaction network. Candidate kinds: "
        "`bond_edit` (break <= 2 / form <= 2 bonds with the valence rules, atom-mapped), `template` (pericyclic, "
        "eliminations, ring openings and 1,2-shifts by SMARTS, the reactant folded so that forming atoms are close; "
        "family `tpl:<name>/<edit>`), `conformational` (rotation about a non-ring bond; family "
        "`rot:<class>:<bond>`) and `inversion` (pyramidal N, P, S; family `inv:<centre>(<neighbours>)`). Groups of "
        "candidates run in order of their measured acceptance. Verification per candidate: GFN2-xTB relaxation of R "
        "and P with bond-graph checks, Kabsch alignment, IDPP path (rotations: an interpolation of the key dihedral; "
        "inversions: a planar-centre start instead of a path), climbing-image NEB (ODE12r, k = 0.5 eV/A^2), Sella "
        "(order 1), finite-difference Hessian with exactly one imaginary mode above 50 cm^-1 (none between 30 and "
        "50), nudge-and-minimise on both sides giving closed-shell minima with the stored bond graphs, every changed "
        "bond partial at the saddle; for conformational and inversion reactions both minima keep the bond graph and "
        "the key dihedral (>= 45 degrees) or pyramidalisation (sign) changes between them, stored as "
        "`key_coordinate`. With a TS model (`--ts-guesses K`) its K guesses go to Sella first and the path route "
        "runs only when none verifies; each record says which route won (`route`). "
        "`origin=intended` reactions join the enumerated R and P; `origin=discovered` ones join another pair of "
        "closed-shell minima (or conformers) found from the same candidate (verified the same way). Duplicates "
        "(same reaction up to atom relabelling, either direction) are dropped. The stored R and P are the minima "
        "reached from the saddle, so barriers are measured from the connected conformer.",
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
        *_coverage_lines(stats, target),
        "## Compute",
        "",
        f"CPU time over all candidates: {stats['cpu_hours']:.2f} core-hours (one thread per worker); worker wall "
        f"time {stats['worker_wall_hours']:.2f} h on a shared 2-core machine. Throughput: "
        f"**{stats['accepted_per_core_hour']:.0f} verified reactions per core-hour**.",
        "",
        *_compute_lines(stats),
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
            "Most common families:",
            "",
            _table(list(stats["families"].items())[:15], ("family", "reactions")),
            "",
        ]
    lines += ["## Checksums (SHA-256)", "", _table(sums, ("file", "bytes", "sha256")), ""]
    target_path.write_text("\n".join(lines))
    return paths + [target_path]

"""Reaction-builder throughput: verified reactions per core-hour (GFN2-xTB and EMT tiers).

Two measurements, one report:

1. the shipped store (datasets/reactions/data, built in the background by
   ``python -m sciflow.datasets.reactions build-dataset --out datasets/reactions/data --workers 1``):
   accepted / candidates, CPU core-hours from each candidate's worker CPU time (one thread), the
   wall-clock span of the build, and rejections by reason;
2. a fresh timed run here (``--measure N``, default 24): the first N candidates of the default
   GFN2-xTB candidate list and all EMT hops and exchanges of Cu and Au adatoms on Cu and Au surfaces, one worker, into
   a temporary store; CPU seconds from the worker records and wall seconds of the whole call;
3. the model speeding up its own data (``--matched N``, default 0: skip): the same N candidates
   (C/H/N/O bond edits that the shipped store finished after the TS model's training snapshot,
   none in its training split, picked by a hash of their id), verified twice, one worker, ``OMP_NUM_THREADS=1``: once with the IDPP/CI-NEB
   route only, once with the shipped TS model's ``--ts-guesses K`` samples tried first
   (:class:`sciflow.datasets.reactions.cli.DomainGuesses`); verified reactions per core-hour
   each way (the model's loading and sampling CPU time included), which route won, and how many
   candidates the two runs decided alike.

4. acceptance per candidate group (``--acceptance N``, default 0: skip): the first N candidates
   (in build order) of every template, conformational and inversion group over all seed sets
   and every element, and of the break 0-2 / form 1 bond-edit groups on the hetero (S, F, Cl,
   P) and large (> 14 atoms) seeds, into a resumable store (``--acceptance-store``); verified /
   computed, CPU per candidate and the main rejection reasons. These rates are the priors of
   the build order (``sciflow.datasets.reactions.order.ACCEPTANCE``).

Target (set by the project): ship >= 1,000 verified GFN2-xTB reactions; the table says whether
the store has reached it.

Writes benchmarks/results/reaction_builder.md.
Run: python benchmarks/reaction_builder.py [--measure 24] [--matched 40 --ts-guesses 4]
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
TARGET = 2500  # issue 17: verified reactions in the shipped store


def _target(accepted: int) -> str:
    if accepted >= TARGET:
        return "met"
    return f"not met yet ({accepted} of {TARGET}; re-running the build resumes it)"


def _fresh(cands, calculator, settings, guesses=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        summary = build_dataset(cands, tmp, calculator=calculator, settings=settings, max_workers=1, progress=False,
                                guesses=guesses)
        wall = time.monotonic() - t0
        records = ReactionStore(tmp).records
    cpu = sum(r.get("cpu_seconds", 0.0) for r in records)
    return {"candidates": len(records), "accepted": summary.accepted, "cpu_s": cpu, "wall_s": wall,
            "per_core_hour": summary.accepted / (cpu / 3600) if cpu else 0.0,
            "per_wall_hour": summary.accepted / (wall / 3600) if wall else 0.0,
            "reasons": Counter(r["reason"] for r in records if r["status"] == "rejected"),
            "routes": Counter(r.get("route", "neb") for r in records if r["status"] == "accepted"),
            "guess_cpu_s": sum(r.get("guess_cpu_seconds", 0.0) for r in records),
            "status": {r["id"]: r["status"] for r in records}}


def _matched_candidates(n: int, checkpoint: Path) -> tuple[list, str]:
    """N bond-edit candidates the shipped store finished after the TS model's training snapshot.

    The checkpoint's meta names the snapshot (``data.snapshot_time``) and its training split;
    candidates finished later, whose reaction is not in that split, are new to the model and are
    what the build runs now. Their seeds (g2, the default list, the products of the store's
    reactions) are rebuilt and enumerated as the build does; N are picked by a hash of their id.
    Returns the candidates and a sentence saying where they come from.
    """
    import ast
    import hashlib

    from sciflow.checkpoint import load_checkpoint
    from sciflow.datasets.reactions.candidates import product_seeds

    meta = load_checkpoint(checkpoint).meta
    snapshot = datetime.fromisoformat(meta["data"]["snapshot_time"]).timestamp()
    splits = meta.get("splits", {})
    splits = ast.literal_eval(splits) if isinstance(splits, str) else splits
    seen = set(splits.get("random", {}).get("train", []))
    store = ReactionStore(STORE)
    wanted = {r["id"] for r in store.records if r.get("finished", 0) > snapshot and r.get("reason") != "duplicate"
              and r.get("kind", "bond_edit") == "bond_edit" and r["id"] not in seen
              and r.get("reaction_id", r["id"]) not in seen}
    seeds, _ = g2_seeds()
    more, _ = smiles_seeds(DEFAULT_SMILES)
    net, _ = product_seeds(store.reactions())
    seeds, _ = unique_seeds(seeds + more + net)
    cands = [c for s in seeds for c in enumerate_candidates(s) if c.id in wanted]
    picked = sorted(cands, key=lambda c: hashlib.sha1(c.id.encode()).hexdigest())[:n]
    where = (f"{len(picked)} of the {len(wanted)} C/H/N/O bond-edit candidates the shipped store finished after the "
             f"TS model's training snapshot ({meta['data']['snapshot_time']}, {meta['data'].get('snapshot_reactions')} "
             "reactions), none in its training split, picked by a hash of their id")
    return picked, where


def _matched_lines(n: int, k: int, checkpoint: Path) -> list[str]:
    from sciflow.datasets.reactions.cli import DomainGuesses

    cands, where = _matched_candidates(n, checkpoint)
    without = _fresh(cands, GFN2(), PipelineSettings())
    with_model = _fresh(cands, GFN2(), PipelineSettings(), guesses=DomainGuesses(samples=k, checkpoint=str(checkpoint)))
    alike = sum(without["status"][c.id] == with_model["status"][c.id] for c in cands)
    ratio = with_model["per_core_hour"] / without["per_core_hour"] if without["per_core_hour"] else float("nan")
    rows = [("IDPP / CI-NEB only", without), (f"TS model ({k} guesses) first, then IDPP / CI-NEB", with_model)]
    return [
        "## The model speeding up its own data (matched candidates)",
        "",
        f"The same candidates both ways: {where}; one worker, OMP_NUM_THREADS=1. CPU time is each candidate's worker "
        "CPU time, the model's loading (torch import, checkpoint) and sampling included.",
        "",
        "| route | candidates | verified | CPU s | of it in the model | wall s | verified / core-hour |",
        "|---|---|---|---|---|---|---|",
        *[f"| {name} | {r['candidates']} | {r['accepted']} | {r['cpu_s']:.0f} | {r['guess_cpu_s']:.0f} | "
          f"{r['wall_s']:.0f} | {r['per_core_hour']:.0f} |" for name, r in rows],
        "",
        f"- with the model: {ratio:.2f}x the verified reactions per core-hour; the two runs decided "
        f"{alike} of {len(cands)} candidates alike",
        f"- routes that won with the model: {dict(with_model['routes'])}",
        f"- rejections without / with: {dict(without['reasons'])} / {dict(with_model['reasons'])}",
        "",
    ]


def _acceptance_lines(per_group: int, store_dir: Path) -> list[str]:
    from sciflow.datasets.reactions import conformer_candidates, template_candidates
    from sciflow.datasets.reactions.candidates import build_group
    from sciflow.datasets.reactions.seedlists import SEED_SETS

    sets: dict[str, str] = {}
    seeds = []
    for name in ("hetero", "large", "default"):
        got, _ = smiles_seeds(SEED_SETS[name])
        seeds += got
        sets.update((x.name, name) for x in got)
    got, _ = g2_seeds(elements="HCNOFPSCl")
    seeds += got
    sets.update((x.name, "g2") for x in got)
    seeds, _ = unique_seeds(seeds)
    cands = []
    for seed in seeds:
        cands += enumerate_candidates(seed, max_break=2, max_form=1 if len(seed.atoms) > 14 else 2)
        cands += template_candidates(seed) + conformer_candidates(seed)

    def label(c) -> str | None:
        g = build_group(c)
        if not g.startswith("bond_edit"):
            return g
        where = sets.get(c.seed, "")
        return f"{g} on {where} seeds" if where in ("hetero", "large") and g[-2:] == "/1" else None

    groups: dict[str, list] = {}
    for c in interleave(cands):
        if (g := label(c)) is not None:
            groups.setdefault(g, []).append(c)
    pick = [c for g in sorted(groups, key=lambda g: (g.startswith("bond_edit"), g)) for c in groups[g][:per_group]]
    group_of = {c.id: label(c) for c in pick}
    t0 = time.monotonic()
    build_dataset(pick, store_dir, calculator=GFN2(), settings=PipelineSettings(), max_workers=1, progress=False)
    wall = time.monotonic() - t0
    rows: dict[str, list] = {}
    for r in ReactionStore(store_dir).records:
        g = group_of.get(r["id"])
        if g is None or r.get("reason") == "duplicate":
            continue
        row = rows.setdefault(g, [0, 0, 0.0, Counter()])
        row[0] += 1
        row[1] += r["status"] == "accepted"
        row[2] += r.get("cpu_seconds", 0.0)
        if r["status"] != "accepted":
            row[3][r["reason"]] += 1
    return [
        "## Acceptance per candidate group",
        "",
        f"The first {per_group} candidates (build order) of each group, every element and seed set (bond edits: the "
        "hetero and large seeds only; the default seeds' rates come from the shipped store), GFN2-xTB, one worker; "
        f"duplicates left out; this call's wall time {wall:.0f} s (finished candidates of the store are not redone).",
        "",
        "| group | computed | verified | acceptance | CPU s / candidate | main rejections |",
        "|---|---|---|---|---|---|",
        *[f"| {g} | {n} | {a} | {a / n:.0%} | {cpu / n:.1f} | "
          f"{', '.join(f'{k} {v}' for k, v in why.most_common(3))} |" for g, (n, a, cpu, why) in sorted(rows.items())],
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measure", type=int, default=24, help="GFN2-xTB candidates in the fresh timed run (0: skip)")
    ap.add_argument("--matched", type=int, default=0,
                    help="candidates verified with and without the TS model's guesses (0: skip)")
    ap.add_argument("--ts-guesses", type=int, default=4, help="model samples per candidate in --matched (4)")
    ap.add_argument("--ts-checkpoint", type=Path, default=ROOT / "domains" / "transition_states" / "checkpoints"
                    / "ts_egnn_small.pt", help="the TS model of --matched (default: the shipped one)")
    ap.add_argument("--emt", action=argparse.BooleanOptionalAction, default=True, help="the EMT timed run (default on)")
    ap.add_argument("--acceptance", type=int, default=0, help="candidates per group in the acceptance run (0: skip)")
    ap.add_argument("--acceptance-store", type=Path, default=Path(tempfile.gettempdir()) / "reaction_acceptance",
                    help="resumable store of the acceptance run")
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
    if args.emt:
        emt = emt_candidates(metals=("Cu", "Au"), adatoms=("Cu", "Au"))
        rows.append(("EMT Cu, Au adatoms on Cu, Au (100)/(111)", _fresh(emt, EMTFactory(), EMT_SETTINGS)))
    matched = _matched_lines(args.matched, args.ts_guesses, args.ts_checkpoint) if args.matched else []
    acceptance = _acceptance_lines(args.acceptance, args.acceptance_store) if args.acceptance else []
    command = "python benchmarks/reaction_builder.py" + "".join(
        f" {flag}" for flag, on in ((f"--measure {args.measure}", args.measure != 24),
                                    (f"--matched {args.matched} --ts-guesses {args.ts_guesses}", args.matched),
                                    ("--no-emt", not args.emt),
                                    (f"--acceptance {args.acceptance}", args.acceptance)) if on)

    lines = [
        "# Reaction builder throughput",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPU cores shared with other jobs), Python {platform.python_version()}, "
        "one worker process, OMP_NUM_THREADS=1.",
        "",
        f"Command: `OMP_NUM_THREADS=1 {command}`",
        "",
        "Throughput counts verified reactions (all checks passed, duplicates removed) per core-hour of worker CPU "
        "time; wall-clock rates are lower here because the 2 cores were shared.",
        "",
        *store_part,
        *acceptance,
        *matched,
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

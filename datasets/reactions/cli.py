"""Command line: ``sciflow ts build-dataset`` (and ``python -m sciflow.datasets.reactions``).

``add_build_dataset_command(ts_subparsers)`` adds the ``build-dataset`` subcommand to the ``ts``
group; ``register(subparsers)`` adds a stand-alone ``reactions`` group with the same command,
for use without the ``ts`` group.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["add_build_dataset_command", "register", "main", "build_command"]

_DESCRIPTION = """\
Build a dataset of verified transition states.

Seed molecules (ASE's g2 set, a curated list of small closed-shell C/H/N/O molecules, your
SMILES or xyz files) are turned into candidate elementary reactions by bond-graph edits
(break <= 2, form <= 2 bonds, closed-shell valence rules; every candidate atom-mapped). Each
candidate goes through: GFN2-xTB relaxation of R and P with bond-graph checks, Kabsch alignment,
IDPP path, climbing-image NEB (ODE12r, k = 0.5), Sella saddle search (order 1), a frequency
check (exactly one imaginary mode above 50 cm^-1), and a nudge-and-minimise check that the
saddle joins the intended (or, by default, any pair of closed-shell) bond graphs. Accepted
reactions go to OUT/reactions.extxyz.gz, every candidate's fate to OUT/records.jsonl. Re-running
the same command continues where a killed run stopped.

The fast EMT tier (--tier emt) builds adatom hops and exchanges on fcc(100)/(111) surfaces of
Al, Cu, Ag, Au, Ni, Pd, Pt in seconds, for tests and quick end-to-end runs.
"""

_EPILOG = """\
examples:
  sciflow ts build-dataset --out data/rxn --max-accepted 20            # g2 + curated seeds, GFN2-xTB
  sciflow ts build-dataset --out data/rxn --smiles "CC=O" "NC=O" --no-default-seeds
  sciflow ts build-dataset --out data/emt --tier emt                    # EMT surface hops, seconds
  sciflow ts build-dataset --out data/rxn --workers 8                   # 8 local processes
  sciflow ts build-dataset --out data/rxn --scheduler tcp://host:8786   # a dask cluster
  sciflow ts build-dataset --out data/rxn --expand-products --time-budget 1800   # grow the network
  sciflow ts build-dataset --out data/rxn --finalize                    # splits + README from the store
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="store directory (created; re-use it to resume)")
    p.add_argument("--tier", choices=("xtb", "emt"), default="xtb",
                   help="xtb: molecules with GFN2-xTB (default); emt: metal-surface adatom processes with EMT")
    g = p.add_argument_group("seeds (xtb tier)")
    g.add_argument("--no-default-seeds", action="store_true",
                   help="leave out ASE's g2 molecules and the curated SMILES list")
    g.add_argument("--smiles", nargs="+", default=(), metavar="SMILES", help="extra seed molecules as SMILES")
    g.add_argument("--smiles-file", type=Path, help="file with one SMILES a line (# comments allowed)")
    g.add_argument("--xyz", nargs="+", type=Path, default=(), help="extra seed molecules from xyz/extxyz files")
    g.add_argument("--expand-products", action="store_true",
                   help="also seed from the products of reactions already in the store (reaction-network "
                        "expansion; re-run, e.g. with --time-budget, to grow generation by generation)")
    g.add_argument("--max-atoms", type=int, default=12, help="largest seed molecule, in atoms (default 12)")
    g.add_argument("--max-break", type=int, default=2, help="bonds broken per reaction, at most (default 2)")
    g.add_argument("--max-form", type=int, default=2, help="bonds formed per reaction, at most (default 2)")
    g.add_argument("--allow-charged", action="store_true",
                   help="keep charged SMILES seeds (skipped by default; the closed-shell neutral bond-edit "
                        "rules give them no candidates yet)")
    g.add_argument("--allow-radicals", action="store_true",
                   help="keep radical SMILES seeds (skipped by default; no candidates from them yet, as above)")
    v = p.add_argument_group("verification")
    v.add_argument("--time-limit", type=float, default=300.0, help="seconds per candidate before it is rejected (300)")
    v.add_argument("--intended-only", action="store_true",
                   help="reject saddles that join a pair of minima other than the enumerated R and P")
    r = p.add_argument_group("running")
    r.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    r.add_argument("--scheduler", default=None, help="dask.distributed scheduler address, e.g. tcp://host:8786")
    r.add_argument("--max-candidates", type=int, default=None, help="stop after this many new candidates")
    r.add_argument("--max-accepted", type=int, default=None, help="stop after this many new accepted reactions")
    r.add_argument("--time-budget", type=float, default=None, help="stop submitting after this many seconds")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--finalize", action="store_true",
                   help="do not build: write splits and README.md (provenance, statistics, checksums) from the store")
    r.add_argument("--readme", type=Path, default=None,
                   help="where --finalize writes the README (default OUT/README.md)")
    r.add_argument("--seed", type=int, default=0, help="random seed of the splits (with --finalize)")


def _read_smiles_file(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split()[0])
    return out


def build_command(args: argparse.Namespace) -> int:
    """Handler of ``build-dataset``: enumerate, verify and store (or finalize with --finalize)."""
    from .builder import build_dataset
    from .pipeline import PipelineSettings

    if args.finalize:
        from .report import finalize_store

        out = finalize_store(args.out, seed=args.seed, readme=args.readme)
        print(f"wrote {', '.join(str(p) for p in out)}")
        return 0
    if args.tier == "emt":
        from .calculators import EMTFactory
        from .emt import EMT_SETTINGS, emt_candidates

        cands = emt_candidates()
        calc = EMTFactory()
        settings = EMT_SETTINGS
        print(f"{len(cands)} EMT surface candidates", file=sys.stderr)
    else:
        from .calculators import GFN2
        from .candidates import (
            DEFAULT_SMILES,
            enumerate_candidates,
            g2_seeds,
            interleave,
            product_seeds,
            smiles_seeds,
            unique_seeds,
            xyz_seeds,
        )

        seeds, skipped = [], {}
        if not args.no_default_seeds:
            s, k = g2_seeds(max_atoms=args.max_atoms)
            seeds += s
            skipped.update(k)
            s, k = smiles_seeds(DEFAULT_SMILES)
            seeds += s
            skipped.update(k)
        smiles = list(args.smiles) + (_read_smiles_file(args.smiles_file) if args.smiles_file else [])
        s, k = smiles_seeds(smiles, allow_charged=args.allow_charged, allow_radicals=args.allow_radicals)
        seeds += s
        skipped.update(k)
        s, k = xyz_seeds([str(x) for x in args.xyz])
        seeds += s
        skipped.update(k)
        if args.expand_products and (args.out / "records.jsonl").exists():
            from .store import ReactionStore

            s, _ = product_seeds(ReactionStore(args.out).reactions(), max_atoms=args.max_atoms)
            seeds += s
        seeds, dup = unique_seeds(x for x in seeds if len(x.atoms) <= args.max_atoms)
        skipped.update(dup)
        for name, why in skipped.items():
            if "max_atoms" not in why and "outside" not in why:
                print(f"skipped seed {name}: {why}", file=sys.stderr)
        cands = interleave(c for seed in seeds for c in
                           enumerate_candidates(seed, max_break=args.max_break, max_form=args.max_form))
        calc = GFN2()
        settings = PipelineSettings(time_limit=args.time_limit, accept_discovered=not args.intended_only)
        print(f"{len(seeds)} seeds, {len(cands)} candidates", file=sys.stderr)
    t0 = time.time()
    summary = build_dataset(
        cands, args.out, calculator=calc, settings=settings, max_workers=args.workers,
        scheduler_address=args.scheduler, max_candidates=args.max_candidates,
        max_accepted=args.max_accepted, time_budget=args.time_budget, progress=not args.no_progress,
    )
    print(f"accepted {summary.accepted}, rejected {summary.rejected}, remaining {summary.remaining} "
          f"in {time.time() - t0:.0f} s with {summary.workers} worker(s); store: {args.out}")
    return 0


def add_build_dataset_command(ts_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``build-dataset`` to the ``ts`` command group."""
    p = ts_subparsers.add_parser(
        "build-dataset", help="build verified transition-state reactions (GFN2-xTB or EMT)",
        description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(p)
    p.set_defaults(func=build_command)
    return p


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add a ``reactions`` group with the ``build-dataset`` subcommand."""
    p = subparsers.add_parser("reactions", help="reaction datasets: build verified transition states")
    sub = p.add_subparsers(dest="reactions_command", required=True)
    add_build_dataset_command(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sciflow.datasets.reactions build-dataset ...``."""
    parser = argparse.ArgumentParser(prog="python -m sciflow.datasets.reactions")
    sub = parser.add_subparsers(dest="command", required=True)
    add_build_dataset_command(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))

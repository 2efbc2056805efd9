"""Command line: ``sciflow ts build-dataset`` (and ``python -m sciflow.datasets.reactions``).

``add_build_dataset_command(ts_subparsers)`` adds the ``build-dataset`` subcommand to the ``ts``
group; ``register(subparsers)`` adds a stand-alone ``reactions`` group with the same command,
for use without the ``ts`` group.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["add_build_dataset_command", "register", "main", "build_command", "DomainGuesses"]

_DESCRIPTION = """\
Build a dataset of verified transition states.

Seed molecules (ASE's g2 set, curated SMILES lists, your SMILES or xyz files; elements
H C N O F P S Cl, closed shell) become candidate elementary reactions of four kinds (--kinds):
bond_edit (break <= 2, form <= 2 bonds with per-element valence rules), template (pericyclic,
eliminations, ring openings, 1,2-shifts), conformational (rotations about single and partial-
double bonds) and inversion (pyramidal N, P, S); every candidate atom-mapped. Groups of candidates
run in order of their measured acceptance (read from the store as it grows). Each candidate goes
through: GFN2-xTB relaxation of R and P with bond-graph checks, Kabsch alignment, IDPP path (a
dihedral interpolation for rotations), climbing-image NEB (ODE12r, k = 0.5), Sella saddle search
(order 1), a frequency check (exactly one imaginary mode above 50 cm^-1), and a nudge-and-
minimise check that the saddle joins the intended (or, by default, any pair of closed-shell)
bond graphs, or for conformational and inversion kinds two conformers with the key dihedral or
pyramidalisation changed. With --ts-guesses K the transition-state model's K samples go to Sella
first and IDPP/CI-NEB runs only when none verifies. Accepted reactions go to
OUT/reactions.extxyz.gz, every candidate's fate to OUT/records.jsonl. Re-running the same
command continues where a killed run stopped.

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
  sciflow ts build-dataset --out data/rxn --elements HCNOFPSCl --seed-sets default hetero large \\
      --max-atoms 25 --kinds bond_edit template conformational inversion      # every kind and element
  sciflow ts build-dataset --out data/rxn --ts-guesses 4                # the TS model's guesses first
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
    g.add_argument("--elements", default="HCNO", type=_elements,
                   help="elements of the built-in seeds (g2, --seed-sets), e.g. HCNOFPSCl (default HCNO); "
                        "your --smiles/--xyz seeds may use any of H C N O F P S Cl")
    g.add_argument("--seed-sets", nargs="+", default=("default",), metavar="SET",
                   choices=("default", "hetero", "large"),
                   help="curated SMILES lists: default (small C/H/N/O), hetero (S, F, Cl, P), large "
                        "(10-25 atoms); default: default")
    g.add_argument("--kinds", nargs="+", default=("bond_edit",), metavar="KIND",
                   choices=("bond_edit", "template", "conformational", "inversion"),
                   help="candidate kinds: bond_edit, template, conformational, inversion (default bond_edit)")
    g.add_argument("--max-atoms", type=int, default=12, help="largest seed molecule, in atoms (default 12)")
    g.add_argument("--large-atoms", type=_count, default=14,
                   help="seeds above this many atoms get bond edits of at most --large-max-break / "
                        "--large-max-form bonds (default 14)")
    g.add_argument("--large-max-break", type=_count, default=2, help="bonds broken per edit on large seeds (default 2)")
    g.add_argument("--large-max-form", type=_count, default=1, help="bonds formed per edit on large seeds (default 1)")
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
    v.add_argument("--ts-guesses", type=_count, default=0, metavar="K",
                   help="try K samples of the transition-state model (sciflow.domains.transition_states) "
                        "as Sella starts before IDPP/CI-NEB (default 0: off)")
    v.add_argument("--ts-checkpoint", type=Path, default=None,
                   help="the TS model for --ts-guesses (default: the shipped one)")
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


def _elements(text: str) -> str:
    from .candidates import parse_elements  # light: no rdkit, no ase calculators

    try:
        return "".join(parse_elements(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _read_smiles_file(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split()[0])
    return out


def _collect_seeds(args: argparse.Namespace) -> list:
    """Seeds from the built-in sets (filtered by --elements), the user's SMILES / xyz, and products."""
    from ase.data import atomic_numbers

    from .candidates import (
        g2_seeds,
        parse_elements,
        product_seeds,
        smiles_seeds,
        unique_seeds,
        xyz_seeds,
    )
    from .seedlists import SEED_SETS

    allowed = {atomic_numbers[e] for e in parse_elements(args.elements)}
    seeds, skipped = [], {}
    if not args.no_default_seeds:
        s, k = g2_seeds(max_atoms=args.max_atoms, elements=args.elements)
        seeds += s
        skipped.update(k)
        for name in args.seed_sets:
            s, k = smiles_seeds(SEED_SETS[name])
            seeds += [x for x in s if set(int(z) for z in x.atoms.numbers) <= allowed]
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
    return seeds


def _collect_candidates(seeds: list, args: argparse.Namespace) -> list:
    """Candidates of every requested kind, in build order (measured acceptance from the store)."""
    from collections import Counter

    from .candidates import build_group, enumerate_candidates, interleave
    from .conformers import conformer_candidates
    from .order import measured_acceptance
    from .templates import template_candidates

    cands = []
    for seed in seeds:
        if "bond_edit" in args.kinds:
            large = len(seed.atoms) > args.large_atoms
            cands += enumerate_candidates(seed, max_break=args.large_max_break if large else args.max_break,
                                          max_form=args.large_max_form if large else args.max_form)
        if "template" in args.kinds:
            cands += template_candidates(seed)
        conf = [k for k in ("conformational", "inversion") if k in args.kinds]
        if conf:
            cands += conformer_candidates(seed, kinds=conf)
    acceptance = None
    if (args.out / "records.jsonl").exists():
        from .store import ReactionStore

        acceptance = measured_acceptance(ReactionStore(args.out).records)
    ordered = interleave(cands, acceptance)
    counts = Counter(build_group(c).split(":")[0] for c in ordered)
    print(f"{len(seeds)} seeds, {len(ordered)} candidates ({', '.join(f'{k} {v}' for k, v in counts.items())})",
          file=sys.stderr)
    return ordered


@dataclass(frozen=True)
class DomainGuesses:
    """TS-guess provider backed by the transition-state domain's generator (picklable, loads lazily).

    Called as ``(reactant, product) -> [Atoms, ...]`` with ``samples`` guesses. The model loads once
    per worker process, through ``sciflow.domains.transition_states``: the domain-shape API
    (``load(path)`` and ``sample(model, reactant, product, samples=K)`` or ``sample(model,
    [(reactant, product)], samples=K)``) when the domain has it, else ``load_generator(path)`` and
    ``generator.generate(reactant, product, samples=K)``. Reactions the model cannot take (other
    elements) raise, and the pipeline falls back to IDPP/CI-NEB and records why.
    """

    samples: int = 4
    checkpoint: str | None = None

    def __call__(self, reactant, product) -> list:
        model, sample = _domain_model(self.checkpoint)
        return _as_atoms(sample(model, reactant, product, self.samples))


_MODELS: dict = {}


def _domain_model(checkpoint: str | None):
    """(model, sample(model, r, p, k)) from the transition-state domain, cached per process."""
    if checkpoint in _MODELS:
        return _MODELS[checkpoint]
    import importlib
    import inspect

    ts = importlib.import_module("sciflow.domains.transition_states")

    load, sample = getattr(ts, "load", None), getattr(ts, "sample", None)
    if callable(load) and callable(sample):
        model = load(checkpoint) if checkpoint else load()
        required = [p for p in inspect.signature(sample).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        if len(required) >= 3:
            def call(m, r, p, k):
                return sample(m, r, p, samples=k)
        else:
            def call(m, r, p, k):
                out = sample(m, [(r, p)], samples=k)
                return out[0] if isinstance(out, (list, tuple)) and out and not _is_atoms(out[0]) else out
    else:
        model = ts.load_generator(checkpoint)

        def call(m, r, p, k):
            return m.generate(r, p, samples=k)
    _MODELS[checkpoint] = (model, call)
    return _MODELS[checkpoint]


def _is_atoms(x) -> bool:
    return hasattr(x, "get_positions") and hasattr(x, "numbers")


def _as_atoms(out) -> list:
    """A generator result (``.samples``, one Atoms, a list of Atoms, or an array (K, N, 3)) -> list."""
    if hasattr(out, "samples"):
        out = out.samples
    if _is_atoms(out):
        return [out]
    return list(out)


def _guess_provider(args: argparse.Namespace):
    return DomainGuesses(samples=args.ts_guesses, checkpoint=str(args.ts_checkpoint) if args.ts_checkpoint else None) \
        if args.ts_guesses else None


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

        cands = _collect_candidates(_collect_seeds(args), args)
        calc = GFN2()
        settings = PipelineSettings(time_limit=args.time_limit, accept_discovered=not args.intended_only)
    t0 = time.time()
    summary = build_dataset(
        cands, args.out, calculator=calc, settings=settings, max_workers=args.workers,
        scheduler_address=args.scheduler, max_candidates=args.max_candidates,
        max_accepted=args.max_accepted, time_budget=args.time_budget, progress=not args.no_progress,
        guesses=_guess_provider(args) if args.tier == "xtb" else None,
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

"""The handler of ``sciflow ts search``: verified TSs for one reaction or a file of them.

One reaction comes from --reactant/--product or --reaction-smiles, many from --reactions FILE
(:func:`.files.read_search_inputs`). The output is an extended XYZ file with one frame per
reaction, the TS with :meth:`.searching.SearchResult.info` and the generation provenance in its
``info``, written append-only: each reaction's frame is appended and flushed as soon as it is
found, and a rerun with ``--resume`` skips the reactions whose ``reaction_id`` the file already
holds. Progress goes through :func:`sciflow.progress.progress`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sciflow.errors import InputError, OutputError
from sciflow.outputs import claim_output

from .commands import charge_and_multiplicity, read_ends

__all__ = ["search", "SEARCH_SUFFIXES"]

SEARCH_SUFFIXES = (".extxyz", ".xyz")
"""``ts search -o``: extended XYZ (provenance in each frame's comment line)."""


def _inputs(args: argparse.Namespace) -> list[Any]:
    given = [bool(args.reactions), bool(args.reaction_smiles), bool(args.reactant or args.product)]
    if sum(given) != 1:
        raise InputError("give one of --reactions FILE, --reaction-smiles, or --reactant and "
                         "--product")
    if given[2] and not (args.reactant and args.product):
        raise InputError("give both --reactant and --product files")
    return [args.reactions, args.reactant, args.product, args.checkpoint]


def _done_ids(path: Path) -> set[str]:
    import ase.io

    if not path.exists() or path.stat().st_size == 0:
        return set()
    try:
        return {str(a.info.get("reaction_id")) for a in ase.io.read(path, index=":")}
    except Exception as err:  # a damaged output cannot be resumed safely
        raise OutputError(f"--resume: {str(path)!r} cannot be read back ({type(err).__name__}: "
                          f"{err}); move it away or pass --overwrite to start again") from err


def _append(path: Path, atoms: Any) -> None:
    import ase.io

    with open(path, "a") as fh:
        ase.io.write(fh, atoms, format="extxyz")
        fh.flush()
        os.fsync(fh.fileno())


def search(args: argparse.Namespace) -> int:
    """``ts search``: K generated guesses -> Sella -> frequencies -> quasi-IRC, CI-NEB fallback."""
    inputs = _inputs(args)
    if args.resume and args.overwrite:
        raise InputError("--resume continues the output and --overwrite replaces it: pick one")
    with claim_output(args.output, inputs=inputs, overwrite=args.overwrite or args.resume,
                      suffixes=SEARCH_SUFFIXES) as out:
        _search(args, out)
    return 0


def _reactions(args: argparse.Namespace) -> list[tuple[str, Any, Any, Any, tuple[int, int]]]:
    from .files import read_endpoint, read_search_inputs

    if args.reactions:
        rows = read_search_inputs(args.reactions)
        return [(rid, r, p, ts, charge_and_multiplicity(args, r)) for rid, r, p, ts in rows]
    r, p = read_ends(args)
    ref = read_endpoint(args.reference, "--reference") if args.reference else None
    return [(args.id, r, p, ref, charge_and_multiplicity(args, r, args.reaction_smiles))]


def _search(args: argparse.Namespace, out: Any) -> None:
    from sciflow.cli_args import set_threads
    from sciflow.progress import progress
    from sciflow.provenance import provenance

    from .data import check_endpoints
    from .provenance import model_info, with_info
    from .searching import search as run_search
    from .searching import search_settings

    set_threads(args)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    todo = _reactions(args)
    for rid, r, p, _, _ in todo:  # every reaction checked before the first calculation
        try:
            check_endpoints(r, p, elements=sorted({int(z) for z in r.numbers}))
        except InputError as err:
            raise InputError(f"reaction {rid!r}: {err}") from err
    done = _done_ids(out.path) if args.resume else set()
    if not args.resume or not out.path.exists():
        out.write(lambda tmp: Path(tmp).write_text(""))
    todo = [row for row in todo if row[0] not in done]
    if done:
        print(f"--resume: {len(done)} reaction(s) already in {out.path}; {len(todo)} to go",
              file=sys.stderr)
    model = None
    if not args.no_model:
        from .model import load

        model = load(args.checkpoint, device=args.device or "cpu")
    settings = search_settings(time_limit=args.time_limit)
    verified = by_guess = 0
    with progress(total=len(todo), desc="ts search", unit="reaction") as bar:
        for rid, r, p, ref, (charge, mult) in todo:
            res = run_search(r, p, model=model, samples=args.samples, seed=args.seed,
                             sample_steps=args.sample_steps, solver=args.solver, charge=charge,
                             multiplicity=mult, settings=settings, reference=ref, id=rid)
            verified += res.verified
            by_guess += res.winner is not None
            print(_line(res), flush=True)
            record = model_info(model) if model is not None else provenance()
            info = {**record, "wrote": "ts search",
                    "seed": args.seed, "samples": args.samples, **res.info()}
            if model is not None:
                info.setdefault("solver", args.solver or model.default_solver)
                info.setdefault("sample_steps", args.sample_steps or model.default_steps)
            geometry = res.ts if res.ts is not None else r
            if res.ts is None:
                info["ts_geometry"] = "the reactant (nothing was found)"
            _append(out.path, with_info(geometry, info))
            bar.set_postfix(verified=f"{verified}/{bar.n + 1}")
            bar.update(1)
    n = len(todo)
    if n:
        print(f"verified {verified} of {n}: {by_guess} from a generated guess, "
              f"{verified - by_guess} from the IDPP/CI-NEB path; wrote {out.path}")


def _line(res: Any) -> str:
    if not res.verified:
        return (f"{res.id}: NOT verified ({res.reason}); {res.seconds:.1f} s"
                + (f"; tried: {'; '.join(res.attempts)}" if res.attempts else ""))
    how = (f"generated guess {res.winner} of {res.guesses}" if res.winner is not None else
           f"the {res.route} fallback" + (" (no generated guess verified)" if res.guesses else
                                         " (no model guesses)"))
    ref = ("" if res.rmsd_to_reference is None else
           f"; RMSD to the reference {res.rmsd_to_reference:.3f} A")
    return (f"{res.id}: verified TS from {how}; barrier {res.barrier:.3f} eV, imaginary "
            f"frequency {res.imaginary_frequency:.0f}i cm^-1; {res.seconds:.1f} s{ref}")

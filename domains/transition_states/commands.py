"""The handlers of ``sciflow ts``: check every argument, claim every output, then work.

Each handler takes the parsed arguments and returns the exit status. Outputs go through
:func:`sciflow.outputs.claim_output` (never one of the inputs, never an existing file without
``--overwrite``, written aside and renamed into place), claimed before anything is read or
computed; results are checked for NaN before they are written. This module imports no torch:
what a handler needs is imported when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sciflow.errors import InputError, OutputError
from sciflow.outputs import claim_output

__all__ = ["generate", "train", "evaluate", "build_dataset"]


def _endpoint_inputs(args: argparse.Namespace) -> list[Any]:
    if args.reaction_smiles:
        if args.reactant or args.product:
            raise InputError("give either --reaction-smiles or --reactant/--product, not both")
        return []
    if not (args.reactant and args.product):
        raise InputError("give --reactant and --product files (or --reaction-smiles)")
    return [args.reactant, args.product]


def generate(args: argparse.Namespace) -> int:
    """``ts generate``: the best TS (and optionally all ranked samples) of one reaction."""
    from .cli import MULTI_FRAME_SUFFIXES, STRUCTURE_SUFFIXES

    inputs = _endpoint_inputs(args) + [args.checkpoint]
    if args.samples_out is not None and Path(args.samples_out).resolve() == Path(args.output).resolve():
        raise OutputError(f"--samples-out={args.samples_out!r} is the --output file; give them "
                          "two different names")
    with ExitStack() as stack:
        out = stack.enter_context(claim_output(args.output, inputs=inputs, overwrite=args.overwrite,
                                               suffixes=STRUCTURE_SUFFIXES))
        every = None
        if args.samples_out is not None:
            every = stack.enter_context(claim_output(
                args.samples_out, inputs=inputs + [args.output], overwrite=args.overwrite,
                suffixes=MULTI_FRAME_SUFFIXES, name="--samples-out"))
        _generate(args, out, every)
    return 0


def _generate(args: argparse.Namespace, out: Any, every: Any) -> None:
    import ase.io

    from sciflow.cli_args import set_threads

    from .files import read_endpoint
    from .model import load
    from .sampling import sample

    set_threads(args)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    if args.reaction_smiles:
        from .smiles import endpoints_from_smiles

        reactant, product = endpoints_from_smiles(args.reaction_smiles, seed=args.seed)
    else:
        reactant = read_endpoint(args.reactant, "reactant")
        product = read_endpoint(args.product, "product")
    model = load(args.checkpoint, device=args.device or "cpu")
    model.prepare(reactant, product)  # every input check before any calculator starts
    calc = None
    if args.rank == "fmax" or args.refine:
        from sciflow.datasets.reactions import GFN2

        calc = GFN2()
    result = sample(model, reactant, product, samples=args.samples, sample_steps=args.sample_steps,
                    solver=args.solver, seed=args.seed, rank=args.rank, calculator=calc)
    print(f"generated {len(result.samples)} sample(s) in {result.seconds * 1e3:.1f} ms "
          f"({result.nfe} network evaluations); ranked by {result.rule}: "
          + ", ".join(f"{s:.3f}" for s in result.scores))
    best = result.best
    if args.refine:
        from .refinement import refine

        ref = refine(best, reactant=reactant, product=product, calculator=calc, fmax=args.fmax,
                     compare_idpp=not args.no_idpp)
        best = ref.atoms
        line = (f"Sella refinement: {'converged' if ref.converged else 'NOT converged'} in "
                f"{ref.steps} steps (fmax {ref.fmax:.4f} eV/A, E {ref.energy:.4f} eV)")
        if ref.idpp_steps is not None:
            line += (f"; from the IDPP guess: {ref.idpp_steps} steps "
                     f"({'converged' if ref.idpp_converged else 'not converged'}), "
                     f"steps saved: {ref.steps_saved}")
        print(line)
    from sciflow.outputs import ensure_finite

    ensure_finite(best.get_positions(), "the refined TS coordinates", axis_name="atom",
                  hint="Sella diverged from this start; run without --refine")
    if every is not None:
        every.write(lambda tmp: ase.io.write(tmp, list(result.samples)))
        print(f"wrote the ranked samples to {every.path}")
    out.write(lambda tmp: ase.io.write(tmp, best))
    print(f"wrote the TS to {out.path}")


def _data_inputs(args: argparse.Namespace) -> list[Any]:
    return [args.data, args.transition1x, args.split]


def _config(args: argparse.Namespace) -> Any:
    """The Config of ``ts train``: the flags the user gave over Config's defaults."""
    from sciflow.cli_args import train_config

    from .cli import MODEL_FLAGS, TRAIN_FLAGS
    from .config import Config

    base = Config()
    changes = {name: getattr(args, name) for name, _, _ in MODEL_FLAGS
               if getattr(args, name) is not None}
    train_changes = {name: getattr(args, name) for name, _, _ in TRAIN_FLAGS
                     if getattr(args, name) is not None}
    trained = train_config(args, base.train)
    return base.replace(**changes, train=dataclasses.replace(trained, **train_changes))


def train(args: argparse.Namespace) -> int:
    """``ts train``: a run folder with checkpoints and OUT/ts_model.pt."""
    run = Path(args.out)
    if not args.resume and any((run / "checkpoints").glob("step_*.pt")):
        raise OutputError(f"--out={args.out!r} holds checkpoints of another run; pass --resume to "
                          "continue it, or choose a new --out")
    with claim_output(run / "ts_model.pt", inputs=_data_inputs(args),
                      overwrite=args.overwrite or args.resume, name="--out") as out:
        from sciflow.cli_args import set_threads

        from .files import load_reactions
        from .training import check_resume
        from .training import train as train_model

        set_threads(args)
        config = _config(args)  # every setting checked before the data is read
        if args.resume:
            check_resume(config)
        reactions = load_reactions(args.data, transition1x=args.transition1x, split=args.split,
                                   subset="train")
        meta = {"data": str(args.data) if args.data else None,
                "split": str(args.split) if args.split else None}
        print(f"training on {len(reactions)} reactions", file=sys.stderr)
        model, result = train_model(reactions, config, resume=args.resume, meta=meta,
                                    return_result=True)
        if int(os.environ.get("RANK", "0")) == 0:
            out.write(lambda tmp: model.save(tmp, step=result.step))
            loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4g}"
            print(f"trained {result.step} steps in {result.wall_time:.0f} s (final loss {loss}); "
                  f"inference checkpoint: {out.path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """``ts evaluate``: RMSD (and energy) summary printed; per-reaction JSON with ``-o``."""
    inputs = _data_inputs(args) + [args.checkpoint]
    with ExitStack() as stack:
        out = None
        if args.output is not None:
            out = stack.enter_context(claim_output(args.output, inputs=inputs,
                                                   overwrite=args.overwrite, suffixes=(".json",)))
        _evaluate(args, out)
    return 0


def _evaluate(args: argparse.Namespace, out: Any) -> None:
    from sciflow.cli_args import set_threads

    from .evaluation import evaluate as evaluate_model
    from .files import load_reactions
    from .model import load

    set_threads(args)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    model = load(args.checkpoint, device=args.device or "cpu")
    reactions = load_reactions(args.data, transition1x=args.transition1x, split=args.split,
                               subset=args.subset)
    calc = None
    if not args.no_energies:
        from sciflow.datasets.reactions import GFN2

        calc = GFN2()
    ev = evaluate_model(model, reactions, samples=args.samples, sample_steps=args.sample_steps,
                        solver=args.solver, seed=args.seed, calculator=calc)
    s = ev.summary
    print(f"{s.reactions} reactions, {ev.samples} sample(s), {ev.solver} x {ev.steps}")
    print(f"RMSD (A, Kabsch, no mirrors, uncapped): mean {s.rmsd_mean:.3f}, median "
          f"{s.rmsd_median:.3f}, < 0.1 A: {s.rmsd_below_0_1:.0%}; (R+P)/2 median "
          f"{s.rmsd_midpoint_median:.3f}")
    if s.generation_failures:
        print(f"{s.generation_failures} reaction(s) diverged (NaN coordinates; RMSD counted as inf)")
    if calc is not None:
        print(f"|dE| (kcal/mol, GFN2-xTB): mean {s.abs_de_mean:.2f}, median {s.abs_de_median:.2f}, "
              f"< 1.58: {s.abs_de_below_1_58:.0%} ({s.energy_failures} SCF failures)")
    print(f"time per reaction: batched {ev.seconds_batched * 1e3:.1f} ms, single "
          f"{(ev.seconds_single or 0) * 1e3:.1f} ms")
    if out is not None:
        text = ev.to_json()
        out.write(lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {out.path}")


def build_dataset(args: argparse.Namespace) -> int:
    """``ts build-dataset``: the reaction builder's own command line
    (:func:`sciflow.datasets.reactions.cli.add_build_dataset_command`), parsed here."""
    from sciflow.datasets.reactions.cli import add_build_dataset_command

    parser = argparse.ArgumentParser(prog=f"sciflow {args.command}")
    add_build_dataset_command(parser.add_subparsers(dest="ts_command"))
    inner = parser.parse_args(["build-dataset", *args.arguments])
    return int(inner.func(inner) or 0)

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
import warnings
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


def _figure_path(output: str | Path) -> Path:
    """OUTPUT's figure: the same folder and stem, ``.png`` (``ts.xyz.gz`` -> ``ts.png``)."""
    out = Path(output)
    return out.parent / (out.name.split(".")[0] + ".png")


def _claim_figure(stack: ExitStack, args: argparse.Namespace, inputs: list[Any]) -> Any:
    if not getattr(args, "plot", False):
        return None
    if args.output is None:
        raise InputError("--plot writes its figure next to -o/--output; pass -o FILE")
    return stack.enter_context(claim_output(_figure_path(args.output), inputs=inputs,
                                            overwrite=args.overwrite, suffixes=(".png",),
                                            name="--plot"))


def charge_and_multiplicity(args: argparse.Namespace, reactant: Any,
                            smiles: str | None = None) -> tuple[int, int]:
    """--charge / --multiplicity, else what the reactant file (``info``) or the SMILES (formal
    charges) says, else 0 and 1."""
    from .scope import charge_of

    charge, mult = charge_of(reactant)
    if smiles:
        from .smiles import smiles_charge

        charge = smiles_charge(smiles)
    charge = charge if args.charge is None else args.charge
    mult = mult if args.multiplicity is None else args.multiplicity
    return charge, mult


def read_ends(args: argparse.Namespace) -> tuple[Any, Any]:
    """R and P from --reactant/--product or --reaction-smiles."""
    from .files import read_endpoint

    if args.reaction_smiles:
        from .smiles import endpoints_from_smiles

        return endpoints_from_smiles(args.reaction_smiles, seed=args.seed)
    return read_endpoint(args.reactant, "reactant"), read_endpoint(args.product, "product")


def generate(args: argparse.Namespace) -> int:
    """``ts generate``: the best TS (and optionally all ranked samples) of one reaction."""
    from .cli import MULTI_FRAME_SUFFIXES, STRUCTURE_SUFFIXES

    inputs = _endpoint_inputs(args) + [args.checkpoint, args.reference]
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
        figure = _claim_figure(stack, args, inputs + [args.output, args.samples_out])
        _generate(args, out, every, figure)
    return 0


def _generate(args: argparse.Namespace, out: Any, every: Any, figure: Any) -> None:
    import ase.io

    from sciflow.cli_args import set_threads
    from sciflow.outputs import ensure_finite

    from .calculators import XTB
    from .files import read_endpoint
    from .metrics import pair_rmsd, single_point
    from .model import load
    from .provenance import generation_info, refinement_info, with_info
    from .sampling import sample

    set_threads(args)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    reactant, product = read_ends(args)
    reference = read_endpoint(args.reference, "--reference") if args.reference else None
    charge, mult = charge_and_multiplicity(args, reactant, args.reaction_smiles)
    model = load(args.checkpoint, device=args.device or "cpu")
    # every input check before any calculator starts (an OutOfScopeWarning is printed here once)
    model.prepare(reactant, product, charge=charge, multiplicity=mult)
    if reference is not None and list(reference.numbers) != list(reactant.numbers):
        raise InputError(f"--reference {args.reference!r} does not hold the reactant's atoms in "
                         "its order")
    calc = XTB(charge=charge, multiplicity=mult) if args.rank == "fmax" or args.refine else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said once above
        result = sample(model, reactant, product, samples=args.samples,
                        sample_steps=args.sample_steps, solver=args.solver, seed=args.seed,
                        rank=args.rank, calculator=calc, uncertainty="auto", charge=charge,
                        multiplicity=mult)
    steps = args.sample_steps or model.default_steps
    solver = args.solver or model.default_solver
    line = (f"generated {len(result.samples)} sample(s) in {result.seconds * 1e3:.1f} ms "
            f"({result.nfe} network evaluations"
            + (", the P->R generation for the uncertainty included)"
               if result.uncertainty_kind == "reverse" else ")"))
    if result.rank_score is not None:
        line += f"; ranked by {result.rule}: " + ", ".join(f"{s:.3f}" for s in result.scores)
    print(line)
    print(f"uncertainty {result.uncertainty:.3f} A ({result.uncertainty_kind}: "
          + ("spread of the samples around the chosen one" if result.uncertainty_kind == "spread"
             else "RMSD between the R->P and P->R generations") + "; larger = less certain)")
    info = generation_info(model, result, seed=args.seed, solver=solver, sample_steps=steps,
                           charge=charge, multiplicity=mult)
    best = result.best
    if calc is not None and not args.refine:
        info["energy_xtb_ev"] = single_point(best, calc)
    if args.refine:
        from .refinement import refine

        print("[ts generate] refining with Sella + GFN2-xTB, then a finite-difference Hessian"
              + ("" if args.no_idpp else ", and the same from the IDPP guess")
              + " (seconds to minutes)", file=sys.stderr, flush=True)
        ref = refine(best, reactant=reactant, product=product, calculator=calc, fmax=args.fmax,
                     compare_idpp=not args.no_idpp, frequencies=True)
        modes = ("; exactly one imaginary mode" if ref.imaginary_modes == 1 else
                 f"; {ref.imaginary_modes} imaginary modes: NOT a first-order saddle")
        line = (f"Sella refinement: {'converged' if ref.converged else 'NOT converged'} in "
                f"{ref.steps} steps (fmax {ref.fmax:.4f} eV/A, E {ref.energy:.4f} eV); "
                f"lowest frequency {ref.imaginary_frequency:.0f} cm^-1{modes}")
        if ref.idpp_steps is not None:
            line += (f"; from the IDPP guess: {ref.idpp_steps} steps "
                     f"({'converged' if ref.idpp_converged else 'not converged'}), "
                     f"steps saved: {ref.steps_saved}")
        print(line)
        info.update(refinement_info(ref))
        best = ref.atoms
    ensure_finite(best.get_positions(), "the refined TS coordinates", axis_name="atom",
                  hint="Sella diverged from this start; run without --refine")
    if reference is not None:
        info["rmsd_to_reference_A"] = pair_rmsd(best.get_positions(), reference.get_positions())
        print(f"RMSD to --reference: {info['rmsd_to_reference_A']:.3f} A (Kabsch, no mirrors)")
    if every is not None:
        frames = [with_info(a, {**info, "sample_rank": k, "rank_score": s} if len(result.samples) > 1
                            else {**info, "sample_rank": k})
                  for k, (a, s) in enumerate(zip(result.samples, result.scores))]
        every.write(lambda tmp: ase.io.write(tmp, frames))
        print(f"wrote the ranked samples to {every.path}")
    final = with_info(best, info)
    out.write(lambda tmp: ase.io.write(tmp, final))
    print(f"wrote the TS to {out.path}")
    if figure is not None:
        from .figures import plot_overlay

        shown = [("reactant", reactant), ("product", product), ("generated TS", result.best)]
        if args.refine:
            shown.append(("refined TS", best))
        if reference is not None:
            shown.append(("reference TS", reference))
        figure.write(lambda tmp: plot_overlay(
            tmp, shown, title=f"{reactant.get_chemical_formula()}: generated TS on R and P "
                              f"(uncertainty {result.uncertainty:.3f} A)"))
        print(f"wrote the figure to {figure.path}")


def _data_inputs(args: argparse.Namespace) -> list[Any]:
    return [args.data, args.transition1x, args.split, args.ids]


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


def _data_meta(args: argparse.Namespace) -> dict[str, Any]:
    """What ``ts train`` records about its data: the files, and a split file's id lists (so
    ``ts evaluate`` knows the held-out part without being told)."""
    meta: dict[str, Any] = {"data": str(args.data) if args.data else None,
                            "transition1x": str(args.transition1x) if args.transition1x else None,
                            "split": str(args.split) if args.split else None,
                            "ids": str(args.ids) if args.ids else None}
    if args.split:
        from .files import _read_split

        meta["splits"] = {Path(args.split).stem: _read_split(Path(args.split))}
    return meta


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
                                   subset="train", ids=args.ids)
        where = ("Transition1x's official train split" if args.transition1x and not
                 (args.split or args.ids) else "the data")
        print(f"training on {len(reactions)} reactions of {where}", file=sys.stderr)
        model, result = train_model(reactions, config, resume=args.resume, meta=_data_meta(args),
                                    return_result=True)
        if int(os.environ.get("RANK", "0")) == 0:
            out.write(lambda tmp: model.save(tmp, step=result.step))
            loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4g}"
            print(f"trained {result.step} steps in {result.wall_time:.0f} s (final loss {loss}); "
                  f"seen: {model.scope.describe()}; inference checkpoint: {out.path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """``ts evaluate``: RMSD (and energy) summary printed; per-reaction JSON with ``-o``."""
    inputs = _data_inputs(args) + [args.checkpoint]
    with ExitStack() as stack:
        out = None
        if args.output is not None:
            out = stack.enter_context(claim_output(args.output, inputs=inputs,
                                                   overwrite=args.overwrite, suffixes=(".json",)))
        figure = _claim_figure(stack, args, inputs + [args.output])
        _evaluate(args, out, figure)
    return 0


def evaluation_set(args: argparse.Namespace, model: Any) -> tuple[list[Any], str]:
    """The reactions ``ts evaluate`` scores and a sentence naming them: --ids, --split[subset],
    Transition1x's official subset, or (the default) the part of the data the checkpoint has
    not seen (:func:`.files.held_out`). Warns when a chosen set holds training reactions."""
    from .files import held_out, load_reactions

    explicit = args.ids is not None or args.split is not None
    official = (args.transition1x is not None and args.data is None and not explicit
                and args.subset in ("train", "val", "test"))
    if explicit or official:
        reactions = load_reactions(args.data, transition1x=args.transition1x, split=args.split,
                                   subset=args.subset, ids=args.ids)
        text = (f"the {len(reactions)} reactions listed in --ids {args.ids}" if args.ids else
                f"the {len(reactions)} reactions of the {args.subset} part of --split "
                f"{args.split}" if args.split else
                f"the {len(reactions)} reactions of Transition1x's official {args.subset} split")
        trained = set((model.meta.get("train") or {}).get("ids") or ())
        for s in (model.meta.get("splits") or {}).values():
            trained |= set(s.get("train", ())) | set(s.get("val", ()))
        seen = sum(r.id in trained for r in reactions)
        if seen and args.subset != "train":
            from sciflow.errors import SciflowWarning

            warnings.warn(SciflowWarning(
                f"{seen} of these {len(reactions)} reactions are in the checkpoint's training or "
                "validation data: their scores overstate accuracy"), stacklevel=2)
        return reactions, text
    reactions = load_reactions(args.data, transition1x=args.transition1x,
                               subset="all" if args.transition1x else args.subset)
    return held_out(model.meta, reactions, args.subset)


def _evaluate(args: argparse.Namespace, out: Any, figure: Any) -> None:
    from sciflow.cli_args import set_threads

    from .calculators import XTB
    from .evaluation import evaluate as evaluate_model
    from .model import load

    set_threads(args)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    model = load(args.checkpoint, device=args.device or "cpu")
    reactions, scored = evaluation_set(args, model)
    print(f"scoring {scored}")
    calc = None if args.no_energies else XTB()
    ev = evaluate_model(model, reactions, samples=args.samples, sample_steps=args.sample_steps,
                        solver=args.solver, seed=args.seed, calculator=calc, uncertainty="auto",
                        scored=scored, progress=True)
    s = ev.summary
    print(f"{s.reactions} reactions, {ev.samples} sample(s), {ev.solver} x {ev.steps}")
    print(f"RMSD (A, Kabsch, no mirrors, uncapped): mean {s.rmsd_mean:.3f}, median "
          f"{s.rmsd_median:.3f}, < 0.1 A: {s.rmsd_below_0_1:.0%}; (R+P)/2 median "
          f"{s.rmsd_midpoint_median:.3f}")
    print(f"uncertainty ({ev.uncertainty}) vs RMSD: Spearman {s.uncertainty_spearman:.2f} "
          "(1: it orders the errors perfectly)")
    if s.generation_failures:
        print(f"{s.generation_failures} reaction(s) diverged (NaN coordinates; RMSD counted as inf)")
    if calc is not None:
        print(f"|dE| (kcal/mol, GFN2-xTB): mean {s.abs_de_mean:.2f}, median {s.abs_de_median:.2f}, "
              f"< 1.58: {s.abs_de_below_1_58:.0%} ({s.energy_failures} SCF failures)")
    print(f"time per reaction: batched {ev.seconds_batched * 1e3:.1f} ms, single "
          f"{(ev.seconds_single or 0) * 1e3:.1f} ms")
    if out is not None:
        from .provenance import evaluation_info

        doc = {**ev.to_dict(), "provenance": evaluation_info(model, ev, seed=args.seed)}
        from sciflow.outputs import dumps_json

        text = dumps_json(doc, indent=1)
        out.write(lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {out.path}")
    if figure is not None:
        from .figures import plot_evaluation

        order = sorted(range(len(reactions)), key=lambda k: ev.rows[k].rmsd)
        picks = [("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])]
        overlays = [(f"{name}: {reactions[k].id[:40]} ({ev.rows[k].rmsd:.3f} A)", reactions[k],
                     ev.generated[k]) for name, k in picks]
        figure.write(lambda tmp: plot_evaluation(
            tmp, ev, overlays, title=f"ts evaluate: {scored}"[:160]))
        print(f"wrote the figure to {figure.path}")


def build_dataset(args: argparse.Namespace) -> int:
    """``ts build-dataset``: the reaction builder's own command line
    (:func:`sciflow.datasets.reactions.cli.add_build_dataset_command`), parsed here."""
    from sciflow.datasets.reactions.cli import add_build_dataset_command

    parser = argparse.ArgumentParser(prog=f"sciflow {args.command}")
    add_build_dataset_command(parser.add_subparsers(dest="ts_command"))
    inner = parser.parse_args(["build-dataset", *args.arguments])
    return int(inner.func(inner) or 0)

"""``sciflow ts``: generate, train and evaluate TS generators; build reaction datasets.

    sciflow ts generate --reactant r.xyz --product p.xyz -o ts.xyz [--samples N] [--refine]
    sciflow ts generate --reaction-smiles "[C:1]...>>..." -o ts.xyz
    sciflow ts train --data datasets/reactions/data --out runs/ts
    sciflow ts evaluate --data datasets/reactions/data --split split.json
    sciflow ts build-dataset --out data/rxn
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sciflow.plugins import Domain

DOMAIN = Domain(
    name='transition-states', aliases=('ts',), order=20, requires=('ase',),
    summary='transition states: generate from R + P, search verified saddles, train, evaluate, build datasets',
    package="sciflow.domains.transition_states", cli="sciflow.domains.transition_states.cli:configure",
    demo="sciflow.domains.transition_states.demo:demo",
)

__all__ = ["configure", "DOMAIN"]

_FMT = argparse.RawDescriptionHelpFormatter


def _load_data(args: argparse.Namespace, subset: str) -> list[Any]:
    """Reactions from --data (store directory or file) and/or --transition1x, cut by --split."""
    from sciflow.datasets.reactions import read_split

    from .data import select_reactions, snapshot_reactions

    reactions: list[Any] = []
    if args.data is None and getattr(args, "transition1x", None) is None:
        args.data = _shipped_data()
    if args.data is not None:
        reactions += snapshot_reactions(args.data)
    if getattr(args, "transition1x", None) is not None:
        from sciflow.datasets.reactions import Transition1xReader

        reactions += list(Transition1xReader(args.transition1x, split=subset))
    if not reactions:
        raise ValueError("no reactions: pass --data (a reaction store or .extxyz(.gz) file) "
                         "and/or --transition1x FILE.h5")
    if args.split is not None:
        ids = read_split(args.split)[subset]
        known = {r.id for r in reactions}
        reactions = select_reactions(reactions, [i for i in ids if i in known])
        if not reactions:
            raise ValueError(f"split {str(args.split)!r} has no {subset!r} reactions in the data")
    return reactions


def _one_thread() -> None:
    """Molecules of tens of atoms gain nothing from intra-op threads, and on a busy machine
    oversubscribed threads make one generation take seconds instead of milliseconds."""
    import torch

    torch.set_num_threads(1)


def _generate_cmd(args: argparse.Namespace) -> int:
    import ase.io

    from .data import TSInputError, endpoints_from_smiles, read_endpoint
    from .pipeline import TSGenerator, refine

    _one_thread()

    if args.reaction_smiles:
        if args.reactant or args.product:
            raise TSInputError("give either --reaction-smiles or --reactant/--product, not both")
        reactant, product = endpoints_from_smiles(args.reaction_smiles, seed=args.seed)
    else:
        if not (args.reactant and args.product):
            raise TSInputError("give --reactant and --product files (or --reaction-smiles)")
        reactant = read_endpoint(args.reactant, "reactant")
        product = read_endpoint(args.product, "product")
    gen = TSGenerator.load(args.checkpoint)
    calc = None
    if args.rank == "fmax" or args.refine:
        from sciflow.datasets.reactions import GFN2

        calc = GFN2()
    result = gen.generate(reactant, product, samples=args.samples, steps=args.steps,
                          method=args.method, seed=args.seed, rule=args.rank, calculator=calc)
    print(f"generated {len(result.samples)} sample(s) in {result.seconds * 1e3:.1f} ms "
          f"({result.nfe} network evaluations); ranked by {result.rule}: "
          + ", ".join(f"{s:.3f}" for s in result.scores))
    best = result.best
    if args.samples_out:
        ase.io.write(args.samples_out, list(result.samples))
        print(f"wrote the ranked samples to {args.samples_out}")
    if args.refine:
        ref = refine(best, reactant=reactant, product=product, calculator=calc,
                     fmax=args.fmax, compare_idpp=not args.no_idpp)
        best = ref.atoms
        line = (f"Sella refinement: {'converged' if ref.converged else 'NOT converged'} in "
                f"{ref.steps} steps (fmax {ref.fmax:.4f} eV/A, E {ref.energy:.4f} eV)")
        if ref.idpp_steps is not None:
            line += (f"; from the IDPP guess: {ref.idpp_steps} steps "
                     f"({'converged' if ref.idpp_converged else 'not converged'}), "
                     f"steps saved: {ref.steps_saved}")
        print(line)
    ase.io.write(args.output, best)
    print(f"wrote the TS to {args.output}")
    return 0


def _train_cmd(args: argparse.Namespace) -> int:
    from .model import TSModelConfig
    from .pipeline import TSTrainSettings, export_checkpoint, train

    reactions = _load_data(args, "train")
    config = TSModelConfig(network=args.network, hidden=args.hidden, layers=args.layers,
                           source=args.source, source_scale=args.source_scale, target=args.target)
    settings = TSTrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                               ema_decay=args.ema_decay, seed=args.seed, device=args.device,
                               checkpoint_every=args.checkpoint_every,
                               distance_weight=args.distance_weight)
    meta = {"data": str(args.data) if args.data else None,
            "split": str(args.split) if args.split else None}
    print(f"training on {len(reactions)} reactions", file=sys.stderr)
    trainer, result = train(reactions, config=config, settings=settings, out_dir=args.out,
                            resume=args.resume, meta=meta)
    if trainer.rank == 0:
        path = export_checkpoint(Path(args.out) / "ts_model.pt", trainer.ema_model,
                                 step=result.step, meta=meta)
        print(f"trained {result.step} steps in {result.wall_time:.0f} s (final loss "
              f"{result.final_loss:.4g}); inference checkpoint: {path}")
    return 0


def _evaluate_cmd(args: argparse.Namespace) -> int:
    from .pipeline import TSGenerator, evaluate

    _one_thread()
    reactions = _load_data(args, args.subset)
    gen = TSGenerator.load(args.checkpoint)
    calc = None
    if not args.no_energies:
        from sciflow.datasets.reactions import GFN2

        calc = GFN2()
    ev = evaluate(gen, reactions, samples=args.samples, steps=args.steps, method=args.method,
                  calculator=calc)
    s = ev.summary
    print(f"{s.reactions} reactions, {ev.samples} sample(s), {ev.method} x {ev.steps}")
    print(f"RMSD (A, Kabsch, no mirrors, uncapped): mean {s.rmsd_mean:.3f}, median "
          f"{s.rmsd_median:.3f}, < 0.1 A: {s.rmsd_below_0_1:.0%}; (R+P)/2 median "
          f"{s.rmsd_midpoint_median:.3f}")
    if calc is not None:
        print(f"|dE| (kcal/mol, GFN2-xTB): mean {s.abs_de_mean:.2f}, median {s.abs_de_median:.2f}, "
              f"< 1.58: {s.abs_de_below_1_58:.0%} ({s.energy_failures} SCF failures)")
    print(f"time per reaction: batched {ev.seconds_batched * 1e3:.1f} ms, single "
          f"{(ev.seconds_single or 0) * 1e3:.1f} ms")
    if args.output:
        Path(args.output).write_text(ev.to_json())
        print(f"wrote {args.output}")
    return 0


def _shipped_data() -> Path:
    from sciflow.datasets import reactions as rx

    return Path(rx.__file__).parent / "data"


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="reaction store directory or .extxyz(.gz) file (default: the shipped "
                        "GFN2-xTB reactions, unless --transition1x is given)")
    p.add_argument("--transition1x", type=Path, default=None,
                   help="Transition1x HDF5 file (your copy); its official split is used")
    p.add_argument("--split", type=Path, default=None,
                   help="split JSON (train/val/test id lists) from `build-dataset --finalize`")


def configure(p: argparse.ArgumentParser) -> None:
    """Add the ``ts`` group: generate, train, evaluate, build-dataset."""
    from sciflow.datasets.reactions.cli import add_build_dataset_command

    p.description = ("Generate the transition state of a reaction from its reactant and product "
                    "geometries with a conditional flow (a few deterministic steps), train and "
                    "evaluate generators, and build verified reaction datasets.\n\nExamples:\n"
                    "  sciflow ts generate --reactant r.xyz --product p.xyz -o ts.xyz\n"
                    "  sciflow ts train --out runs/ts --steps 5000\n"
                    "  sciflow ts evaluate --checkpoint runs/ts/ts_model.pt --split s.json")
    sub = p.add_subparsers(dest="ts_command", metavar="<ts-command>")

    g = sub.add_parser(
        "generate", help="generate the TS of R -> P (xyz/any ASE format, or a mapped SMILES)",
        description="Generate a transition-state geometry from the reactant and product (same atoms, "
                    "same order) with the shipped model or --checkpoint. Several samples are "
                    "ranked best first: 'medoid' (the sample closest on average to the others, no "
                    "calculator) or 'fmax' (smallest GFN2-xTB force). --refine runs Sella with "
                    "GFN2-xTB and reports the optimiser steps saved against the IDPP guess.\n\n"
                    "Examples:\n"
                    "  sciflow ts generate --reactant r.xyz --product p.xyz -o ts.xyz\n"
                    "  sciflow ts generate --reactant r.xyz --product p.xyz --samples 8 --refine -o ts.xyz\n"
                    "  sciflow ts generate --reaction-smiles '[H:4][C:1]([H:5])=[O:2]>>...' -o ts.xyz",
        formatter_class=_FMT)
    g.add_argument("--reactant", type=Path, help="reactant geometry (any format ASE reads)")
    g.add_argument("--product", type=Path, help="product geometry, same atom order as the reactant")
    g.add_argument("--reaction-smiles", help="atom-mapped reaction SMILES R>>P (every atom mapped, "
                                             "hydrogens included); RDKit embeds both ends")
    g.add_argument("-o", "--output", required=True, help="where to write the TS (format from suffix)")
    g.add_argument("--samples", type=int, default=1, help="samples to draw and rank (default 1)")
    g.add_argument("--samples-out", help="also write all ranked samples (best first) to this file")
    g.add_argument("--rank", choices=("medoid", "fmax"), default="medoid",
                   help="ranking rule for several samples (default medoid)")
    g.add_argument("--steps", type=int, default=None, help="ODE steps (default: the checkpoint's)")
    g.add_argument("--method", default=None, help="ODE solver: euler, midpoint, heun, rk4, dopri5")
    g.add_argument("--refine", action="store_true", help="Sella saddle refinement with GFN2-xTB")
    g.add_argument("--no-idpp", action="store_true", help="with --refine: skip the IDPP comparison")
    g.add_argument("--fmax", type=float, default=0.01, help="Sella force threshold, eV/A (0.01)")
    g.add_argument("--checkpoint", type=Path, default=None, help="model (default: the shipped one)")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=_generate_cmd)

    t = sub.add_parser(
        "train", help="train a TS generator on reaction data (EMA, checkpoints, resume, torchrun)",
        description="Train on the shipped reactions, your store or Transition1x. Checkpoints and "
                    "metrics.jsonl go to --out (--resume continues); OUT/ts_model.pt is the small "
                    "inference checkpoint for `generate --checkpoint`. Under torchrun it trains "
                    "with DDP.\n\nExamples:\n"
                    "  sciflow ts train --out runs/ts --steps 5000 --split data/split_random.json\n"
                    "  sciflow ts train --transition1x t1x.h5 --out runs/t1x\n"
                    "  torchrun --nproc-per-node 4 -m sciflow.cli ts train --out runs/ts",
        formatter_class=_FMT)
    _data_args(t)
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--network", choices=("egnn", "painn", "e3nn"), default="egnn")
    t.add_argument("--hidden", type=int, default=96)
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--source", choices=("midpoint", "gaussian"), default="midpoint",
                   help="midpoint: Gaussian around (R+P)/2 (default); gaussian: pure noise (TS-GEN)")
    t.add_argument("--source-scale", type=float, default=0.2, help="source noise std, A (0.2)")
    t.add_argument("--target", choices=("x1", "velocity"), default="x1",
                   help="x1: the network predicts the TS as a correction to (R+P)/2 (default); "
                        "velocity: it predicts the flow's velocity (TS-GEN)")
    t.add_argument("--distance-weight", type=float, default=0.5,
                   help="weight of the auxiliary loss on short interatomic distances (0.5)")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--ema-decay", type=float, default=0.995)
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_train_cmd)

    e = sub.add_parser(
        "evaluate", help="RMSD and GFN2-xTB energy errors of generated TSs on held-out reactions",
        description="Generate the TS of every reaction of a split's subset and compare with the "
                    "reference: Kabsch RMSD (no mirrors, uncapped) and |E(gen) - E(ref)| from "
                    "GFN2-xTB single points.\n\nExample:\n"
                    "  sciflow ts evaluate --split datasets/reactions/data/split_random.json -o ev.json",
        formatter_class=_FMT)
    _data_args(e)
    e.add_argument("--subset", choices=("train", "val", "test"), default="test")
    e.add_argument("--checkpoint", type=Path, default=None, help="model (default: the shipped one)")
    e.add_argument("--samples", type=int, default=1)
    e.add_argument("--steps", type=int, default=None)
    e.add_argument("--method", default=None)
    e.add_argument("--no-energies", action="store_true", help="skip the GFN2-xTB single points")
    e.add_argument("-o", "--output", help="write per-reaction scores and the summary as JSON")
    e.set_defaults(func=_evaluate_cmd)

    add_build_dataset_command(sub)

    def _help(_: argparse.Namespace) -> int:
        p.print_help()
        return 0

    p.set_defaults(func=_help)

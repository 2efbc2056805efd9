"""``sciflow transition-states`` (alias ``ts``): generate, train and evaluate TS generators; build
reaction datasets.

    sciflow ts generate --reactant r.xyz --product p.xyz -o ts.xyz [--samples N] [--refine]
    sciflow ts generate --reaction-smiles "[C:1]...>>..." -o ts.xyz
    sciflow ts train --out runs/ts [--data DIR] [--split split.json] [--steps N]
    sciflow ts evaluate [--split split.json] [-o scores.json] [--plot]
    sciflow ts search --reactant r.xyz --product p.xyz -o ts.extxyz   (verified: Sella, IRC)
    sciflow ts search --reactions many.extxyz -o found.extxyz --resume
    sciflow ts build-dataset --out data/rxn

Every handler (:mod:`.commands`) checks all its arguments and claims its outputs before any work.
This module imports no torch, ASE or RDKit: the handlers import what they use when they run
(``build-dataset``'s own parser, from :mod:`sciflow.datasets.reactions.cli`, included).
"""

from __future__ import annotations

import argparse

from sciflow.cli_args import (
    SOLVER_NAMES,
    FlagRow,
    add_compute_arguments,
    add_config_flags,
    add_output_arguments,
    add_plot_argument,
    add_train_arguments,
    field_defaults,
    nonnegative_int,
    positive_float,
    positive_int,
)
from sciflow.plugins import Domain

from . import commands, search_command
from .config import NETWORKS, SOURCES, SUBSETS, TARGETS, Config
from .search_command import SEARCH_SUFFIXES

__all__ = ["DOMAIN", "configure", "STRUCTURE_SUFFIXES", "MULTI_FRAME_SUFFIXES", "MODEL_FLAGS",
           "TRAIN_FLAGS"]

DOMAIN = Domain(
    name="transition-states", aliases=("ts",), order=20, requires=("ase",),
    summary="transition states: generate from R + P, train, evaluate, build verified datasets",
    package="sciflow.domains.transition_states",
    cli="sciflow.domains.transition_states.cli:configure",
    demo="sciflow.domains.transition_states.demo:demo",
)

STRUCTURE_SUFFIXES = (".xyz", ".extxyz", ".pdb", ".traj", ".cif", ".json", ".xsf", ".gjf",
                      ".com", ".poscar", ".in", ".nwi", ".xyz.gz", ".extxyz.gz")
"""Names ``generate -o`` writes (the format follows the suffix, as ASE picks it; a test checks
that ASE writes each)."""
MULTI_FRAME_SUFFIXES = (".xyz", ".extxyz", ".pdb", ".traj", ".cif", ".json", ".xyz.gz",
                        ".extxyz.gz")
"""Formats that hold several structures (``--samples-out``)."""

_FMT = argparse.RawDescriptionHelpFormatter

MODEL_FLAGS: tuple[FlagRow, ...] = (
    ("network", {"choices": NETWORKS}, "graph network (default {default})"),
    ("hidden", {"type": positive_int}, "feature width (default {default})"),
    ("layers", {"type": positive_int}, "message-passing layers (default {default})"),
    ("source", {"choices": SOURCES}, "midpoint: Gaussian around (R+P)/2; gaussian: pure noise "
                                     "(TS-GEN) (default {default})"),
    ("source_scale", {"type": positive_float}, "source noise std, A (default {default})"),
    ("target", {"choices": TARGETS}, "x1: the network predicts the TS as a correction to (R+P)/2; "
                                     "velocity: it predicts the flow's velocity (default "
                                     "{default})"),
    ("distance_weight", {"type": float}, "weight of the auxiliary loss on short interatomic "
                                         "distances (default {default})"),
    ("batch_size", {"type": positive_int}, "reactions per step (default {default})"),
)
"""``ts train`` flags that set a field of Config of the same name (None: Config's default)."""
TRAIN_FLAGS: tuple[FlagRow, ...] = (
    ("ema_decay", {"type": float}, "EMA decay of the weights"),
    ("checkpoint_every", {"type": nonnegative_int}, "updates between checkpoints (0: at the end)"),
)
"""``ts train`` flags that set a TrainConfig field beyond the shared ones (--steps, --lr, ...)."""


def _moved(new: str, meaning: str) -> object:
    def refuse(text: str) -> None:
        raise argparse.ArgumentTypeError(f"{meaning}; use {new} {text}")
    return refuse


def _solver_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--solver", choices=SOLVER_NAMES, default=None,
                   help="ODE solver (default: the checkpoint's validated one, euler)")
    p.add_argument("--method", dest="solver", choices=SOLVER_NAMES, help=argparse.SUPPRESS)
    p.add_argument("--sample-steps", type=positive_int, default=None,
                   help="solver steps per sample (default: the checkpoint's validated count)")
    p.add_argument("--steps", type=_moved("--sample-steps", "--steps counts training updates "
                                          "(sciflow ts train)"), help=argparse.SUPPRESS)


def _reaction_arguments(p: argparse.ArgumentParser, *, smiles: str) -> None:
    """One reaction: reactant and product geometries, or a mapped SMILES (help ``smiles``)."""
    p.add_argument("--reactant", help="reactant geometry, A (any format ASE reads)")
    p.add_argument("--product", help="product geometry, same atom order as the reactant")
    p.add_argument("--reaction-smiles", help=smiles)


def _checkpoint_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="model (default: the shipped one)")


def _data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="reaction store directory or .extxyz(.gz) file (default: the shipped "
                        "GFN2-xTB reactions, unless --transition1x is given)")
    p.add_argument("--transition1x", default=None,
                   help="Transition1x HDF5 file as published (data/ with train/ val/ test/ "
                        "beside it); its official split is used unless --split or --ids")
    p.add_argument("--split", default=None,
                   help="split JSON (train/val/test id lists) from `build-dataset --finalize`")
    p.add_argument("--ids", default=None,
                   help="file of reaction ids, one a line or a JSON list (React-OT style: "
                        "'<formula>/<rxn>' or '<rxn>' for Transition1x): exactly these")


def _charge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--charge", type=int, default=None,
                   help="total charge (default: the reactant file's info 'charge', the SMILES' "
                        "formal charges, else 0); passed to xTB")
    p.add_argument("--multiplicity", type=positive_int, default=None,
                   help="spin multiplicity 2S+1 (default: the file's info, else 1); passed to xTB")


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate", help="generate the TS of R -> P (xyz or any ASE format, or a mapped SMILES)",
        description="Generate a transition-state geometry (A) from the reactant and product (same "
                    "atoms, same order, C/H/N/O for the shipped model) with the shipped model or "
                    "--checkpoint. Several samples are ranked best first: 'medoid' (the sample "
                    "closest on average to the others, no calculator) or 'fmax' (smallest GFN2-xTB "
                    "force). --refine runs Sella with GFN2-xTB and reports the optimiser steps saved "
                    "against the IDPP guess. A sample that diverges (NaN) is an error; nothing is "
                    "written.\n\nOutput formats (from the suffix of -o): "
                    + " ".join(STRUCTURE_SUFFIXES) + "\n\nExamples:\n"
                    "  sciflow ts generate --reactant r.xyz --product p.xyz -o ts.xyz\n"
                    "  sciflow ts generate --reactant r.xyz --product p.xyz --samples 8 --refine "
                    "-o ts.xyz\n"
                    "  sciflow ts generate --reaction-smiles '[H:1][N:2]=[C:3]=[O:4]>>"
                    "[N:2]#[C:3][O:4][H:1]' -o ts.xyz",
        formatter_class=_FMT)
    _reaction_arguments(g, smiles="atom-mapped reaction SMILES R>>P (every atom mapped, "
                                  "hydrogens included); RDKit embeds both ends")
    add_output_arguments(g, suffixes=STRUCTURE_SUFFIXES, what="the best TS")
    g.add_argument("--samples", type=positive_int, default=1,
                   help="samples to draw and rank (default 1)")
    g.add_argument("--samples-out", default=None,
                   help="also write all ranked samples, best first (" + " ".join(
                       MULTI_FRAME_SUFFIXES) + ")")
    g.add_argument("--rank", choices=("medoid", "fmax"), default="medoid",
                   help="ranking rule for several samples (default medoid)")
    _solver_arguments(g)
    g.add_argument("--refine", action="store_true", help="Sella saddle refinement with GFN2-xTB")
    g.add_argument("--no-idpp", action="store_true", help="with --refine: skip the IDPP comparison")
    g.add_argument("--fmax", type=positive_float, default=0.01,
                   help="Sella force threshold, eV/A (default 0.01)")
    _checkpoint_argument(g)
    g.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the source draws (and of the SMILES embedding)")
    _charge_arguments(g)
    g.add_argument("--reference", default=None,
                   help="a known TS (same atoms, same order): print and record the RMSD to it, "
                        "and draw it in --plot")
    add_plot_argument(g, default=False,
                      what="OUTPUT.png, the generated TS over R and P (and the refined and "
                           "reference TS), aligned, on their principal plane,")
    add_compute_arguments(g)
    g.set_defaults(func=commands.generate)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train", help="train a TS generator on reaction data (EMA, checkpoints, resume, torchrun)",
        description="Train on the shipped reactions, your store or Transition1x. Checkpoints and "
                    "metrics.jsonl go to --out (--resume continues); OUT/ts_model.pt is the small "
                    "inference checkpoint for `generate --checkpoint`. Under torchrun it trains "
                    "with DDP. Defaults are those of sciflow.domains.transition_states.Config.\n\n"
                    "Examples:\n"
                    "  sciflow ts train --out runs/ts --steps 5000 --split data/split_random.json\n"
                    "  sciflow ts train --transition1x t1x.h5 --out runs/t1x   (the DFT-level model)\n"
                    "  sciflow ts train --transition1x t1x.h5 --ids react_ot_train.txt --out runs/t1x\n"
                    "  torchrun --nproc-per-node 4 -m sciflow.cli ts train --out runs/ts",
        formatter_class=_FMT)
    _data_arguments(t)
    m = t.add_argument_group("model (defaults: sciflow.domains.transition_states.Config)")
    add_config_flags(m, MODEL_FLAGS, field_defaults(Config), unset=True)
    add_train_arguments(t)
    add_config_flags(t, TRAIN_FLAGS)
    t.add_argument("--overwrite", action="store_true", help="replace OUT/ts_model.pt if it exists")
    t.set_defaults(func=commands.train)


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "evaluate", help="RMSD and GFN2-xTB energy errors of generated TSs on held-out reactions",
        description="Generate the TS of every held-out reaction and compare with the reference: "
                    "Kabsch RMSD in A (no mirrors, uncapped) and |E(gen) - E(ref)| in kcal/mol "
                    "from GFN2-xTB single points, beside the (R+P)/2 midpoint (a warning when the "
                    "model is no better), and how well the per-reaction uncertainty orders the "
                    "errors (Spearman). Which reactions: --ids, the --subset part of --split, "
                    "Transition1x's official --subset, or by default the part of the data the "
                    "checkpoint records as held out (its split's test part); --subset all scores "
                    "everything, training reactions included. The set scored is printed. -o "
                    "writes strict JSON (NaN -> null).\n\n"
                    "Examples:\n"
                    "  sciflow ts evaluate -o scores.json --plot\n"
                    "  sciflow ts evaluate --split datasets/reactions/data/split_random.json\n"
                    "  sciflow ts evaluate --transition1x t1x.h5 --checkpoint runs/t1x/ts_model.pt",
        formatter_class=_FMT)
    _data_arguments(e)
    e.add_argument("--subset", choices=SUBSETS, default="test",
                   help="test (default), val, train, unseen (everything outside the recorded "
                        "train/val parts) or all (training reactions included)")
    _checkpoint_argument(e)
    e.add_argument("--samples", type=positive_int, default=1, help="samples per reaction")
    _solver_arguments(e)
    e.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the source draws")
    e.add_argument("--no-energies", action="store_true", help="skip the GFN2-xTB single points")
    e.add_argument("-o", "--output", default=None,
                   help="write per-reaction scores and the summary as JSON (.json)")
    e.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    add_plot_argument(e, default=False,
                      what="OUTPUT.png (needs -o), RMSD per reaction against (R+P)/2 and the "
                           "uncertainty and overlays of guess and reference (best, median, worst),")
    add_compute_arguments(e)
    e.set_defaults(func=commands.evaluate)


def _search_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "search", help="verified TS: generated guesses -> Sella -> frequencies -> quasi-IRC "
                       "(CI-NEB fallback)",
        description="Find a verified transition state of R -> P: K guesses from the model "
                    "(ranked), each refined by Sella (order 1, GFN2-xTB) and kept only with "
                    "exactly one imaginary mode and a quasi-IRC (displace along the mode, relax "
                    "both ways) that reaches R's and P's bond graphs (for rotations and "
                    "inversions: the key dihedral or pyramidalisation); when no guess verifies, "
                    "or the model cannot take the reaction, the reaction builder's IDPP/CI-NEB "
                    "path, and the output says so. Writes one extended XYZ frame per reaction "
                    "with verified, route, winner (which guess), barrier_ev, imag_freq_cm1, "
                    "timings and the model's provenance in its info; with --reactions FILE the "
                    "output is appended reaction by reaction and --resume skips those done.\n\n"
                    "Examples:\n"
                    "  sciflow ts search --reactant r.xyz --product p.xyz -o ts.extxyz\n"
                    "  sciflow ts search --reaction-smiles '[H:1][N:2]=[C:3]=[O:4]>>"
                    "[N:2]#[C:3][O:4][H:1]' -o ts.extxyz\n"
                    "  sciflow ts search --reactions many.extxyz -o found.extxyz --resume",
        formatter_class=_FMT)
    _reaction_arguments(s, smiles="atom-mapped reaction SMILES R>>P")
    s.add_argument("--reactions", help="many reactions: an extxyz in the reaction format "
                                       "(frame=reactant/transition_state/product; a TS is used as "
                                       "the reference) or consecutive R, P frames")
    s.add_argument("--reference", default=None, help="a known TS of the one reaction (RMSD)")
    s.add_argument("--id", default="reaction", help="reaction_id of the one reaction")
    add_output_arguments(s, suffixes=SEARCH_SUFFIXES, what="the TSs (extended XYZ)")
    s.add_argument("--resume", action="store_true",
                   help="continue an existing output: skip the reactions it holds")
    s.add_argument("--samples", type=positive_int, default=4,
                   help="generated guesses to try, best ranked first (default 4)")
    s.add_argument("--no-model", action="store_true",
                   help="no generated guesses: the IDPP/CI-NEB path alone (the classic search)")
    _solver_arguments(s)
    _checkpoint_argument(s)
    s.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the source draws")
    _charge_arguments(s)
    s.add_argument("--time-limit", type=positive_float, default=300.0,
                   help="wall-time limit per reaction, s (default 300)")
    add_compute_arguments(s)
    s.set_defaults(func=search_command.search)


def configure(p: argparse.ArgumentParser) -> None:
    """Fill the ``transition-states`` group: generate, train, evaluate, search, build-dataset."""
    p.description = ("Generate the transition state of a reaction from its reactant and product "
                     "geometries with a conditional flow (a few deterministic steps), train and "
                     "evaluate generators, and build verified reaction datasets.\n\nExamples:\n"
                     "  sciflow ts generate --reactant r.xyz --product p.xyz -o ts.xyz\n"
                     "  sciflow ts train --out runs/ts --steps 5000\n"
                     "  sciflow ts evaluate --checkpoint runs/ts/ts_model.pt --split s.json\n"
                     "  sciflow ts search --reactant r.xyz --product p.xyz -o ts.extxyz")
    sub = p.add_subparsers(dest="ts_command", metavar="<ts-command>")
    _generate_parser(sub)
    _train_parser(sub)
    _evaluate_parser(sub)
    _search_parser(sub)
    # build-dataset lives in sciflow.datasets.reactions.cli; importing that package costs scipy and
    # ASE, so its parser is built when the sub-command runs (all its arguments pass through)
    b = sub.add_parser("build-dataset", add_help=False, prefix_chars="\x01",
                       help="build verified transition-state reactions (GFN2-xTB or EMT); "
                            "see `sciflow ts build-dataset --help`")
    b.add_argument("arguments", nargs=argparse.REMAINDER)
    b.set_defaults(func=commands.build_dataset)

    def _help(_: argparse.Namespace) -> int:
        p.print_help()
        return 0

    p.set_defaults(func=_help)

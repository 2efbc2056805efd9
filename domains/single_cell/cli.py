"""``sciflow single-cell train|predict|evaluate`` (alias ``cells``): population flows on .h5ad files.

    sciflow cells train    --data train.h5ad --population-key sample --condition-key condition \\
                           --control control --rep X_pca --out runs/mfm
    sciflow cells predict  --checkpoint runs/mfm/model.pt --data test.h5ad -o predicted.h5ad --plot
    sciflow cells evaluate --checkpoint runs/mfm/model.pt --data test.h5ad --baselines

The handlers are in :mod:`.commands` (they check every argument and claim every output before any
work, then import torch and anndata). Defaults come from :class:`.config.Config`
(:data:`.config.DEFAULTS`) and :data:`.config.SPREAD_REPEATS`.
"""

from __future__ import annotations

import argparse

from sciflow.cli_args import (
    add_device_argument,
    add_output_arguments,
    add_solver_arguments,
    add_threads_argument,
    add_train_arguments,
    nonnegative_int,
    positive_int,
)
from sciflow.plugins import Domain

from .commands import (
    _BASELINES,  # noqa: F401 - read here by the tests
    evaluate_command,
    predict_command,
    train_command,
)
from .config import DEFAULTS, MODEL_TYPES, SAMPLE_STEPS, SOLVER, SPREAD_REPEATS, TRAINING_SCHEMES

__all__ = ["DOMAIN", "configure"]

DOMAIN = Domain(
    name="single-cell", aliases=("cells",), order=30, requires=("anndata",),
    summary="population flows on single-cell AnnData (Meta Flow Matching, FM, CGFM)",
    package="sciflow.domains.single_cell", cli="sciflow.domains.single_cell.cli:configure",
    demo="sciflow.domains.single_cell.demo:demo",
)


def _where_clause(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. split=train), got {text!r}")
    return text


def _min2(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {value}")
    return value


def _data_args(p: argparse.ArgumentParser, *, for_training: bool) -> None:
    g = p.add_argument_group("data (obs columns of the .h5ad)")
    g.add_argument("--data", required=True, help=".h5ad file with the cells (read, never written)")
    g.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   type=_where_clause,
                   help="keep only cells with obs[KEY] == VALUE (repeatable), e.g. split=train")
    model = "" if for_training else " (default: the model's)"
    g.add_argument("--population-key", required=for_training, default=None,
                   help="obs column naming each cell's population" + model)
    g.add_argument("--condition-key", default=None,
                   help="obs column with each cell's condition (treatment), e.g. condition"
                        + model)
    g.add_argument("--control", default=None, metavar="LEVEL",
                   help="the untreated level of --condition-key (e.g. control): its cells are "
                        "the sources, every other level a treatment with its own flow; no role "
                        "column needed" + model)
    g.add_argument("--pool-treatments", action="store_true", default=None,
                   help="pool every treatment into one target on purpose (without it, each "
                        "treatment is its own target, and a role-column file whose targets "
                        "look like several treatments is refused)" + model)
    g.add_argument("--role-key", default=None,
                   help="instead of --control: obs column marking source / target cells "
                        "(default: 'role')")
    g.add_argument("--source-role", default="source", help="role value of source cells")
    g.add_argument("--target-role", default="target", help="role value of target cells")
    g.add_argument("--rep", default="X" if for_training else None,
                   help="features: 'X' or an obsm key such as X_pca" + model)


def _sampling_args(p: argparse.ArgumentParser) -> None:
    add_solver_arguments(p, solver=SOLVER, steps=SAMPLE_STEPS)
    p.add_argument("--solver-steps", dest="sample_steps", type=positive_int,
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the former spelling
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the subsample of source cells MFM embeds and of the spread's "
                        "redraws (default 0)")
    p.add_argument("--spread-repeats", type=nonnegative_int, default=SPREAD_REPEATS,
                   help="bootstrap redraws of each population's source cells behind its spread "
                        f"(default {SPREAD_REPEATS}; 0: no spread)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=False,
                   help="write embedding overlays (predicted vs real target vs source, per "
                        "population) as a PNG next to -o (default: no)")
    add_device_argument(p)
    add_threads_argument(p)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    d = DEFAULTS
    t = sub.add_parser(
        "train", help="train MFM / FM / CGFM on source and target populations",
        description="Train a population flow. Cells are grouped by --population-key; "
                    "--condition-key with --control LEVEL (or a --role-key column) tells source "
                    "from treated cells, one flow per (population, treatment). Writes "
                    "OUT/model.pt, OUT/checkpoints/ and OUT/metrics.jsonl.\nExample:\n"
                    "  sciflow cells train --data pbmc.h5ad --where split=train \\\n"
                    "      --population-key population --condition-key treatment \\\n"
                    "      --control control --rep X_pca --model-type mfm --steps 2000 \\\n"
                    "      --out runs/mfm\n"
                    "Every population needs at least 2 source and 2 target cells, and MFM "
                    "knn + 1 (its k-nearest-neighbour graph).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_args(t, for_training=True)
    t.add_argument("--pair-key", default=None,
                   help="obs column pairing each source cell with its target cell (optional)")
    m = t.add_argument_group("model")
    m.add_argument("--model-type", default=d["model_type"], choices=MODEL_TYPES,
                   help="mfm: conditioned on a GCN embedding of the source population; fm: on "
                        "the condition only; cgfm: on a one-hot population id "
                        f"(default {d['model_type']})")
    m.add_argument("--method", dest="model_type", choices=MODEL_TYPES, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the former spelling
    for flag, key, kind, what in (
            ("--hidden", "hidden", positive_int, "velocity MLP width"),
            ("--layers", "layers", positive_int, "velocity MLP residual depth"),
            ("--knn", "knn", nonnegative_int, "neighbours of MFM's k-NN graph (0: none)"),
            ("--gnn-hidden", "gnn_hidden", positive_int, "MFM encoder width"),
            ("--gnn-layers", "gnn_layers", positive_int, "MFM encoder GCN layers"),
            ("--populations-per-batch", "populations_per_batch", positive_int,
             "populations per training batch"),
            ("--cells-per-population", "cells_per_population", positive_int,
             "cells drawn per population and batch (with replacement when fewer)")):
        m.add_argument(flag, type=kind, default=d[key], help=f"{what} (default {d[key]})")
    m.add_argument("--training", default=d["training"], choices=TRAINING_SCHEMES,
                   help="MFM updates: both blocks every step (joint, default) or alternate flow "
                        "/ encoder steps as in the paper")
    add_train_arguments(t, out_default="sciflow-out/cells")
    t.add_argument("--overwrite", action="store_true", help="replace OUT/model.pt if it exists")
    t.set_defaults(func=train_command)


def configure(p: argparse.ArgumentParser) -> None:
    """Fill the ``sciflow single-cell`` group (train, predict, evaluate)."""
    fmt = argparse.RawDescriptionHelpFormatter
    p.description = ("Meta Flow Matching on .h5ad files: learn how a population of cells "
                     "(source) turns into its target population, conditioned on the population "
                     "itself, then predict unseen populations.")
    sub = p.add_subparsers(dest="cells_command", metavar="<cells-command>")
    _train_parser(sub)

    q = sub.add_parser(
        "predict", help="push source populations through a trained flow into an .h5ad",
        description="Predict each population's target cells from its source cells.\nExample:\n"
                    "  sciflow cells predict --checkpoint runs/mfm/model.pt --data pbmc.h5ad \\\n"
                    "      --where split=test -o predicted.h5ad --plot\n"
                    "Populations are predicted for the treatments of their treated cells, "
                    "--conditions, or every treatment the model knows. Each predicted cell keeps "
                    "its source cell's obs (source_cell names it; cell names "
                    "<source>-pred-<treatment>), the representation in obsm[--rep], X in the "
                    "input's gene space when varm['PCs'] maps it back, and uns['sciflow'] the "
                    "provenance and each population's spread. Never the input.",
        formatter_class=fmt)
    q.add_argument("--checkpoint", required=True, help="model.pt from `sciflow cells train`")
    _data_args(q, for_training=False)
    q.add_argument("--conditions", default=None,
                   help="comma-separated conditions to predict for every population")
    _sampling_args(q)
    add_output_arguments(q, suffixes=(".h5ad",), default="predicted.h5ad",
                         what="the predicted cells")
    q.set_defaults(func=predict_command)

    e = sub.add_parser(
        "evaluate", help="score predictions against true target populations (W1, W2, MMD, ...)",
        description="Score a model (or a predictions file) population by population: exact W1 "
                    "and W2, RBF-MMD averaged over 6 bandwidths, mean-L2 and the correlation "
                    "of pairwise feature correlations, against BASE (the source unchanged; a "
                    "warning when the model is worse), with the model's spread and its "
                    "spread-skill ratio.\nExample:\n"
                    "  sciflow cells evaluate --checkpoint runs/mfm/model.pt --data pbmc.h5ad \\\n"
                    "      --where split=test --baselines -o scores.csv", formatter_class=fmt)
    e.add_argument("--checkpoint", default=None, help="a trained model to predict with")
    e.add_argument("--predictions", default=None,
                   help="an .h5ad written by `sciflow cells predict` (instead of --checkpoint)")
    _data_args(e, for_training=False)
    e.add_argument("--baselines", action="store_true",
                   help="also score SHIFT (needs --checkpoint) and IDEAL-SHIFT (BASE always)")
    e.add_argument("--max-cells", type=_min2, default=None,
                   help="subsample each population to this many cells for the metrics (exact "
                        "OT costs O(n^3))")
    _sampling_args(e)
    e.add_argument("-o", "--output", default=None,
                   help="per-population scores, .csv or .json (with the run's provenance; "
                        "optional; never one of the inputs)")
    e.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    e.set_defaults(func=evaluate_command)

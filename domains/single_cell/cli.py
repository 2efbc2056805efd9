"""``sciflow single-cell train|predict|evaluate`` (alias ``cells``): population flows on .h5ad files.

    sciflow cells train    --data train.h5ad --population-key population --model-type mfm \\
                           --out runs/mfm
    sciflow cells predict  --checkpoint runs/mfm/model.pt --data test.h5ad -o predicted.h5ad
    sciflow cells evaluate --checkpoint runs/mfm/model.pt --data test.h5ad --baselines

Every handler checks its arguments and claims its output (:func:`sciflow.outputs.claim_output`:
never one of the inputs, never an existing file without ``--overwrite``) before any work, then
imports torch and anndata. Defaults come from :class:`.config.Config` (:data:`.config.DEFAULTS`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sciflow.cli_args import (
    add_device_argument,
    add_output_arguments,
    add_solver_arguments,
    add_threads_argument,
    add_train_arguments,
    nonnegative_int,
    positive_int,
    set_threads,
    train_config,
)
from sciflow.errors import InputError, OutputError
from sciflow.outputs import claim_output
from sciflow.plugins import Domain

from .config import DEFAULTS, MODEL_TYPES, SAMPLE_STEPS, SOLVER, TRAINING_SCHEMES

__all__ = ["DOMAIN", "configure"]

DOMAIN = Domain(
    name="single-cell", aliases=("cells",), order=30, requires=("anndata",),
    summary="population flows on single-cell AnnData (Meta Flow Matching, FM, CGFM)",
    package="sciflow.domains.single_cell", cli="sciflow.domains.single_cell.cli:configure",
    demo="sciflow.domains.single_cell.demo:demo",
)

_BASELINES = ("base", "shift", "ideal-shift")  # baselines.BASELINES (a test keeps them equal)


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


def _require_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"{flag} {path!r} does not exist (or is not a file)")


def _keys(args: argparse.Namespace, model: object = None) -> dict[str, str | None]:
    """obs columns from the command line, falling back to those the model was trained with."""
    saved = dict(getattr(model, "keys", {}) or {})
    out = {}
    for name in ("population", "role", "condition", "pair"):
        given = getattr(args, f"{name}_key", None)
        out[name] = given if given is not None else saved.get(name)
    if out["population"] is None:
        raise InputError("--population-key is required (the obs column naming each cell's "
                         "population)")
    out["role"] = out["role"] or "role"
    return out


def _read(args: argparse.Namespace, keys: dict[str, str | None], rep: str, *,
          require_target: bool, conditions: list[str] | None = None) -> object:
    from .data import filter_obs, read_h5ad, read_populations

    adata = read_h5ad(args.data)
    if args.where:
        adata = filter_obs(adata, args.where)
    return read_populations(
        adata, population_key=keys["population"],  # type: ignore[arg-type]
        role_key=keys["role"] or "role", condition_key=keys["condition"],
        pair_key=keys["pair"] if require_target else None, source_role=args.source_role,
        target_role=args.target_role, rep=rep, require_target=require_target,
        conditions=conditions)


def _train(args: argparse.Namespace) -> int:
    _require_file(args.data, "--data")
    out_dir = Path(args.out)
    if not args.resume and any((out_dir / "checkpoints").glob("step_*.pt")):
        raise OutputError(f"--out {str(out_dir)!r} already holds a training run; pass --resume "
                          "to continue it or choose another --out")
    set_threads(args)
    from sciflow.devices import resolve_device

    from .config import Config

    if args.device is not None:
        resolve_device(args.device)  # an absent device fails before any work
    base = Config(model_type=args.model_type, hidden=args.hidden, layers=args.layers,
                  knn=args.knn, gnn_hidden=args.gnn_hidden, gnn_layers=args.gnn_layers,
                  populations_per_batch=args.populations_per_batch,
                  cells_per_population=args.cells_per_population, training=args.training)
    config = base.replace(train=train_config(args, base.train))
    with claim_output(out_dir / "model.pt", inputs=[args.data],
                      overwrite=args.overwrite or args.resume, name="--out") as out:
        from .training import train

        cells = _read(args, _keys(args), args.rep, require_target=True)
        model = train(cells, config, resume=args.resume)  # type: ignore[arg-type]
        out.write(lambda tmp: model.save(tmp))
    r = model.result
    loss = "n/a" if r is None or r.final_loss is None else f"{r.final_loss:.4f}"
    print(f"trained {config.model_type} on {len(cells.pairs)} population pairs x "  # type: ignore[attr-defined]
          f"{model.config.dim} features: {r.step if r else 0} steps in "
          f"{r.wall_time if r else 0.0:.1f} s, final loss {loss}")
    print(f"model: {out.path}")
    return 0


def _conditions_arg(text: str | None) -> list[str] | None:
    return [c for c in text.split(",") if c] if text else None


def _predict(args: argparse.Namespace) -> int:
    _require_file(args.checkpoint, "--checkpoint")
    _require_file(args.data, "--data")
    with claim_output(args.output, inputs=[args.data, args.checkpoint], overwrite=args.overwrite,
                      suffixes=(".h5ad",)) as out:
        set_threads(args)
        from .model import load
        from .predictions import predictions_to_anndata
        from .sampling import sample

        model = load(args.checkpoint, device=args.device or "cpu")
        conditions = _conditions_arg(args.conditions)
        unknown = sorted(set(conditions or ()) - set(model.config.conditions))
        if unknown:
            raise InputError(f"--conditions {unknown} are unknown to this model; it was trained "
                             f"on {list(model.config.conditions)}")
        cells = _read(args, _keys(args, model), args.rep or model.rep, require_target=False,
                      conditions=conditions)
        preds = sample(model, cells, solver=args.solver, steps=args.sample_steps,  # type: ignore[arg-type]
                       seed=args.seed, progress=None)
        adata = predictions_to_anndata(cells, preds, method=model.config.model_type)  # type: ignore[arg-type]
        out.write(lambda tmp: adata.write_h5ad(tmp))
    print(f"predicted {len(preds)} populations ({sum(p.shape[0] for p in preds)} cells) with "
          f"{model.config.model_type}; wrote {out.path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if (args.checkpoint is None) == (args.predictions is None):
        raise InputError("pass exactly one of --checkpoint (predict, then score) or "
                         "--predictions (score an .h5ad written by `sciflow cells predict`)")
    for path, flag in ((args.checkpoint, "--checkpoint"), (args.predictions, "--predictions"),
                       (args.data, "--data")):
        _require_file(path, flag)
    out = None
    if args.output is not None:
        out = claim_output(args.output, inputs=[args.data, args.checkpoint, args.predictions],
                           overwrite=args.overwrite, suffixes=(".csv",))
    try:
        set_threads(args)
        from .evaluation import evaluate
        from .model import load
        from .predictions import read_predictions

        model = load(args.checkpoint, device=args.device or "cpu") if args.checkpoint else None
        keys = _keys(args, model)
        rep = args.rep or (model.rep if model is not None else "X")
        cells = _read(args, keys, rep, require_target=True)
        found = None
        if args.predictions is not None:
            read = read_predictions(args.predictions, population_key=keys["population"],  # type: ignore[arg-type]
                                    role_key=keys["role"] or "role",
                                    condition_key=keys["condition"], rep=rep)
            missing = [p.key for p in cells.pairs if p.key not in read]  # type: ignore[attr-defined]
            if missing:
                raise InputError(f"--predictions {args.predictions!r} lacks population(s) "
                                 f"{missing[:10]}")
            found = {"predicted": [read[p.key] for p in cells.pairs]}  # type: ignore[attr-defined]
        result = evaluate(model, cells, predictions=found,  # type: ignore[arg-type]
                          baselines=_BASELINES if args.baselines else (), max_cells=args.max_cells,
                          solver=args.solver, steps=args.sample_steps, seed=args.seed,
                          progress=None)
        print(f"{len(result.pairs)} populations; mean over populations:\n")  # type: ignore[union-attr]
        print(result.table())  # type: ignore[union-attr]
        if out is not None:
            out.write(lambda tmp: _write_scores(tmp, result.rows()))  # type: ignore[union-attr]
            print(f"\nper-population scores: {out.path}")
    finally:
        if out is not None:
            out.release()
    return 0


def _write_scores(path: Path, rows: list[dict]) -> None:
    import csv
    import math

    names = ("w1", "w2", "mmd", "mean_l2", "corr")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "population", "condition", "w1", "w2", "mmd", "mean_l2",
                    "corr_of_feature_corrs"])
        for r in rows:
            w.writerow([r["method"], r["population"], r["condition"] or "", *(
                "" if math.isnan(r[k]) else f"{r[k]:.6g}" for k in names)])


def _data_args(p: argparse.ArgumentParser, *, for_training: bool) -> None:
    g = p.add_argument_group("data (obs columns of the .h5ad)")
    g.add_argument("--data", required=True, help=".h5ad file with the cells (read, never written)")
    g.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   type=_where_clause,
                   help="keep only cells with obs[KEY] == VALUE (repeatable), e.g. split=train")
    model = "" if for_training else " (default: the model's)"
    g.add_argument("--population-key", required=for_training, default=None,
                   help="obs column naming each cell's population" + model)
    g.add_argument("--role-key", default=None,
                   help="obs column marking source / target cells (default: 'role')")
    g.add_argument("--condition-key", default=None,
                   help="obs column with each target cell's condition (treatment), if any")
    g.add_argument("--source-role", default="source", help="role value of source cells")
    g.add_argument("--target-role", default="target", help="role value of target cells")
    g.add_argument("--rep", default="X" if for_training else None,
                   help="features: 'X' or an obsm key such as X_pca" + model)


def _sampling_args(p: argparse.ArgumentParser) -> None:
    add_solver_arguments(p, solver=SOLVER, steps=SAMPLE_STEPS)
    p.add_argument("--solver-steps", dest="sample_steps", type=positive_int,
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the former spelling
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the subsample of source cells MFM embeds (default 0)")
    add_device_argument(p)
    add_threads_argument(p)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    d = DEFAULTS
    t = sub.add_parser(
        "train", help="train MFM / FM / CGFM on source and target populations",
        description="Train a population flow. Cells are grouped by --population-key; "
                    "--role-key tells source from target cells. Writes OUT/model.pt, "
                    "OUT/checkpoints/ and OUT/metrics.jsonl.\nExample:\n"
                    "  sciflow cells train --data pbmc.h5ad --where split=train \\\n"
                    "      --population-key population --condition-key treatment \\\n"
                    "      --rep X_pca --model-type mfm --steps 2000 --out runs/mfm\n"
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
    t.set_defaults(func=_train)


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
                    "      --where split=test -o predicted.h5ad\n"
                    "Populations are predicted for the conditions of their target cells, or "
                    "for --conditions. The output holds X (and the obsm key of --rep) and obs "
                    "columns population / role = 'predicted' / condition; it is never the input.",
        formatter_class=fmt)
    q.add_argument("--checkpoint", required=True, help="model.pt from `sciflow cells train`")
    _data_args(q, for_training=False)
    q.add_argument("--conditions", default=None,
                   help="comma-separated conditions to predict for every population")
    _sampling_args(q)
    add_output_arguments(q, suffixes=(".h5ad",), default="predicted.h5ad",
                         what="the predicted cells")
    q.set_defaults(func=_predict)

    e = sub.add_parser(
        "evaluate", help="score predictions against true target populations (W1, W2, MMD, ...)",
        description="Score a model (or a predictions file) population by population: exact W1 "
                    "and W2, RBF-MMD averaged over 6 bandwidths, mean-L2 and the correlation "
                    "of pairwise feature correlations.\nExample:\n"
                    "  sciflow cells evaluate --checkpoint runs/mfm/model.pt --data pbmc.h5ad \\\n"
                    "      --where split=test --baselines -o scores.csv", formatter_class=fmt)
    e.add_argument("--checkpoint", default=None, help="a trained model to predict with")
    e.add_argument("--predictions", default=None,
                   help="an .h5ad written by `sciflow cells predict` (instead of --checkpoint)")
    _data_args(e, for_training=False)
    e.add_argument("--baselines", action="store_true",
                   help="also score BASE, SHIFT (needs --checkpoint) and IDEAL-SHIFT")
    e.add_argument("--max-cells", type=_min2, default=None,
                   help="subsample each population to this many cells for the metrics (exact "
                        "OT costs O(n^3))")
    _sampling_args(e)
    e.add_argument("-o", "--output", default=None,
                   help="CSV of per-population scores (optional; never one of the inputs)")
    e.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    e.set_defaults(func=_evaluate)

"""``sciflow cells train|predict|evaluate``: population flows on .h5ad files.

    sciflow cells train    --data train.h5ad --population-key population --method mfm --out runs/mfm
    sciflow cells predict  --checkpoint runs/mfm/model.pt --data test.h5ad -o predicted.h5ad
    sciflow cells evaluate --checkpoint runs/mfm/model.pt --data test.h5ad --baselines
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import anndata

from sciflow.domains.single_cell.data import (
    CellDataError,
    CellPopulations,
    filter_obs,
    predictions_to_anndata,
    read_h5ad,
    read_populations,
    read_predictions,
)
from sciflow.domains.single_cell.metrics import PopulationScores, mean_scores
from sciflow.domains.single_cell.model import METHODS
from sciflow.domains.single_cell.pipeline import (
    BASELINES,
    CellFlow,
    CellTrainConfig,
    baseline_predictions,
    build_spec,
    evaluate,
    load_cell_flow,
    predict,
    save_cell_flow,
    scores_table,
    train_cell_flow,
)
from sciflow.plugins import Domain

DOMAIN = Domain(
    name='single-cell', aliases=('cells',), order=30, requires=('anndata',),
    summary='population flows on single-cell AnnData (Meta Flow Matching, FM, CGFM)',
    package="sciflow.domains.single_cell", cli="sciflow.domains.single_cell.cli:configure",
    demo="sciflow.domains.single_cell.demo:demo",
)

__all__ = ["configure", "DOMAIN"]


def _load(path: str, where: list[str]) -> anndata.AnnData:
    adata = read_h5ad(path)
    return filter_obs(adata, where) if where else adata


def _keys(args: argparse.Namespace, flow: CellFlow | None = None) -> dict[str, str | None]:
    """obs columns from the command line, falling back to those the model was trained with."""
    saved = dict(flow.keys) if flow is not None else {}
    out = {}
    for name in ("population", "role", "condition", "pair"):
        given = getattr(args, f"{name}_key", None)
        out[name] = given if given is not None else saved.get(name)
    if out["population"] is None:
        raise CellDataError("--population-key is required (the obs column naming each cell's "
                            "population)")
    out["role"] = out["role"] or "role"
    return out


def _read(args: argparse.Namespace, keys: dict[str, str | None], rep: str, *,
          require_target: bool, conditions: list[str] | None = None) -> CellPopulations:
    return read_populations(
        _load(args.data, args.where), population_key=keys["population"],  # type: ignore[arg-type]
        role_key=keys["role"] or "role", condition_key=keys["condition"],
        pair_key=keys["pair"] if require_target else None, source_role=args.source_role,
        target_role=args.target_role, rep=rep, require_target=require_target,
        conditions=conditions)


def _train_cmd(args: argparse.Namespace) -> int:
    keys = _keys(args)
    cells = _read(args, keys, args.rep, require_target=True)
    spec = build_spec(cells, args.method, hidden=args.hidden, layers=args.layers, knn=args.knn,
                      gnn_hidden=args.gnn_hidden, gnn_layers=args.gnn_layers)
    out = Path(args.out)
    config = CellTrainConfig(steps=args.steps, lr=args.lr, seed=args.seed,
                             populations_per_batch=args.populations_per_batch,
                             cells_per_population=args.cells_per_population,
                             training=args.training, out_dir=out)
    try:
        flow = train_cell_flow(cells, spec, config, resume=args.resume)
    except FileExistsError as err:
        raise CellDataError(f"--out {str(out)!r} already holds a training run; pass --resume to "
                            "continue it or choose another --out") from err
    path = save_cell_flow(out / "model.pt", flow)
    print(f"trained {args.method} on {len(cells.pairs)} population pairs x {cells.dim} features: "
          f"{flow.train.step} steps in {flow.train.wall_time:.1f} s, final loss "
          f"{flow.train.final_loss:.4f}")
    print(f"model: {path}")
    return 0


def _conditions_arg(text: str | None) -> list[str] | None:
    return [c for c in text.split(",") if c] if text else None


def _predict_cmd(args: argparse.Namespace) -> int:
    flow = load_cell_flow(args.checkpoint)
    keys = _keys(args, flow)
    cells = _read(args, keys, args.rep or flow.rep, require_target=False,
                  conditions=_conditions_arg(args.conditions))
    preds = predict(flow, cells.pairs, method=args.solver, steps=args.solver_steps)
    out = predictions_to_anndata(cells, preds, method=flow.spec.method)
    out.write_h5ad(args.output)
    print(f"predicted {len(cells.pairs)} populations ({sum(p.shape[0] for p in preds)} cells) "
          f"with {flow.spec.method}; wrote {args.output}")
    return 0


def _evaluate_cmd(args: argparse.Namespace) -> int:
    if (args.checkpoint is None) == (args.predictions is None):
        raise CellDataError("pass exactly one of --checkpoint (predict, then score) or "
                            "--predictions (score an .h5ad written by `sciflow cells predict`)")
    flow = load_cell_flow(args.checkpoint) if args.checkpoint else None
    keys = _keys(args, flow)
    rep = args.rep or (flow.rep if flow is not None else "X")
    cells = _read(args, keys, rep, require_target=True)
    pairs = cells.pairs
    runs: dict[str, list] = {}
    if flow is not None:
        runs[flow.spec.method.upper()] = predict(flow, pairs, method=args.solver,
                                                 steps=args.solver_steps)
    else:
        found = read_predictions(args.predictions, population_key=keys["population"],  # type: ignore[arg-type]
                                 role_key=keys["role"] or "role",
                                 condition_key=keys["condition"], rep=rep)
        missing = [p.key for p in pairs if p.key not in found]
        if missing:
            raise CellDataError(f"the predictions lack population(s) {missing[:10]}")
        runs["predicted"] = [found[p.key] for p in pairs]
    if args.baselines:
        for kind in BASELINES:
            if kind == "shift" and flow is None:
                continue  # needs the training shift stored in a checkpoint
            runs[kind.upper()] = baseline_predictions(
                kind, pairs, mean_shift=flow.mean_shift if flow is not None else None)
    per_pop: dict[str, list[PopulationScores]] = {
        name: evaluate(preds, pairs, max_cells=args.max_cells) for name, preds in runs.items()}
    print(f"{len(pairs)} populations; mean over populations:\n")
    print(scores_table({name: mean_scores(s) for name, s in per_pop.items()}))
    if args.output:
        with open(args.output, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["method", "population", "condition", "w1", "w2", "mmd", "mean_l2",
                        "corr_of_feature_corrs"])
            for name, scores in per_pop.items():
                for p, s in zip(pairs, scores):
                    w.writerow([name, p.population, p.condition or "", *(
                        "" if math.isnan(v) else f"{v:.6g}" for v in s.as_dict().values())])
        print(f"\nper-population scores: {args.output}")
    return 0


def _data_args(p: argparse.ArgumentParser, *, keys_required: bool) -> None:
    p.add_argument("--data", required=True, help=".h5ad file with the cells")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="keep only cells with obs[KEY] == VALUE (repeatable), e.g. split=train")
    p.add_argument("--population-key", required=keys_required, default=None,
                   help="obs column naming each cell's population"
                        + ("" if keys_required else " (default: the model's)"))
    p.add_argument("--role-key", default=None,
                   help="obs column marking source / target cells (default: 'role')")
    p.add_argument("--condition-key", default=None,
                   help="obs column with each target cell's condition (treatment), if any")
    p.add_argument("--source-role", default="source", help="role value of source cells")
    p.add_argument("--target-role", default="target", help="role value of target cells")
    p.add_argument("--rep", default=None if not keys_required else "X",
                   help="features: 'X' or an obsm key such as X_pca"
                        + ("" if keys_required else " (default: the model's)"))


def _solver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--solver", default="dopri5",
                   choices=["dopri5", "euler", "midpoint", "heun", "rk4"],
                   help="ODE solver (default dopri5, atol = rtol = 1e-4 as in the paper)")
    p.add_argument("--solver-steps", type=int, default=None,
                   help="steps for a fixed-step solver")


def configure(p: argparse.ArgumentParser) -> None:
    """Add ``sciflow cells train|predict|evaluate``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p.description = ("Meta Flow Matching on .h5ad files: learn how a population of cells "
                    "(source) turns into its target population, conditioned on the population "
                    "itself, then predict unseen populations.")
    sub = p.add_subparsers(dest="cells_command", metavar="<cells-command>")

    t = sub.add_parser(
        "train", help="train MFM / FM / CGFM on source and target populations",
        description="Train a population flow. Cells are grouped by --population-key; "
                    "--role-key tells source from target cells.\nExample:\n"
                    "  sciflow cells train --data pbmc.h5ad --where split=train \\\n"
                    "      --population-key population --condition-key treatment \\\n"
                    "      --rep X_pca --method mfm --steps 2000 --out runs/mfm",
        formatter_class=fmt)
    _data_args(t, keys_required=True)
    t.add_argument("--pair-key", default=None,
                   help="obs column pairing each source cell with its target cell (optional)")
    t.add_argument("--method", default="mfm", choices=list(METHODS),
                   help="mfm: GCN population embedding; fm: condition only; cgfm: one-hot "
                        "population id")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--populations-per-batch", type=int, default=10)
    t.add_argument("--cells-per-population", type=int, default=256)
    t.add_argument("--hidden", type=int, default=128, help="velocity MLP width")
    t.add_argument("--layers", type=int, default=4, help="velocity MLP residual depth")
    t.add_argument("--knn", type=int, default=20, help="neighbours of the k-NN graph (0: none)")
    t.add_argument("--gnn-hidden", type=int, default=64)
    t.add_argument("--gnn-layers", type=int, default=3)
    t.add_argument("--training", default="joint", choices=["joint", "alternating"],
                   help="MFM updates: both blocks every step (default) or alternate flow / "
                        "encoder steps as in the paper")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="sciflow-out/cells",
                   help="folder for model.pt, checkpoints/ and metrics.jsonl")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint")
    t.set_defaults(func=_train_cmd)

    q = sub.add_parser(
        "predict", help="push source populations through a trained flow into an .h5ad",
        description="Predict each population's target cells from its source cells.\nExample:\n"
                    "  sciflow cells predict --checkpoint runs/mfm/model.pt --data pbmc.h5ad \\\n"
                    "      --where split=test -o predicted.h5ad\n"
                    "Populations are predicted for the conditions of their target cells, or "
                    "for --conditions.", formatter_class=fmt)
    q.add_argument("--checkpoint", required=True, help="model.pt from `sciflow cells train`")
    _data_args(q, keys_required=False)
    q.add_argument("--conditions", default=None,
                   help="comma-separated conditions to predict for every population")
    _solver_args(q)
    q.add_argument("-o", "--output", default="predicted.h5ad")
    q.set_defaults(func=_predict_cmd)

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
    _data_args(e, keys_required=False)
    e.add_argument("--baselines", action="store_true",
                   help="also score BASE, SHIFT (needs --checkpoint) and IDEAL-SHIFT")
    e.add_argument("--max-cells", type=int, default=None,
                   help="subsample each population to this many cells for the metrics")
    _solver_args(e)
    e.add_argument("-o", "--output", default=None, help="CSV of per-population scores")
    e.set_defaults(func=_evaluate_cmd)

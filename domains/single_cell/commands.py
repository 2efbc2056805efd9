"""The handlers of ``sciflow cells train|predict|evaluate`` (the parsers are in :mod:`.cli`).

Each handler checks its arguments and claims every output (:func:`sciflow.outputs.claim_output`:
never one of the inputs, never an existing file without ``--overwrite``) before any work, then
imports torch and anndata.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from sciflow.cli_args import set_threads, train_config
from sciflow.errors import InputError, OutputError
from sciflow.outputs import ClaimedOutput, claim_output

__all__ = ["train_command", "predict_command", "evaluate_command"]

_BASELINES = ("base", "shift", "ideal-shift")  # baselines.BASELINES (a test keeps them equal)
_SCORES = ("w1", "w2", "mmd", "mean_l2", "corr", "spread", "separation", "error", "target_noise")
_RUN = ("sciflow_version", "model_type", "checkpoint", "checkpoint_digest", "solver",
        "sample_steps", "seed")


def _require_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"{flag} {path!r} does not exist (or is not a file)")


def _keys(args: argparse.Namespace, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """How to read the cells: the command line, else what the model was trained with."""
    saved = dict(saved or {})
    if args.control is not None and args.role_key is not None:
        raise InputError(f"pass either --control {args.control} (one condition column with an "
                         f"untreated level) or --role-key {args.role_key} (a source/target "
                         "column), not both")
    out = {}
    for name in ("population", "role", "condition", "pair"):
        given = getattr(args, f"{name}_key", None)
        out[name] = given if given is not None else saved.get(name)
    if out["population"] is None:
        raise InputError("--population-key is required (the obs column naming each cell's "
                         "population)")
    out["control"] = args.control if args.control is not None or args.role_key is not None \
        else saved.get("control")
    out["pool"] = bool(args.pool_treatments if args.pool_treatments is not None
                       else saved.get("pool", False))
    out["role"] = out["role"] or "role"
    return out


def _read(args: argparse.Namespace, keys: dict[str, Any], rep: str, *, require_target: bool,
          conditions: list[str] | None = None) -> Any:
    from .data import filter_obs, read_h5ad, read_populations

    adata = read_h5ad(args.data)
    if args.where:
        adata = filter_obs(adata, args.where)
    return read_populations(
        adata, population_key=keys["population"], role_key=keys["role"],
        condition_key=keys["condition"], control=keys["control"], pool=keys["pool"],
        pair_key=keys["pair"] if require_target else None, source_role=args.source_role,
        target_role=args.target_role, rep=rep, require_target=require_target,
        conditions=conditions)


def _claim_plot(args: argparse.Namespace, output: str | None, inputs: list) -> ClaimedOutput | None:
    if not getattr(args, "plot", False):
        return None
    if output is None:
        raise InputError("--plot writes its figure next to -o/--output; pass -o scores.csv")
    return claim_output(Path(output).with_suffix(".png"), inputs=inputs,
                        overwrite=args.overwrite, suffixes=(".png",), name="--plot")


def _check_repeats(args: argparse.Namespace) -> None:
    if args.spread_repeats == 1:
        raise InputError("--spread-repeats 1: the spread needs >= 2 redraws (0 turns it off)")


def _sampling(args: argparse.Namespace) -> dict[str, Any]:
    return {"solver": args.solver, "steps": args.sample_steps, "seed": args.seed}


def train_command(args: argparse.Namespace) -> int:
    """``sciflow cells train``."""
    _require_file(args.data, "--data")
    out_dir = Path(args.out)
    if not args.resume and any((out_dir / "checkpoints").glob("step_*.pt")):
        raise OutputError(f"--out {str(out_dir)!r} already holds a training run; pass --resume "
                          "to continue it or choose another --out")
    keys = _keys(args)
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

        cells = _read(args, keys, args.rep, require_target=True)
        model = train(cells, config, resume=args.resume)
        out.write(lambda tmp: model.save(tmp))
    r = model.result
    loss = "n/a" if r is None or r.final_loss is None else f"{r.final_loss:.4f}"
    treated = ", ".join(cells.conditions) or "one target (no condition column)"
    print(f"trained {config.model_type} on {len(cells.pairs)} population pairs x "
          f"{model.config.dim} features: {r.step if r else 0} steps in "
          f"{r.wall_time if r else 0.0:.1f} s, final loss {loss}")
    print(f"treatments: {treated}" + (f" (control level {keys['control']!r})"
                                      if keys["control"] else ""))
    print(f"model: {out.path}")
    return 0


def _conditions_arg(text: str | None) -> list[str] | None:
    return [c for c in text.split(",") if c] if text else None


def _every_treatment(cells: Any, model: Any) -> Any:
    """Populations read without treated cells get one pair per treatment the model knows."""
    known = model.config.conditions
    if not known or all(p.condition is not None for p in cells.pairs):
        return cells
    pairs = tuple(replace(p, condition=c) if p.condition is None else p
                  for p in cells.pairs for c in (known if p.condition is None else (None,)))
    print(f"--data has no treated cells: predicting every treatment the model knows "
          f"({', '.join(known)}); --conditions picks some")
    return replace(cells, pairs=pairs)


def _plot(path: Path, cells: Any, preds: Any, title: str) -> None:
    from .figures import plot_overlays

    dims = (0, 1) if cells.rep != "X" and cells.dim >= 2 else None
    plot_overlays(cells.pairs, preds, path, dims=dims, feature_names=cells.features, title=title)


def predict_command(args: argparse.Namespace) -> int:
    """``sciflow cells predict``."""
    _require_file(args.checkpoint, "--checkpoint")
    _require_file(args.data, "--data")
    _check_repeats(args)
    inputs = [args.data, args.checkpoint]
    figure = _claim_plot(args, args.output, inputs)
    try:
        with claim_output(args.output, inputs=inputs, overwrite=args.overwrite,
                          suffixes=(".h5ad",)) as out:
            set_threads(args)
            from .model import load
            from .predictions import predict_anndata

            model = load(args.checkpoint, device=args.device or "cpu")
            conditions = _conditions_arg(args.conditions)
            unknown = sorted(set(conditions or ()) - set(model.config.conditions))
            if unknown:
                raise InputError(f"--conditions {unknown} are unknown to this model; it was "
                                 f"trained on {list(model.config.conditions)}")
            cells = _read(args, _keys(args, model.keys), args.rep or model.rep,
                          require_target=False, conditions=conditions)
            cells = _every_treatment(cells, model)
            adata, preds = predict_anndata(model, cells, **_sampling(args),
                                           spread_repeats=args.spread_repeats, progress=None)
            out.write(lambda tmp: adata.write_h5ad(tmp))
            if figure is not None:
                figure.write(lambda tmp: _plot(tmp, cells, preds, f"{model.config.model_type} "
                                               f"on {Path(args.data).name}"))
    finally:
        if figure is not None:
            figure.release()
    space = f"{adata.n_vars} genes" if adata.uns["sciflow"]["X"].startswith("genes") else \
        f"{adata.n_vars} features of {cells.rep}"
    print(f"predicted {len(preds)} populations ({adata.n_obs} cells; X: {space}) with "
          f"{model.config.model_type}; wrote {out.path}" +
          (f" and {figure.path}" if figure is not None else ""))
    return 0


def _write_scores(path: Path, rows: list[dict], run: dict[str, Any]) -> None:
    import csv
    import math

    from sciflow.outputs import dumps_json

    if path.suffix == ".json":
        path.write_text(dumps_json({"run": run, "rows": rows}) + "\n")
        return
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "population", "condition", *_SCORES, *_RUN])
        for r in rows:
            w.writerow([r["method"], r["population"], r["condition"] or "", *(
                "" if r.get(k) is None or math.isnan(r[k]) else f"{r[k]:.6g}" for k in _SCORES),
                *(run.get(k, "") for k in _RUN)])


def evaluate_command(args: argparse.Namespace) -> int:
    """``sciflow cells evaluate``."""
    if (args.checkpoint is None) == (args.predictions is None):
        raise InputError("pass exactly one of --checkpoint (predict, then score) or "
                         "--predictions (score an .h5ad written by `sciflow cells predict`)")
    for path, flag in ((args.checkpoint, "--checkpoint"), (args.predictions, "--predictions"),
                       (args.data, "--data")):
        _require_file(path, flag)
    _check_repeats(args)
    inputs = [args.data, args.checkpoint, args.predictions]
    figure = _claim_plot(args, args.output, inputs)
    out = None
    try:
        if args.output is not None:
            out = claim_output(args.output, inputs=inputs, overwrite=args.overwrite,
                               suffixes=(".csv", ".json"))
        set_threads(args)
        from .config import ATOL, RTOL
        from .data import read_h5ad
        from .evaluation import evaluate
        from .model import load
        from .predictions import read_predictions
        from .provenance import run_provenance

        model = load(args.checkpoint, device=args.device or "cpu") if args.checkpoint else None
        found, run, saved = None, {}, dict(model.keys) if model is not None else {}
        written = None
        if args.predictions is not None:
            written = read_h5ad(args.predictions)
            run = dict(written.uns.get("sciflow", {}))
            saved = {k: v for k, v in dict(run.get("obs", {})).items() if v != ""}
        keys = _keys(args, saved)
        rep = args.rep or (model.rep if model is not None else str(run.get("rep", "X")))
        cells = _read(args, keys, rep, require_target=True)
        if written is not None:
            read = read_predictions(written, population_key=keys["population"],
                                    role_key=keys["role"], condition_key=keys["condition"],
                                    rep=rep)
            missing = [p.key for p in cells.pairs if p.key not in read]
            if missing:
                raise InputError(f"--predictions {args.predictions!r} lacks population(s) "
                                 f"{missing[:10]}")
            found = {"predicted": [read[p.key] for p in cells.pairs]}
        # a WorseThanBaselineWarning is a SciflowWarning: the command line prints it
        result = evaluate(model, cells, predictions=found,
                          baselines=_BASELINES if args.baselines else (),
                          max_cells=args.max_cells, **_sampling(args),
                          spread_repeats=args.spread_repeats if model is not None else 0,
                          progress=None)
        if model is not None:
            run = run_provenance(model, solver=args.solver, steps=args.sample_steps, atol=ATOL,
                                 rtol=RTOL, seed=args.seed, spread_repeats=args.spread_repeats)
        print(f"{len(result.pairs)} populations; mean over populations:\n")
        print(result.table())
        if out is not None:
            out.write(lambda tmp: _write_scores(tmp, result.rows(), run))
            print(f"\nper-population scores: {out.path}")
        if figure is not None:
            name, preds = next(iter(result.predictions.items())) if result.predictions else \
                ("predicted", found["predicted"])  # type: ignore[index]
            figure.write(lambda tmp: _plot(tmp, cells, preds, name))
            print(f"figure: {figure.path}")
    finally:
        for claim in (out, figure):
            if claim is not None:
                claim.release()
    return 0

"""TS generator ablation on the val part of the random split, each arm at one equal CPU budget.

    OMP_NUM_THREADS=1 python benchmarks/ts_ablation.py train --minutes 3.5 [--arms base,painn]
    python benchmarks/ts_ablation.py report          # -> benchmarks/results/ts_ablation.md

Data: the snapshot and splits of ``benchmarks/ts_generation.py`` (OUT/splits.json, written by its
first stage; this script makes it when missing): the random split (seed 0, a hash of each id) is
used; arms train on its train part and are scored on its val part, never on test.

Budget: every arm gets the same *CPU* time of its own process (``time.process_time``, 1 thread),
not wall time, so arms run side by side on a loaded machine are still compared fairly. The step
count comes from a timed 20-step warm-up of that arm; the cosine schedule then spans those steps.

Scores (val part): median Kabsch RMSD of the 1-sample TS at Euler x {2, 4, 8} (the best is kept,
as the shipped pipeline picks its step count on val), by size bucket (<= 14 atoms, > 14), by kind
and by element group (with any of F P S Cl, without), on the C/H/N/O part alone (which every arm,
the C/H/N/O-only data arm too, can take), and with the symmetrised prediction: the TS generated
R -> P and the one generated P -> R (the same TS) Kabsch-aligned and averaged, at twice the cost.
Each arm's result is cached in OUT/ablation/<arm>.json; a rerun trains only the missing arms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parent))  # after the stdlib: benchmarks/profile.py
from ts_generation import OUT, _load_splits  # noqa: E402  (the shared snapshot and splits)

from sciflow.datasets.reactions.align import kabsch_align  # noqa: E402
from sciflow.domains.transition_states import Config, sample_many, score, select_reactions, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ts_ablation.md"
CHNO = {1, 6, 7, 8}
HETERO = {9, 15, 16, 17}
STEPS = (2, 4, 8)

# name -> (what it changes, Config fields, train-data filter)
ARMS: dict[str, tuple[str, dict, str]] = {
    "base": ("EGNN 96 x 4, mean aggregation, all data (H C N O F P S Cl)", {}, "all"),
    "chno": ("base, trained on the C/H/N/O-only reactions (the old data's elements)",
             {"elements": (1, 6, 7, 8)}, "chno"),
    "small": ("base at 64 x 3 (more steps in the budget)", {"hidden": 64, "layers": 3}, "all"),
    "large": ("base at 128 x 5 (fewer steps in the budget)", {"hidden": 128, "layers": 5}, "all"),
    "painn": ("PaiNN 96 x 4 instead of EGNN", {"network": "painn"}, "all"),
    "sum": ("base with sum aggregation (/ 10, the old networks') instead of mean",
            {"aggregation": "sum"}, "all"),
    "scale01": ("base with source noise scale 0.1 A instead of 0.2", {"source_scale": 0.1}, "all"),
    "warm": ("EGNN 128 x 4 started from the previous shipped weights (trained 40k steps on 815 "
             "of these train reactions; no val or test reaction), F/P/S/Cl embeddings at zero",
             {"hidden": 128, "_init": "ts_old_shipped.pt"}, "all"),
}


def _elements(r) -> set[int]:
    return {int(z) for z in r.numbers}


def _kind(r) -> str:
    return getattr(r, "kind", "") or "bond_edit"


def _symmetrised(model, val, steps: int) -> list[np.ndarray]:
    """R -> P and P -> R generations of each reaction, aligned onto each other and averaged."""
    fwd = sample_many(model, [(r.reactant, r.product) for r in val], sample_steps=steps,
                      nonfinite="keep")
    back = sample_many(model, [(r.product, r.reactant) for r in val], sample_steps=steps,
                       nonfinite="keep")
    out = []
    for f, b in zip(fwd, back):
        x, y = f.best.get_positions(), b.best.get_positions()
        if np.isfinite(x).all() and np.isfinite(y).all():
            out.append(0.5 * (x + kabsch_align(y, x)))
        else:
            out.append(x)
    return out


def _groups(val) -> dict[str, list[int]]:
    g: dict[str, list[int]] = {"all": list(range(len(val)))}
    for k, r in enumerate(val):
        n = len(r.numbers)
        for key in (f"size:{'<=14' if n <= 14 else '>14'}", f"kind:{_kind(r)}",
                    f"elements:{'with F/P/S/Cl' if _elements(r) & HETERO else 'C/H/N/O only'}"):
            g.setdefault(key, []).append(k)
    return g


def _medians(rmsd: np.ndarray, groups: dict[str, list[int]]) -> dict[str, list]:
    return {k: [float(np.median(rmsd[idx])), len(idx)] for k, idx in groups.items() if idx}


def _run_arm(name: str, minutes: float, reactions, split) -> dict:
    from ase import Atoms

    what, fields, data = ARMS[name]
    tr = select_reactions(reactions, split["train"])
    val = select_reactions(reactions, split["val"])
    if data == "chno":
        tr = [r for r in tr if _elements(r) <= CHNO]
    fields = dict(fields)
    init = fields.pop("_init", None)
    if init is not None:
        from sciflow.domains.transition_states import load

        init = load(Path(OUT) / init)  # a copy of the previous shipped checkpoint
    config = Config(**fields)
    base = dict(lr=1e-3, ema_decay=0.995, progress=False, checkpoint_every=10**9, warmup_steps=100,
                log_every=10**9)
    c0 = time.process_time()
    train(tr, config.replace(train={**base, "steps": 20, "warmup_steps": 5}))
    per_step = (time.process_time() - c0) / 20
    steps = max(100, int(minutes * 60 / per_step))
    c1, w1 = time.process_time(), time.perf_counter()
    model = train(tr, config.replace(train={**base, "steps": steps}), init=init)
    cpu, wall = time.process_time() - c1, time.perf_counter() - w1
    print(f"[{name}] {len(tr)} train reactions, {steps} steps, {cpu / 60:.1f} CPU min "
          f"({wall / 60:.1f} wall)", flush=True)
    # the val reactions this arm's model takes (the C/H/N/O arm refuses F/P/S/Cl ones)
    taken = [r for r in val if _elements(r) <= set(model.elements)]
    groups = _groups(taken)
    chno = [k for k, r in enumerate(taken) if _elements(r) <= CHNO]
    by_steps = {}
    for k in STEPS:
        gen = sample_many(model, [(r.reactant, r.product) for r in taken], sample_steps=k,
                          nonfinite="keep")
        by_steps[k] = np.array([score(r, g.best).rmsd for r, g in zip(taken, gen)])
    best = min(STEPS, key=lambda k: float(np.median(by_steps[k])))
    sym = _symmetrised(model, taken, best)
    sym_rmsd = np.array([score(r, Atoms(numbers=r.numbers, positions=x)).rmsd
                         for r, x in zip(taken, sym)])
    mid = np.array([score(r, Atoms(numbers=r.numbers, positions=r.reactant.get_positions())).rmsd_midpoint
                    for r in taken])
    return {"arm": name, "what": what, "fields": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in fields.items()},
            "train_reactions": len(tr), "steps": steps, "cpu_minutes": cpu / 60,
            "wall_minutes": wall / 60, "ms_per_step_cpu": per_step * 1e3,
            "params": sum(p.numel() for p in model.net.parameters()),
            "val_taken": len(taken), "val_total": len(val),
            "median_by_steps": {str(k): float(np.median(v)) for k, v in by_steps.items()},
            "best_steps": best, "groups": _medians(by_steps[best], groups),
            "chno_median": float(np.median(by_steps[best][chno])), "chno_n": len(chno),
            "sym_groups": _medians(sym_rmsd, groups),
            "sym_chno_median": float(np.median(sym_rmsd[chno])),
            "midpoint_groups": _medians(mid, groups),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _train_cmd(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    out = Path(args.out)
    reactions, doc = _load_splits(out)
    folder = out / "ablation"
    folder.mkdir(parents=True, exist_ok=True)
    arms = args.arms.split(",") if args.arms else list(ARMS)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arms {unknown}; known: {list(ARMS)}")
    for name in arms:
        path = folder / f"{name}.json"
        if path.exists() and not args.force:
            continue
        res = {**_run_arm(name, args.minutes, reactions, doc["random"]),
               "budget_cpu_minutes": args.minutes, "snapshot_time": doc["created"],
               "snapshot_reactions": len(reactions)}
        path.write_text(json.dumps(res, indent=1))
        print(json.dumps({k: res[k] for k in ("arm", "best_steps", "groups", "sym_groups")}),
              flush=True)
    return 0


def _cell(groups: dict, key: str) -> str:
    v = groups.get(key)
    return "-" if not v else f"{v[0]:.3f} ({v[1]})"


def _report_cmd(args: argparse.Namespace) -> int:
    folder = Path(args.out) / "ablation"
    rows = [json.loads((folder / f"{a}.json").read_text()) for a in ARMS
            if (folder / f"{a}.json").exists()]
    if not rows:
        raise SystemExit(f"no arm results in {folder}; run the train stage first")
    keys = sorted({k for r in rows for k in r["groups"] if k.startswith(("size:", "kind:",
                                                                          "elements:"))})
    head = ("| arm | what | train reactions | params | steps (CPU min) | val median RMSD (A), n | "
            "C/H/N/O val part | " + " | ".join(keys) + " | symmetrised: all | symmetrised: "
            "C/H/N/O part | Euler steps (median by steps) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        by = ", ".join(f"{k}: {v:.3f}" for k, v in r["median_by_steps"].items())
        lines.append(
            f"| {r['arm']} | {r['what']} | {r['train_reactions']} | {r['params']} | {r['steps']} "
            f"({r['cpu_minutes']:.1f}) | {_cell(r['groups'], 'all')} | {r['chno_median']:.3f} "
            f"({r['chno_n']}) | " + " | ".join(_cell(r["groups"], k) for k in keys)
            + f" | {_cell(r['sym_groups'], 'all')} | {r['sym_chno_median']:.3f} | "
            f"{r['best_steps']} ({by}) |")
    mid = rows[0]["midpoint_groups"]
    lines.append("| (R+P)/2 midpoint | no model | - | - | - | " + _cell(mid, "all") + " | - | "
                 + " | ".join(_cell(mid, k) for k in keys) + " | - | - | - |")
    r0 = rows[0]
    text = f"""# TS generator ablation (val part of the random split)

Measured by `OMP_NUM_THREADS=1 python benchmarks/ts_ablation.py train --minutes {r0['budget_cpu_minutes']}`
then `python benchmarks/ts_ablation.py report` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC), on
{platform.processor() or platform.machine()}, 2 shared CPU cores (a GFN2-xTB data build and other
jobs ran beside it, load 8-11; arms and this session's training runs ran side by side), torch {torch.__version__}, 1 thread per arm.

Data: the snapshot of `benchmarks/ts_generation.py` (taken {r0['snapshot_time']},
{r0['snapshot_reactions']} verified GFN2-xTB reactions of datasets/reactions/data), random split
(seed 0, stable hash of each id): arms train on its train part and are scored on its
{r0['val_total']} val reactions, never on test. Every arm gets the same budget of
{r0['budget_cpu_minutes']} CPU minutes of its own process (steps set from a timed 20-step
warm-up; cosine schedule, AdamW lr 1e-3, EMA 0.995, batch 16 reactions + reverses, distance loss
0.5, midpoint source, x1 target unless the arm changes it). Scores: median Kabsch RMSD (A, proper
rotations, uncapped) of the 1-sample TS at the best of Euler x {{2, 4, 8}} on val, with the number
of reactions in brackets. "symmetrised": the R->P and P->R generations aligned and averaged
(twice the generation cost). The C/H/N/O-only arm refuses val reactions with F/P/S/Cl (outside
its scope), so compare arms on the "C/H/N/O val part" column. The snapshot holds no conformational,
inversion or template reactions yet and only 2 of more than 14 atoms (none in val): those columns
cannot be filled from this data.

{chr(10).join(lines)}

Per-arm records: OUT/ablation/<arm>.json (OUT = sciflow-out/bench/ts_generation).
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + (args.note + "\n" if args.note else ""))
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(OUT), help="work folder (shared with ts_generation.py)")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--minutes", type=float, default=4.0, help="CPU minutes per arm")
    t.add_argument("--arms", default="", help=f"comma-separated subset of {list(ARMS)}")
    t.add_argument("--force", action="store_true", help="retrain arms already recorded")
    t.set_defaults(func=_train_cmd)
    r = sub.add_parser("report")
    r.add_argument("--note", default="", help="a paragraph appended to the results file")
    r.set_defaults(func=_report_cmd)
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

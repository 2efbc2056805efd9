"""Meta Flow Matching benchmark: letters (synthetic) and PBMC populations (real cells).

For each task, every method is trained with 3 seeds and scored population by population on the
training populations, and on populations never seen in training (letters: the held-out letters X
and Y; PBMC: new lineage mixes of held-out cells):

- dummies: BASE (predict the source), SHIFT (add the mean training shift of the condition),
  IDEAL-SHIFT (recentre the source on the true target mean; an oracle);
- FM (condition only), CGFM (one-hot population id; unseen populations get untrained slots),
  MFM (GCN population embedding, alternating updates) and MFM with k = 0 (no graph: each cell
  embedded alone, then mean-pooled), all with the same velocity network and training budget.

Metrics per population, then averaged over populations: exact W1 and W2, RBF-MMD averaged over
gamma in {2, 1, 0.5, 0.1, 0.01, 0.005}; for PBMC also mean-L2 and the correlation of pairwise
feature correlations. Predictions integrate with dopri5 (atol = rtol = 1e-4). Reported: mean +/- std
over seeds (dummies are deterministic), training wall time and process CPU time, and the peak
resident set of a fresh process that loads only the task's tensors and trains 50 steps (with,
in brackets, its peak before training: imports + data; the difference is what training needs).

The network is smaller and trained far shorter than in the paper (which trains 4 x 512 MLPs for
24,000 epochs on a GPU): the budget here is ~20 CPU-minutes in total on a shared 2-core machine.

Calibration (its own section): MFM and FM trained on PBMC as above, with the per-population
bootstrap spread of their held-out predictions (``evaluate(..., spread_repeats=8)``) against their
actual errors: the spread-skill ratio (1 = calibrated) and the rank correlation of spread and error.

Run:   python benchmarks/single_cell_letters.py                  (writes results/single_cell.md)
       python benchmarks/single_cell_letters.py --quick          (tiny smoke run, nothing written)
       python benchmarks/single_cell_letters.py --cache runs.jsonl   (resume finished runs)
       python benchmarks/single_cell_letters.py --calibration-only   (replaces that section only)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from reporting import mean_std, splice_section

from sciflow.checkpoint import load_tensors, save_tensors
from sciflow.datasets.cells import PBMCTaskConfig, pbmc_populations
from sciflow.datasets.letters import LettersConfig, letters_anndata
from sciflow.domains.single_cell import (
    BASELINES,
    CellPopulations,
    Config,
    PopulationPair,
    WorseThanBaselineWarning,
    baseline_predictions,
    evaluate,
    mean_scores,
    mean_training_shift,
    read_populations,
    sample,
    score,
    train,
)

RESULTS = Path(__file__).parent / "results" / "single_cell.md"
TASK_KIND = "benchmark.single_cell_task"  # the cache a memory probe reads
METHODS = ("BASE", "SHIFT", "IDEAL-SHIFT", "FM", "CGFM", "MFM", "MFM (k=0)",
           "MFM (alternating)")
# label -> (method, knn override, MFM update scheme, seeds run)
TRAINED = {"FM": ("fm", None, "joint", 3), "CGFM": ("cgfm", None, "joint", 3),
           "MFM": ("mfm", None, "joint", 3), "MFM (k=0)": ("mfm", 0, "joint", 3),
           "MFM (alternating)": ("mfm", None, "alternating", 1)}


@dataclass
class Task:
    name: str
    train: CellPopulations
    splits: dict[str, CellPopulations]
    arch: dict
    train_cfg: dict
    metrics: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    eval_cells: int | None = None
    labels: tuple[str, ...] = METHODS


def letters_task(quick: bool) -> Task:
    cfg = LettersConfig(rotations=2 if quick else 10, train="ABCD" if quick else
                        LettersConfig().train)
    cells = read_populations(letters_anndata(cfg), population_key="population", pair_key="pair")
    train_names = [p for p in cells.populations if p[0] not in "XY"]
    train = cells.select(train_names)
    every = max(len(train_names) // 10, 1)
    splits = {"train (10 populations)": cells.select(train_names[::every][:10]),
              "held-out X": cells.select([p for p in cells.populations if p[0] == "X"]),
              "held-out Y": cells.select([p for p in cells.populations if p[0] == "Y"])}
    arch = _architecture(quick)
    train_cfg = dict(steps=20 if quick else 6000, populations_per_batch=10,
                     cells_per_population=64 if quick else 256, lr=2e-3)
    notes = [f"{len(train.pairs)} training populations ({len(cfg.train)} letters x "
             f"{cfg.rotations} rotations), {cfg.rotations} each for X and Y; DejaVu Sans; data "
             "seed 0; source and target rows paired.",
             "Training-set scores use 10 fixed training populations (one in 24).",
             "The source is the target plus zero-mean blur, so SHIFT and IDEAL-SHIFT barely "
             "move it: on letters all three dummies score like BASE.",
             "Metrics on a seeded subsample of 1,000 cells per population (letters have 800 to "
             "2,800 points; exact OT grows as n^3), the same cells for every method.",
             "Training budget: 6,000 steps for every method. An earlier run at 2,000 steps left "
             "MFM under-trained (training-population MMD 0.0019 vs CGFM 0.0007) and missed one "
             "target cell (held-out X MMD 0.00279 vs FM 0.00261); FM had converged by then "
             "(0.00261 at 2,000 and at 6,000 steps, seed 0)."]
    return Task("letters", train, splits, arch, train_cfg, ("w1", "w2", "mmd"), notes,
                eval_cells=1000)


def _architecture(quick: bool) -> dict:
    """Every method's network on both tasks (MFM's population encoder included)."""
    return dict(hidden=32 if quick else 128, layers=4, knn=10 if quick else 20, gnn_hidden=64,
                gnn_layers=3)


def pbmc_task(quick: bool) -> Task:
    cfg = PBMCTaskConfig(n_train=6 if quick else 48, n_test=2 if quick else 16,
                         cells=64 if quick else 300)
    cells = read_populations(pbmc_populations(cfg), population_key="population",
                             condition_key="treatment", rep="X_pca")
    train = cells.select([p for p in cells.populations if p.startswith("train")])
    splits = {"train": train,
              "held-out populations": cells.select(
                  [p for p in cells.populations if p.startswith("test")])}
    arch = _architecture(quick)
    train_cfg = dict(steps=20 if quick else 1500, populations_per_batch=10,
                     cells_per_population=48 if quick else 128, lr=2e-3)
    notes = [f"{cfg.n_train} training and {cfg.n_test} held-out populations x 2 treatments "
             f"(stim, inhib), {cfg.cells} cells per set, {cfg.n_pcs} PCs of scanpy's "
             "pbmc68k_reduced; held-out populations use new lineage mixes of held-out cells.",
             "Source and treated cells are independent draws (unpaired), as in a real screen."]
    return Task("pbmc", train, splits, arch, train_cfg,
                ("w1", "w2", "mmd", "mean_l2", "corr"), notes,
                labels=tuple(m for m in METHODS if m != "MFM (alternating)"))


def make_config(arch: dict, train_cfg: dict, label: str, seed: int, steps: int | None = None
                ) -> Config:
    """The Config of a trained method: its type, knn override and update scheme (TRAINED)."""
    model_type, knn, scheme, _ = TRAINED[label]
    arch, run = dict(arch), dict(train_cfg)
    if knn is not None:
        arch["knn"] = knn
    if steps is not None:
        run["steps"] = steps
    config = Config(model_type=model_type, training=scheme,
                    populations_per_batch=run.pop("populations_per_batch"),
                    cells_per_population=run.pop("cells_per_population"), **arch)
    return config.replace(train={**run, "seed": seed, "progress": False})


def probe_memory(path: str, label: str, steps: int) -> tuple[float, float]:
    """Peak resident set (MiB) before and after training ``label`` ``steps`` steps (child).

    The child loads only the task's tensors (saved by :func:`memory_in_child`), so the peak
    (VmHWM) before training is imports + data. Training steps are alike, so a short run
    reaches the peak of a long one.
    """
    saved = load_tensors(path, kind=TASK_KIND)
    pairs = tuple(PopulationPair(*p) for p in saved["pairs"])
    cells = CellPopulations(pairs=pairs, features=tuple(saved["features"]), rep="X", keys={})
    config = make_config(saved["arch"], saved["train_cfg"], label, seed=0, steps=steps)
    base = _peak_rss_mib()
    train(cells, config)
    return base, _peak_rss_mib()


def _peak_rss_mib() -> float:
    """VmHWM of this process image (Linux). Unlike ru_maxrss it is not inherited across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status (the memory probe needs Linux)")


def memory_in_child(task: Task, label: str, quick: bool) -> list[float]:
    """Run :func:`probe_memory` in a fresh process (peak memory is per process)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "task.pt"
        save_tensors(path, {"pairs": [(p.population, p.condition, p.source, p.target, p.paired)
                                      for p in task.train.pairs],
                            "features": list(task.train.features), "arch": task.arch,
                            "train_cfg": task.train_cfg}, kind=TASK_KIND)
        cmd = [sys.executable, __file__, "--probe", f"{path}:{label}"] + (
            ["--quick"] if quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.strip().splitlines()[-1].split()]


def run_trained(task: Task, label: str, seed: int) -> dict:
    config = make_config(task.arch, task.train_cfg, label, seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model = train(task.train, config)
    record = {"train_wall": time.perf_counter() - wall0, "train_cpu": time.process_time() - cpu0,
              "final_loss": model.result.final_loss, "scores": {}}
    for split, data in task.splits.items():
        preds = sample(model, data)
        record["scores"][split] = mean_scores(
            score(preds, data, max_cells=task.eval_cells)).as_dict()
    return record


def run_baseline(task: Task, label: str) -> dict:
    shift = mean_training_shift(task.train)
    record = {"scores": {}}
    for split, data in task.splits.items():
        preds = baseline_predictions(label.lower(), data.pairs, mean_shift=shift)
        record["scores"][split] = mean_scores(
            score(preds, data, max_cells=task.eval_cells)).as_dict()
    return record


NAMES = {"w1": "W1", "w2": "W2", "mmd": "MMD", "mean_l2": "mean-L2", "corr": "corr-of-corrs"}
DIGITS = {"w1": 3, "w2": 3, "mmd": 4, "mean_l2": 3, "corr": 3}


def report(task: Task, runs: dict[str, list[dict]], memory: dict[str, list[float]]) -> str:
    lines = [f"## {task.name}\n"] + [f"- {n}" for n in task.notes]
    a = task.arch
    c = task.train_cfg
    lines.append(f"- Velocity net: SkipMLP {a['layers']} x {a['hidden']} (SELU, residual) on "
                 "[condition, 128 sinusoidal time features, 64 random Fourier pairs, x]; MFM "
                 f"encoder: {a['gnn_layers']} GCN layers x {a['gnn_hidden']}, k = {a['knn']}; "
                 f"{c['steps']} AdamW steps (lr {c['lr']}, cosine), batch "
                 f"{c['populations_per_batch']} populations x {c['cells_per_population']} cells, "
                 "EMA 0.99. MFM updates encoder and velocity net jointly"
                 + ("; \"MFM (alternating)\" is the paper's alternating scheme at the same "
                    "budget (one seed)" if "MFM (alternating)" in task.labels else "") + ".\n")
    for split in task.splits:
        lines.append(f"### {task.name}: {split}\n")
        head = "| method | " + " | ".join(NAMES[m] for m in task.metrics) + " |"
        lines += [head, "|---" * (len(task.metrics) + 1) + "|"]
        for label in task.labels:
            cells = [mean_std([r["scores"][split][m] for r in runs[label]], DIGITS[m])
                     for m in task.metrics]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"### {task.name}: cost (per training run, mean ± std over seeds)\n",
              "| method | train wall s | train CPU s | peak RSS MiB (imports + data) | "
              "final loss |",
              "|---|---|---|---|---|"]
    for label in (m for m in task.labels if m in TRAINED):
        r = runs[label]
        lines.append(f"| {label} | {mean_std([x['train_wall'] for x in r], 1)} | "
                     f"{mean_std([x['train_cpu'] for x in r], 1)} | "
                     f"{memory[label][1]:.0f} ({memory[label][0]:.0f}) | "
                     f"{mean_std([x['final_loss'] for x in r], 4)} |")
    lines.append("")
    return "\n".join(lines)


def targets(task: Task, runs: dict[str, list[dict]], splits: list[str]) -> list[str]:
    out = []
    for split in splits:
        for m in ("w1", "w2", "mmd"):
            mfm = statistics.fmean(r["scores"][split][m] for r in runs["MFM"])
            others = {k: statistics.fmean(r["scores"][split][m] for r in runs[k])
                      for k in ("FM", "CGFM")}
            met = all(mfm < v for v in others.values())
            out.append(f"| {task.name} {split} | {NAMES[m]} | {mfm:.4g} | "
                       f"{others['FM']:.4g} | {others['CGFM']:.4g} | "
                       f"{'met' if met else 'not met'} |")
    return out


CALIBRATION = "## Calibration: per-population spread (PBMC held-out populations)"
SPREAD_REDRAWS = 8


def calibration(quick: bool, seeds: int) -> str:
    """The calibration section: spread vs error of MFM and FM on PBMC's held-out populations."""
    task = pbmc_task(quick)
    held_out = task.splits["held-out populations"]
    rows: dict[str, list[dict]] = {}
    ensembles: dict[str, dict] = {}
    for label in ("MFM", "FM"):
        rows[label] = []
        means, spreads = [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            model = train(task.train, make_config(task.arch, task.train_cfg, label, seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WorseThanBaselineWarning)  # BASE is reported
                result = evaluate(model, held_out, spread_repeats=SPREAD_REDRAWS, seed=seed)
            name = label
            spread = [s.spread for s in result.spread[name]]
            seps = [s.separation for s in result.spread[name]]
            rows[label].append({
                "ratio": result.spread_skill(name), "rho": result.spread_rank_correlation(name),
                "spread": statistics.median(spread), "error": statistics.median(
                    result.errors[name]), "noise": statistics.median(result.noise),
                "separation": statistics.median(seps),
                "w1": mean_scores(result.scores[name]).w1,
                "base_w1": mean_scores(result.scores["BASE"]).w1})
            means.append(torch.stack([x.double().mean(0) for x in result.predictions[name]]))
            spreads.append(torch.tensor(spread, dtype=torch.float64))
            print(f"[calibration] {label} seed {seed}: {time.perf_counter() - t0:.0f} s "
                  f"{json.dumps(rows[label][-1])}", flush=True)
        if seeds > 1:  # the seeds as an ensemble: its mean prediction, its spread
            m = torch.stack(means)  # (seeds, pairs, D)
            truth = torch.stack([p.target.double().mean(0) for p in held_out.pairs])
            err = (m.mean(0) - truth).pow(2).mean(1).sqrt()
            var = torch.stack(spreads).pow(2).mean(0) + m.var(0).mean(1)
            noise = torch.tensor(result.noise, dtype=torch.float64)
            ratio = float(err.pow(2).mean().sqrt() / (var + noise**2).mean().sqrt())
            order = [list(map(float, var.sqrt())), list(map(float, err))]
            rho = float(np.corrcoef(np.argsort(np.argsort(order[0])),
                                    np.argsort(np.argsort(order[1])))[0, 1])
            ensembles[label] = {"ratio": ratio, "rho": rho,
                                "spread": float(np.median(var.sqrt().numpy())),
                                "error": float(np.median(err.numpy())),
                                "noise": float(np.median(noise.numpy()))}
    lines = [CALIBRATION + "\n",
             f"- {len(held_out.pairs)} held-out (population, treatment) pairs of the PBMC task "
             f"above, models trained as there ({task.train_cfg['steps']} steps), seeds "
             f"0..{seeds - 1}; spread = std of each population's predicted mean over "
             f"{SPREAD_REDRAWS} bootstrap redraws of its source cells (mean-L2 units), error = "
             "mean-L2 between the predicted and the true target means (all cells), noise = the "
             "true target mean's own sampling error.",
             "- Spread-skill ratio = RMS error / RMS sqrt(spread^2 + noise^2) over populations: 1 "
             "for an unbiased model whose spread is right, > 1 when errors exceed what the "
             "spread accounts for. Target: within 0.5 to 2.",
             "- Command: `python benchmarks/single_cell_letters.py --calibration-only`"
             + (" (--quick)" if quick else "") + "\n",
             "| model | spread-skill ratio | rank corr (spread, error) | median spread | "
             "median error | median noise | median separation | W1 (BASE) | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, recs in rows.items():
        ratio = statistics.fmean(r["ratio"] for r in recs)
        cells = [mean_std([r[k] for r in recs], 3) for k in
                 ("ratio", "rho", "spread", "error", "noise", "separation")]
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {mean_std([r['w1'] for r in recs], 3)} ({recs[0]['base_w1']:.3f}) | "
                     f"{'met' if 0.5 <= ratio <= 2 else 'not met'} |")
    for label, r in ensembles.items():
        lines.append(f"| {label}, {seeds}-seed ensemble | {r['ratio']:.3f} | {r['rho']:.3f} | "
                     f"{r['spread']:.3f} | {r['error']:.3f} | {r['noise']:.3f} | | | "
                     f"{'met' if 0.5 <= r['ratio'] <= 2 else 'not met'} |")
    lines += ["", "The ensemble rows predict with the mean of the seeds' predicted means; their "
              "spread adds the variance between seeds (the model's own uncertainty) to the "
              "bootstrap variance.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, writes nothing")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default="letters,pbmc")
    parser.add_argument("--cache", default=None, help="JSON-lines file of finished runs (resume)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--calibration-only", action="store_true",
                        help="measure only the calibration section and splice it into --out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.calibration_only:
        section = calibration(args.quick, args.seeds)
        if args.quick:
            print(section)
        else:
            Path(args.out).write_text(splice_section(Path(args.out).read_text(), CALIBRATION, section))
            print(f"wrote the calibration section of {args.out}")
        return 0
    builders = {"letters": letters_task, "pbmc": pbmc_task}
    if args.probe:  # child process of memory_in_child
        path, label = args.probe.split(":", 1)
        print(*probe_memory(path, label, steps=10 if args.quick else 50))
        return 0
    started, cpu0 = time.perf_counter(), time.process_time()
    cache: dict[str, dict] = {}
    computed: set[str] = set()
    if args.cache and Path(args.cache).exists():
        for line in Path(args.cache).read_text().splitlines():
            rec = json.loads(line)
            cache[rec["key"]] = rec["record"]
    sections, target_rows = [], []
    for name in args.tasks.split(","):
        task = builders[name](args.quick)
        runs: dict[str, list[dict]] = {}
        for label in task.labels:
            seeds = [0] if label.lower() in BASELINES else \
                list(range(min(args.seeds, TRAINED[label][3])))
            runs[label] = []
            for seed in seeds:
                key = f"{name}/{label}/{seed}/{'quick' if args.quick else 'full'}"
                if key not in cache:
                    t0 = time.perf_counter()
                    rec = run_baseline(task, label) if label.lower() in BASELINES else \
                        run_trained(task, label, seed)
                    cache[key] = rec
                    computed.add(key)
                    if args.cache:
                        with open(args.cache, "a") as f:
                            f.write(json.dumps({"key": key, "record": rec}) + "\n")
                    print(f"[{name}] {label} seed {seed}: {time.perf_counter() - t0:.0f} s "
                          f"{json.dumps(rec['scores'])}", flush=True)
                runs[label].append(cache[key])
        memory = {}
        for label in (m for m in task.labels if m in TRAINED):
            key = f"{name}/{label}/memory/{'quick' if args.quick else 'full'}"
            if key not in cache:
                cache[key] = {"mib": memory_in_child(task, label, args.quick)}  # [base, peak]
                if args.cache:
                    with open(args.cache, "a") as f:
                        f.write(json.dumps({"key": key, "record": cache[key]}) + "\n")
            memory[label] = cache[key]["mib"]
        sections.append(report(task, runs, memory))
        held_out = [s for s in task.splits if s.startswith("held-out")]
        target_rows += targets(task, runs, held_out)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    mode = "/quick" if args.quick else "/full"
    used = [k for k in cache if k.endswith(mode) and "/memory/" not in k]
    train_cpu = sum(cache[k].get("train_cpu", 0.0) for k in used)
    reused = sum(k not in computed for k in used)
    text = "\n".join([
        "# Single-cell benchmark: Meta Flow Matching on letters and PBMC populations\n",
        f"Machine: {platform.processor() or platform.machine()}, 2-core shared CPU, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread. Training alone, summed "
        f"over the {len(used)} runs in these tables, took {train_cpu / 60:.1f} CPU-min. This "
        f"invocation took {wall / 60:.1f} min wall and {cpu / 60:.1f} min CPU and read "
        f"{reused} finished runs from its cache (--cache).\n",
        "Command: `python benchmarks/single_cell_letters.py"
        + (" --quick" if args.quick else "") + (" --cache runs.jsonl" if args.cache else "")
        + "`\n",
        "Mean ± std over training seeds 0, 1, 2 (dummies are deterministic; MFM (alternating): "
        "seed 0 only). Lower is better "
        "for W1, W2, MMD and mean-L2; higher for corr-of-corrs (Pearson r of the pairwise "
        "feature correlations, CellOT's \"r2\").\n",
        "## Target: MFM beats FM and CGFM on unseen populations (W1, W2, MMD)\n",
        "| task / split | metric | MFM | FM | CGFM | target |", "|---|---|---|---|---|---|",
        *target_rows, "",
        *sections,
        calibration(args.quick, args.seeds) if "pbmc" in args.tasks.split(",") else "",
    ])
    if args.quick:
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of the process: {max_rss:.0f} MiB",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Few-step generation: flow maps (CTM-style, data-free), reflow and data distillation vs the teacher.

Section 1, 2-D toy (8 gaussians -> moons). One teacher, the toy domain's flow
(``sciflow.domains.toy``, default Config: MLP 3 x 64, independent coupling, 2,000 steps, seed 0).
Every student starts from the teacher's weights and gets the same training budget: ``--steps``
AdamW updates of batch 256, lr 1e-3 with a cosine schedule, EMA 0.99, seeds 0..``--seeds``-1:

- CTM-style flow map (``sciflow.flowmaps.CTMLoss``): data points on the path, teacher Heun targets
  over stretches of at most 0.5 (2 steps), soft consistency, flow matching at weight 0.01;
- data-free flow map (``sciflow.flowmaps.DataFreeLoss``): source draws only;
- reflow (``sciflow.distill.reflow``) and k-step data distillation (``sciflow.distill.distill``,
  one student for each k = 1, 2, 4), both on ``--pairs`` teacher couplings (rk4, 32 steps);
- the teacher itself with Euler steps.

Scored by W2 (``sciflow.metrics.wasserstein2``) between 2,000 samples and 2,000 fresh target draws
at 1, 2 and 4 network evaluations (flow maps: jumps; flows: Euler steps), mean ± std over the
student seeds.

Section 2, transition states. The teacher is a fixed copy of the shipped TS model
(``--ts-teacher``, default sciflow-out/few_step/teacher.pt, so a retrained shipped file does not
move the figures); ``sciflow.domains.transition_states.distil`` trains a data-free flow map from
it (source draws conditioned on the R and P of the teacher's random-split train part, no TS read;
the student cached in sciflow-out/few_step/ts_student.pt, ``--retrain`` to redo it). Scored: the
median Kabsch RMSD on the random-split test part at 1, 2 and 4 jumps against the teacher's Euler
steps, over ``--ts-seeds`` seeds of the source draws.

Section 3, cloud removal as an inverse problem on the remote-sensing model (the small model and
setting of benchmarks/inference.py section 5, trained here in a few CPU minutes): one date per
held-out synthetic series hidden from the condition, its clear pixels the measurement of a mask
operator; FLAIR (``domains/remote_sensing/sampling.flair_states``) vs FlowChef steering vs the
unguided sampler at equal network evaluations, PSNR and SSIM on the date's cloudy pixels.

Writes benchmarks/results/few_step.md; ``--only toy|ts|rs`` (repeatable) runs those sections and
splices them into the file.   Run: python benchmarks/few_step.py [--only ts] [--steps 2000 ...]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent
# benchmarks/profile.py would shadow the standard library's profile, which torch's compiler
# imports when the first optimiser is built: load the standard one before the folder goes first
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import cProfile  # noqa: E402, F401

sys.path.insert(0, str(_HERE))
from reporting import mean_std  # noqa: E402

from sciflow.datasets.toy2d import TOY2D  # noqa: E402
from sciflow.distill import distill, generate_pairs, reflow  # noqa: E402
from sciflow.domains.toy import Config, train  # noqa: E402
from sciflow.flowmaps import (  # noqa: E402
    CTMLoss,
    DataFreeLoss,
    FlowBatch,
    FlowMap,
    TwoTimeMLP,
    fit_flow_map,
    sample_flow_map,
    warm_start,
)
from sciflow.matcher import FlowMatcher  # noqa: E402
from sciflow.metrics import wasserstein2  # noqa: E402
from sciflow.solvers import odeint  # noqa: E402
from sciflow.train import TrainConfig  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "few_step.md"
NFES = (1, 2, 4)
BATCH = 256


def toy_source(like: torch.Tensor, *, cond=None, batch=None, generator=None) -> torch.Tensor:
    """The toy teacher's source density (8 gaussians) as a sciflow Source function."""
    return TOY2D["8gaussians"](like.shape[0], generator=generator).to(like)


def student_config(steps: int, seed: int) -> TrainConfig:
    return TrainConfig(steps=steps, lr=1e-3, schedule="cosine", ema_decay=0.99, seed=seed,
                       progress=False, log_every=max(steps // 10, 1))


def flow_map_from(teacher: torch.nn.Module) -> FlowMap:
    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=64, layers=3))
    warm_start(fmap.net, teacher)
    return fmap


@torch.no_grad()
def scores(sampler, x0: torch.Tensor, ref: torch.Tensor) -> dict[int, float]:
    return {k: wasserstein2(sampler(x0, k), ref) for k in NFES}


def run_seed(teacher, pairs, steps: int, seed: int, x0, ref) -> dict[str, dict]:
    """Every student for one seed: W2 per NFE, wall time (s), teacher NFE spent in training."""
    out: dict[str, dict] = {}
    moons, gauss = TOY2D["moons"], TOY2D["8gaussians"]

    def flow_map_row(name, loss, batches, teacher_nfe):
        t0 = time.perf_counter()
        model = fit_flow_map(flow_map_from(teacher), loss, batches, student_config(steps, seed)).model
        wall = time.perf_counter() - t0
        w2 = scores(lambda x, k: sample_flow_map(model, x, jumps=k).x, x0, ref)
        out[name] = {"w2": w2, "wall": wall, "teacher_nfe": teacher_nfe}

    matcher = FlowMatcher(source=toy_source)
    ctm = CTMLoss(teacher=teacher, matcher=matcher)  # defaults: span 0.5, 2 Heun steps, fm 0.01
    flow_map_row("CTM-style flow map", ctm,
                 lambda step, g: FlowBatch(moons(BATCH, generator=g)), steps * BATCH * 4)
    flow_map_row("data-free flow map", DataFreeLoss(teacher=teacher),
                 lambda step, g: FlowBatch(gauss(BATCH, generator=g)), steps * BATCH * 2)

    t0 = time.perf_counter()
    re = reflow(copy.deepcopy(teacher), pairs, steps=steps, batch_size=BATCH, lr=1e-3,
                ema_decay=0.99, seed=seed).model
    out["reflow"] = {"w2": scores(lambda x, k: odeint(re, x, steps=k).x, x0, ref),
                     "wall": time.perf_counter() - t0, "teacher_nfe": pairs.count * pairs.nfe}
    w2, wall = {}, 0.0
    for k in NFES:  # one k-step student per NFE, each with the full budget
        t0 = time.perf_counter()
        dk = distill(copy.deepcopy(teacher), pairs, k=k, steps=steps, batch_size=BATCH, lr=1e-3,
                     ema_decay=0.99, seed=seed).model
        wall += time.perf_counter() - t0
        with torch.no_grad():
            w2[k] = wasserstein2(odeint(dk, x0, steps=k).x, ref)
    out["data distillation (k-step, one student per k)"] = {
        "w2": w2, "wall": wall / len(NFES), "teacher_nfe": pairs.count * pairs.nfe}
    return out


def verdicts(rows: dict[str, list[dict[int, float]]]) -> list[str]:
    """Plain statements derived from the measured means and spreads."""
    mean = {name: {k: statistics.fmean(r[k] for r in runs) for k in NFES} for name, runs in rows.items()}
    spread = {name: {k: (statistics.stdev([r[k] for r in runs]) if len(runs) > 1 else 0.0)
                     for k in NFES} for name, runs in rows.items()}
    teacher = "teacher (Euler)"
    lines = []
    for k in NFES:
        order = sorted(mean, key=lambda n: mean[n][k])
        best, second = order[0], order[1]
        gap = mean[second][k] - mean[best][k]
        close = gap <= spread[best][k] + spread[second][k]
        lines.append(
            f"- {k} NFE: best is **{best}** (W2 {mean[best][k]:.3f}), next {second} "
            f"({mean[second][k]:.3f}){' — within the seed spread of each other' if close else ''}; "
            f"the teacher's Euler scores {mean[teacher][k]:.3f} "
            f"({mean[teacher][k] / mean[best][k]:.2f}x the best).")
    free, ctm = "data-free flow map", "CTM-style flow map"
    data_based = [n for n in mean if n not in (free, teacher)]
    beaten = [n for n in data_based if mean[free][1] < mean[n][1]]
    lines.append(f"- One step: the data-free map beats {len(beaten)} of the {len(data_based)} "
                 f"methods that use data or teacher couplings ({', '.join(beaten) or 'none'}).")
    for k in NFES:
        diff = mean[ctm][k] - mean[free][k]
        noise = spread[ctm][k] + spread[free][k]
        verdict = ("ahead of" if diff > noise else "behind" if -diff > noise else
                   "level with (within the seed spread)")
        lines.append(f"- {k} NFE: the data-free map is {verdict} the CTM-style map, which uses "
                     f"data ({mean[free][k]:.3f} vs {mean[ctm][k]:.3f}).")
    for name in (ctm, free):
        trend = "improves" if mean[name][4] < mean[name][1] else "does not improve"
        lines.append(f"- {name}: W2 {trend} from 1 to 4 jumps ({mean[name][1]:.3f} -> "
                     f"{mean[name][4]:.3f}).")
    return lines


def toy_section(args: argparse.Namespace) -> list[str]:
    """Section 1 (see the module docstring)."""
    started = time.perf_counter()

    t0 = time.perf_counter()
    teacher = train(Config().replace(train={"seed": 0, "progress": False})).net
    teacher_wall = time.perf_counter() - t0
    g = torch.Generator().manual_seed(123)
    x0, ref = TOY2D["8gaussians"](2000, generator=g), TOY2D["moons"](2000, generator=g)
    floor = wasserstein2(TOY2D["moons"](2000, generator=g), ref)
    with torch.no_grad():
        sol = odeint(teacher, x0, method="dopri5", atol=1e-5, rtol=1e-5)
        teacher_ref = (wasserstein2(sol.x, ref), sol.nfe)
        teacher_w2 = scores(lambda x, k: odeint(teacher, x, steps=k).x, x0, ref)
    pairs = generate_pairs(teacher, TOY2D["8gaussians"](args.pairs, generator=g))

    per_seed = [run_seed(teacher, pairs, args.steps, s, x0, ref) for s in range(args.seeds)]
    names = list(per_seed[0])
    rows = {"teacher (Euler)": [teacher_w2]} | {n: [r[n]["w2"] for r in per_seed] for n in names}
    cost = {n: (statistics.fmean(r[n]["wall"] for r in per_seed), per_seed[0][n]["teacher_nfe"])
            for n in names}
    total = time.perf_counter() - started

    lines = [
        "## 1. 2-D toy: 8 gaussians -> moons, W2 at 1, 2 and 4 network evaluations",
        "",
        f"Command: `python benchmarks/few_step.py --only toy --steps {args.steps} --seeds {args.seeds} "
        f"--pairs {args.pairs} --threads {args.threads}`. Machine: {platform.machine()} CPU, "
        f"2 cores shared with other work, torch {torch.__version__}, {args.threads} thread(s); "
        f"section {total / 60:.1f} min.",
        "",
        f"Teacher: the toy domain's flow (MLP 3 x 64, independent coupling, 2,000 steps, seed 0; "
        f"{teacher_wall:.0f} s). Its dopri5 solution scores W2 {teacher_ref[0]:.3f} at "
        f"{teacher_ref[1]} NFE; two independent target draws of 2,000 points score "
        f"{floor:.3f} (the floor at this sample size).",
        "",
        f"Equal training budgets: every student starts from the teacher's weights and gets "
        f"{args.steps} AdamW updates of batch {BATCH} (lr 1e-3, cosine, EMA 0.99), seeds "
        f"0..{args.seeds - 1}. What differs is what the teacher is asked for: reflow and "
        f"distillation train on {args.pairs} teacher couplings (rk4, 32 steps, 128 NFE each) made "
        "once; the CTM-style map integrates the teacher over each training stretch (2 Heun steps) "
        "from data points; the data-free map evaluates the teacher at the student's own states "
        "(2 evaluations per sample per update) and never sees data or couplings.",
        "",
        "| method | W2 @ 1 NFE | W2 @ 2 NFE | W2 @ 4 NFE | train s / student | teacher NFE in training |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        cells = " | ".join(mean_std([r[k] for r in runs], 3) for k in NFES)
        spent = f"{cost[name][0]:.0f} | {cost[name][1]:,}" if name in cost else "— | —"
        lines.append(f"| {name} | {cells} | {spent} |")
    lines += [
        "",
        "Flow maps take k jumps on the uniform grid (k network evaluations); reflow and the "
        "teacher take k Euler steps; data distillation trains one student per k on the Euler grid "
        "{0, 1/k, ...} (its wall time is per student). Teacher row: one teacher, no seed spread.",
        "",
        "Verdicts (derived from the table):",
        "",
        *verdicts(rows),
        "",
    ]
    return lines


# ------------------------------------------------------------------ section 2: transition states
OUT = Path("sciflow-out/few_step")
TS_JUMPS = (1, 2, 4)


def ts_section(args: argparse.Namespace) -> list[str]:
    """Section 2: a data-free flow map distilled from the TS model, against it on the test split."""
    from sciflow.domains.transition_states import evaluate, load, load_reactions
    from sciflow.domains.transition_states.distillation import (
        distil,
        load_distilled,
        save_distilled,
        with_jumps,
    )
    from sciflow.provenance import file_sha256

    started = time.perf_counter()
    teacher_path = Path(args.ts_teacher)
    if not teacher_path.is_file():
        raise SystemExit(f"{teacher_path}: copy the TS checkpoint there first (the benchmark "
                         "measures a fixed copy, so a retrained shipped file does not move it)")
    teacher = load(teacher_path)
    reactions = load_reactions()
    split = teacher.meta["splits"]["random"]
    by_id = {r.id: r for r in reactions}
    train_rx = [by_id[i] for i in split["train"] if i in by_id]
    test_rx = [by_id[i] for i in split["test"] if i in by_id]
    settings = dict(steps=args.ts_steps, batch_size=args.ts_batch, lr=args.ts_lr,
                    velocity_weight=args.ts_velocity_weight, start_at_source=0.5, seed=0)
    digest = file_sha256(teacher_path)
    cache = OUT / "ts_student.pt"
    student, train_cpu = None, None
    if cache.is_file() and not args.retrain:
        cached = load_distilled(cache)
        made = cached.meta.get("distillation", {})
        if (made.get("teacher_sha256") == digest
                and all(made.get(k) == v for k, v in settings.items())):
            student, train_cpu = cached, made.get("cpu_seconds")
    reused = student is not None
    if student is None:
        cpu0 = time.process_time()
        student = distil(teacher, train_rx, jumps=1, out_dir=OUT / "ts_run", progress=None,
                         **settings)
        train_cpu = time.process_time() - cpu0
        student.meta["distillation"].update(teacher_sha256=digest, cpu_seconds=train_cpu)
        save_distilled(student, cache)
    made = student.meta["distillation"]

    def median(model, steps: int, seed: int) -> tuple[float, float, float]:
        ev = evaluate(model, test_rx, samples=1, sample_steps=steps, solver="euler", seed=seed,
                      time_single=False, uncertainty="none")
        return ev.summary.rmsd_median, ev.summary.rmsd_midpoint_median, ev.seconds_batched

    seeds = range(args.ts_seeds)
    rows: dict[str, dict] = {}
    default = teacher.default_steps
    for k in sorted({1, 2, 4, default}):
        runs = [median(teacher, k, s) for s in seeds]
        rows[f"teacher, {k} Euler step(s)" + (" (its default)" if k == default else "")] = {
            "nfe": k, "rmsd": [r[0] for r in runs], "sec": statistics.fmean(r[2] for r in runs)}
        midpoint = runs[0][1]
    for k in TS_JUMPS:
        runs = [median(with_jumps(student, k), k, s) for s in seeds]
        rows[f"data-free flow map, {k} jump(s)"] = {
            "nfe": k, "rmsd": [r[0] for r in runs], "sec": statistics.fmean(r[2] for r in runs)}
    ref = statistics.fmean(rows[next(n for n in rows if "its default" in n)]["rmsd"])
    one = statistics.fmean(rows["data-free flow map, 1 jump(s)"]["rmsd"])
    two = statistics.fmean(rows["data-free flow map, 2 jump(s)"]["rmsd"])
    t1 = statistics.fmean(rows["teacher, 1 Euler step(s)"]["rmsd"])
    total = time.perf_counter() - started
    lines = [
        "## 2. Transition states: one- and two-step generators distilled from the TS model",
        "",
        f"Command: `python benchmarks/few_step.py --only ts --ts-steps {args.ts_steps} "
        f"--ts-batch {args.ts_batch} --ts-lr {args.ts_lr} --ts-velocity-weight "
        f"{args.ts_velocity_weight} --ts-seeds {args.ts_seeds} --threads {args.threads}`. "
        f"Machine: {platform.machine()} CPU, 2 cores shared with other work (load average "
        f"{_load()}), torch {torch.__version__}, {args.threads} thread(s); section "
        f"{total / 60:.1f} min wall"
        + (f" (the student read from {cache}, trained by an earlier run of these settings)."
           if reused else "."),
        "",
        f"Teacher: a fixed copy of the shipped TS model (`{teacher_path}`, sha256 "
        f"{digest[:12]}: EGNN {teacher.config.hidden} x {teacher.config.layers}, x1 target, "
        f"midpoint source of scale {teacher.config.source_scale} A, default {default} Euler "
        f"steps). Student: `sciflow.domains.transition_states.distil` — the same EGNN with the "
        f"jump's target time as 16 invariant per-molecule scalars (E(3)-equivariant as the "
        f"teacher), warm-started from it (one jump = one teacher Euler step before training), "
        f"trained by data-free distillation (`sciflow.flowmaps.DataFreeLoss`, velocity weight "
        f"{made['velocity_weight']}) on source draws conditioned on the R and P of the "
        f"{made['reactions']} reactions of the teacher's random-split train part (both "
        f"directions; no TS read): {made['steps']} AdamW updates of {made['batch_size']} "
        f"reactions, lr {made['lr']} cosine, EMA {made['ema_decay']}; "
        f"{(train_cpu or 0) / 60:.1f} CPU min ({made.get('wall_seconds', 0) / 60:.1f} min wall) "
        "of training. One trained map samples with 1, 2 or 4 jumps.",
        "",
        f"Scored on the {len(test_rx)} reactions of the teacher's random-split test part: "
        f"median Kabsch RMSD (A) of one generated TS per reaction to the reference, mean ± std "
        f"over {args.ts_seeds} seeds of the source draws (`evaluate(..., samples=1)`). The (R+P)/2 "
        f"midpoint scores {midpoint:.3f} A.",
        "",
        "| generator | network evaluations | median RMSD (A) | x the teacher's default | s / reaction (batched) |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        m = statistics.fmean(row["rmsd"])
        lines.append(f"| {name} | {row['nfe']} | {mean_std(row['rmsd'], 3)} | {m / ref:.2f}x | "
                     f"{row['sec'] * 1e3:.1f} ms |")
    ref_runs = rows[next(n for n in rows if "its default" in n)]["rmsd"]

    def paired(name: str) -> str:
        """Per seed the ratio to the teacher's default on the same source draws: mean ± std."""
        return mean_std([a / b for a, b in zip(rows[name]["rmsd"], ref_runs)], 3)

    lines += [
        "",
        "Verdicts (derived from the table; paired = per seed, on the same source draws):",
        "",
        f"- Target (one step within 1.1x of the multi-step model): **"
        f"{'met' if one <= 1.1 * ref else 'not met'}** — {one:.3f} A vs {ref:.3f} A at "
        f"{default} steps ({one / ref:.2f}x); the teacher's own single Euler step is "
        f"{t1 / ref:.2f}x. Paired ratios: student 1 jump "
        f"{paired('data-free flow map, 1 jump(s)')}x, teacher 1 Euler step "
        f"{paired('teacher, 1 Euler step(s)')}x.",
        f"- Two jumps: {two:.3f} A ({two / ref:.2f}x the teacher's default; paired "
        f"{paired('data-free flow map, 2 jump(s)')}x; the teacher's 2 Euler steps "
        f"{paired('teacher, 2 Euler step(s)')}x).",
        "",
    ]
    return lines


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


# ------------------------------------------------------------------ section 3: cloud removal
RS_NFES = (8, 16)


def rs_section(args: argparse.Namespace) -> list[str]:
    """Section 3: cloud removal as an inverse problem, FLAIR vs FlowChef vs unguided sampling.

    The setting of benchmarks/inference.py section 5: one date per held-out series is hidden from
    the model's condition and its clear pixels become the measurement y = M x (M: the cloud mask
    of that date, its band channels); the date's cloudy pixels are scored.
    """
    from cloud_removal import cloud_removal, cloudiest_date

    from sciflow.datasets.sentinel import load_template
    from sciflow.domains.remote_sensing import (
        make_measurement,
        series_from_cube,
        stack_series,
        velocity_field,
    )
    from sciflow.domains.remote_sensing.sampling import flair_states, sample_states
    from sciflow.flair import FLAIRConfig, calibrate

    members = args.rs_members
    started = time.perf_counter()
    problem = cloud_removal(args.rs_series, args.rs_train_steps)
    model, result, test, b = problem.model, problem.result, problem.test, problem.n
    size, dates = test.shape[-1], test.shape[1]
    blind, informed = problem.task(test, problem.hide), problem.task(test, torch.zeros_like(problem.hide))
    measurement = make_measurement(model, test, problem.observed)

    # FLAIR's regularisation weight, calibrated off line on training series (same hidden date)
    calib = stack_series([series_from_cube(c) for c in problem.train_cubes[:32]])
    calib_batch = problem.task(calib, cloudiest_date(calib))
    decoded = problem.decoded

    runs: dict[str, dict[int, torch.Tensor]] = {}
    weights = {}
    for nfe in RS_NFES:
        grid = tuple(0.8 * i / nfe for i in range(1, nfe + 1))
        weights[nfe] = calibrate(velocity_field(model), calib_batch.x1, times=grid,
                                 cond=calib_batch.cond,
                                 generator=torch.Generator().manual_seed(7))
        runs.setdefault("unguided, date hidden", {})[nfe] = decoded(
            sample_states(model, blind, samples=members, steps=nfe))
        runs.setdefault("FlowChef eta 0.5, date hidden", {})[nfe] = decoded(
            sample_states(model, blind, samples=members, steps=nfe, steer=0.5,
                          measurement=measurement))
        runs.setdefault("FLAIR (lambda constant), date hidden", {})[nfe] = decoded(
            flair_states(model, blind, measurement, samples=members, steps=nfe))
        runs.setdefault("FLAIR (lambda calibrated), date hidden", {})[nfe] = decoded(
            flair_states(model, blind, measurement, samples=members, steps=nfe,
                         config=FLAIRConfig(weight=weights[nfe])))
        runs.setdefault("unguided, the date's clear pixels in the condition", {})[nfe] = decoded(
            sample_states(model, informed, samples=members, steps=nfe))

    table: dict[tuple[str, int], tuple] = {}
    for name, by_nfe in runs.items():
        for nfe, ens in by_nfe.items():
            table[name, nfe] = problem.score(ens)
    lin = problem.score(problem.linear_interpolation())
    rows = []
    for nfe in RS_NFES:
        base = table["unguided, date hidden", nfe][2]
        for name in runs:
            meas, sc, per = table[name, nfe]
            paired = "-" if name == "unguided, date hidden" else problem.paired_gain(per, base)
            crps = f"{sc.crps:.4f}" if sc.crps is not None else "-"
            rows.append(f"| {name} | {nfe} | {meas:.4f} | {sc.psnr:.2f} | {sc.ssim:.4f} | "
                        f"{sc.rmse:.4f} | {crps} | {paired} |")
    rows.append(f"| linear interpolation of the other dates | 0 | {lin[0]:.4f} | {lin[1].psnr:.2f} "
                f"| {lin[1].ssim:.4f} | {lin[1].rmse:.4f} | - | - |")

    verdicts = []
    for nfe in RS_NFES:
        fc = table["FlowChef eta 0.5, date hidden", nfe]
        for name in ("FLAIR (lambda calibrated), date hidden", "FLAIR (lambda constant), date hidden"):
            fl = table[name, nfe]
            diff = fl[2] - fc[2]
            se = float(diff.std() / math.sqrt(b))
            if float(diff.mean()) > 2 * se and fl[1].ssim > fc[1].ssim:
                verdict = "ahead of"
            elif float(diff.mean()) < -2 * se:
                verdict = "behind"
            else:
                verdict = "level with (paired gain within 2 s.e.)"
            verdicts.append(
                f"- {nfe} NFE, {name.split(',')[0]}: **{verdict}** "
                f"FlowChef (PSNR {fl[1].psnr:.2f} vs {fc[1].psnr:.2f} dB, SSIM {fl[1].ssim:.4f} vs "
                f"{fc[1].ssim:.4f}; paired per-series PSNR {float(diff.mean()):+.2f} ± {se:.2f} dB, "
                f"better on {int((diff > 0).sum())}/{b}).")
    met = [v for v in verdicts if "**ahead of**" in v]
    verdicts.append(f"- Target (FLAIR ahead of FlowChef): **{'met' if met else 'not met'}** "
                    f"({len(met)} of {len(verdicts)} FLAIR rows ahead by the rule above).")
    lam = ", ".join(f"{v:.2f}" for v in weights[RS_NFES[0]].values)
    total = time.perf_counter() - started
    return [
        "## 3. Cloud removal: FLAIR vs FlowChef vs unguided sampling",
        "",
        f"Command: `python benchmarks/few_step.py --only rs --rs-train-steps "
        f"{args.rs_train_steps} --rs-series {args.rs_series} --rs-members {members} --threads "
        f"{args.threads}`. Machine: {platform.machine()} CPU, 2 cores shared with other work "
        f"(load average {_load()}), {args.threads} thread(s); section {total / 60:.1f} min wall "
        f"({problem.train_cpu / 60:.1f} CPU min up to the trained model).",
        "",
        f"Prior: the remote-sensing domain's spatio-temporal flow (x1 prediction, linear path, "
        f"dim 32, depth 2, ACor + STM, {problem.parameters_k:.0f} k "
        f"parameters) trained here for {result.step} steps on 96 synthetic Sentinel-2-like series "
        f"({size} x {size} px, {dates} dates) over the template *{load_template().source}* — the "
        f"model of benchmarks/inference.py section 5. Held out: {b} series from a disjoint part "
        f"of the scene (cloud cover 0.7). In each, the cloudiest date that still shows 15-85% of "
        f"its ground is hidden from the model's condition; the forward operator is that date's "
        f"cloud mask (`sciflow.operators.Mask` on its band channels at the clear pixels) and y "
        f"its clear reflectance. Unguided: the plain ODE (Euler). FlowChef: `sciflow.steering."
        f"flowchef` at eta 0.5 (the exact projection onto y at every step). FLAIR: "
        f"`sciflow.flair.flair` through `domains/remote_sensing/sampling.flair_states` (exact "
        f"data consistency, trajectory adjustment a(t) = t, step size 1, t_max 0.8), lambda "
        f"constant or calibrated off line on 32 training series (at {RS_NFES[0]} NFE: {lam}). "
        f"Equal network evaluations per member (NFE column), {members}-member ensembles, scores "
        "of the ensemble mean. Measurement RMSE: on the observed pixels before pasting them back; "
        "PSNR / SSIM / RMSE / CRPS: on the date's cloudy pixels with the observed pixels pasted "
        "back for every method; paired: per-series PSNR gain over the unguided sampler, mean ± "
        "s.e. (series improved). The condition row gives the measured pixels to the model's "
        "condition instead (the domain's pipeline), a reference, not a competitor.",
        "",
        "| method | NFE | measurement RMSE | PSNR dB | SSIM | RMSE | CRPS | paired PSNR gain dB |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Verdicts (target: FLAIR ahead of FlowChef; ahead = paired per-series PSNR gain over "
        "FlowChef above 2 s.e. and a higher SSIM):",
        "",
        *verdicts,
        "",
    ]


# ------------------------------------------------------------------ main: sections and splicing
SECTIONS = {"toy": "## 1.", "ts": "## 2.", "rs": "## 3."}
TITLE = ("# Few-step generation and inverse problems: flow maps, reflow and distillation "
         "against the teacher; FLAIR cloud removal")


def splice(text: str, key: str, block: list[str]) -> str:
    """Replace the section starting with ``key`` (up to the next section) by ``block``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    mine = [i for i in starts if lines[i].startswith(key)]
    if not mine:
        return "\n".join(lines).rstrip() + "\n\n" + "\n".join(block).rstrip() + "\n"
    begin = mine[0]
    end = next((i for i in starts if i > begin), len(lines))
    return "\n".join(lines[:begin] + block + lines[end:]).rstrip() + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(SECTIONS), action="append",
                    help="run only these sections and splice them into --out (repeatable)")
    ap.add_argument("--steps", type=int, default=2000, help="toy: training updates of every student")
    ap.add_argument("--seeds", type=int, default=3, help="toy: student seeds (mean ± std)")
    ap.add_argument("--pairs", type=int, default=4096, help="toy: teacher couplings for reflow/distill")
    ap.add_argument("--ts-teacher", default=str(OUT / "teacher.pt"),
                    help="TS: the teacher checkpoint (a fixed copy of the shipped model)")
    ap.add_argument("--ts-steps", type=int, default=1500, help="TS: distillation updates")
    ap.add_argument("--ts-batch", type=int, default=16, help="TS: reactions per update")
    ap.add_argument("--ts-lr", type=float, default=5e-4)
    ap.add_argument("--ts-velocity-weight", type=float, default=0.0)
    ap.add_argument("--ts-seeds", type=int, default=3, help="TS: seeds of the source draws")
    ap.add_argument("--rs-train-steps", type=int, default=300, help="RS: training steps of the prior")
    ap.add_argument("--rs-series", type=int, default=32, help="RS: held-out series")
    ap.add_argument("--rs-members", type=int, default=4, help="RS: ensemble members")
    ap.add_argument("--retrain", action="store_true", help="TS: ignore the cached student")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    chosen = args.only or list(SECTIONS)
    makers = {"toy": toy_section, "ts": ts_section, "rs": rs_section}
    text = args.out.read_text(encoding="utf-8") if args.out.is_file() else TITLE + "\n"
    for name in chosen:
        block = makers[name](args)
        text = splice(text, SECTIONS[name], block)
        print("\n".join(block), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()

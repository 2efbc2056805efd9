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
student seeds. Sections 2 (transition states) and 3 (cloud removal) are written as "not run yet"
until their domain parts exist.

Writes benchmarks/results/few_step.md.   Run: python benchmarks/few_step.py [--steps 2000 --seeds 3]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="training updates of every student")
    ap.add_argument("--seeds", type=int, default=3, help="student seeds (mean ± std)")
    ap.add_argument("--pairs", type=int, default=4096, help="teacher couplings for reflow/distill")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
        "# Few-step generation: flow maps, reflow and distillation against the teacher",
        "",
        f"Command: `python benchmarks/few_step.py --steps {args.steps} --seeds {args.seeds} "
        f"--pairs {args.pairs} --threads {args.threads}`. Machine: {platform.machine()} CPU, "
        f"2 cores shared with other work, torch {torch.__version__}, {args.threads} thread(s); "
        f"whole run {total / 60:.1f} min.",
        "",
        "## 1. 2-D toy: 8 gaussians -> moons, W2 at 1, 2 and 4 network evaluations",
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
        "## 2. Transition states: one- and two-step generators distilled from the shipped TS model",
        "",
        "**Not run yet.** Planned: data-free flow maps (`GraphFlowMapNet` around the TS "
        "network, warm-started from it) distilled from the shipped TS model; test-split median "
        "RMSD at 1 and 2 jumps against the multi-step model (target: within 1.1x at one step). "
        "Needs the transition-state part of issue 20.",
        "",
        "## 3. Cloud removal: FLAIR vs FlowChef vs unguided sampling",
        "",
        "**Not run yet.** Planned: PSNR and SSIM of FLAIR (`sciflow.flair`), FlowChef steering "
        "(`sciflow.steering`) and unguided sampling on the remote-sensing model at equal network "
        "evaluations (target: FLAIR ahead of FlowChef). Needs the remote-sensing part of issue 20.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(args.out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

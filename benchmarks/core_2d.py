"""Core benchmark: sciflow vs torchcfm vs Meta's flow_matching on 8 gaussians -> moons.

Side by side in one run:

1. **exact solvers**: whether POT's ``emd`` and SciPy's ``linear_sum_assignment`` release the GIL
   (progress of a Python loop on the main thread while the solver runs in a worker), and their
   CPU time across batch sizes and dimensions, which sets ``ExactOTCoupling(solver="auto")``;
2. **through the Trainer** (the toy domain's public ``train``, prefetch on and off): OT-CFM /
   I-CFM wall time per step on the demo configuration (MLP 3 x 64, batch 256) and on an MLP
   4 x 512, beside torchcfm's OT / I ratio on the same networks (its own bare loop), and the
   Trainer's overhead over a bare loop of the same work;
3. **libraries' bare loops**: training time per step, the same network (MLP 3 x 64 with SELU on
   [x, t], torchcfm's notebook model), batch 256, the same AdamW steps and data draws;
4. **quality**: W2 of 2,000 samples against 2,000 fresh target draws at Euler NFE 1, 2, 4, 8, 32
   and dopri5, every model sampled by the same integrator (torchdiffeq, which flow_matching's own
   ODESolver wraps).

Writes benchmarks/results/core_2d.md.
Run: OMP_NUM_THREADS=1 python benchmarks/core_2d.py [--steps 3000] [--seeds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchdiffeq
from torch import nn

from sciflow.couplings import ExactOTCoupling, auto_solver, squared_distance_cost
from sciflow.datasets.toy2d import TOY2D, eight_gaussians, moons
from sciflow.domains.toy import Config
from sciflow.domains.toy import train as toy_train
from sciflow.domains.toy.model import build_matcher, build_network
from sciflow.matcher import FlowMatcher
from sciflow.metrics import wasserstein2

RESULTS = Path(__file__).parent / "results" / "core_2d.md"
BATCH = 256


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --------------------------------------------------------------------------- 1. exact solvers
def _solvers() -> dict[str, Callable[[np.ndarray], object]]:
    import ot
    from scipy.optimize import linear_sum_assignment

    def emd(c: np.ndarray) -> object:
        w = np.full(c.shape[0], 1.0 / c.shape[0])
        return ot.emd(w, w, c, numItermax=10**7)

    def held(c: np.ndarray) -> object:  # control: a C loop that keeps the GIL
        return sum(range(4_000_000))

    return {"emd (POT)": emd, "hungarian (SciPy)": linear_sum_assignment,
            "control: sum(range) (holds the GIL)": held}


def _cost(n: int, d: int, g: torch.Generator) -> np.ndarray:
    if d == 2:
        x0, x1 = eight_gaussians(n, generator=g), moons(n, generator=g)
    else:
        x0, x1 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + 1.0
    return squared_distance_cost(x0, x1).numpy()


def _spin(seconds: float) -> tuple[float, float]:
    """(iterations per second, longest stall in s) of a bare Python loop run for ``seconds``."""
    n, t0 = 0, time.perf_counter()
    end, last, stall = t0 + seconds, t0, 0.0
    while (now := time.perf_counter()) < end:
        stall, last = max(stall, now - last), now
        n += 1
    return n / (now - t0), stall


def _solve_until(solve: Callable[[np.ndarray], object], cost: np.ndarray,
                 done: threading.Event) -> None:
    while not done.is_set():
        solve(cost)


def gil_rows(seconds: float = 1.5) -> list[str]:
    """Main-thread loop iterations per second while a worker solves back to back, relative to the
    loop alone: ~1 (or the core share) when the solver releases the GIL, ~0 when it holds it."""
    cost = _cost(512, 2, torch.Generator().manual_seed(0))
    alone, stall0 = _spin(seconds)
    rows = [f"| none (the loop alone) | - | 1.00 | {1e3 * stall0:.1f} |"]
    for name, solve in _solvers().items():
        t0 = time.process_time()
        solve(cost)
        once = time.process_time() - t0
        done = threading.Event()
        worker = threading.Thread(target=_solve_until, args=(solve, cost, done))
        worker.start()
        time.sleep(0.05)
        beside, stall = _spin(seconds)
        done.set()
        worker.join()
        rows.append(f"| {name} | {1e3 * once:.1f} | {beside / alone:.2f} | {1e3 * stall:.1f} |")
    return rows


def solver_rows(sizes: tuple[int, ...], dims: tuple[int, ...], reps: int) -> tuple[list[str], dict]:
    """Median CPU ms of each solver on noise-to-data costs (d = 2: 8 gaussians -> moons)."""
    solve = _solvers()
    g = torch.Generator().manual_seed(1)
    rows, faster = [], {}
    for d in dims:
        for n in sizes:
            times: dict[str, list[float]] = {"emd": [], "hungarian": []}
            for _ in range(reps if n <= 256 else max(3, reps // 2)):
                c = _cost(n, d, g)
                for key, name in (("emd", "emd (POT)"), ("hungarian", "hungarian (SciPy)")):
                    t0 = time.process_time()
                    solve[name](c)
                    times[key].append(time.process_time() - t0)
            e, h = (1e3 * statistics.median(times[k]) for k in ("emd", "hungarian"))
            faster[(d, n)] = "emd" if e < h else "hungarian"
            auto = auto_solver(n, d)
            rows.append(f"| {d} | {n} | {e:.2f} | {h:.2f} | {h / e:.2f} | {faster[(d, n)]} | {auto} |")
    return rows, faster


# --------------------------------------------------------------------- 2. through the Trainer
class Stamps:
    """A toy density that records (wall, process CPU) time at every draw: the toy ``train`` draws
    its source once a step, so the differences are per-step times (prefetch included: the draw
    ahead keeps the step rhythm). Registered in TOY2D under a name of its own."""

    name = "8gaussians (timed)"

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []
        TOY2D[self.name] = self

    def __call__(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        self.times.append((time.perf_counter(), time.process_time()))
        return eight_gaussians(n, generator=generator)

    def per_step(self, skip: int = 5) -> np.ndarray:
        """(steps, 2) wall and CPU ms of every step, the first ``skip`` left out; then reset."""
        t = np.array(self.times[skip:])
        self.times = []
        return 1e3 * np.diff(t, axis=0)


def toy_step(stamps: Stamps, coupling: str, hidden: int, layers: int, steps: int,
             prefetch: bool) -> np.ndarray:
    """(steps, 2) wall and CPU ms per step of the toy domain's public ``train``."""
    cfg = Config(source=stamps.name, coupling=coupling, hidden=hidden, layers=layers,
                 batch_size=BATCH).replace(train={"steps": steps, "progress": False,
                                                  "prefetch": prefetch})
    toy_train(cfg)
    return stamps.per_step()


def bare_step(stamps: Stamps, coupling: str, hidden: int, layers: int, steps: int
              ) -> np.ndarray:
    """(steps, 2) wall and CPU ms per step of a bare loop doing the toy train's work: the same draws,
    FlowMatcher loss, AdamW step; no EMA, clipping, schedule, logs or checks."""
    cfg = Config(coupling=coupling, hidden=hidden, layers=layers, batch_size=BATCH)
    torch.manual_seed(0)
    net, fm = build_network(cfg), build_matcher(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.train.lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x0, x1 = stamps(BATCH, generator=g), moons(BATCH, generator=g)
        loss = fm.loss(net, x1, x0=x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return stamps.per_step()


def concurrency(seconds: float = 0.5) -> float:
    """How many cores this process got for two threads: (main-thread torch work alone + a worker's
    exact-OT solves alone) / both overlapped. 2 with a free second core, 1 with none."""
    a, b = torch.randn(256, 256), _cost(256, 2, torch.Generator().manual_seed(3))
    solve = _solvers()["emd (POT)"]

    def work() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            a @ a

    def solves(k: int) -> None:
        for _ in range(k):
            solve(b)

    t0 = time.perf_counter()
    solves(20)
    t_solve = time.perf_counter() - t0
    t0 = time.perf_counter()
    work()
    t_work = time.perf_counter() - t0
    worker = threading.Thread(target=solves, args=(20,))
    t0 = time.perf_counter()
    worker.start()
    work()
    worker.join()
    return (t_work + t_solve) / (time.perf_counter() - t0)


class Net(nn.Module):
    """v(x, t) = MLP([x, t]) with SELU; called as sciflow's contract and as the peers'."""

    def __init__(self, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        sizes = [3] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(a, b), nn.SELU()]
        self.f = nn.Sequential(*mods, nn.Linear(hidden, 2))

    def forward(self, x, t, *, cond=None, batch=None):
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        return self.f(torch.cat([x, t.reshape(-1, 1).to(x.dtype)], dim=-1))


# ------------------------------------------------------------------ 3. libraries' bare loops
def make_step(lib: str, coupling: str):
    """A function (model, x0, x1) -> loss for one library and coupling."""
    if lib == "sciflow":
        fm = FlowMatcher(coupling=ExactOTCoupling() if coupling == "ot" else None)
        return lambda m, x0, x1: fm.loss(m, x1, x0=x0)
    if lib == "torchcfm":
        from torchcfm.conditional_flow_matching import (
            ConditionalFlowMatcher,
            ExactOptimalTransportConditionalFlowMatcher,
        )

        cfm = (ExactOptimalTransportConditionalFlowMatcher(0.0) if coupling == "ot"
               else ConditionalFlowMatcher(0.0))

        def step(m, x0, x1):
            t, xt, ut = cfm.sample_location_and_conditional_flow(x0, x1)
            return ((m(xt, t) - ut) ** 2).mean()

        return step
    if lib == "flow_matching":
        from flow_matching.path import AffineProbPath
        from flow_matching.path.scheduler import CondOTScheduler

        path = AffineProbPath(scheduler=CondOTScheduler())

        def step(m, x0, x1):
            t = torch.rand(x1.shape[0])
            ps = path.sample(x_0=x0, x_1=x1, t=t)
            return ((m(ps.x_t, ps.t) - ps.dx_t) ** 2).mean()

        return step
    raise ValueError(lib)


def train(lib: str, coupling: str, steps: int, seed: int = 0, *, net: nn.Module | None = None
          ) -> tuple[nn.Module, list[float]]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = net if net is not None else Net()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_of = make_step(lib, coupling)
    per_step = []
    for _ in range(steps):
        t0 = time.perf_counter()
        x0, x1 = eight_gaussians(BATCH, generator=g), moons(BATCH, generator=g)
        loss = loss_of(model, x0, x1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        per_step.append(time.perf_counter() - t0)
    return model, per_step


# ---------------------------------------------------------------------------- 4. quality
@torch.no_grad()
def w2_scores(model: nn.Module, nfes=(1, 2, 4, 8, 32)) -> dict[str, float]:
    g = torch.Generator().manual_seed(123)
    x0, ref = eight_gaussians(2000, generator=g), moons(2000, generator=g)
    f = lambda t, x: model(x, t)  # noqa: E731  (torchdiffeq's argument order)
    out = {}
    for n in nfes:
        x = torchdiffeq.odeint(f, x0, torch.linspace(0, 1, n + 1), method="euler")[-1]
        out[f"NFE {n}"] = wasserstein2(x, ref)
    x = torchdiffeq.odeint(f, x0, torch.tensor([0.0, 1.0]), method="dopri5", atol=1e-5, rtol=1e-5)[-1]
    out["dopri5"] = wasserstein2(x, ref)
    return out


def trainer_section(stamps: Stamps, rounds: int, steps: int, big_steps: int
                    ) -> tuple[list[str], dict]:
    """OT / I through the Trainer (prefetch on, off) and torchcfm's OT / I, interleaved rounds;
    the median over rounds of each run's median wall ms per step."""
    nets = {"demo": (64, 3, steps), "4 x 512": (512, 4, big_steps)}
    keys = [(net, run) for net in nets for run in ("I", "OT serial", "OT prefetch",
                                                   "torchcfm I", "torchcfm OT")]
    ms: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    for _ in range(rounds):
        for net, run in keys:
            hidden, layers, n = nets[net]
            if run.startswith("torchcfm"):
                model = build_network(Config(hidden=hidden, layers=layers))
                per = train("torchcfm", "ot" if run.endswith("OT") else "independent", n,
                            net=model)[1]
                ms[(net, run)].append(1e3 * statistics.median(per[5:]))
            else:
                coupling = "independent" if run == "I" else "ot"
                per = toy_step(stamps, coupling, hidden, layers, n, run != "OT serial")
                ms[(net, run)].append(float(np.median(per[:, 0])))
    med = {k: statistics.median(v) for k, v in ms.items()}
    rows = []
    for net in nets:
        i, ser, pre = med[(net, "I")], med[(net, "OT serial")], med[(net, "OT prefetch")]
        ti, tot = med[(net, "torchcfm I")], med[(net, "torchcfm OT")]
        rows.append(f"| {net} | {i:.2f} | {ser:.2f} ({ser / i:.2f}x) | {pre:.2f} "
                    f"({pre / i:.2f}x) | {ti:.2f} | {tot:.2f} ({tot / ti:.2f}x) |")
    return rows, med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000, help="training steps per quality run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds averaged in the W2 table "
                    "(0 skips the quality section)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--timing-steps", type=int, default=300, help="steps per timing run (demo)")
    ap.add_argument("--no-write", action="store_true", help="print, do not write the results")
    ap.add_argument("--keep-quality", action="store_true",
                    help="with --seeds 0: carry the W2 section and its target line over from the "
                    "results file as they are (rerun the timings alone)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    _solvers()["emd (POT)"](np.eye(2))  # import POT once, outside every timing
    load0 = os.getloadavg()

    gil = gil_rows()
    sizes, dims = (64, 128, 192, 256, 384, 512, 1024), (2, 16, 64)
    solver_table, faster = solver_rows(sizes, dims, reps=7)

    stamps = Stamps()
    cores = [concurrency()]
    trainer_rows, med = trainer_section(stamps, args.rounds, args.timing_steps,
                                        max(20, args.timing_steps // 10))
    cores.append(concurrency())
    quantiles = {"p10": 0.1, "median": 0.5}
    runs_of: dict[str, list[np.ndarray]] = {"bare": [], "trainer": []}
    n = 4 * args.timing_steps
    for _ in range(args.rounds):
        runs_of["bare"].append(bare_step(stamps, "independent", 64, 3, n))
        runs_of["trainer"].append(toy_step(stamps, "independent", 64, 3, n, True))
    # per (loop, quantile): [wall, CPU] ms, the quantile over a run's steps, median over rounds
    step_ms = {(loop, q): np.median([np.quantile(r, quantiles[q], axis=0) for r in rs], axis=0)
               for loop, rs in runs_of.items() for q in quantiles}
    ov = {q: step_ms[("trainer", q)] / step_ms[("bare", q)] for q in quantiles}

    runs = [("sciflow", "independent"), ("torchcfm", "independent"),
            ("flow_matching", "independent"), ("sciflow", "ot"), ("torchcfm", "ot")]
    times: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    for _ in range(3):  # interleave short rounds so machine load hits every library alike
        for r in runs:
            times[r].extend(train(*r, steps=200, seed=1)[1][20:])
    ms = {r: 1e3 * statistics.median(v) for r, v in times.items()}
    load1 = os.getloadavg()

    cmd = (f"OMP_NUM_THREADS=1 python benchmarks/core_2d.py --steps {args.steps} --threads "
           f"{args.threads} --seeds {args.seeds} --rounds {args.rounds} --timing-steps "
           f"{args.timing_steps}{' --keep-quality' if args.keep_quality else ''}")
    lines = [
        "# Core benchmark: 8 gaussians -> moons (sciflow vs torchcfm vs flow_matching)",
        "",
        f"Command: `{cmd}`. Machine: {platform.machine()} CPU, {os.cpu_count()} cores shared "
        f"with other work (load average {load0[0]:.1f} at the start, {load1[0]:.1f} after the "
        f"timings), torch {torch.__version__}, {args.threads} thread(s). Batch {BATCH}.",
        "",
        "## Exact solvers",
        "",
        "Do they release the GIL? Iterations per second of a Python loop on the main thread "
        "while a worker thread runs the solver back to back (512 points), relative to the loop "
        "alone, and its longest stall: a solver that keeps the GIL stalls the loop for a whole "
        "call; one that releases it leaves the loop its share of the machine's cores.",
        "",
        "| in the worker | one call, CPU ms | main-thread progress | longest main-thread stall, "
        "ms |",
        "|---|---|---|---|",
        *gil,
        "",
        "CPU time per solve (median), noise to data (d = 2: 8 gaussians -> moons; d > 2: "
        "N(0, I) -> N(1, I)):",
        "",
        "| d | points | emd ms | hungarian ms | hungarian / emd | faster | auto picks |",
        "|---|---|---|---|---|---|---|",
        *solver_table,
        "",
        "`ExactOTCoupling(solver=\"auto\")` (`sciflow.couplings.auto_solver`) uses the simplex "
        "from 192 points at d <= 4, 256 at d <= 32 and 512 above, the Hungarian method below.",
        "",
        "## OT-CFM / I-CFM through the Trainer, with prefetch",
        "",
        "The toy domain's public `train` (FlowMatcher + Trainer; EMA, clipping, cosine schedule), "
        "wall ms per step (median over a run's steps, then over "
        f"{args.rounds} interleaved rounds) of {args.timing_steps}-step runs (demo: MLP 3 x 64) and "
        f"{max(20, args.timing_steps // 10)} steps (MLP 4 x 512). OT serial: `prefetch=False`; "
        "OT prefetch: the default, the next batch's exact OT solved in a worker thread. "
        "torchcfm: its `ExactOptimalTransportConditionalFlowMatcher` / `ConditionalFlowMatcher` "
        "in a bare loop on the same network, same run.",
        "",
        "Prefetch needs a second core: two threads of known work (torch matmuls beside exact-OT "
        "solves) ran "
        f"{cores[0]:.2f}x / {cores[1]:.2f}x faster overlapped than one after the other, before / "
        "after these timings (2 = a free second core, 1 = none; on a saturated machine the "
        "kernel's per-session fair share gives a second thread no extra time).",
        "",
        "| network | I-CFM ms | OT-CFM serial ms (/ I) | OT-CFM prefetch ms (/ I) | "
        "torchcfm I ms | torchcfm OT ms (/ I) |",
        "|---|---|---|---|---|---|",
        *trainer_rows,
        "",
    ]
    ratio = {net: med[(net, "OT prefetch")] / med[(net, "I")] for net in ("demo", "4 x 512")}
    tcfm = med[("demo", "torchcfm OT")] / med[("demo", "torchcfm I")]
    lines += [
        "## Trainer overhead over a bare loop (demo configuration, I-CFM)",
        "",
        f"The toy `train` against a bare loop of the same work (draws, FlowMatcher loss, AdamW "
        f"step), {args.rounds} interleaved rounds of {n} steps each: a quantile of the per-step "
        "times over a run, then the median over rounds. CPU time is the process's. The 10th "
        "percentile is a step the rest of the machine did not disturb; the median carries the "
        "load (which slows the Trainer's Python more than the bare loop's kernels).",
        "",
        "| step | measure | bare loop ms | Trainer ms | Trainer / bare |",
        "|---|---|---|---|---|",
        *[f"| {q} | {m} | {step_ms[('bare', q)][k]:.3f} | {step_ms[('trainer', q)][k]:.3f} | "
          f"{ov[q][k]:.3f} |" for q in quantiles for k, m in enumerate(("wall", "CPU"))],
        "",
        "## Libraries' bare loops: training time per step (median of 3 interleaved rounds x 180 "
        "steps)",
        "",
        "| library | coupling | ms / step | sciflow / peer |",
        "|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r[0]} | {r[1]} | {ms[r]:.2f} | {ms[('sciflow', r[1])] / ms[r]:.2f}x |")
    s_i, s_ot = ms[("sciflow", "independent")], ms[("sciflow", "ot")]
    lines += ["", f"Serial OT-CFM / I-CFM step time in these bare loops: sciflow {s_ot / s_i:.2f}x, "
              f"torchcfm {ms[('torchcfm', 'ot')] / ms[('torchcfm', 'independent')]:.2f}x.", ""]

    w2_ok, kept = None, []
    if not args.seeds and args.keep_quality and RESULTS.exists():
        old = RESULTS.read_text()
        start = old.find("## W2 of samples")
        if start >= 0:
            end = old.find("\n## ", start)
            lines += old[start:end].rstrip("\n").split("\n") + [""]
            kept = [ln for ln in old.splitlines() if ln.startswith("- W2 at NFE <= 4")]
            cmd_w2 = next((ln for ln in old.splitlines() if ln.startswith("Command: `")), "")
            lines += [f"(W2 section and its target kept from the earlier run, {cmd_w2[9:]})", ""]
    if args.seeds:
        seeds = range(args.seeds)
        per_seed = {r: [w2_scores(train(*r, steps=args.steps, seed=s)[0]) for s in seeds]
                    for r in runs}
        quality = {r: {k: statistics.mean(d[k] for d in v) for k in v[0]} for r, v in per_seed.items()}
        spread = {r: {k: statistics.pstdev(d[k] for d in v) for k in v[0]} for r, v in per_seed.items()}
        lines += [
            f"## W2 of samples after {args.steps} steps (2,000 samples vs 2,000 fresh moons; "
            f"mean +/- std over {args.seeds} training seeds)",
            "",
            "| library | coupling | " + " | ".join(quality[runs[0]]) + " |",
            "|---|---|" + "---|" * len(quality[runs[0]]),
        ]
        for r in runs:
            lines.append(f"| {r[0]} | {r[1]} | " + " | ".join(
                f"{quality[r][k]:.3f} +/- {spread[r][k]:.3f}" for k in quality[r]) + " |")
        g = torch.Generator().manual_seed(5)
        floor = wasserstein2(moons(2000, generator=g), moons(2000, generator=g))
        lines += ["", f"Sampling floor (W2 between two independent 2,000-point moons draws): "
                  f"{floor:.3f}.", ""]
        low_nfe = [f"NFE {k}" for k in (1, 2, 4)]
        w2_ok = all(quality[("sciflow", c)][k] <= quality[(lib, c)][k] * 1.05
                    for lib, c in runs if lib != "sciflow" for k in low_nfe)

    auto_ok = all(faster[(d, n)] == auto_solver(n, d) for d, n in faster)
    lines += [
        "## Targets",
        "",
        f"- OT-CFM / I-CFM through the Trainer with prefetch, MLP 4 x 512: "
        f"{ratio['4 x 512']:.2f}x (target <= 1.15x): {verdict(ratio['4 x 512'] <= 1.15)}",
        f"- OT-CFM / I-CFM through the Trainer with prefetch, demo MLP 3 x 64: "
        f"{ratio['demo']:.2f}x against torchcfm's {tcfm:.2f}x (target: below it): "
        f"{verdict(ratio['demo'] < tcfm)}",
        *[f"- Trainer overhead over a bare loop, demo configuration, {q} step: wall "
          f"{ov[q][0]:.3f}x, CPU {ov[q][1]:.3f}x (target <= 1.10x): {verdict(max(ov[q]) <= 1.10)}"
          for q in quantiles],
        f"- `solver=\"auto\"` picks the measured faster solver in every cell above: "
        f"{verdict(auto_ok)} (where not, the two differ by the ratio shown)",
    ]
    if w2_ok is not None:
        lines.append(f"- W2 at NFE <= 4 no worse than the peers' (within 5% sampling noise): "
                     f"{verdict(w2_ok)}")
    lines += [*kept, ""]
    text = "\n".join(lines)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

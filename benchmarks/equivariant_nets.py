"""Benchmark the equivariant graph velocity networks of sciflow.nn side by side.

Setup: a batch of 64 molecules x 20 atoms (random point clouds, std 1.5 A per axis, elements drawn
from H, C, N, O), fully connected graphs, 3 layers, hidden 128 for EGNN and PaiNN; the e3nn
tensor-product network (l <= 1, and the optional l <= 2) gets the multiplicity whose parameter count
is closest to EGNN's.

Measured per network and thread count: parameters; forward time (no grad); forward + backward time
of sum(v^2); single-molecule forward latency (inference mode); peak memory of one forward + backward
(growth of the resident set in a fresh process); and the equivariance errors of
``sciflow.testing.equivariance_errors`` in float32 and float64 (float64 modules built under
``torch.set_default_dtype(torch.float64)``). The networks are timed round-robin, repetition by
repetition, so that load from other jobs on the shared machine hits them alike; both wall-clock and
process CPU time are recorded.

Run:  python benchmarks/equivariant_nets.py            (writes benchmarks/results/equivariant_nets.md)
      python benchmarks/equivariant_nets.py --quick    (2 repetitions, 1 thread, nothing written)
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

from sciflow.nn import GraphVelocityNet, make_graph_velocity
from sciflow.testing import default_dtype, equivariance_errors

RESULTS = Path(__file__).resolve().parent / "results" / "equivariant_nets.md"
COMMAND = "python benchmarks/equivariant_nets.py"
GRAPHS, ATOMS, LAYERS, HIDDEN = 64, 20, 3, 128
LATENCY_CALLS = 20  # single-molecule calls per latency sample
TARGET_EGNN_TRAIN_S, TARGET_EGNN_LATENCY_MS, TARGET_E3NN_RATIO = 0.9, 3.0, 2.0


@dataclass(frozen=True)
class Clock:
    """Wall-clock seconds (median and best of the repetitions) and median process CPU seconds."""

    median: float
    best: float
    cpu: float

    @staticmethod
    def of(samples: list[tuple[float, float]], scale: float = 1.0) -> Clock:
        wall = [w * scale for w, _ in samples]
        return Clock(
            median=statistics.median(wall),
            best=min(wall),
            cpu=statistics.median(c * scale for _, c in samples),
        )


@dataclass(frozen=True)
class Timing:
    """One network at one thread count: forward, forward+backward (s), latency (ms)."""

    threads: int
    forward: Clock
    train: Clock
    latency: Clock


def molecules(
    graphs: int, atoms: int, *, dtype: torch.dtype = torch.float32, seed: int = 0
) -> Batch:
    g = torch.Generator().manual_seed(seed)
    elements = torch.tensor([1, 6, 7, 8])
    return Batch.from_data_list(
        [
            Data(
                pos=1.5 * torch.randn(atoms, 3, generator=g, dtype=dtype),
                z=elements[torch.randint(0, 4, (atoms,), generator=g)],
            )
            for _ in range(graphs)
        ]
    )


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def build(name: str, kw: dict, dtype: torch.dtype = torch.float32) -> GraphVelocityNet:
    torch.manual_seed(0)
    with default_dtype(dtype):
        return make_graph_velocity(name, layers=LAYERS, **kw)


def e3nn_matching(target: int, lmax: int) -> dict[str, int]:
    """The e3nn multiplicity (a multiple of 8) whose parameter count is closest to ``target``."""
    best: tuple[int, int] | None = None
    for mul in range(16, 257, 8):
        count = n_params(build("e3nn", {"hidden": mul, "lmax": lmax}))
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (mul, count)
        if count > target:
            break
    assert best is not None
    return {"hidden": best[0], "lmax": lmax}


def clocked(fn: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_networks(nets: dict[str, GraphVelocityNet], threads: int, reps: int) -> dict[str, Timing]:
    """Time every network round-robin at one thread count."""
    torch.set_num_threads(threads)
    batch, one = molecules(GRAPHS, ATOMS), molecules(1, ATOMS, seed=2)
    t = torch.rand(GRAPHS, generator=torch.Generator().manual_seed(1))

    def forward(net: GraphVelocityNet) -> None:
        with torch.no_grad():
            net(batch.pos, t, z=batch.z, batch=batch.batch)

    def train(net: GraphVelocityNet) -> None:
        net.zero_grad(set_to_none=True)
        net(batch.pos, t, z=batch.z, batch=batch.batch).square().sum().backward()

    def latency(net: GraphVelocityNet) -> None:
        with torch.inference_mode():
            for _ in range(LATENCY_CALLS):
                net(one.pos, t[:1], z=one.z, batch=one.batch)

    kinds = {"forward": forward, "train": train, "latency": latency}
    samples = {(label, kind): [] for label in nets for kind in kinds}
    for net in nets.values():  # warm-up
        train(net)
        latency(net)
    for _ in range(reps):
        for kind, fn in kinds.items():
            for label, net in nets.items():
                samples[label, kind].append(clocked(functools.partial(fn, net)))
    return {
        label: Timing(
            threads=threads,
            forward=Clock.of(samples[label, "forward"]),
            train=Clock.of(samples[label, "train"]),
            latency=Clock.of(samples[label, "latency"], scale=1e3 / LATENCY_CALLS),
        )
        for label in nets
    }


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def peak_memory_child(name: str, kw: dict) -> None:
    """In a fresh process: resident-set growth during one forward + backward, printed as JSON."""
    torch.set_num_threads(1)
    net, batch = build(name, kw), molecules(GRAPHS, ATOMS)
    t = torch.rand(batch.num_graphs)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark VmHWM to VmRSS
    before = _status_kib("VmRSS")
    net(batch.pos, t, z=batch.z, batch=batch.batch).square().sum().backward()
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - before) / 1024}))


def peak_memory(name: str, kw: dict) -> float | None:
    out = subprocess.run(
        [sys.executable, __file__, "--peak-memory", json.dumps({"name": name, "kw": kw})],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def tensor_product_timing(mul: int, reps: int) -> dict[str, float]:
    """Forward+backward of one layer's edge tensor product: e3nn's module vs EdgeTensorProduct."""
    from e3nn import o3

    from sciflow.nn.tensor_product import EdgeTensorProduct, hidden_irreps

    torch.set_num_threads(1)
    irreps, irreps_sh = hidden_irreps(mul, mul, 1), o3.Irreps.spherical_harmonics(1)
    ours = EdgeTensorProduct(irreps, irreps_sh, {ir for _, ir in irreps})
    e3nn_tp = o3.TensorProduct(
        irreps,
        irreps_sh,
        ours.irreps_out,
        ours.instructions,
        shared_weights=False,
        internal_weights=False,
    )
    edges = GRAPHS * ATOMS * (ATOMS - 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(edges, irreps.dim, generator=g, requires_grad=True)
    y = o3.spherical_harmonics(irreps_sh, torch.randn(edges, 3, generator=g), True)
    w = torch.randn(edges, ours.weight_numel, generator=g, requires_grad=True)

    def run_ours() -> None:
        sum(p.square().sum() for p in ours(x, y, w)).backward()

    def run_e3nn() -> None:
        e3nn_tp(x, y, w).square().sum().backward()

    run_ours(), run_e3nn()
    samples: dict[str, list[tuple[float, float]]] = {"ours": [], "e3nn": []}
    for _ in range(reps):
        samples["e3nn"].append(clocked(run_e3nn))
        samples["ours"].append(clocked(run_ours))
    return {
        "edges": edges,
        "mul": mul,
        "e3nn": Clock.of(samples["e3nn"]),
        "ours": Clock.of(samples["ours"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repetitions, 1 thread, no file")
    parser.add_argument("--peak-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory:
        spec = json.loads(args.peak_memory)
        peak_memory_child(spec["name"], spec["kw"])
        return
    reps, threads = (2, [1]) if args.quick else (args.reps, args.threads)
    load_before = os.getloadavg()
    started = time.perf_counter()

    egnn_params = n_params(build("egnn", {"hidden": HIDDEN}))
    configs = {
        "EGNN": ("egnn", {"hidden": HIDDEN}),
        "PaiNN": ("painn", {"hidden": HIDDEN}),
        "e3nn l<=1": ("e3nn", e3nn_matching(egnn_params, 1)),
        "e3nn l<=2": ("e3nn", e3nn_matching(egnn_params, 2)),
    }
    nets = {label: build(name, kw) for label, (name, kw) in configs.items()}
    timings = {k: time_networks(nets, k, reps) for k in threads}
    torch.set_num_threads(1)
    rows = {}
    for label, (name, kw) in configs.items():
        rows[label] = {
            "kw": kw,
            "params": n_params(nets[label]),
            "peak_mib": peak_memory(name, kw),
            "err32": equivariance_errors(nets[label], molecules(GRAPHS, ATOMS)).max_error,
            "err64": equivariance_errors(
                build(name, kw, torch.float64), molecules(GRAPHS, ATOMS, dtype=torch.float64)
            ).max_error,
        }
        print(label, rows[label], flush=True)
    tp = tensor_product_timing(configs["e3nn l<=1"][1]["hidden"], reps)
    report = render(
        rows, timings, tp, reps, load_before, os.getloadavg(), time.perf_counter() - started
    )
    print(report)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"wrote {RESULTS}")


def _ok(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(
    rows: dict,
    timings: dict[int, dict[str, Timing]],
    tp: dict,
    reps: int,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    seconds: float,
) -> str:
    model_name = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    lines = [
        "# Equivariant graph velocity networks",
        "",
        f"Written by `{COMMAND}` (repository root, project venv; {seconds / 60:.0f} min). "
        "Do not edit by hand.",
        "",
        f"- Machine: {model_name}, {os.cpu_count()} cores, shared with other jobs: load average "
        f"{load_before[0]:.1f} before and {load_after[0]:.1f} after the run (2 = both cores "
        f"busy). torch {torch.__version__}, Python {platform.python_version()}.",
        f"- Workload: {GRAPHS} molecules x {ATOMS} atoms (random point clouds, std 1.5 A, "
        f"H/C/N/O), fully connected graphs ({ATOMS * (ATOMS - 1)} directed edges a molecule), "
        f"{LAYERS} layers, hidden {HIDDEN}; e3nn multiplicity chosen for the parameter count "
        "closest to EGNN's. No conditioning inputs.",
        f"- Each cell: wall-clock median / best of {reps} repetitions, then median process CPU "
        "time in brackets. The networks are timed round-robin so load from other jobs falls on "
        "all of them; with 1 thread, CPU time is the cost the network itself needs, wall time "
        "adds the waiting for a core. Forward: `torch.no_grad`; forward+backward: loss "
        "sum(v^2), gradients for all parameters; latency: one 20-atom molecule under "
        f"`torch.inference_mode` (per call, averaged over {LATENCY_CALLS} calls a repetition).",
        "- Peak memory: growth of the resident set (VmHWM - VmRSS) during one forward+backward "
        "in a fresh process, 1 thread.",
        "- Equivariance error: the largest relative error max|a - b| / max|v| over 3 random "
        "orthogonal maps per graph (2 rotations, 1 reflection), per-graph translations, "
        "permutations within graphs and each graph run alone "
        "(`sciflow.testing.equivariance_errors`) on the same batch; the float64 modules are "
        "built in float64.",
        "",
    ]

    def cell(c: Clock, digits: int) -> str:
        return f"{c.median:.{digits}f} / {c.best:.{digits}f} ({c.cpu:.{digits}f})"

    for k, by_label in timings.items():
        lines += [
            f"## {k} thread{'s' if k > 1 else ''} (`torch.set_num_threads({k})`)",
            "",
            "| network | config | params | forward (s) | forward+backward (s) | "
            "single-molecule forward (ms) | peak memory (MiB) | equivariance error f32 / f64 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, row in rows.items():
            timing = by_label[label]
            kw = ", ".join(f"{a}={b}" for a, b in row["kw"].items())
            peak = "n/a" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
            lines.append(
                f"| {label} | {kw} | {row['params'] / 1e3:.0f}k | {cell(timing.forward, 3)} | "
                f"{cell(timing.train, 3)} | {cell(timing.latency, 2)} | {peak} | "
                f"{row['err32']:.1e} / {row['err64']:.1e} |"
            )
        lines.append("")
    lines += [
        "## Targets",
        "",
        "Two verdicts: on the best wall-clock time of the repetitions (what this shared machine "
        "gave, waiting for a core included), and on process CPU time (the work itself: with 1 "
        "thread, the wall time on an otherwise idle core; with 2 threads the sum over both, so "
        "an upper bound on that).",
        "",
        "| target | threads | wall median / best (CPU) | status (wall, best) | status (CPU) |",
        "|---|---|---|---|---|",
    ]
    for k, by_label in timings.items():
        egnn, e3nn = by_label["EGNN"], by_label["e3nn l<=1"]
        ratio = Clock(
            median=e3nn.train.median / egnn.train.median,
            best=e3nn.train.best / egnn.train.best,
            cpu=e3nn.train.cpu / egnn.train.cpu,
        )
        for target, clock, limit, unit, digits in (
            (
                f"EGNN forward+backward <= {TARGET_EGNN_TRAIN_S} s",
                egnn.train,
                TARGET_EGNN_TRAIN_S,
                "s",
                3,
            ),
            (
                f"EGNN single-molecule forward <= {TARGET_EGNN_LATENCY_MS} ms",
                egnn.latency,
                TARGET_EGNN_LATENCY_MS,
                "ms",
                2,
            ),
            (
                f"e3nn (l<=1) forward+backward <= {TARGET_E3NN_RATIO}x EGNN's",
                ratio,
                TARGET_E3NN_RATIO,
                "x",
                2,
            ),
        ):
            lines.append(
                f"| {target} | {k} | {cell(clock, digits)} {unit} | "
                f"{_ok(clock.best <= limit)} | {_ok(clock.cpu <= limit)} |"
            )
    lines += [
        "",
        f"## Edge tensor product alone (1 thread, {tp['edges']} edges, multiplicity "
        f"{tp['mul']}, l<=1, forward+backward)",
        "",
        "| implementation | time (s): wall median / best (CPU) |",
        "|---|---|",
        f"| `e3nn.o3.TensorProduct` (generated code) | {cell(tp['e3nn'], 3)} |",
        f"| `sciflow.nn.tensor_product.EdgeTensorProduct` | {cell(tp['ours'], 3)} |",
        "",
        "Notes: absolute times on this shared machine move by tens of percent from run to run; "
        "ratios between networks from the same run are steadier. With 2 threads on 2 busy "
        "cores the threads compete with other jobs and can be slower than 1 thread. The e3nn "
        "network evaluates its tensor products with `EdgeTensorProduct`, the same maths as "
        "`e3nn.o3.TensorProduct` (the tests compare values and gradients to 1e-12), timed "
        "against it above; everything else in it (irreps, o3.Linear, Gate, spherical "
        "harmonics) is e3nn's.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

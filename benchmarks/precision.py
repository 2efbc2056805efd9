"""Benchmark sciflow.precision: rounding throughput and correctness, emulated-sampler overhead.

Writes benchmarks/results/precision.md. Measures, with 1 and 2 torch threads:

* elements/s of ``round_to`` (RN and SR) on 10^7 float32 and float64 values, for bfloat16 and
  float16, against torch's native round trip ``x.to(torch.bfloat16).to(x.dtype)``, timed in the
  same interleaved loop (best of --repeats);
* a straightforward pure-torch rounding (frexp/ldexp through float64) for scale;
* pychop (if installed) on the same inputs (10^6 of them: it is slow) and, for every method, the
  bit-exactness on the boundary set (every float16/bfloat16 value, midpoint, +/- 1 ulp, edges);
  qtorch is not run (it compiles a C++ extension at import);
* a trained 2-D flow's Euler sampler under ``emulate`` against plain float32 sampling.

Sections other scripts put into the same file are kept: the exhaustive check
(``exhaustive_rounding.py``) and the calibration of the climate study's verdicts
(``precision_verdicts.py``).

    .venv/bin/python benchmarks/precision.py [--n 10000000] [--repeats 5] [--exhaustive]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sciflow.precision import (
    BFLOAT16,
    FLOAT16,
    Format,
    StateRounding,
    boundary_values,
    emulate,
    reference_neighbours,
    round_to,
    sbits,
)

RESULTS = Path(__file__).resolve().parent / "results" / "precision.md"
TARGET = 3.0  # rounding time / native round-trip time


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function, run round-robin so load changes hit all alike."""
    best = {k: math.inf for k in fns}
    for f in fns.values():
        f()  # warm up
    for _ in range(repeats):
        for name, f in fns.items():
            t = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def naive_round(x: torch.Tensor, fmt: Format, stochastic: bool, g: torch.Generator) -> torch.Tensor:
    """Straightforward pure torch: significand via frexp in float64, scaled, rounded, ldexp back.

    Container range only (no overflow/subnormal handling), shown for speed, not for correctness.
    """
    m, e = torch.frexp(x.double())
    scaled = torch.ldexp(m, torch.full_like(e, fmt.sbits + 1))
    if stochastic:
        scaled = torch.floor(scaled + torch.rand(scaled.shape, generator=g, dtype=torch.float64))
    else:
        scaled = torch.round(scaled)  # half to even
    return torch.ldexp(scaled, e - (fmt.sbits + 1)).to(x.dtype)


def _pychop():  # noqa: ANN202
    if importlib.util.find_spec("pychop") is None:
        return None
    import pychop

    pychop.backend("torch")
    return pychop


def bit_exact(fmt: Format, dtype: torch.dtype, fn: Callable[[torch.Tensor], torch.Tensor]) -> str:
    """Mismatches against torch's cast on the float32 boundary set of ``fmt`` ('k of n')."""
    x = boundary_values(fmt, torch.float32)
    ref = x.to(dtype).to(torch.float32)
    try:
        got = fn(x).to(torch.float32)
    except Exception as exc:  # a third-party rounding that fails is reported, not fatal
        return f"error: {type(exc).__name__}"
    same = (got.view(torch.int32) == ref.view(torch.int32)) | (got.isnan() & ref.isnan())
    bad = int((~same).sum())
    overflow = (x.abs() >= 65520.0) & x.isfinite() if fmt is FLOAT16 else torch.zeros_like(same)
    extra = f" ({int((~same & overflow).sum())} of them overflow inputs)" if bad and fmt is FLOAT16 else ""
    return f"{bad} of {x.numel()}{extra}"


def sr_law(fmt: Format, fn: Callable[[torch.Tensor], torch.Tensor], draws: int = 4000) -> str:
    """Stochastic rounding of a few values: off-neighbour results and the worst |P(up) - frac|."""
    values = [1 + 0.3 * 2.0**-fmt.sbits, -3 - 0.8 * 2 ** (1 - fmt.sbits), 0.3 * 2.0**-24]
    off = 0
    worst = 0.0
    for v in values:
        x = torch.full((draws,), v, dtype=torch.float32)
        v = float(x[0])
        nb = reference_neighbours(v, fmt, torch.float32)
        try:
            got = fn(x).double()
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        off += int(((got != nb.toward_zero) & (got != nb.away_from_zero)).sum())
        worst = max(worst, abs(float((got == nb.away_from_zero).double().mean()) - float(nb.fraction)))
    sd = 0.5 / math.sqrt(draws)
    return f"{off} off; max abs(P(up) - frac) = {worst:.3f} (1 sd ~ {sd:.3f})"


def throughput(n: int, repeats: int, threads: int) -> list[tuple[str, str, str, float, float]]:
    """(dtype, method, format, elements/s, time / native)."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    rows = []
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(n, generator=g, dtype=dtype)
        fns: dict[str, Callable[[], object]] = {
            "native bf16 round trip": lambda x=x, dtype=dtype: x.to(torch.bfloat16).to(dtype),
        }
        for fmt in (BFLOAT16, FLOAT16):
            fns[f"sciflow RN {fmt.name}"] = lambda x=x, fmt=fmt: round_to(x, fmt)
            fns[f"sciflow SR {fmt.name}"] = lambda x=x, fmt=fmt: round_to(
                x, fmt, rounding="stochastic", generator=g
            )
        fns["naive frexp/ldexp RN sbits7"] = lambda x=x: naive_round(x, sbits(7), False, g)
        fns["naive frexp/ldexp SR sbits7"] = lambda x=x: naive_round(x, sbits(7), True, g)
        best = interleaved(fns, repeats)
        native = best["native bf16 round trip"]
        for name, seconds in best.items():
            rows.append((str(dtype).replace("torch.", ""), name, f"{threads}", n / seconds,
                         seconds / native))
    return rows


def pychop_rows(n: int, repeats: int) -> list[tuple[str, float, float]] | None:
    pc = _pychop()
    if pc is None:
        return None
    torch.set_num_threads(1)
    x = torch.randn(n, generator=torch.Generator().manual_seed(0))
    rn = pc.Chop(exp_bits=8, sig_bits=7, rmode=1)
    sr = pc.Chop(exp_bits=8, sig_bits=7, rmode=5)
    best = interleaved(
        {
            "native": lambda: x.to(torch.bfloat16).to(torch.float32),
            "pychop RN bfloat16": lambda: rn(x),
            "pychop SR bfloat16": lambda: sr(x),
        },
        max(1, repeats // 2),
    )
    return [(k, n / v, v / best["native"]) for k, v in best.items() if k != "native"]


def sampler_overhead(repeats: int) -> list[tuple[str, float, float]]:
    """Euler-32 sampling of 2,000 points with a trained toy flow: seconds and ratio to plain."""
    from sciflow.datasets.toy2d import TOY2D
    from sciflow.domains.toy import Config as ToyConfig
    from sciflow.domains.toy import train as train_toy
    from sciflow.solvers import odeint

    torch.set_num_threads(1)
    spec = ToyConfig()
    model = train_toy(spec.replace(train={"steps": 300, "seed": 0, "progress": False})).net
    model.eval()
    x0 = TOY2D[spec.source](2000, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)

    def under(fmt: Format, rounding: str) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad(), emulate(fmt, rounding=rounding, generator=g):
                return odeint(model, x0, method="euler", steps=32).x

        return run

    hook = StateRounding(BFLOAT16, "stochastic", g)
    torch.set_grad_enabled(False)
    best = interleaved(
        {
            "plain float32": lambda: odeint(model, x0, method="euler", steps=32).x,
            "emulate bfloat16 RN": under(BFLOAT16, "nearest"),
            "emulate bfloat16 SR": under(BFLOAT16, "stochastic"),
            "emulate float16 RN": under(FLOAT16, "nearest"),
            "state rounding only (step_hook) bfloat16 SR": lambda: odeint(
                model, x0, method="euler", steps=32, step_hook=hook
            ).x,
        },
        repeats,
    )
    torch.set_grad_enabled(True)
    plain = best["plain float32"]
    return [(k, v, v / plain) for k, v in best.items()]


def exhaustive_section() -> str:
    spec = importlib.util.spec_from_file_location(
        "exhaustive_rounding", Path(__file__).with_name("exhaustive_rounding.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = {name: module.check(name, 22) for name in ("float16", "bfloat16")}
    return module.markdown(results)


#: the headings this script writes itself; every other "## " section of the file is kept
OWN_SECTIONS = ("## Throughput", "## Correctness on the boundary set",
                "## Emulated sampler overhead", "## Exhaustive check")


def kept_sections(previous: str, *, skip: str | None = None) -> list[str]:
    """The "## " sections of ``previous`` that this script does not write (nor ``skip``), each
    without its trailing total-time line."""
    out = []
    for part in previous.split("\n## ")[1:]:
        text = "## " + part.split("\nTotal benchmark time:", 1)[0].rstrip("\n")
        if not text.startswith(OWN_SECTIONS) and not (skip and text.startswith(skip)):
            out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pychop-n", type=int, default=1_000_000)
    parser.add_argument("--exhaustive", action="store_true",
                        help="also run the 2^32 check (minutes per format)")
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    started = time.perf_counter()

    rows = throughput(args.n, args.repeats, 1) + throughput(args.n, args.repeats, 2)
    lines = [
        "# Precision: rounding throughput and correctness",
        "",
        f"Command: `{command}` (from the repository root). Machine: {cpu_name()}, "
        f"{torch.get_num_threads()}-thread default, 2 cores shared with other jobs (timings are "
        f"best of {args.repeats}, interleaved so load hits every method alike); torch "
        f"{torch.__version__}.",
        "",
        f"## Throughput, {args.n:.0e} elements",
        "",
        "`time / native` is the time over `x.to(torch.bfloat16).to(x.dtype)` on the same input "
        f"and thread count. Target: <= {TARGET:g}x for RN and SR (bfloat16 and float16).",
        "",
        "| input | method | threads | elements/s | time / native | target |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for dtype, name, threads, rate, ratio in rows:
        target = ""
        if name.startswith("sciflow"):
            met = ratio <= TARGET
            verdicts.append(met)
            target = "met" if met else "not met"
        lines.append(f"| {dtype} | {name} | {threads} | {rate:.3g} | {ratio:.2f} | {target} |")
    lines += [
        "",
        f"Target (all sciflow rows within {TARGET:g}x of the native round trip): "
        f"**{'met' if all(verdicts) else 'not met'}** ({sum(verdicts)} of {len(verdicts)} rows).",
        "",
        "## Correctness on the boundary set",
        "",
        "Round-to-nearest against torch's float32 casts on every float16/bfloat16 value, every "
        "midpoint between neighbours, one float32 ulp either side of both, and the edges "
        "(subnormals, overflow, inf, NaN, signed zero). Stochastic rounding: 4,000 draws each of "
        "three values (normal, negative, below float16's smallest subnormal).",
        "",
        "| method | float16 RN mismatches | bfloat16 RN mismatches | float16 SR |",
        "|---|---|---|---|",
    ]
    g = torch.Generator().manual_seed(3)
    lines.append(
        f"| sciflow round_to | {bit_exact(FLOAT16, torch.float16, lambda x: round_to(x, FLOAT16))}"
        f" | {bit_exact(BFLOAT16, torch.bfloat16, lambda x: round_to(x, BFLOAT16))} | "
        f"{sr_law(FLOAT16, lambda x: round_to(x, FLOAT16, rounding='stochastic', generator=g))} |"
    )
    pc = _pychop()
    if pc is not None:
        f16 = pc.Chop(exp_bits=5, sig_bits=10, rmode=1)
        bf16 = pc.Chop(exp_bits=8, sig_bits=7, rmode=1)
        f16sr = pc.Chop(exp_bits=5, sig_bits=10, rmode=5)
        lines.append(
            f"| pychop {getattr(pc, '__version__', '')} Chop | "
            f"{bit_exact(FLOAT16, torch.float16, f16)} | {bit_exact(BFLOAT16, torch.bfloat16, bf16)}"
            f" | {sr_law(FLOAT16, f16sr)} |"
        )
        prow = pychop_rows(args.pychop_n, args.repeats)
        lines += [
            "",
            f"pychop throughput ({args.pychop_n:.0e} float32 elements, 1 thread):",
            "",
            "| method | elements/s | time / native |",
            "|---|---|---|",
        ] + [f"| {k} | {r:.3g} | {q:.1f} |" for k, r, q in prow]
    else:
        lines.append("| pychop | not installed | | |")
    lines += [
        "",
        "qtorch was not run: it compiles a C++ extension at import (see "
        "/work/shared/references/low-precision.md for its known issues).",
        "",
        "## Emulated sampler overhead",
        "",
        "A 2-D flow (8 gaussians -> moons, MLP 3x64, 300 training steps) sampled with Euler, 32 "
        "steps, 2,000 points, float32 container, 1 thread:",
        "",
        "| sampling | seconds | time / plain |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {s:.3f} | {r:.1f} |" for k, s, r in sampler_overhead(args.repeats)]
    section = "## Exhaustive: all 2^32 float32 patterns"
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    if args.exhaustive:
        lines += ["", section, "", exhaustive_section()]
    elif section not in previous:
        lines += [
            "",
            "## Exhaustive check",
            "",
            "All 2^32 float32 patterns: `python benchmarks/exhaustive_rounding.py` (minutes per "
            "format; it adds its table here), or this script with `--exhaustive`.",
        ]
    # sections other scripts wrote here (exhaustive_rounding.py, precision_verdicts.py): kept
    for kept in kept_sections(previous, skip=section if args.exhaustive else None):
        lines += ["", kept]
    lines += ["", f"Total benchmark time: {time.perf_counter() - started:.0f} s.", ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

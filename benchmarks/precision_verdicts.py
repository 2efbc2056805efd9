"""How well the climate study's bootstrap knows its own noise: Lorenz 1963 over independent seeds.

The study states "like float64 from k significand bits" with a 90% interval from a block
bootstrap of one run (sciflow.domains.climate.uncertainty). Here the same Lorenz sweep runs with
several seeds (new initial members, null perturbations and stochastic-rounding draws) and the
bootstrap's spread is compared with the spread the seeds actually show:

* spread / skill: per cell (sbits x rounding x variable), the bootstrap's standard deviation of
  log(W1 / null), averaged over seeds, over the standard deviation of log(W1 / null) across the
  seeds (1 = calibrated; below 1 the bootstrap is too sure of itself). Reported: the median over
  cells and its 10-90% range. Target: median within 0.5-2.
* k across seeds, and how often one seed's k lies in another seed's 90% interval (over ordered
  pairs of seeds); decided verdicts of two seeds that disagree by more than the rule's width.

Writes its section into benchmarks/results/precision.md (replacing an earlier one).

    .venv/bin/python benchmarks/precision_verdicts.py [--sizes 5x3000,10x10000] [--seeds 8]
    .venv/bin/python benchmarks/precision_verdicts.py --sizes 2x300 --seeds 3 --no-write  (smoke)
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import splice_section  # noqa: E402

from sciflow.domains.climate import lorenz_sweep
from sciflow.domains.climate.config import QUICK_SETTINGS
from sciflow.domains.climate.uncertainty import MAX_WIDTH, RESAMPLES

RESULTS = Path(__file__).resolve().parent / "results" / "precision.md"
SECTION = "## Verdict uncertainty: the bootstrap against independent seeds"
TARGET = (0.5, 2.0)


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        members, _, steps = part.strip().partition("x")
        out.append((int(members), int(steps)))
    return out


def run_size(members: int, steps: int, seeds: int, bits: tuple[int, ...],
             nulls: int) -> dict[str, object]:
    """The sweeps of one size over ``seeds`` seeds and the calibration figures."""
    t0 = time.perf_counter()
    sweeps = []
    for seed in range(seeds):
        sweeps.append(lorenz_sweep(bits=bits, members=members, steps=steps, nulls=nulls,
                                   seed=seed))
        print(f"{members}x{steps}: seed {seed} done ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    rows = len(sweeps[0].rows)
    ratios = []
    for i in range(rows):
        point = [s.rows[i].ratio for s in sweeps]
        boot = [s.boot_ratio[:, i] for s in sweeps]
        if not all(math.isfinite(p) and p > 0 for p in point) or \
                not all(bool((b > 0).all() and b.isfinite().all()) for b in boot):
            continue
        skill = statistics.stdev(math.log(p) for p in point)
        spread = statistics.fmean(float(b.log().std()) for b in boot)
        if skill > 0:
            ratios.append(spread / skill)
    ratios.sort()
    out: dict[str, object] = {
        "members": members, "steps": steps, "seeds": seeds, "units": sweeps[0].units,
        "cells": len(ratios), "seconds": time.perf_counter() - t0,
        "spread_skill": statistics.median(ratios) if ratios else math.nan,
        "spread_skill_10": ratios[int(0.1 * (len(ratios) - 1))] if ratios else math.nan,
        "spread_skill_90": ratios[math.ceil(0.9 * (len(ratios) - 1))] if ratios else math.nan,
    }
    order = list(bits) + [None]  # None: 'none', beyond every swept sbits

    def index(k: int | None) -> int:
        return order.index(k)

    for rounding in ("nearest", "stochastic"):
        verdicts = [s.verdict(rounding) for s in sweeps]
        inside = pairs = clash = both = 0
        for a in verdicts:
            for b in verdicts:
                if a is b:
                    continue
                pairs += 1
                inside += index(a.low) <= index(b.k) <= index(a.high)
                if a.decided and b.decided:
                    both += 1
                    far = a.k is None or b.k is None or abs(a.k - b.k) > MAX_WIDTH
                    clash += far and a.k != b.k
        out[rounding] = {
            "k": [v.k_text() for v in verdicts],
            "inside": inside / pairs if pairs else math.nan,
            "decided": sum(v.decided for v in verdicts),
            "clash": f"{clash} of {both}" if both else "no pairs",
        }
    return out


def markdown(results: list[dict[str, object]], command: str, bits: tuple[int, ...],
             nulls: int) -> str:
    lines = [
        SECTION, "",
        f"Command: `{command}`; torch {torch.__version__}, {torch.get_num_threads()} thread(s). "
        f"Lorenz 1963 sweeps (sbits {','.join(map(str, bits))}, RN and SR, {nulls} null runs) "
        f"of the climate study, one per seed; each run's {RESAMPLES}-resample block bootstrap "
        "(units: member x 10-time-unit block) against what the seeds show. 'spread / skill': "
        "the bootstrap sd of log(W1 / null), averaged over seeds, over its sd across seeds, "
        f"median over cells [10-90% of cells]; target {TARGET[0]:g}-{TARGET[1]:g}. 'in another "
        "seed's interval': the share of ordered seed pairs in which one seed's k lies in the "
        "other's 90% interval. 'decided, far apart': pairs of decided verdicts whose k differ "
        f"by more than {MAX_WIDTH} bits.",
        "",
        "| members x steps | units | seeds | spread / skill (dimensionless) | target | RN: k per "
        "seed | RN: in another seed's interval | RN: decided | RN: decided, far apart | SR: k "
        "per seed | SR: in another seed's interval | SR: decided | SR: decided, far apart | "
        "seconds |",
        "|" + "---|" * 14,
    ]
    for r in results:
        met = TARGET[0] <= r["spread_skill"] <= TARGET[1]
        cells = [f"{r['members']} x {r['steps']}", str(r["units"]), str(r["seeds"]),
                 f"{r['spread_skill']:.2f} [{r['spread_skill_10']:.2f}-"
                 f"{r['spread_skill_90']:.2f}] over {r['cells']} cells",
                 "met" if met else "not met"]
        for rounding in ("nearest", "stochastic"):
            v = r[rounding]
            cells += [", ".join(v["k"]), f"{v['inside']:.0%}", f"{v['decided']} of {r['seeds']}",
                      v["clash"]]
        cells.append(f"{r['seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Put ``text`` (starting with :data:`SECTION`) into the results file, replacing an earlier
    one and keeping every other section."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Precision\n"
    RESULTS.write_text(splice_section(old, SECTION, text, before="\nTotal benchmark time:"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5x3000,10x10000",
                        help="members x recorded RK4 steps, comma-separated")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--nulls", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bits = tuple(QUICK_SETTINGS["bits"])
    results = [run_size(m, s, args.seeds, bits, args.nulls) for m, s in _sizes(args.sizes)]
    text = markdown(results, "python " + " ".join(shlex.quote(a) for a in sys.argv), bits,
                    args.nulls)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()

"""The study's tables: markdown for the report and every measured row as CSV.

Everything here reads the frozen results (:mod:`.results`); nothing is computed that the study
did not measure. Numbers print with 3 significant digits; ``inf`` marks an arm whose output was
not finite, ``nan`` a ratio without a null.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from sciflow.precision import format_from_name, round_to

from .results import FlowSweep, HeatProfiles, TestbedSweep
from .sweeps import PAPER_CLAIMS

__all__ = [
    "LABEL",
    "sweep_table",
    "w1_table",
    "threshold_table",
    "heat_table",
    "warming_summary",
    "flow_table",
    "write_csv",
]

#: short names of the roundings in tables and legends
LABEL = {"nearest": "RN", "stochastic": "SR"}


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cells: Sequence[str]) -> list[str]:
    """A markdown table's header row and its separator."""
    return [_row(cells), "|" + "---|" * len(cells)]


def _roundings(sweep: TestbedSweep) -> list[str]:
    return [r for r in ("nearest", "stochastic") if any(x.rounding == r for x in sweep.rows)]


def _sweep_lines(sweep: TestbedSweep, field: str, label: Callable[[str, str], str]) -> list[str]:
    """Markdown lines: one row per sbits of the rows' ``field``, one column per rounding x
    variable, headed ``label(rounding, variable)``."""
    roundings = _roundings(sweep)
    cells = {(r.sbits, r.rounding, r.variable): getattr(r, field) for r in sweep.rows}
    lines = _head(["sbits"] + [label(r, v) for r in roundings for v in sweep.variables])
    for k in sorted({r.sbits for r in sweep.rows}):
        lines.append(_row([str(k)] + [
            _fmt(cells.get((k, r, v), math.nan)) for r in roundings for v in sweep.variables
        ]))
    return lines


def sweep_table(sweep: TestbedSweep) -> str:
    """Markdown: W1 / null per sbits (rows), rounding x variable (columns)."""
    return "\n".join(_sweep_lines(sweep, "ratio", lambda r, v: f"{LABEL[r]} {v}"))


def w1_table(sweep: TestbedSweep, units: dict[str, str]) -> str:
    """Markdown: W1 to float64 in physical units per sbits, and the mean null W1 per variable."""
    lines = _sweep_lines(sweep, "w1", lambda r, v: f"{LABEL[r]} {v} ({units.get(v, '')})")
    nulls = {r.variable: r.null for r in sweep.rows}
    lines.append(_row(["null"] + [
        _fmt(nulls.get(v, math.nan)) for _ in _roundings(sweep) for v in sweep.variables
    ]))
    return "\n".join(lines)


def threshold_table(sweeps: Sequence[TestbedSweep], flow: FlowSweep | None = None) -> str:
    """Markdown: the fewest sbits indistinguishable from float64, RN and SR, beside the paper.

    A testbed arm counts as indistinguishable while every variable's W1 / null is within the
    null's range (<= the largest null run's W1 / mean null); a flow arm while its same-noise
    deviation (an upper bound on its W1 to float64) is below the float64-vs-float64 sample W1,
    i.e. the rounding moves samples less than sampling noise separates two float64 sample sets.
    """
    lines = [
        "| testbed | RN: from sbits | SR: from sbits | swept | the paper says |",
        "|---|---|---|---|---|",
    ]
    for s in sweeps:
        bits = sorted({r.sbits for r in s.rows})
        swept = f"{bits[0]}..{bits[-1]} ({len(bits)} values)" if bits else "-"
        rn, sr = s.threshold("nearest"), s.threshold("stochastic")
        lines.append(
            f"| {s.testbed} | {rn if rn is not None else 'none'} | "
            f"{sr if sr is not None else 'none'} | {swept} | {PAPER_CLAIMS.get(s.testbed, '')} |"
        )
    if flow is not None:
        for mode in ("emulate", "state"):
            found = {}
            for rounding in ("nearest", "stochastic"):
                best = None
                for r in reversed(flow.series(mode, rounding)):
                    if not r.deviation <= flow.null_w1:
                        break
                    best = r.sbits
                found[rounding] = best
            bits = sorted({r.sbits for r in flow.rows})
            lines.append(
                f"| flow ({mode}; deviation <= null W1) | {found['nearest'] or 'none'} | "
                f"{found['stochastic'] or 'none'} | {bits[0]}..{bits[-1]} | {PAPER_CLAIMS['flow']} |"
            )
    return "\n".join(lines)


def heat_table(profiles: HeatProfiles, depths: Sequence[float] = (1, 5, 10, 20, 30, 40, 60)) -> str:
    """Markdown: final temperature (K) at chosen depths, one column per arm."""
    names = list(profiles.profiles)
    lines = _head(["depth (m)", *names])
    for d in depths:
        idx = int(torch.argmin((profiles.depths - d).abs()))
        lines.append(_row([f"{profiles.depths[idx].item():g}"] + [
            f"{profiles.profiles[n][idx].item():.3f}" for n in names
        ]))
    return "\n".join(lines)


def warming_summary(profiles: HeatProfiles) -> str:
    """Markdown list: each arm's largest and mean deviation from float64 (K) and, for
    round-to-nearest arms, the deepest level that warmed at all above the rounded initial value."""
    ref = profiles.profiles["float64"]
    lines = []
    for name, temp in profiles.profiles.items():
        if name == "float64":
            continue
        dev = (temp - ref).abs()
        text = (f"- {name}: deviation from float64 up to {float(dev.max()):.3f} K "
                f"(mean {float(dev.mean()):.3f} K)")
        fmt_name, _, rounding = name.rpartition("-")
        if rounding == "RN":
            start = round_to(torch.tensor([profiles.initial], dtype=torch.float64),
                             format_from_name(fmt_name)).item()
            warmed = temp > start
            deepest = float(profiles.depths[warmed].max()) if bool(warmed.any()) else 0.0
            text += (f"; warmed above its rounded initial {start:.4f} K only down to {deepest:g} m"
                     if deepest else f"; never warmed above its rounded initial {start:.4f} K")
        lines.append(text)
    return "\n".join(lines)


def flow_table(flow: FlowSweep) -> str:
    """Markdown: same-noise deviation and sample W1 per sbits, RN/SR, both emulation modes."""
    cells = {(r.sbits, r.rounding, r.mode): r for r in flow.rows}
    bits = sorted({r.sbits for r in flow.rows})
    head = [
        "sbits",
        "dev RN emulate",
        "dev SR emulate",
        "dev RN state",
        "dev SR state",
        "W1 RN emulate",
        "W1 SR emulate",
    ]
    lines = _head(head)
    for k in bits:

        def get(rounding: str, mode: str, what: str, k: int = k) -> str:
            row = cells.get((k, rounding, mode))
            return _fmt(getattr(row, what)) if row else "-"

        lines.append(
            f"| {k} | {get('nearest', 'emulate', 'deviation')} | "
            f"{get('stochastic', 'emulate', 'deviation')} | {get('nearest', 'state', 'deviation')} | "
            f"{get('stochastic', 'state', 'deviation')} | {get('nearest', 'emulate', 'w1')} | "
            f"{get('stochastic', 'emulate', 'w1')} |"
        )
    return "\n".join(lines)


def write_csv(path: Path, sweeps: Sequence[TestbedSweep], flow: FlowSweep | None) -> Path:
    """Every measured row as CSV: testbed, arm, sbits, rounding, variable/mode, numbers."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["testbed", "arm", "sbits", "rounding", "variable", "w1", "null", "ratio", "limit"]
        )
        for s in sweeps:
            for r in s.rows:
                w.writerow([s.testbed, r.arm, r.sbits, r.rounding, r.variable, r.w1, r.null,
                            r.ratio, r.limit])
        if flow is not None:
            for r in flow.rows:
                w.writerow(["flow", r.arm, r.sbits, r.rounding, r.mode, r.w1, flow.null_w1,
                            r.w1 / flow.null_w1 if flow.null_w1 > 0 else math.nan, 1.0])
                w.writerow(["flow-deviation", r.arm, r.sbits, r.rounding, r.mode, r.deviation,
                            "", "", ""])
    return path

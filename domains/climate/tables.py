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
from torch import Tensor

from sciflow.precision import format_from_name, round_to

from .results import FlowSweep, HeatProfiles, TestbedSweep
from .sweeps import PAPER_CLAIMS
from .uncertainty import Verdict

__all__ = [
    "LABEL",
    "UNITS",
    "MARKS",
    "sweep_table",
    "w1_table",
    "verdicts",
    "threshold_table",
    "verdict_notes",
    "heat_table",
    "warming_summary",
    "flow_table",
    "CSV_COLUMNS",
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


#: the unit of each variable's W1 (Lorenz 1963 is written in dimensionless variables)
UNITS = {"x": "dimensionless", "y": "dimensionless", "z": "dimensionless", "T": "K",
         "eta": "m", "u": "m/s", "v": "m/s"}

#: the legend of the marks in :func:`sweep_table`
MARKS = ("`*` beyond the null's range in at least 95% of the bootstrap resamples; `?` undecided "
         "(within in 5-95% of them: the cell's ratio interval overlaps the null's range); no "
         "mark: within in at least 95%.")


def _mark(share: float | None) -> str:
    if share is None:
        return ""
    if share >= 0.95:
        return ""
    return " *" if share <= 0.05 else " ?"


def sweep_table(sweep: TestbedSweep) -> str:
    """Markdown: W1 / null (dimensionless) per sbits (rows), rounding x variable (columns), each
    cell marked by its bootstrap (:data:`MARKS`) when the sweep has one."""
    shares = sweep.within_share()
    marks = {(r.sbits, r.rounding, r.variable): _mark(None if shares is None else float(p))
             for r, p in zip(sweep.rows, shares if shares is not None else [None] * len(sweep.rows))}
    roundings = _roundings(sweep)
    cells = {(r.sbits, r.rounding, r.variable): r.ratio for r in sweep.rows}
    lines = _head(["sbits"] + [f"{LABEL[r]} {v} (ratio, dimensionless)" for r in roundings
                               for v in sweep.variables])
    for k in sorted({r.sbits for r in sweep.rows}):
        lines.append(_row([str(k)] + [
            _fmt(cells.get((k, r, v), math.nan)) + marks.get((k, r, v), "")
            for r in roundings for v in sweep.variables
        ]))
    return "\n".join(lines)


def w1_table(sweep: TestbedSweep, units: dict[str, str] | None = None) -> str:
    """Markdown: W1 to float64 in each variable's unit per sbits, and the mean null W1."""
    units = UNITS if units is None else units
    lines = _sweep_lines(sweep, "w1",
                         lambda r, v: f"{LABEL[r]} {v} ({units.get(v) or 'dimensionless'})")
    nulls = {r.variable: r.null for r in sweep.rows}
    lines.append(_row(["null"] + [
        _fmt(nulls.get(v, math.nan)) for _ in _roundings(sweep) for v in sweep.variables
    ]))
    return "\n".join(lines)


FLOW_LABEL = "flow ({mode}; deviation <= null W1)"


def verdicts(sweeps: Sequence[TestbedSweep],
             flow: FlowSweep | None = None) -> list[tuple[str, str, Verdict]]:
    """(testbed label, rounding, :class:`~.uncertainty.Verdict`) of every testbed and rounding
    (the flow: per emulation mode), in table order."""
    out = [(s.testbed, r, s.verdict(r)) for s in sweeps for r in ("nearest", "stochastic")
           if s.bits(r)]
    if flow is not None:
        out += [(FLOW_LABEL.format(mode=mode), r, flow.verdict(mode, r))
                for mode in ("emulate", "state") for r in ("nearest", "stochastic")
                if flow.series(mode, r)]
    return out


def _resampled(units: int, what: str) -> str:
    return what or (f"{units} units" if units else "no bootstrap (cached before it)")


def threshold_table(sweeps: Sequence[TestbedSweep], flow: FlowSweep | None = None) -> str:
    """Markdown: the fewest sbits indistinguishable from float64, RN and SR, each with its 90%
    bootstrap interval (``undecided:`` when :data:`~.uncertainty.RULE` does not decide it),
    beside the paper.

    A testbed arm counts as indistinguishable while every variable's W1 / null is within the
    null's range (<= the largest null run's W1 / mean null); a flow arm while its same-noise
    deviation (an upper bound on its W1 to float64) is below the float64-vs-float64 sample W1,
    i.e. the rounding moves samples less than sampling noise separates two float64 sample sets.
    """
    found = {(label, r): v for label, r, v in verdicts(sweeps, flow)}

    def cell(label: str, rounding: str) -> str:
        v = found.get((label, rounding))
        return v.text() if v is not None else "-"

    lines = _head(["testbed", "RN: fewest sbits [90% interval]", "SR: fewest sbits "
                   "[90% interval]", "swept sbits", "resampled over", "the paper says"])
    for s in sweeps:
        bits = sorted({r.sbits for r in s.rows})
        swept = f"{bits[0]}..{bits[-1]} ({len(bits)} values)" if bits else "-"
        lines.append(_row([s.testbed, cell(s.testbed, "nearest"), cell(s.testbed, "stochastic"),
                           swept, _resampled(s.units, s.resampling),
                           PAPER_CLAIMS.get(s.testbed, "")]))
    if flow is not None:
        bits = sorted({r.sbits for r in flow.rows})
        for mode in ("emulate", "state"):
            label = FLOW_LABEL.format(mode=mode)
            lines.append(_row([label, cell(label, "nearest"), cell(label, "stochastic"),
                               f"{bits[0]}..{bits[-1]}",
                               _resampled(flow.units, f"{flow.units} samples" if flow.units
                                          else ""),
                               PAPER_CLAIMS["flow"]]))
    return "\n".join(lines)


def verdict_notes(sweeps: Sequence[TestbedSweep], flow: FlowSweep | None = None) -> str:
    """Markdown list: why each undecided verdict is undecided (or that all are decided)."""
    notes = [f"- {label} {LABEL[r]}: {v.reason}." for label, r, v in verdicts(sweeps, flow)
             if not v.decided]
    return "\n".join(notes) if notes else "Every verdict above is decided under this rule."


def heat_table(profiles: HeatProfiles, depths: Sequence[float] = (1, 5, 10, 20, 30, 40, 60)) -> str:
    """Markdown: final temperature (K) at chosen depths, one column per arm."""
    names = list(profiles.profiles)
    lines = _head(["depth (m)", *[f"{n} (K)" for n in names]])
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
    """Markdown: same-noise deviation and sample W1 per sbits, RN/SR, both emulation modes (the
    flow's plane is dimensionless), the deviation marked by its bootstrap (:data:`MARKS`, against
    the null W1 of independent float64 sample sets)."""
    shares = _flow_shares(flow)
    cells = {(r.sbits, r.rounding, r.mode): (r, shares[i] if shares else None)
             for i, r in enumerate(flow.rows)}
    bits = sorted({r.sbits for r in flow.rows})
    columns = [("deviation", "nearest", "emulate"), ("deviation", "stochastic", "emulate"),
               ("deviation", "nearest", "state"), ("deviation", "stochastic", "state"),
               ("w1", "nearest", "emulate"), ("w1", "stochastic", "emulate")]
    short = {"deviation": "dev", "w1": "W1"}
    lines = _head(["sbits"] + [f"{short[what]} {LABEL[r]} {mode} (dimensionless)"
                               for what, r, mode in columns])
    for k in bits:
        row = [str(k)]
        for what, rounding, mode in columns:
            got = cells.get((k, rounding, mode))
            if got is None:
                row.append("-")
                continue
            mark = _mark(got[1]) if what == "deviation" else ""
            row.append(_fmt(getattr(got[0], what)) + mark)
        lines.append(_row(row))
    return "\n".join(lines)


def _flow_shares(flow: FlowSweep) -> list[float] | None:
    """Per row: the fraction of resamples whose deviation is at most their null W1."""
    if flow.boot_deviation is None or flow.boot_null is None:
        return None
    within = flow.boot_deviation <= flow.boot_null[:, None]
    return within.double().mean(dim=0).tolist()


def _interval(values: Tensor | None, column: int) -> tuple[float | str, float | str]:
    """The 5% and 95% quantiles of one column of resampled values ('' without a bootstrap)."""
    if values is None:
        return "", ""
    col = values[:, column].double()
    if not bool(torch.isfinite(col).all()):
        return math.inf, math.inf
    return float(col.quantile(0.05)), float(col.quantile(0.95))


CSV_COLUMNS = ["testbed", "arm", "sbits", "rounding", "variable", "unit", "w1", "null", "ratio",
               "limit", "ratio_low", "ratio_high", "within_share"]


def write_csv(path: Path, sweeps: Sequence[TestbedSweep], flow: FlowSweep | None,
              preamble: Sequence[str] = ()) -> Path:
    """Every measured row as CSV, after ``preamble`` lines (each starting with ``#``).

    Columns (:data:`CSV_COLUMNS`): testbed, arm, sbits, rounding, variable (the flow: its
    emulation mode), unit (of w1 and null), w1 (W1 to float64; "flow-deviation" rows: the
    same-noise deviation), null (mean null W1; the flow: W1 between two float64 sample sets),
    ratio (w1 / null), limit (the ratio the worst null run reaches; the flow: 1), ratio_low and
    ratio_high (5% and 95% of the ratio over the bootstrap resamples; empty without one) and
    within_share (the fraction of resamples within the null's range).
    """
    with path.open("w", newline="") as fh:
        for line in preamble:
            fh.write(line.rstrip("\n") + "\n")
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for s in sweeps:
            shares = s.within_share()
            for i, r in enumerate(s.rows):
                low, high = _interval(s.boot_ratio, i)
                share = "" if shares is None else float(shares[i])
                w.writerow([s.testbed, r.arm, r.sbits, r.rounding, r.variable,
                            UNITS.get(r.variable, "dimensionless"), r.w1, r.null, r.ratio,
                            r.limit, low, high, share])
        if flow is not None:
            shares = _flow_shares(flow)
            ratio = None
            if flow.boot_deviation is not None and flow.boot_null is not None:
                ratio = flow.boot_deviation / flow.boot_null[:, None]
            null = flow.null_w1
            for i, r in enumerate(flow.rows):
                w.writerow(["flow", r.arm, r.sbits, r.rounding, r.mode, "dimensionless", r.w1,
                            null, r.w1 / null if null > 0 else math.nan, 1.0, "", "", ""])
                low, high = _interval(ratio, i)
                w.writerow(["flow-deviation", r.arm, r.sbits, r.rounding, r.mode,
                            "dimensionless", r.deviation, null,
                            r.deviation / null if null > 0 else math.nan, 1.0, low, high,
                            "" if shares is None else shares[i]])
    return path

"""Tables, figures and the markdown report of the low-precision study.

Everything here reads the frozen results of :mod:`.study` and writes files; nothing is computed
that the study did not measure. Figures use matplotlib's Agg backend.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sciflow.precision import format_from_name, round_to

from .study import (
    PAPER_CLAIMS,
    FlowSweep,
    HeatProfiles,
    Stagnation,
    TestbedSweep,
)

__all__ = [
    "sweep_table",
    "w1_table",
    "threshold_table",
    "heat_table",
    "warming_summary",
    "flow_table",
    "plot_ratios",
    "plot_heat",
    "plot_stagnation",
    "plot_climatology",
    "plot_flow",
    "write_csv",
]

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_LABEL = {"nearest": "RN", "stochastic": "SR"}


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def _save(fig: Figure, path: Path, *, dpi: int = 110) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


# ------------------------------------------------------------------------------------ tables
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
    return "\n".join(_sweep_lines(sweep, "ratio", lambda r, v: f"{_LABEL[r]} {v}"))


def w1_table(sweep: TestbedSweep, units: dict[str, str]) -> str:
    """Markdown: W1 to float64 in physical units per sbits, and the mean null W1 per variable."""
    lines = _sweep_lines(sweep, "w1", lambda r, v: f"{_LABEL[r]} {v} ({units.get(v, '')})")
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


# ----------------------------------------------------------------------------------- figures
def plot_ratios(sweeps: Sequence[TestbedSweep], path: Path) -> Path:
    """W1 / null against sbits, one panel per testbed; solid RN, dashed SR; log scale."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.6 * len(sweeps), 3.8), squeeze=False)
    for ax, s in zip(axes[0], sweeps):
        for vi, var in enumerate(s.variables):
            for rounding, style in (("nearest", "-"), ("stochastic", "--")):
                pts = s.ratios(rounding, var)
                if not pts:
                    continue
                xs = [p[0] for p in pts]
                ys = [p[1] if math.isfinite(p[1]) and p[1] > 0 else float("nan") for p in pts]
                ax.plot(xs, ys, style, marker="o", ms=3, color=f"C{vi}",
                        label=f"{var} {_LABEL[rounding]}")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("significand bits")
        ax.set_ylabel("W1 / null")
        ax.set_title(s.testbed)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_heat(profiles: HeatProfiles, path: Path) -> Path:
    """Final temperature against depth (downwards) for each arm."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    depth = profiles.depths.numpy()
    for k, (name, temp) in enumerate(profiles.profiles.items()):
        style = "--" if name.endswith("SR") else "-"
        lw = 2.5 if name == "float64" else 1.2
        ax.plot(temp.numpy(), depth, style, lw=lw, color="k" if name == "float64" else f"C{k}",
                label=name)
    ax.invert_yaxis()
    ax.set_xlabel("temperature (K)")
    ax.set_ylabel("depth (m)")
    ax.set_title(f"soil column after {profiles.years:g} years")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_stagnation(result: Stagnation, path: Path) -> Path:
    """Mean (and +/- 1 sd) of the running sum under RN and SR against the exact sum."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    steps = result.steps.numpy()
    ax.plot(steps, result.exact.numpy(), "k-", lw=2, label="exact")
    for k, (rounding, mean) in enumerate(result.mean.items()):
        sd = result.spread[rounding].numpy()
        m = mean.numpy()
        ax.plot(steps, m, color=f"C{k}", label=f"{result.fmt} {_LABEL[rounding]}")
        ax.fill_between(steps, m - sd, m + sd, color=f"C{k}", alpha=0.2)
    ax.set_xlabel("increments")
    ax.set_ylabel("x")
    ax.set_title(f"x <- x + {result.increment:g} in {result.fmt}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_climatology(means: dict[str, dict[str, torch.Tensor]], names: Sequence[str],
                     path: Path) -> Path:
    """Time-mean eta and u of the named arms (rows) as maps."""
    plt = _pyplot()
    names = [n for n in names if n in means]
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 2.2 * len(names)), squeeze=False)
    ref = means[names[0]]
    limits = {v: float(ref[v].abs().max()) or 1.0 for v in ("eta", "u")}
    for row, name in zip(axes, names):
        for ax, var in zip(row, ("eta", "u")):
            im = ax.imshow(means[name][var].numpy(), origin="lower", cmap="RdBu_r",
                           vmin=-limits[var], vmax=limits[var], aspect="auto")
            ax.set_title(f"{name}: mean {var}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.03)
    return _save(fig, path, dpi=100)


def plot_flow(flow: FlowSweep, path: Path) -> Path:
    """Same-noise deviation and sample W1 against sbits, RN/SR, emulate/state."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for mode, marker in (("emulate", "o"), ("state", "s")):
        for rounding, style in (("nearest", "-"), ("stochastic", "--")):
            rows = flow.series(mode, rounding)
            if not rows:
                continue
            xs = [r.sbits for r in rows]
            label = f"{_LABEL[rounding]} {mode}"
            axes[0].plot(xs, [r.deviation for r in rows], style, marker=marker, ms=3, label=label)
            axes[1].plot(xs, [r.w1 for r in rows], style, marker=marker, ms=3, label=label)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("mean ||x_low - x_64||")
    axes[1].axhline(flow.null_w1, color="k", lw=0.8, label="float64 null")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("W1 to float64 samples")
    for ax in axes:
        ax.set_xlabel("significand bits")
        ax.legend(fontsize=7)
    return _save(fig, path)

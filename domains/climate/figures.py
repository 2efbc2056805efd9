"""The study's figures (matplotlib, Agg backend, imported when a figure is drawn).

Each ``plot_*`` draws one frozen result (:mod:`.results`) into a PNG at ``path`` and returns the
path; :data:`FIGURES` names the file each testbed's figure gets in a report folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .results import FlowSweep, HeatProfiles, Stagnation, TestbedSweep
from .tables import LABEL

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import Tensor

__all__ = [
    "FIGURES",
    "RATIO_FIGURE",
    "plot_ratios",
    "plot_heat",
    "plot_stagnation",
    "plot_climatology",
    "plot_flow",
]

#: the figure of each testbed in a report folder
FIGURES = {"heat": "heat_profiles.png", "shallow_water": "sw_climatology.png",
           "flow": "flow_sweep.png", "stagnation": "stagnation.png"}
#: W1 / null against sbits, drawn when lorenz, heat or shallow water ran
RATIO_FIGURE = "w1_ratio_vs_sbits.png"

_SW_UNITS = {"eta": "m", "u": "m/s", "v": "m/s"}


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path, *, dpi: int = 110) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def _band(sweep: TestbedSweep, rounding: str, variable: str) -> list[tuple[int, float, float]]:
    """(sbits, 5%, 95%) of the resampled W1 / null of one series; [] without a bootstrap."""
    if sweep.boot_ratio is None:
        return []
    out = []
    for i, r in enumerate(sweep.rows):
        if r.rounding == rounding and r.variable == variable:
            col = sweep.boot_ratio[:, i].double()
            if bool(col.isfinite().all()):
                out.append((r.sbits, float(col.quantile(0.05)), float(col.quantile(0.95))))
    return sorted(out)


def plot_ratios(sweeps: Sequence[TestbedSweep], path: Path) -> Path:
    """W1 / null against sbits, one panel per testbed; solid RN, dashed SR; log scale; the
    shaded bands are the 5-95% range of the bootstrap resamples."""
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
                        label=f"{var} {LABEL[rounding]}")
                band = _band(s, rounding, var)
                if band:
                    ax.fill_between([b[0] for b in band], [max(b[1], 1e-12) for b in band],
                                    [b[2] for b in band], color=f"C{vi}", alpha=0.12, lw=0)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("significand bits")
        ax.set_ylabel("W1 / mean null W1 (dimensionless)")
        ax.set_title(f"{s.testbed}: W1 to float64 over the null" + (
            f"\n(bands: 90% of {s.boot_ratio.shape[0]} bootstrap resamples)"
            if s.boot_ratio is not None else ""), fontsize=9)
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
        ax.plot(steps, m, color=f"C{k}", label=f"{result.fmt} {LABEL[rounding]}")
        ax.fill_between(steps, m - sd, m + sd, color=f"C{k}", alpha=0.2)
    ax.set_xlabel("increments added")
    ax.set_ylabel("x (dimensionless)")
    ax.set_title(f"x <- x + {result.increment:g} in {result.fmt}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_climatology(means: dict[str, dict[str, Tensor]], names: Sequence[str],
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
            ax.set_title(f"{name}: time-mean {var} ({_SW_UNITS[var]})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            bar = fig.colorbar(im, ax=ax, fraction=0.03)
            bar.set_label(f"{var} ({_SW_UNITS[var]})", fontsize=8)
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
            label = f"{LABEL[rounding]} {mode}"
            axes[0].plot(xs, [r.deviation for r in rows], style, marker=marker, ms=3, label=label)
            axes[1].plot(xs, [r.w1 for r in rows], style, marker=marker, ms=3, label=label)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("mean ||x_low - x_64|| (dimensionless)")
    axes[0].axhline(flow.null_w1, color="k", lw=0.8, label="float64 null W1")
    if len(flow.null_each) > 1:
        axes[0].axhspan(min(flow.null_each), max(flow.null_each), color="k", alpha=0.1,
                        label=f"null over {len(flow.null_each)} sample sets")
    axes[0].set_title("same-noise deviation from float64", fontsize=9)
    axes[1].axhline(flow.null_w1, color="k", lw=0.8, label="float64 null")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("W1 to float64 samples (dimensionless)")
    axes[1].set_title("sample W1 to float64 (independent noise)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("significand bits")
        ax.legend(fontsize=7)
    return _save(fig, path)

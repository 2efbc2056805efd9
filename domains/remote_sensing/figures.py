"""Before / after pictures of a filled or forecast cube (``sciflow rs fill|forecast --plot``).

:func:`plot_result` draws one band of one date in three panels with colourbars in the
reflectance's units: what was observed (clouds and gaps shown grey), what the model wrote
(clear observations kept, the rest predicted) and ``reflectance_std``. For gap filling the date
shown is the one with the most predicted pixels that still shows some ground; for forecasting
the last date at least half clear and the first forecast date. :func:`plot_reliability` draws a spread-vs-error diagram
(:class:`~.uncertainty.UncertaintyScores` bins). matplotlib is imported when they are called
(Agg backend, no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot_result", "plot_reliability", "figure_path"]


def figure_path(output: str | Path) -> Path:
    """The figure written next to an output: the same name with ``.png``."""
    p = Path(output)
    return p.with_name(p.name[: -len(p.suffix)] + ".png" if p.suffix else p.name + ".png")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _units(cube: xr.Dataset) -> str:
    units = str(cube["reflectance"].attrs.get("units", "1"))
    return "reflectance (unitless, 0-1)" if units in ("1", "") else f"reflectance ({units})"


def _day(value: Any) -> str:
    return str(np.datetime_as_string(np.datetime64(value, "ns"), unit="D"))


def _clearest_recent(cube: xr.Dataset) -> int:
    """The last date at least half clear, else the clearest date (the "before" of a forecast)."""
    clear = np.isfinite(cube["reflectance"]).all("band")
    if "valid" in cube:
        clear = clear & cube["valid"].astype(bool)
    if "cloud" in cube:
        clear = clear & ~cube["cloud"].astype(bool)
    share = np.asarray(clear.mean(("y", "x")).values, dtype=float)
    half = np.nonzero(share >= 0.5)[0]
    return int(half[-1]) if half.size else int(share.argmax())


def plot_result(cube: xr.Dataset, result: xr.Dataset, task: str, path: str | Path, *,
                band: str | None = None) -> Path:
    """Write the three-panel figure of ``result`` (from ``cube``) to ``path`` (PNG)."""
    plt = _pyplot()
    bands = [str(b) for b in result["band"].values]
    band = band if band is not None else ("B04" if "B04" in bands else bands[0])
    out = result.sel(band=band)
    observed = cube["reflectance"].sel(band=band)
    if task == "forecasting":
        t_in, t_out = _clearest_recent(cube), 0
        title_in = f"observed {_day(cube['time'].values[t_in])} (grey: cloud / no data)"
        title_out = f"forecast for {_day(result['time'].values[t_out])}"
    else:
        share = np.asarray(result["filled"].mean(("y", "x")).values, dtype=float)
        partly = np.where(share < 0.9, share, -1.0)  # a date with something to compare with
        t_out = int(partly.argmax() if partly.max() > 0 else share.argmax())
        t_in = t_out
        title_in = f"observed {_day(cube['time'].values[t_in])} (grey: cloud / no data)"
        title_out = "filled (clear pixels kept)"
    before = np.asarray(observed.isel(time=t_in).values, dtype=float)  # one date is read
    clear = np.isfinite(before)
    if "valid" in cube:
        clear &= cube["valid"].isel(time=t_in).values.astype(bool)
    if "cloud" in cube:
        clear &= ~cube["cloud"].isel(time=t_in).values.astype(bool)
    before = np.where(clear, before, np.nan)
    after = np.asarray(out["reflectance"].isel(time=t_out).values, dtype=float)
    std = np.asarray(out["reflectance_std"].isel(time=t_out).values, dtype=float)
    finite = np.concatenate([before[np.isfinite(before)], after[np.isfinite(after)]])
    lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.7")
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    units = _units(cube)
    for ax, img, title, kw in ((axes[0], before, title_in, {"vmin": lo, "vmax": hi}),
                               (axes[1], after, title_out, {"vmin": lo, "vmax": hi}),
                               (axes[2], std, "reflectance_std (uncertainty)", {"vmin": 0})):
        im = ax.imshow(np.ma.masked_invalid(img), cmap=cmap if ax is not axes[2] else "magma",
                       **kw)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.85, label=units)
    what = "forecast" if task == "forecasting" else task.replace("_", " ")
    fig.suptitle(f"sciflow rs: {what}, band {band}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_reliability(scores: dict[str, Any], path: str | Path, *, title: str) -> Path:
    """Spread-vs-error diagram: per std bin the RMSE of the mean against the mean predicted std,
    one line per entry of ``scores`` (name -> UncertaintyScores), the diagonal for reference."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6), constrained_layout=True)
    top = 0.0
    for name, sc in scores.items():
        x = [b[0] for b in sc.bins]
        y = [b[1] for b in sc.bins]
        top = max(top, *x, *y)
        ax.plot(x, y, "o-", label=f"{name} (spread/skill {sc.spread_skill:.2f})")
    ax.plot([0, top], [0, top], "k--", lw=1, label="calibrated")
    ax.set_xlabel("predicted std, bin mean (reflectance, unitless)")
    ax.set_ylabel("RMSE of the ensemble mean in the bin")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

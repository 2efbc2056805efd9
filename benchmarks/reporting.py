"""Small formatting helpers shared by the benchmark scripts (imported from the benchmarks folder)."""

from __future__ import annotations

import math
import statistics

__all__ = ["mean_std"]


def mean_std(values: list[float], digits: int) -> str:
    """``mean ± sample std`` of the non-NaN values; the value alone for one; ``n/a`` for none."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.fmean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"

"""Small formatting helpers shared by the benchmark scripts (imported from the benchmarks folder)."""

from __future__ import annotations

import math
import statistics

__all__ = ["mean_std", "splice_section"]


def mean_std(values: list[float], digits: int) -> str:
    """``mean ± sample std`` of the non-NaN values; the value alone for one; ``n/a`` for none."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.fmean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def splice_section(text: str, heading: str, section: str, *, before: str | None = None) -> str:
    """``text`` with the section that starts at ``heading`` (up to the next ``## `` heading)
    replaced by ``section``, every other section kept. Absent: ``section`` goes in front of the
    first ``before`` marker when there is one, else at the end."""
    if heading in text:
        head, _, rest = text.partition(heading)
        after = rest.find("\n## ")
        return head + section + ("" if after < 0 else rest[after:])
    if before is not None and before in text:
        head, _, rest = text.partition(before)
        return head.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n" + before + rest
    return text.rstrip("\n") + "\n\n" + section

"""Refuse up front what this machine cannot hold: memory estimates checked before any work.

``check_memory(nbytes, what, name=...)`` raises :class:`~sciflow.errors.ResourceError` when an
estimate exceeds the memory available now (``/proc/meminfo``'s MemAvailable on Linux, physical
memory elsewhere), naming the argument to lower. Commands call it with a rough upper bound of what
a request allocates (e.g. samples x values x bytes x live copies) so an absurd ``-n`` fails in
milliseconds instead of swapping for minutes.
"""

from __future__ import annotations

import os

from sciflow.errors import ResourceError

__all__ = ["available_memory", "check_memory", "format_bytes"]


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (best effort, never below 256 MiB)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return max(int(line.split()[1]) * 1024, 256 << 20)
    except OSError:
        pass
    try:
        return max(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), 256 << 20)
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_memory(nbytes: float, what: str, *, name: str, fraction: float = 0.8) -> None:
    """ResourceError if ``nbytes`` exceeds ``fraction`` of the memory available now.

    Example: ``check_memory(n * 2 * 4 * 3, f"{n} samples", name="-n")``.
    """
    limit = fraction * available_memory()
    if nbytes > limit:
        raise ResourceError(f"{name}: {what} would need about {format_bytes(nbytes)} of memory, "
                            f"more than the {format_bytes(limit)} available here; ask for less "
                            "(or run in chunks)")

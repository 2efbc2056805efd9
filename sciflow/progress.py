"""Progress of long work: a bar on a terminal, a periodic log line everywhere else.

``progress(total=n, desc="generate")`` returns an object with the part of tqdm's interface sciflow
uses (``update``, ``set_postfix``, ``close``, iteration, ``with``). On a terminal it is a tqdm bar;
when stderr is not a terminal (a batch job, a pipe, CI) it writes a plain line such as

    [generate] 40/100 (40%) 12 s elapsed, ~18 s left; rmsd=0.12

at most every ``every`` seconds (default 10; ``SCIFLOW_PROGRESS_EVERY`` overrides it) and once at
the end, so a log file shows that work is moving without filling up with bar redraws.
``enabled=False`` (or ``SCIFLOW_PROGRESS=0``) silences it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

__all__ = ["progress", "LineProgress"]


def _env_enabled() -> bool:
    return os.environ.get("SCIFLOW_PROGRESS", "1").lower() not in ("0", "false", "no", "off")


class LineProgress:
    """Periodic plain-text progress lines (the non-terminal form of :func:`progress`)."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", initial: int = 0, every: float | None = None,
                 stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.iterable, self.desc, self.unit, self.n = iterable, desc, unit, initial
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.initial = total, initial
        self.every = float(os.environ.get("SCIFLOW_PROGRESS_EVERY", 10.0 if every is None else every))
        self.stream = stream if stream is not None else sys.stderr
        self.enabled, self.postfix = enabled, ""
        self.t0 = self.last = time.monotonic()
        self.closed = False
        self._printed = -1  # the count of the last line written, so close() never repeats it
        self._first: tuple[float, int] | None = None  # (time, count) at the first update

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress object was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        if self.total:
            text = f"{self.n}/{self.total} ({100.0 * self.n / self.total:.0f}%)"
            # the rate since the first update: the first item carries the start-up (imports,
            # warm-up) and would make the estimate absurd for a long run
            left = None
            if self._first is not None and self.n > self._first[1]:
                span = time.monotonic() - self._first[0]
                if span > 0:
                    left = (self.total - self.n) * span / (self.n - self._first[1])
            eta = f", ~{left:.0f} s left" if left is not None and self.n < self.total else ""
        else:
            text, eta = f"{self.n} {self.unit}", ""
        tail = f"; {self.postfix}" if self.postfix else ""
        return f"[{self.desc or 'progress'}] {text} {elapsed:.0f} s elapsed{eta}{tail}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self._first is None:
            self._first = (now, self.n)
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self._write()

    def _write(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._printed = self.n

    def close(self) -> None:
        if not self.closed and self.enabled and self.n > self.initial and self._printed != self.n:
            self._write()
        self.closed = True


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", initial: int = 0, enabled: bool | None = None,
             every: float | None = None) -> Any:
    """A tqdm bar on a terminal, :class:`LineProgress` lines otherwise (see the module docstring).

    ``enabled=None`` shows progress unless ``SCIFLOW_PROGRESS=0``; False hides it.
    """
    show = _env_enabled() if enabled is None else bool(enabled)
    if show and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial,
                    dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, every=every,
                        enabled=show)

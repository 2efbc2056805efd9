"""Run a study into its report folder: validate, claim, evaluate (with caches), write.

Used by ``sciflow precision study`` and by the demo; ``run`` is the same function under the
domain's short name.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from .config import TESTBEDS, Config, StudyConfig
from .evaluation import StudyResult, cache_key, evaluate, validate
from .folder import StudyFolder
from .provenance import provenance
from .report import report_files, write_config, write_report
from .tables import LABEL, verdicts
from .uncertainty import UndecidedWarning

__all__ = ["Config", "StudyConfig", "TESTBEDS", "run_study", "run", "warn_undecided"]


def run_study(
    config: Config | None,
    out_dir: str | Path,
    *,
    command: str = "",
    progress: Callable[[str], None] | None = print,
    reuse: bool = True,
    cache: bool = True,
    overwrite: bool = False,
    reuse_from: str | Path | None = None,
    inputs: Iterable[str | Path] = (),
) -> tuple[Path, str]:
    """Run the study; write its figures, ``results.csv``, ``config.json`` and ``README.md``.

    Everything is checked and every output claimed before any work (:func:`~.evaluation.validate`
    and :class:`~.folder.StudyFolder`, whose docstring gives the rules for an existing
    ``out_dir``). Each finished testbed is kept in ``out_dir/cache/<testbed>.pt`` (unless
    ``cache=False``) and reused by a later run with the same settings; ``reuse=False``
    recomputes (replacing an existing cache needs ``overwrite``). ``reuse_from``: another study
    folder whose matching caches are read, never written. ``inputs``: files or folders the
    output must not be. Every verdict the run cannot decide (:data:`~.uncertainty.RULE`) is
    also an :class:`~.uncertainty.UndecidedWarning`. Returns the README's path and its markdown
    body.
    """
    config = config if config is not None else Config()
    validate(config)
    keys = {t: cache_key(t, config) for t in TESTBEDS if t in config.testbeds}
    info = provenance(command=command, seed=config.seed)
    folder = StudyFolder(out_dir, keys=keys, files=report_files(config.testbeds),
                         overwrite=overwrite, reuse=reuse, cache=cache, reuse_from=reuse_from,
                         inputs=inputs, info=info)
    with folder:
        t0 = time.perf_counter()
        write_config(folder, config)
        result = evaluate(config, progress=progress, cache=folder if cache else None)
        written = write_report(folder, result, command=command, seconds=time.perf_counter() - t0,
                               info=info)
    warn_undecided(result)
    return written


def warn_undecided(result: StudyResult) -> list[str]:
    """Warn (:class:`~.uncertainty.UndecidedWarning`) about every verdict of ``result`` that its
    run was too short or too small to decide (or that has no interval: cached before the
    bootstrap); returns the messages."""
    messages = []
    for label, r, v in verdicts(result.sweeps, result.flow):
        if not v.decided:
            why = ("too short or too small to decide" if v.has_interval
                   else "no uncertainty for this verdict")
            messages.append(f"{why}: {label} {LABEL[r]}: {v.text()} -- {v.reason}")
    for text in messages:
        warnings.warn(text, UndecidedWarning, stacklevel=3)
    return messages


#: the domain's name for :func:`run_study`
run = run_study

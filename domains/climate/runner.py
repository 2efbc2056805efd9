"""Run a study into its report folder: validate, claim, evaluate (with caches), write.

Used by ``sciflow precision study`` and by the demo; ``run`` is the same function under the
domain's short name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .config import TESTBEDS, Config, StudyConfig
from .evaluation import cache_key, evaluate, validate
from .folder import StudyFolder
from .report import report_files, write_config, write_report

__all__ = ["Config", "StudyConfig", "TESTBEDS", "run_study", "run"]


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
    output must not be. Returns the README's path and its markdown body.
    """
    config = config if config is not None else Config()
    validate(config)
    keys = {t: cache_key(t, config) for t in TESTBEDS if t in config.testbeds}
    folder = StudyFolder(out_dir, keys=keys, files=report_files(config.testbeds),
                         overwrite=overwrite, reuse=reuse, cache=cache, reuse_from=reuse_from,
                         inputs=inputs)
    with folder:
        t0 = time.perf_counter()
        write_config(folder, config)
        result = evaluate(config, progress=progress, cache=folder if cache else None)
        return write_report(folder, result, command=command, seconds=time.perf_counter() - t0)


#: the domain's name for :func:`run_study`
run = run_study

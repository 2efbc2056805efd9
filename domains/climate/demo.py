"""The ``climate`` section of ``sciflow demo``: a small, real run of the low-precision study.

Lorenz 1963 and the soil column (one year) swept over a few significand bits, the stagnation of
many tiny increments, and a trained 2-D flow sampler under emulation; about a minute on one core.
The shallow-water testbed is left to ``sciflow precision study`` (minutes per simulated month).
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

from .config import Config
from .runner import run_study

__all__ = ["demo", "DEMO_CONFIG"]

DEMO_CONFIG = Config(
    testbeds=("lorenz", "heat", "flow", "stagnation"),
    bits=(6, 10, 16, 23),
    lorenz_members=5,
    lorenz_steps=2000,
    heat_years=1.0,
    flow_samples=800,
    flow_sample_steps=16,
).replace(train={"steps": 600})


def demo(out_dir: Path) -> str:
    """Run :data:`DEMO_CONFIG` into ``out_dir/precision`` and return the report section.

    ``out_dir/precision`` is a study folder: a second demo into the same ``out_dir`` rewrites it
    (no caches are kept, so every number is from this run).
    """
    from .uncertainty import UndecidedWarning

    t0 = time.perf_counter()
    folder = Path(out_dir) / "precision"
    with warnings.catch_warnings():
        # the section itself says which verdicts this small run cannot decide, and why
        warnings.simplefilter("ignore", UndecidedWarning)
        _, body = run_study(DEMO_CONFIG, folder, command="sciflow demo (precision section)",
                            progress=None, cache=False)
    body = re.sub(r"\]\((?!https?:)([^)]+\.png)\)", r"](precision/\1)", body)
    body = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", body, flags=re.MULTILINE)
    body = body.replace("## Low-precision study", "## Low precision: a small run of the study", 1)
    full = Config()
    return (
        body
        + f"\nThis is a small run ({DEMO_CONFIG.lorenz_members} Lorenz members x "
        f"{DEMO_CONFIG.lorenz_steps} steps, {DEMO_CONFIG.heat_years:g} soil-column year): read "
        "its verdicts with their intervals, and those marked undecided as 'this run cannot "
        f"tell'. The full study (`sciflow precision study`: {full.lorenz_members} members x "
        f"{full.lorenz_steps} steps, {full.heat_years:g} years, shallow water, sbits "
        f"{full.bits[0]}..{full.bits[-1]}) is committed in "
        "`benchmarks/results/precision_study/README.md`; this section took "
        f"{time.perf_counter() - t0:.0f} s.\n"
    )

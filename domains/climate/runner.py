"""Run the chosen parts of the study and write the report folder (used by the CLI and the demo)."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch

from sciflow.checkpoint import atomic_write

from . import report, study

__all__ = ["StudyConfig", "TESTBEDS", "run_study"]

TESTBEDS: tuple[str, ...] = ("lorenz", "heat", "shallow_water", "flow", "stagnation")


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """What to run and how big. Defaults: the full study (tens of minutes on 2 CPU cores)."""

    testbeds: tuple[str, ...] = TESTBEDS
    bits: tuple[int, ...] = tuple(range(4, 24))
    sw_bits: tuple[int, ...] = (6, 8, 10, 12, 16, 23)
    seed: int = 0
    lorenz_members: int = 30
    lorenz_steps: int = 50_000
    lorenz_nulls: int = 8
    heat_years: float = 100.0
    sw_nx: int = 50
    sw_spinup_days: float = 200.0
    sw_days: float = 30.0
    flow_train_steps: int = 1500
    flow_samples: int = 2000
    flow_steps: int = 32
    stagnation_steps: int = 2000

    def __post_init__(self) -> None:
        unknown = [t for t in self.testbeds if t not in TESTBEDS]
        if unknown:
            raise ValueError(f"unknown testbed(s) {unknown}; choose from {list(TESTBEDS)}")
        if not self.bits:
            raise ValueError("bits is empty; give at least one number of significand bits")


T = TypeVar("T")


def _cached(out: Path | None, name: str, key: dict, compute: Callable[[], T], reuse: bool,
            progress: Callable[[str], None] | None) -> T:
    """One testbed's results, reused from ``out/cache/<name>.pt`` when saved with equal settings.

    Lets the testbeds of one study run as separate processes into the same folder; a last run
    over all of them then only writes the report.
    """
    if out is None:
        return compute()
    path = out / "cache" / f"{name}.pt"
    if reuse and path.exists():
        saved = torch.load(path, weights_only=False)
        if saved.get("key") == key:
            if progress is not None:
                progress(f"{name}: reusing {path}")
            return saved["value"]
    value = compute()
    atomic_write(path, lambda f: torch.save({"key": key, "value": value}, f))
    return value


UNITS = {"x": "", "y": "", "z": "", "T": "K", "eta": "m", "u": "m/s", "v": "m/s"}

NOTES = {
    "lorenz": (
        "Chaotic: the 1e-3 initial perturbations of the null runs saturate within ~10 time units, "
        "so W1 / null compares climates. Cells beyond the null's range at high sbits occur at "
        "about the chance rate 1/(nulls + 1)."
    ),
    "heat": (
        "Diffusive, not chaotic: the null runs' initial noise decays, so the null W1 is tiny and "
        "W1 / null flags any systematic drift (RN's stagnation at every sbits here). Read the W1 "
        "in kelvin and the depth profiles below."
    ),
    "shallow_water": (
        "At this coarse grid and 30-day window the 1 mm eta perturbations of the null runs do not "
        "grow (the null W1 stays far below 1 mm): the flow is not chaotic enough for a climate "
        "null, so W1 / null flags any systematic difference. Read the W1 in physical units."
    ),
}


def run_study(
    config: StudyConfig,
    out_dir: str | Path,
    *,
    command: str = "",
    progress: Callable[[str], None] | None = print,
    reuse: bool = True,
    cache: bool = True,
) -> tuple[Path, str]:
    """Run the study, write figures, ``results.csv``, ``config.json`` and ``README.md``.

    Each testbed's results are saved in ``out_dir/cache`` (unless ``cache=False``) and reused by a
    later run with the same settings (``reuse=False`` recomputes). Returns the report path and
    its markdown body.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sweeps: list[study.TestbedSweep] = []
    sections: list[str] = []
    figures: list[str] = []
    flow = None
    cfg = config

    def cached(name: str, key: dict, compute: Callable[[], T]) -> T:
        return _cached(out if cache else None, name, {**key, "seed": cfg.seed}, compute, reuse,
                       progress)

    if "lorenz" in cfg.testbeds:
        sweeps.append(cached(
            "lorenz",
            {"bits": cfg.bits, "members": cfg.lorenz_members, "steps": cfg.lorenz_steps,
             "nulls": cfg.lorenz_nulls},
            lambda: study.lorenz_sweep(bits=cfg.bits, members=cfg.lorenz_members,
                                       steps=cfg.lorenz_steps, nulls=cfg.lorenz_nulls,
                                       seed=cfg.seed, progress=progress),
        ))
    if "heat" in cfg.testbeds:
        heat, profiles = cached(
            "heat",
            {"bits": cfg.bits, "years": cfg.heat_years},
            lambda: study.heat_sweep(bits=cfg.bits, years=cfg.heat_years, seed=cfg.seed,
                                     progress=progress),
        )
        sweeps.append(heat)
        report.plot_heat(profiles, out / "heat_profiles.png")
        sections.append(
            f"### Soil column: depth profiles after {profiles.years:g} years\n\n"
            "float32, float16 and bfloat16 here have their own exponent ranges (IEEE-like "
            "formats, every op rounded), RN = round-to-nearest-even, SR = stochastic.\n\n"
            + report.heat_table(profiles)
            + "\n\n"
            + report.warming_summary(profiles)
            + "\n\n![heat profiles](heat_profiles.png)\n"
        )
    if "shallow_water" in cfg.testbeds:
        sw, means = cached(
            "shallow_water",
            {"bits": cfg.sw_bits, "nx": cfg.sw_nx, "spinup": cfg.sw_spinup_days,
             "days": cfg.sw_days},
            lambda: study.shallow_water_sweep(bits=cfg.sw_bits, nx=cfg.sw_nx,
                                              spinup_days=cfg.sw_spinup_days, days=cfg.sw_days,
                                              seed=cfg.seed, progress=progress),
        )
        sweeps.append(sw)
        mid = sorted(cfg.sw_bits)[len(cfg.sw_bits) // 2 - 1] if len(cfg.sw_bits) > 1 else cfg.sw_bits[0]
        report.plot_climatology(means, ["float64", f"sbits{mid}-RN", f"sbits{mid}-SR"],
                                out / "sw_climatology.png")
        sections.append(
            "### Shallow water: time-mean fields\n\n![climatology](sw_climatology.png)\n"
        )
    if "flow" in cfg.testbeds:
        flow = cached(
            "flow",
            {"bits": cfg.bits, "train": cfg.flow_train_steps, "samples": cfg.flow_samples,
             "steps": cfg.flow_steps},
            lambda: study.flow_sweep(bits=cfg.bits, train_steps=cfg.flow_train_steps,
                                     samples=cfg.flow_samples, steps=cfg.flow_steps,
                                     seed=cfg.seed, progress=progress),
        )
        report.plot_flow(flow, out / "flow_sweep.png")
        sections.append(
            "### Flow-matching sampler\n\n"
            f"{flow.settings}. Float64-vs-float64 sample W1 (independent noise): "
            f"{flow.null_w1:.4f}. 'dev' = same-noise deviation mean ||x_low - x_64|| (bounds W1 "
            f"to the same-noise float64 samples from above); 'emulate' = every op rounded, "
            f"'state' = only the state after each solver step (step_hook).\n\n"
            + report.flow_table(flow)
            + "\n\n![flow sweep](flow_sweep.png)\n"
        )
    if "stagnation" in cfg.testbeds:
        stag = cached("stagnation", {"steps": cfg.stagnation_steps},
                      lambda: study.stagnation(steps=cfg.stagnation_steps, seed=cfg.seed))
        report.plot_stagnation(stag, out / "stagnation.png")
        final = {r: float(m[-1]) for r, m in stag.mean.items()}
        sections.append(
            "### Stagnation: many tiny increments\n\n"
            f"x = 1 plus {int(stag.steps[-1])} increments of {stag.increment:g} in {stag.fmt} "
            f"(half a unit in the last place at 1 is 2^-11 = 4.9e-4): exact "
            f"{float(stag.exact[-1]):.4f}, RN {final['nearest']:.4f}, SR mean "
            f"{final['stochastic']:.4f} (sd {float(stag.spread['stochastic'][-1]):.4f} over 200 "
            f"members).\n\n![stagnation](stagnation.png)\n"
        )
    if sweeps:
        report.plot_ratios(sweeps, out / "w1_ratio_vs_sbits.png")
        figures.append("![W1 / null against significand bits](w1_ratio_vs_sbits.png)")
    report.write_csv(out / "results.csv", sweeps, flow)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    seconds = time.perf_counter() - t0
    parts = [
        "# Low-precision study (after Paxton et al., J. Climate 2022)\n",
        f"Command: `{command or 'run_study(...)'}`; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), {platform.machine()}; this run {seconds / 60:.1f} "
        f"min, testbeds reused from {out / 'cache'} took the seconds given in their sections. "
        "Every op of each model is rounded (sciflow.precision.emulate_sweep: one batch of "
        "precision arms); 'sbits k' keeps float64's exponent range (rpe's convention). "
        "Figure of merit: W1 to the float64 reference over the mean W1 of float64 runs from "
        "perturbed initial conditions (per variable, per grid point for fields).\n",
        "## Indistinguishable from float64\n",
        "Fewest significand bits k from which on a model behaves like one more float64 null run: "
        "at k every variable's W1 / mean null is within the null's range (<= the largest null "
        "run's W1 / mean null), and over all bits >= k no more cells exceed it than chance "
        "allows (a fraction 1/(nulls + 1)). Flow samplers: the same-noise deviation is below the "
        "float64-vs-float64 sample W1.\n",
        report.threshold_table(sweeps, flow) + "\n",
        *figures,
    ]
    for s in sweeps:
        parts.append(
            f"\n## {s.testbed}\n\n{s.settings}; {s.seconds:.0f} s.\n\n{NOTES.get(s.testbed, '')}"
            f"\n\nW1 / mean null W1:\n\n{report.sweep_table(s)}\n\nW1 to float64 in physical "
            f"units (last row: mean null W1):\n\n{report.w1_table(s, UNITS)}\n"
        )
    parts += ["\n## Details\n"] + sections
    body = "\n".join(parts) + "\n"
    path = out / "README.md"
    path.write_text(body)
    return path, body

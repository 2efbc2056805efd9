"""The report folder of a study: README.md (tables beside the paper's claims), figures,
results.csv and config.json, written from a :class:`~.evaluation.StudyResult`.

The tables live in :mod:`.tables` and the figures in :mod:`.figures`; their functions are also
reachable here under their former names (``report.sweep_table``, ``report.plot_heat``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sciflow.outputs import dumps_json

from .config import Config
from .evaluation import StudyResult
from .figures import (
    FIGURES,
    RATIO_FIGURE,
    plot_climatology,
    plot_flow,
    plot_heat,
    plot_ratios,
    plot_stagnation,
)
from .folder import StudyFolder
from .provenance import csv_preamble, provenance_line
from .results import FlowSweep, TestbedSweep
from .tables import (
    MARKS,
    UNITS,
    flow_table,
    heat_table,
    sweep_table,
    threshold_table,
    verdict_notes,
    w1_table,
    warming_summary,
    write_csv,
)
from .uncertainty import LEVEL, RESAMPLES, RULE

__all__ = [
    "NOTES",
    "UNITS",
    "report_files",
    "write_config",
    "write_report",
    # the former contents of this module, now in .tables and .figures
    "sweep_table",
    "w1_table",
    "threshold_table",
    "heat_table",
    "warming_summary",
    "flow_table",
    "write_csv",
    "plot_ratios",
    "plot_heat",
    "plot_stagnation",
    "plot_climatology",
    "plot_flow",
]


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
        "At this coarse grid and over a window of days to weeks the 1 mm eta perturbations of "
        "the null runs do not grow (the null W1 stays far below 1 mm): the flow is not chaotic "
        "enough for a climate null, so W1 / null flags any systematic difference. Read the W1 "
        "in physical units."
    ),
}

_SWEPT = ("lorenz", "heat", "shallow_water")


def report_files(testbeds: Sequence[str]) -> list[str]:
    """The files a report of ``testbeds`` writes into its folder."""
    files = ["README.md", "results.csv", "config.json", "provenance.json"]
    if any(t in testbeds for t in _SWEPT):
        files.append(RATIO_FIGURE)
    return files + [FIGURES[t] for t in testbeds if t in FIGURES]


def _sections(folder: StudyFolder, result: StudyResult) -> list[str]:
    """The "Details" sections, each with its figure written into ``folder``."""
    sections = []
    if result.heat is not None:
        profiles = result.heat
        folder.write(FIGURES["heat"], lambda tmp: plot_heat(profiles, tmp))
        sections.append(
            f"### Soil column: depth profiles after {profiles.years:g} years\n\n"
            "float32, float16 and bfloat16 here have their own exponent ranges (IEEE-like "
            "formats, every op rounded), RN = round-to-nearest-even, SR = stochastic.\n\n"
            + heat_table(profiles) + "\n\n" + warming_summary(profiles)
            + f"\n\n![heat profiles]({FIGURES['heat']})\n"
        )
    if result.climatology is not None:
        bits = result.config.sw_bits
        mid = sorted(bits)[len(bits) // 2 - 1] if len(bits) > 1 else bits[0]
        names = ["float64", f"sbits{mid}-RN", f"sbits{mid}-SR"]
        means = result.climatology
        folder.write(FIGURES["shallow_water"], lambda tmp: plot_climatology(means, names, tmp))
        sections.append("### Shallow water: time-mean fields\n\n"
                        f"![climatology]({FIGURES['shallow_water']})\n")
    if result.flow is not None:
        flow = result.flow
        folder.write(FIGURES["flow"], lambda tmp: plot_flow(flow, tmp))
        sections.append(
            "### Flow-matching sampler\n\n"
            f"{flow.settings}. Float64-vs-float64 sample W1 (independent noise): "
            f"{flow.null_w1:.4f}{_null_range(flow)}. 'dev' = same-noise deviation mean "
            f"||x_low - x_64|| (bounds W1 to the same-noise float64 samples from above); "
            f"'emulate' = every op rounded, 'state' = only the state after each solver step "
            f"(step_hook). Samples live in the dimensionless plane of the toy densities. "
            f"Marks on 'dev': {MARKS}\n\n"
            + flow_table(flow) + f"\n\n![flow sweep]({FIGURES['flow']})\n"
        )
    if result.stagnation is not None:
        stag = result.stagnation
        folder.write(FIGURES["stagnation"], lambda tmp: plot_stagnation(stag, tmp))
        final = {r: float(m[-1]) for r, m in stag.mean.items()}
        sections.append(
            "### Stagnation: many tiny increments\n\n"
            f"x = 1 plus {int(stag.steps[-1])} increments of {stag.increment:g} in {stag.fmt} "
            f"(half a unit in the last place at 1 is 2^-11 = 4.9e-4): exact "
            f"{float(stag.exact[-1]):.4f}, RN {final['nearest']:.4f}, SR mean "
            f"{final['stochastic']:.4f} (sd {float(stag.spread['stochastic'][-1]):.4f} over "
            f"{stag.members} members).\n\n![stagnation]({FIGURES['stagnation']})\n"
        )
    return sections


def _null_range(flow: FlowSweep) -> str:
    if len(flow.null_each) < 2:
        return ""
    return (f" (over {len(flow.null_each)} independent sample sets: {min(flow.null_each):.4f} to "
            f"{max(flow.null_each):.4f})")


def _origin(folder: StudyFolder, testbed: str, reused: Sequence[str]) -> str:
    """Where a testbed's numbers come from: this run or a cache, with the cache's provenance."""
    if testbed not in reused:
        return "computed in this run"
    info = folder.provenance.get(testbed)
    if info is None:
        return "computed before caches kept their provenance"
    return (f"computed {info.get('time', '?')} by `{info.get('command', '?')}` (sciflow "
            f"{info.get('sciflow', '?')}, seed {info.get('seed', '?')})")


def write_config(folder: StudyFolder, config: Config) -> Path:
    """Write ``config.json`` (the settings, as :meth:`Config.to_dict`): first, before any work,
    so that even an interrupted study's folder is recognised (and resumed) as a study."""
    text = dumps_json(config.to_dict())
    return folder.write("config.json", lambda tmp: tmp.write_text(text))


def write_report(folder: StudyFolder, result: StudyResult, *, command: str = "",
                 seconds: float = 0.0, info: dict[str, Any] | None = None) -> tuple[Path, str]:
    """Write the figures, ``results.csv`` (after a ``#`` provenance preamble),
    ``provenance.json`` and ``README.md`` of ``result`` into the claimed ``folder``
    (``config.json`` is :func:`write_config`'s); returns the README's path and its markdown
    body. ``info``: the run's :func:`~.provenance.provenance` (made here when None)."""
    from .provenance import provenance

    sweeps, flow = result.sweeps, result.flow
    info = info if info is not None else provenance(command=command, seed=result.config.seed)
    sections = _sections(folder, result)
    figures = []
    if sweeps:
        folder.write(RATIO_FIGURE, lambda tmp: plot_ratios(sweeps, tmp))
        figures.append(f"![W1 / null against significand bits]({RATIO_FIGURE})")
    folder.write("provenance.json", lambda tmp: tmp.write_text(dumps_json(info)))
    preamble = csv_preamble(info) + [
        "# read with pandas.read_csv(path, comment='#'); columns are described in README.md"]
    folder.write("results.csv", lambda tmp: write_csv(tmp, sweeps, flow, preamble))
    reused = (f"testbeds reused from caches ({', '.join(result.reused)}) took the seconds given "
              "in their sections" if result.reused else "no testbed reused")
    parts = [
        "# Low-precision study (after Paxton et al., J. Climate 2022)\n",
        f"{provenance_line(info)} This run {seconds / 60:.1f} min, {reused}. "
        "Every op of each model is rounded (sciflow.precision.emulate_sweep: one batch of "
        "precision arms); 'sbits k' keeps float64's exponent range (rpe's convention). "
        "Figure of merit: W1 to the float64 reference over the mean W1 of float64 runs from "
        "perturbed initial conditions (per variable, per grid point for fields; a "
        "dimensionless ratio).\n",
        "## Indistinguishable from float64\n",
        "Fewest significand bits k from which on a model behaves like one more float64 null run: "
        "at k every variable's W1 / mean null is within the null's range (<= the largest null "
        "run's W1 / mean null), and over all bits >= k no more cells exceed it than chance "
        "allows (a fraction 1/(nulls + 1)). Flow samplers: the same-noise deviation is below the "
        "float64-vs-float64 sample W1.\n",
        f"Each k carries its {LEVEL:.0%} interval: the k of each of {RESAMPLES} bootstrap "
        "resamples of the run's independent units (column 'resampled over'; every W1 recomputed "
        f"on the resampled units, the same draw for every arm). {RULE}\n",
        threshold_table(sweeps, flow) + "\n",
        verdict_notes(sweeps, flow) + "\n",
        *figures,
    ]
    for s in sweeps:
        parts.append(
            f"\n## {s.testbed}\n\n{s.settings}; {s.seconds:.0f} s, {_origin(folder, s.testbed, result.reused)}"
            f".\n\n{NOTES.get(s.testbed, '')}\n\nW1 / mean null W1 (dimensionless); marks from "
            f"the bootstrap over {_resampled_text(s)}: {MARKS}\n\n{sweep_table(s)}\n\n"
            f"W1 to float64 in each variable's unit (last row: mean null W1):\n\n"
            f"{w1_table(s, UNITS)}\n"
        )
    parts += ["\n## Details\n"] + sections
    parts += ["\n## Files\n",
              "`results.csv`: every measured row (columns: testbed, arm, sbits, rounding, "
              "variable, unit, w1, null, ratio, limit, ratio_low and ratio_high = the ratio's 5% "
              "and 95% over the resamples, within_share = the fraction of resamples within the "
              "null's range), after `#` provenance lines. `provenance.json`: the same provenance "
              "as strict JSON. `config.json`: the settings (`Config.from_dict` reads it). "
              "`cache/`: each testbed's results with the provenance of the run that computed "
              "them.\n"]
    body = "\n".join(parts) + "\n"
    path = folder.write("README.md", lambda tmp: tmp.write_text(body))
    return path, body


def _resampled_text(sweep: TestbedSweep) -> str:
    return sweep.resampling or "no units (cached before the bootstrap: no marks)"

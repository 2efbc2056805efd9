"""Low-precision arithmetic on climate testbeds and a flow sampler (Paxton et al., J. Climate
35(4), 2022), in plain torch.

Every model is written with torch ops on tensors with arbitrary leading dimensions, so
:func:`sciflow.precision.emulate` rounds each op like the Fortran emulator rpe, and
:func:`sciflow.precision.emulate_sweep` runs a whole sweep of precisions as one batch (a leading
"arm" dimension).

>>> from sciflow.domains.climate import Config, evaluate, run             # doctest: +SKIP
>>> config = Config(testbeds=("lorenz", "stagnation"), bits=(8, 12, 23), lorenz_steps=2000)
>>> result = evaluate(config)                       # measure, write nothing
>>> result.sweeps[0].threshold("stochastic")        # fewest sbits like float64 under SR
>>> result.sweeps[0].verdict("stochastic").text()   # ... with its 90% bootstrap interval
>>> run(config, "study")                            # the report folder (README, figures, cache)

The domain shape (``domains/README.md``) without a network of its own: there is no ``Model``,
``load``, ``train`` or ``sample`` (the testbeds are physical models, not trained ones; the flow
testbed trains its small 2-D flow for each study with the core, :func:`train_flow`). Modules:

* :mod:`.config` -- :class:`Config`, the study's settings (it contains the flow's
  :class:`~sciflow.train.TrainConfig`; ``train.seed`` is the study's seed), :func:`quick_config`.
* :mod:`.lorenz`, :mod:`.heat`, :mod:`.shallow_water` -- the testbed models: Lorenz 1963 (RK4,
  dt 0.01), heat diffusion in a 60 m soil column (forward Euler, dt 1800 s: the stagnation example)
  and wind-driven flow over a ridge in a periodic channel (C-grid, vector-invariant, RK4).
* :mod:`.sweeps` (Lorenz, heat, shallow water), :mod:`.flow` (the flow sampler),
  :mod:`.increments` (stagnation of tiny increments) -- the measurements; :mod:`.results` their
  frozen results; :mod:`.uncertainty` -- the block bootstrap that gives every "like float64 from
  k bits" its interval (:class:`Verdict`) and says when a run is too short to decide
  (:data:`RULE`, :class:`UndecidedWarning`).
* :mod:`.evaluation` -- :func:`evaluate` (all chosen testbeds -> :class:`StudyResult`),
  :func:`validate`; :mod:`.runner` -- :func:`run` / :func:`run_study` (the report folder);
  :mod:`.folder` -- the claimed ``--out`` folder and its caches (``save_tensors``: a cache holds
  tensors, numbers and strings only, so a crafted file is refused, never run).
* :mod:`.tables`, :mod:`.figures`, :mod:`.report` -- markdown, CSV, PNGs and README.md;
  :mod:`.provenance` -- sciflow version, command, seed and time in every report folder.
* :mod:`.cli` -- ``sciflow climate`` (alias ``precision``); :mod:`.demo` -- its demo section.

Former names, kept: ``StudyConfig`` (= :class:`Config`; its ``seed`` is now ``train.seed`` and
``flow_train_steps`` is ``train.steps``, ``flow_steps`` is ``flow_sample_steps``);
``cli.QUICK`` and ``config.QUICK`` (= :func:`quick_config`); ``cli.parse_bits`` (in
:mod:`.config`); the modules ``study`` (its names now in results/sweeps/flow/increments),
``report`` (tables and figures still importable from it) and ``runner``. ``flow_sweep`` takes
``train=TrainConfig`` (was ``train_steps``/``seed``) and ``solver``/``sample_steps`` (were
``method``/``steps``).
"""

from sciflow.plugins import lazy_exports, public_names

_EXPORTS = {
    ".config": (
        "Config", "StudyConfig", "KIND", "TESTBEDS", "QUICK_SETTINGS", "quick_config", "parse_bits",
    ),
    ".evaluation": ("evaluate", "validate", "StudyResult"),
    ".runner": ("run", "run_study"),
    ".results": ("SweepRow", "TestbedSweep", "HeatProfiles", "FlowRow", "FlowSweep", "Stagnation"),
    ".sweeps": ("sweep_arms", "lorenz_sweep", "heat_sweep", "shallow_water_sweep", "PAPER_CLAIMS"),
    ".flow": ("flow_sweep", "train_flow"),
    ".increments": ("stagnation",),
    ".uncertainty": (
        "Verdict", "UndecidedWarning", "RULE", "block_units", "resample_counts", "paired_w1",
    ),
    ".lorenz": ("Lorenz63", "lorenz_ensemble"),
    ".heat": ("SoilColumn",),
    ".shallow_water": ("ShallowWater", "SWState"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = public_names(_EXPORTS)

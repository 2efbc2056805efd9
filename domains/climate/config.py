"""What the low-precision study runs and how big: one frozen object, :class:`Config`.

``Config`` (formerly ``StudyConfig``) holds the testbeds, the significand bits to sweep, each
testbed's size and, for the flow testbed, the :class:`~sciflow.train.TrainConfig` of its 2-D flow
(``train``: steps, lr, seed, device, ...), contained, never copied. ``config.train.seed`` is the
study's seed: it fixes the flow's training and every noise draw of every testbed.

This module imports no torch (``sciflow precision --help`` reads the defaults from it); the
``TrainConfig`` is imported when a ``Config`` is built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sciflow.cli_args import SOLVER_NAMES
from sciflow.configs import DomainConfig
from sciflow.errors import InputError

if TYPE_CHECKING:
    from sciflow.train import TrainConfig

__all__ = ["Config", "StudyConfig", "KIND", "TESTBEDS", "QUICK_SETTINGS", "quick_config",
           "FLOW_TRAIN", "default_train", "parse_bits"]

#: the checkpoint / cache kind tag of this domain
KIND = "climate"

TESTBEDS: tuple[str, ...] = ("lorenz", "heat", "shallow_water", "flow", "stagnation")

#: Lorenz states are recorded every this many RK4 steps (``lorenz_steps`` must reach it)
LORENZ_EVERY = 10

#: the few-minute version of the study (``sciflow precision study --quick``)
QUICK_SETTINGS: dict[str, Any] = {
    "bits": (4, 6, 8, 10, 12, 14, 16, 20, 23),
    "sw_bits": (8, 12, 23),
    "lorenz_members": 5,
    "lorenz_steps": 3000,
    "heat_years": 2.0,
    "sw_spinup_days": 60.0,
    "sw_days": 5.0,
    "flow_samples": 1000,
    "flow_sample_steps": 16,
    "train": {"steps": 800},
}

#: keys of config.json files written before Config contained a TrainConfig
_LEGACY_KEYS = {"flow_steps": "flow_sample_steps"}


#: the flow testbed's training run (TrainConfig fields): 1,500 AdamW steps, cosine lr, EMA 0.99;
#: its progress shows with the study's (a silent study trains silently)
FLOW_TRAIN: dict[str, Any] = {"steps": 1500, "lr": 3e-3, "schedule": "cosine", "ema_decay": 0.99,
                              "log_every": 100, "progress": None}


def default_train() -> TrainConfig:
    """The TrainConfig of :data:`FLOW_TRAIN` (seed 0, on the CPU)."""
    from sciflow.train import TrainConfig

    return TrainConfig(**FLOW_TRAIN)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bits_tuple(name: str, value: Any) -> tuple[int, ...]:
    try:
        bits = tuple(value)
    except TypeError:
        raise InputError(f"{name}={value!r}: expected a sequence of significand bits, e.g. "
                         "(6, 10, 23)") from None
    if not bits:
        raise InputError(f"{name} is empty; give at least one number of significand bits")
    bad = [k for k in bits if not _is_int(k) or not 1 <= k <= 52]
    if bad:
        raise InputError(f"{name}: significand bits {bad} are out of range; expected integers "
                         "in 1..52 (23 is float32's, 10 float16's, 7 bfloat16's)")
    return tuple(sorted(set(bits)))


@dataclass(frozen=True, kw_only=True)
class Config(DomainConfig):
    """The study's settings; the defaults are the full study (tens of minutes on 2 CPU cores).

    testbeds: a subset of :data:`TESTBEDS`. bits: significand bits swept on Lorenz, heat and the
    flow; sw_bits: on shallow water (its steps are costly). lorenz_members, lorenz_steps,
    lorenz_nulls: ensemble size, recorded RK4 steps (dt 0.01, a state every 10 steps) and float64
    null runs. heat_years: simulated years of the soil column (dt 1800 s). sw_nx: shallow-water
    cells along x (even, >= 6; the paper used 100), sw_spinup_days / sw_days: float64 spin-up and
    recorded days. flow_samples, flow_solver, flow_sample_steps: the flow sampler's sample count,
    ODE solver and steps. stagnation_steps: tiny increments added. train: the flow's training run
    (its ``seed`` is the study's seed; ``out_dir`` must stay None: the flow lives in memory).
    """

    LABEL = "study"

    testbeds: tuple[str, ...] = TESTBEDS
    bits: tuple[int, ...] = tuple(range(4, 24))
    sw_bits: tuple[int, ...] = (6, 8, 10, 12, 16, 23)
    lorenz_members: int = 30
    lorenz_steps: int = 50_000
    lorenz_nulls: int = 8
    heat_years: float = 100.0
    sw_nx: int = 50
    sw_spinup_days: float = 200.0
    sw_days: float = 30.0
    flow_samples: int = 2000
    flow_solver: str = "euler"
    flow_sample_steps: int = 32
    stagnation_steps: int = 2000
    train: TrainConfig = field(default_factory=default_train)

    def __post_init__(self) -> None:
        from sciflow.train import TrainConfig

        testbeds = (self.testbeds,) if isinstance(self.testbeds, str) else tuple(self.testbeds)
        unknown = [t for t in testbeds if t not in TESTBEDS]
        if unknown:
            raise InputError(f"unknown testbed(s) {unknown}; choose from {list(TESTBEDS)}")
        if not testbeds:
            raise InputError(f"testbeds is empty; choose some of {list(TESTBEDS)}")
        object.__setattr__(self, "testbeds", tuple(dict.fromkeys(testbeds)))
        object.__setattr__(self, "bits", _bits_tuple("bits", self.bits))
        object.__setattr__(self, "sw_bits", _bits_tuple("sw_bits", self.sw_bits))
        for name, low in (("lorenz_members", 1), ("lorenz_steps", LORENZ_EVERY),
                          ("lorenz_nulls", 1), ("sw_nx", 6), ("flow_samples", 2),
                          ("flow_sample_steps", 1), ("stagnation_steps", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise InputError(f"{name}={value!r}: expected an integer >= {low}")
        for name, positive in (("heat_years", True), ("sw_days", True), ("sw_spinup_days", False)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value) and (
                value > 0 if positive else value >= 0)
            if not ok:
                raise InputError(f"{name}={value!r}: expected a finite number "
                                 f"{'> 0' if positive else '>= 0'} (days or years)")
        if self.flow_solver not in SOLVER_NAMES:
            raise InputError(f"flow_solver={self.flow_solver!r}: choose from {list(SOLVER_NAMES)}")
        if not isinstance(self.train, TrainConfig):
            raise InputError(f"train must be a sciflow.train.TrainConfig, got "
                             f"{type(self.train).__name__}")
        if self.train.out_dir is not None:
            raise InputError(f"train.out_dir={str(self.train.out_dir)!r}: the study trains its "
                             "flow in memory and keeps no checkpoints; leave out_dir None")
        if "flow" in self.testbeds and self.train.steps < 1:
            raise InputError(f"train.steps={self.train.steps}: the flow testbed needs at least one "
                             "training step (--steps)")

    @property
    def seed(self) -> int:
        """The study's seed, ``train.seed``."""
        return self.train.seed

    def replace(self, **changes: Any) -> Config:
        """A copy with fields changed; ``train=dict(...)`` changes fields of the TrainConfig and
        ``seed=`` is ``train.seed``."""
        if "seed" in changes:
            train = changes.get("train") or {}
            seed = changes.pop("seed")
            changes["train"] = ({**train, "seed": seed} if isinstance(train, dict)
                                else dataclasses.replace(train, seed=seed))
        return super().replace(**changes)

    @classmethod
    def _upgrade(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Older studies wrote a flat ``config.json``: ``seed`` and ``flow_train_steps`` beside
        the settings, ``flow_steps`` for ``flow_sample_steps``."""
        d = {_LEGACY_KEYS.get(k, k): v for k, v in d.items()}
        legacy = {"seed": d.pop("seed", None), "steps": d.pop("flow_train_steps", None)}
        train = dict(d.get("train") or default_train().to_dict())
        train.update({k: v for k, v in legacy.items() if v is not None})
        d["train"] = train
        return d


#: the former name of :class:`Config`
StudyConfig = Config


def quick_config(**changes: Any) -> Config:
    """The few-minute study (:data:`QUICK_SETTINGS`), with ``changes`` applied on top."""
    settings = {**QUICK_SETTINGS, **changes}
    train = {**QUICK_SETTINGS["train"], **(changes.get("train") or {})}
    settings.pop("train")
    return Config().replace(**settings, train=train)


def parse_bits(text: str) -> tuple[int, ...]:
    """``"4-23"``, ``"4-23:2"`` (a step) or ``"6,8,10"`` -> a sorted tuple of significand bits."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                span, _, step = part.partition(":")
                lo, hi = (int(v) for v in span.split("-"))
                stride = int(step) if step else 1
                if stride < 1:
                    raise ValueError
                out.extend(range(lo, hi + 1, stride))
            elif part:
                out.append(int(part))
    except ValueError:
        raise InputError(
            f"cannot read significand bits from {text!r}; use e.g. '4-23', '4-23:2' or '6,8,10'"
        ) from None
    if not out or any(not 1 <= k <= 52 for k in out):
        raise InputError(f"significand bits {text!r} must name values in 1..52")
    return tuple(sorted(set(out)))


def __getattr__(name: str) -> Any:
    if name == "QUICK":  # the former module constant of the CLI, built on first use
        return quick_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The flags every domain's command line shares, with one meaning each (torch-free).

The vocabulary (``domains/README.md`` lists it too):

==================  =========================================================================
``--steps N``       training updates (``TrainConfig.steps``); never anything else
``--lr``            learning rate (``TrainConfig.lr``)
``--seed``          everything random from model initialisation on (``TrainConfig.seed`` when
                    training; the noise draws when sampling)
``--device``        cpu, cuda, cuda:N, mps, auto
``--out DIR``       the run folder of a training (checkpoints, metrics.jsonl)
``--resume``        continue the training in ``--out``
``-o/--output F``   the file or store an inference command writes
``--overwrite``     allow replacing an existing output (refused otherwise)
``--checkpoint F``  the trained model to use
``--solver NAME``   the ODE solver (euler, midpoint, heun, rk4, dopri5)
``--sample-steps``  solver steps per sample
``--samples K``     samples per input
``--threads N``     torch intra-op threads
``--progress``      a progress bar on a terminal, a log line every ~10 s elsewhere
==================  =========================================================================

Defaults come from the domain's ``Config`` (flags default to None and :func:`train_config` fills
in only what was given), so no default is written twice. A flag that sets a Config field is named
after it (:func:`add_config_flags`, with the defaults of :func:`field_defaults`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["SOLVER_NAMES", "FlagRow", "positive_int", "nonnegative_int", "positive_float",
           "add_train_arguments", "train_config", "add_output_arguments",
           "add_solver_arguments", "add_device_argument", "add_threads_argument",
           "add_compute_arguments", "add_progress_argument", "add_plot_argument",
           "field_defaults", "add_config_flags", "set_threads"]

#: the ODE solvers of sciflow.solvers.SOLVERS (a test keeps the two equal)
SOLVER_NAMES = ("dopri5", "euler", "heun", "midpoint", "rk4")


def _parsed(text: str, cast: Callable[[str], Any], expected: str) -> Any:
    """``cast(text)``, or the argparse error "expected EXPECTED, got 'TEXT'"."""
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _int_at_least(text: str, low: int) -> int:
    value = _parsed(text, int, f"an integer >= {low}")
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (the error names the value)."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = _parsed(text, float, "a number > 0")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N, mps or auto (default: the config's, usually cpu)")


def add_threads_argument(p: argparse.ArgumentParser, default: int = 1) -> None:
    p.add_argument("--threads", type=positive_int, default=default,
                   help=f"torch intra-op threads (default {default})")


def add_compute_arguments(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``: where a command computes, and on how many threads."""
    add_device_argument(p)
    add_threads_argument(p)


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress`` (default None: :func:`sciflow.progress.progress` decides)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress (default: a bar on a terminal, a line every ~10 s elsewhere)")


FlagRow = tuple[str, dict[str, Any], str]
"""A flag that sets the config field it is named after: ``(field, add_argument keywords, help)``;
``{default}`` in the help stands for the field's default."""


def field_defaults(config: type) -> dict[str, Any]:
    """The field defaults of a dataclass (a domain's ``Config``), read without building one;
    fields built by a ``default_factory`` are left out."""
    return {f.name: f.default for f in dataclasses.fields(config)
            if f.default is not dataclasses.MISSING}


def add_config_flags(p: argparse.ArgumentParser, rows: Iterable[FlagRow],
                     defaults: Mapping[str, Any] | None = None, *, unset: bool = False) -> None:
    """``--field-name`` (``_`` -> ``-``) for each row ``(field, keywords, help)``.

    Each flag defaults to ``defaults[field]`` (a row naming no field of ``defaults`` is a
    KeyError), which ``{default}`` in its help shows; with ``unset`` (or no ``defaults``) it
    defaults to None instead, so that the handler changes only the fields the user gave and the
    config supplies the rest, while the help still shows the config's value.
    """
    for name, keywords, text in rows:
        value = None if defaults is None else defaults[name]
        p.add_argument("--" + name.replace("_", "-"), default=None if unset else value,
                       **keywords, help=text.replace("{default}", str(value)))


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (imports torch: call it in a handler, not at start-up)."""
    import torch

    torch.set_num_threads(int(getattr(args, "threads", 1) or 1))


def add_train_arguments(p: argparse.ArgumentParser, *, out_default: str | None = None) -> None:
    """``--steps --lr --seed --device --out --resume --threads`` for a training command; each
    defaults to the domain config's value (None here)."""
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=positive_int, default=None,
                   help="training updates (default: the config's)")
    g.add_argument("--lr", type=positive_float, default=None, help="learning rate")
    g.add_argument("--seed", type=nonnegative_int, default=None,
                   help="fixes everything random, model initialisation included")
    add_device_argument(g)
    g.add_argument("--out", default=out_default, required=out_default is None,
                   help="run folder: checkpoints/, metrics.jsonl and the final model")
    g.add_argument("--resume", action="store_true", help="continue the training found in --out")
    add_threads_argument(g)


def train_config(args: argparse.Namespace, base: Any) -> Any:
    """``base`` (a TrainConfig) with the training flags the user gave (and ``out_dir=--out``)."""
    changes: dict[str, Any] = {}
    for flag, field in (("steps", "steps"), ("lr", "lr"), ("seed", "seed"), ("device", "device")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "out", None) is not None:
        changes["out_dir"] = args.out
    return dataclasses.replace(base, **changes)


def add_output_arguments(p: argparse.ArgumentParser, *, suffixes: tuple[str, ...] | None = None,
                         default: str | None = None, what: str = "the result") -> None:
    """``-o/--output`` (required unless ``default``) and ``--overwrite``."""
    formats = f" ({', '.join(suffixes)})" if suffixes else ""
    p.add_argument("-o", "--output", default=default, required=default is None,
                   help=f"where to write {what}{formats}; never one of the inputs")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output if it exists (refused otherwise)")


def add_plot_argument(p: argparse.ArgumentParser, *, default: bool = True,
                      what: str = "the command's figure") -> None:
    """``--plot/--no-plot``: write ``what`` next to the output (default on)."""
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=default,
                   help=f"write {what} next to the output (default {'on' if default else 'off'})")


def add_solver_arguments(p: argparse.ArgumentParser, *, solver: str = "euler",
                         steps: int = 8) -> None:
    """``--solver`` and ``--sample-steps`` with the domain's defaults."""
    p.add_argument("--solver", default=solver, choices=SOLVER_NAMES,
                   help=f"ODE solver (default {solver}; dopri5 adapts its steps)")
    p.add_argument("--sample-steps", type=positive_int, default=steps,
                   help=f"solver steps per sample (default {steps})")

"""``sciflow climate ...`` (also ``sciflow precision ...``): the low-precision study, the number
formats, and rounding at the prompt.

    sciflow precision study --out precision_study            the full study (tens of minutes)
    sciflow precision study --quick --testbeds lorenz,flow   a few minutes
    sciflow precision formats                                the named formats and their ranges
    sciflow precision round 0.1 70000 --format float16 --rounding stochastic --draws 5

This module imports no torch: the handlers import what they use when they run, after every
argument has been checked.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from sciflow.cli_args import (
    add_device_argument,
    add_solver_arguments,
    add_threads_argument,
    field_defaults,
    nonnegative_int,
    positive_float,
    positive_int,
    set_threads,
)
from sciflow.plugins import Domain

from .config import FLOW_TRAIN, QUICK_SETTINGS, TESTBEDS, Config, parse_bits

__all__ = ["configure", "DOMAIN", "parse_bits", "ROUNDINGS"]

#: the roundings of sciflow.precision.ROUNDINGS (a test keeps the two equal)
ROUNDINGS = ("nearest", "stochastic")

DOMAIN = Domain(
    name="climate", aliases=("precision",), order=40, requires=(),
    summary="low-precision arithmetic and stochastic rounding on the climate testbeds of "
            "Paxton et al.",
    package="sciflow.domains.climate", cli="sciflow.domains.climate.cli:configure",
    demo="sciflow.domains.climate.demo:demo",
)

_DEFAULTS = field_defaults(Config)

#: flag -> Config field for the settings given as plain numbers
_SIZES = ("lorenz_members", "lorenz_steps", "heat_years", "sw_nx", "sw_days", "sw_spinup_days",
          "flow_samples")


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        if len(value) > 2 and list(value) == list(range(value[0], value[-1] + 1)):
            return f"{value[0]}-{value[-1]}"
        return ",".join(map(str, value))
    return f"{value:g}"


def _default(name: str) -> str:
    """'(default X; --quick Y)' for a Config field, read from the class (nothing is built)."""
    value = FLOW_TRAIN["steps"] if name == "steps" else _DEFAULTS[name]
    quick = QUICK_SETTINGS["train"]["steps"] if name == "steps" else QUICK_SETTINGS.get(name)
    if quick is not None:
        return f"(default {_text(value)}; --quick {_text(quick)})"
    return f"(default {_text(value)})"


def _config(args: argparse.Namespace) -> Config:
    """The Config the flags ask for: the full or quick study with the given flags on top."""
    from .config import quick_config

    changes: dict[str, Any] = {}
    if args.testbeds:
        changes["testbeds"] = tuple(t.strip() for t in args.testbeds.split(",") if t.strip())
    if args.bits:
        changes["bits"] = parse_bits(args.bits)
    if args.sw_bits:
        changes["sw_bits"] = parse_bits(args.sw_bits)
    for name in _SIZES:
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    changes["flow_solver"] = args.solver
    if args.sample_steps is not None:
        changes["flow_sample_steps"] = args.sample_steps
    train = {k: getattr(args, k) for k in ("steps", "lr", "seed", "device")
             if getattr(args, k) is not None}
    base = quick_config() if args.quick else Config()
    return base.replace(**changes, train=train)


def _study(args: argparse.Namespace) -> int:
    config = _config(args)
    set_threads(args)
    from .runner import run_study

    command = "sciflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    # an UndecidedWarning is a SciflowWarning: the command line prints it
    path, _ = run_study(config, args.out, command=command, reuse=not args.fresh,
                        overwrite=args.overwrite, reuse_from=args.reuse_from)
    print(f"wrote {path}")
    return 0


def _formats(args: argparse.Namespace) -> int:
    from sciflow.precision import PRESETS

    print(f"{'name':10} {'sbits':>5} {'ebits':>5} {'eps':>10} {'max':>12} {'min normal':>12} "
          f"{'min > 0':>12}  notes")
    for name, f in PRESETS.items():
        notes = []
        if not f.infinities:
            notes.append("no inf")
        if f.saturate:
            notes.append("saturates")
        print(f"{name:10} {f.sbits:5d} {f.ebits:5d} {f.eps():10.3g} {f.max_finite():12.5g} "
              f"{f.min_normal():12.5g} {f.min_positive():12.5g}  {', '.join(notes)}")
    print("sbits<k>: k significand bits with the container's exponent range (rpe's convention)")
    return 0


def _round(args: argparse.Namespace) -> int:
    import torch

    from sciflow.errors import InputError
    from sciflow.precision import FormatError, format_from_name, round_to

    fmt = format_from_name(args.format)
    dtype = None
    if args.native:
        try:
            dtype = fmt.native_dtype()
        except FormatError:
            raise InputError(f"--native with --format {args.format}: {fmt.name} has no torch dtype "
                             "of its own (float16, bfloat16, float32, float64, fp8_e4m3 and "
                             "fp8_e5m2 have); leave out --native to print it in float64") from None
    x = torch.tensor(args.values, dtype=torch.float64)
    g = torch.Generator().manual_seed(args.seed)
    draws = args.draws if args.rounding == "stochastic" else 1
    if dtype is not None:
        print(f"# dtype {dtype}")
    for _ in range(draws):
        y = round_to(x, fmt, rounding=args.rounding, generator=g,
                     dtype="native" if dtype is not None else None)
        # native values print exactly (shortest repr that reads back); others to 10 digits
        print("  ".join(repr(v) if dtype is not None else f"{v:.10g}"
                        for v in y.double().tolist()))
    return 0


def _add_study(sub: Any) -> None:
    p = sub.add_parser(
        "study",
        help="run the sweep and write tables, figures and README.md",
        description=(
            "Sweep significand bits x {RN, SR} on each testbed; every op is rounded. Writes "
            "README.md (tables, the bits at which each model is indistinguishable from float64, "
            "beside the paper's claims), figures, results.csv, config.json and cache/ into --out."
            "\n\nEach finished testbed is kept in OUT/cache/<testbed>.pt; a later run into the "
            "same folder reuses the testbeds whose settings match and writes the report anew, so "
            "testbeds can run one process at a time:\n"
            "  sciflow precision study --testbeds lorenz --out study\n"
            "  sciflow precision study --testbeds heat --out study\n"
            "  sciflow precision study --out study        (computes the rest, reuses both)\n"
            "Replacing a cache saved with other settings, or --fresh on an existing cache, needs "
            "--overwrite; so does writing into a folder that holds no study.\n\n"
            "examples:\n"
            "  sciflow precision study --quick --out precision_quick\n"
            "  sciflow precision study --testbeds lorenz,heat --bits 6-23:2 --heat-years 20\n"
            "  sciflow precision study --out /tmp/report --reuse-from "
            "benchmarks/results/precision_study"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="precision_study", metavar="DIR",
                   help="the study folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="allow replacing caches of other settings and writing into a folder "
                        "that holds no study (other files are never deleted)")
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    p.add_argument("--testbeds", metavar="LIST",
                   help=f"comma-separated subset of {','.join(TESTBEDS)} (default: all)")
    p.add_argument("--bits", metavar="BITS",
                   help="significand bits of lorenz, heat and flow: '4-23', '4-23:2' (a step) or "
                        f"'6,10,16,23' {_default('bits')}")
    p.add_argument("--sw-bits", metavar="BITS",
                   help=f"significand bits of shallow water {_default('sw_bits')}")
    p.add_argument("--lorenz-members", type=positive_int, metavar="N",
                   help=f"Lorenz ensemble members {_default('lorenz_members')}")
    p.add_argument("--lorenz-steps", type=positive_int, metavar="N",
                   help=f"recorded Lorenz RK4 steps of dt 0.01, >= 10 {_default('lorenz_steps')}")
    p.add_argument("--heat-years", type=positive_float, metavar="YEARS",
                   help=f"simulated soil-column years {_default('heat_years')}")
    p.add_argument("--sw-nx", type=positive_int, metavar="N",
                   help=f"shallow-water cells along x, even, >= 6 (the paper: 100) "
                        f"{_default('sw_nx')}")
    p.add_argument("--sw-days", type=positive_float, metavar="DAYS",
                   help=f"recorded shallow-water days after the spin-up {_default('sw_days')}")
    p.add_argument("--sw-spinup-days", type=positive_float, metavar="DAYS",
                   help=f"float64 spin-up days {_default('sw_spinup_days')}")
    f = p.add_argument_group("the flow testbed (a 2-D flow trained for the study)")
    f.add_argument("--steps", type=positive_int, metavar="N",
                   help=f"training updates of the flow {_default('steps')}")
    f.add_argument("--flow-train-steps", type=positive_int, dest="steps", help=argparse.SUPPRESS)
    f.add_argument("--lr", type=positive_float, help=f"learning rate (default {FLOW_TRAIN['lr']})")
    f.add_argument("--flow-samples", type=positive_int, metavar="N",
                   help=f"samples drawn per precision, >= 2 {_default('flow_samples')}")
    add_solver_arguments(f, solver=_DEFAULTS["flow_solver"], steps=_DEFAULTS["flow_sample_steps"])
    f.set_defaults(sample_steps=None)  # None: the config's (16 with --quick)
    add_device_argument(f)
    r = p.add_argument_group("seeds, threads and caches")
    r.add_argument("--seed", type=nonnegative_int,
                   help="fixes every noise draw and the flow's training (default 0)")
    add_threads_argument(r)
    r.add_argument("--fresh", action="store_true",
                   help="recompute every testbed instead of reusing OUT/cache (replacing an "
                        "existing cache needs --overwrite)")
    r.add_argument("--reuse-from", metavar="DIR",
                   help="also reuse matching caches of another study folder (read only), e.g. "
                        "benchmarks/results/precision_study; must not be --out")
    p.set_defaults(func=_study)


def configure(parser: argparse.ArgumentParser) -> None:
    """Fill the ``climate`` (``precision``) command group."""
    parser.description = (
        "Emulate low-precision arithmetic in any torch code (sciflow.precision) and run the "
        "study of Paxton et al. (J. Climate 2022): Lorenz 1963, a soil column, shallow water "
        "over a ridge and a flow-matching sampler, swept over significand bits with "
        "round-to-nearest and stochastic rounding.\n\n"
        "example: sciflow precision study --quick --out precision_study")
    sub = parser.add_subparsers(dest="precision_command", metavar="<subcommand>")
    _add_study(sub)
    p = sub.add_parser(
        "formats",
        help="list the named number formats and their ranges",
        description="Print each preset's bits, epsilon, largest, smallest normal and positive "
                    "value.\n\nexample: sciflow precision formats",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=_formats)
    p = sub.add_parser(
        "round",
        help="round numbers to a format",
        description=(
            "Round values to a format with round-to-nearest-even or stochastic rounding; one "
            "line per draw, values in the order given (inf where the format overflows).\n\n"
            "examples:\n"
            "  sciflow precision round 0.1 70000 --format float16\n"
            "  sciflow precision round 0.1 1.0001 --format bfloat16 --rounding stochastic "
            "--draws 4\n"
            "  sciflow precision round 3.14159 --format sbits5\n"
            "  sciflow precision round 0.1 3.14159 --format bfloat16 --native   (torch.bfloat16 "
            "values)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("values", type=float, nargs="+", help="numbers to round (read as float64)")
    p.add_argument("--format", default="float16",
                   help="a preset (see `sciflow precision formats`) or sbits<k> for k "
                        "significand bits (default %(default)s)")
    p.add_argument("--rounding", choices=ROUNDINGS, default="nearest")
    p.add_argument("--draws", type=positive_int, default=3,
                   help="stochastic draws to print (default %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the stochastic draws")
    p.add_argument("--native", action="store_true",
                   help="round into the format's own torch dtype (round_to(..., dtype='native'): "
                        "torch.bfloat16 for bfloat16, ...) and print those values after a "
                        "'# dtype' line; sbits<k> formats have none and are refused")
    p.set_defaults(func=_round)


def __getattr__(name: str) -> Any:
    if name == "QUICK":  # the former module constant: the quick study's Config, built on use
        from .config import quick_config

        return quick_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

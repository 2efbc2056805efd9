"""``sciflow precision ...``: the low-precision study, formats, and rounding at the prompt.

    sciflow precision study --out precision_study            the full study (tens of minutes)
    sciflow precision study --quick --testbeds lorenz,flow   a few minutes
    sciflow precision formats                                the named formats and their ranges
    sciflow precision round 0.1 70000 --format float16 --rounding stochastic --draws 5
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

import torch

from sciflow.plugins import Domain
from sciflow.precision import PRESETS, ROUNDINGS, format_from_name, round_to

from .runner import TESTBEDS, StudyConfig, run_study

__all__ = ["configure", "DOMAIN", "parse_bits", "QUICK"]

#: a few-minute version of the study (for trying things out)
QUICK = StudyConfig(
    bits=(4, 6, 8, 10, 12, 14, 16, 20, 23),
    sw_bits=(8, 12, 23),
    lorenz_members=5,
    lorenz_steps=3000,
    heat_years=2.0,
    sw_spinup_days=60.0,
    sw_days=5.0,
    flow_train_steps=800,
    flow_samples=1000,
    flow_steps=16,
)


DOMAIN = Domain(
    name='climate', aliases=('precision',), order=40, requires=(),
    summary='low-precision arithmetic and stochastic rounding on the climate testbeds of Paxton et al.',
    package="sciflow.domains.climate", cli="sciflow.domains.climate.cli:configure",
    demo="sciflow.domains.climate.demo:demo",
)


def parse_bits(text: str) -> tuple[int, ...]:
    """``"4-23"``, ``"4-23:2"`` (a step) or ``"6,8,10"`` -> a tuple of significand bits."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                span, _, step = part.partition(":")
                lo, hi = (int(v) for v in span.split("-"))
                out.extend(range(lo, hi + 1, int(step) if step else 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise ValueError(
            f"cannot read significand bits from {text!r}; use e.g. '4-23', '4-23:2' or '6,8,10'"
        ) from None
    if not out or any(not 1 <= k <= 52 for k in out):
        raise ValueError(f"significand bits {text!r} must name values in 1..52")
    return tuple(sorted(set(out)))


def _study(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else StudyConfig()
    changes: dict = {"seed": args.seed}
    if args.testbeds:
        changes["testbeds"] = tuple(t.strip() for t in args.testbeds.split(",") if t.strip())
    if args.bits:
        changes["bits"] = parse_bits(args.bits)
    if args.sw_bits:
        changes["sw_bits"] = parse_bits(args.sw_bits)
    for name in ("heat_years", "lorenz_steps", "sw_nx", "sw_days", "sw_spinup_days",
                 "flow_train_steps"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    config = replace(config, **changes)
    torch.set_num_threads(args.threads)
    command = "sciflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path, _ = run_study(config, args.out, command=command, reuse=not args.fresh)
    print(f"wrote {path}")
    return 0


def _formats(args: argparse.Namespace) -> int:
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
    fmt = format_from_name(args.format)
    x = torch.tensor(args.values, dtype=torch.float64)
    g = torch.Generator().manual_seed(args.seed)
    draws = args.draws if args.rounding == "stochastic" else 1
    for _ in range(draws):
        y = round_to(x, fmt, rounding=args.rounding, generator=g)
        print("  ".join(f"{v:.10g}" for v in y.tolist()))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``precision`` command group."""
    parser.description = ("Emulate low-precision arithmetic in any torch code (sciflow.precision) and run the "
            "study of Paxton et al. (J. Climate 2022): Lorenz 1963, a soil column, shallow water "
            "over a ridge and a flow-matching sampler, swept over significand bits with "
            "round-to-nearest and stochastic rounding.\n\n"
            "example: sciflow precision study --quick --out precision_study")
    sub = parser.add_subparsers(dest="precision_command", metavar="<subcommand>")

    p = sub.add_parser(
        "study",
        help="run the sweep and write tables, figures and README.md",
        description=(
            "Sweep significand bits x {RN, SR} on each testbed; every op is rounded. Writes "
            "README.md (tables, the bits at which each model is indistinguishable from float64, "
            "beside the paper's claims), figures and results.csv into --out.\n\n"
            "example: sciflow precision study --testbeds lorenz,heat --bits 6-23:2 --heat-years 20"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="precision_study", help="report folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    p.add_argument("--testbeds", help=f"comma-separated subset of {','.join(TESTBEDS)}")
    p.add_argument("--bits", help="significand bits, e.g. '4-23' (default) or '6,10,16,23'")
    p.add_argument("--sw-bits", help="significand bits for shallow water (default 6,8,10,12,16,23)")
    p.add_argument("--heat-years", type=float, help="soil-column years (default 100)")
    p.add_argument("--lorenz-steps", type=int, help="recorded Lorenz steps (default 50000)")
    p.add_argument("--sw-nx", type=int, help="shallow-water cells along x (default 50; paper 100)")
    p.add_argument("--sw-days", type=float, help="shallow-water days after spin-up (default 30)")
    p.add_argument("--sw-spinup-days", type=float, help="float64 spin-up days (default 200)")
    p.add_argument("--flow-train-steps", type=int, help="training steps of the 2-D flow")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--fresh", action="store_true",
                   help="recompute every testbed (default: reuse --out/cache/<testbed>.pt saved "
                        "with the same settings, so testbeds can run as separate processes)")
    p.set_defaults(func=_study)

    p = sub.add_parser(
        "formats",
        help="list the named number formats and their ranges",
        description="Print each preset's bits, epsilon, largest, smallest normal and positive value.",
    )
    p.set_defaults(func=_formats)

    p = sub.add_parser(
        "round",
        help="round numbers to a format",
        description=(
            "Round values to a format with round-to-nearest-even or stochastic rounding.\n\n"
            "example: sciflow precision round 0.1 1.0001 --format bfloat16 --rounding stochastic "
            "--draws 4"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("values", type=float, nargs="+", help="numbers to round (read as float64)")
    p.add_argument("--format", default="float16", help="preset name or sbits<k> (default float16)")
    p.add_argument("--rounding", choices=ROUNDINGS, default="nearest")
    p.add_argument("--draws", type=int, default=3, help="stochastic draws to print (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_round)

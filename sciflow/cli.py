"""The ``sciflow`` command line.

    sciflow demo                      the main job: every section, one report folder
    sciflow toy train|sample          2-D flows, the quickest way to see the core work
    sciflow <group> --help            one group per domain (ts, cells, precision, rs, vfm)

Command groups are listed in :data:`GROUPS`, an explicit registry of module paths. Each module
defines ``register(subparsers)``, adding one parser for its group; the module is imported only when
the parser is built, so a group whose optional dependencies are missing is reported, not fatal.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["GROUPS", "build_parser", "main"]

GROUPS: dict[str, str] = {
    "demo": "sciflow.demo",
    "toy": "sciflow.toy",
    "ts": "sciflow.domains.transition_states.cli",
    "cells": "sciflow.domains.single_cell.cli",
    "precision": "sciflow.domains.climate.cli",
    "rs": "sciflow.domains.remote_sensing.cli",
    "vfm": "sciflow.domains.feature_forecasting.cli",
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The full parser, and the groups that could not be loaded with the reason."""
    parser = argparse.ArgumentParser(
        prog="sciflow",
        description=(
            "Flow-matching generative models for the physical and chemical sciences.\n\n"
            "Start with `sciflow demo` (trains and evaluates a small model per domain and writes "
            "a report folder), then `sciflow <group> --help` for the domain you work in."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from sciflow import __version__

    parser.add_argument("--version", action="version", version=f"sciflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    unavailable: dict[str, str] = {}
    for name, module_path in GROUPS.items():
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name and module_path.startswith(exc.name):
                continue  # the group is not part of this build yet
            unavailable[name] = f"needs the missing package {exc.name!r}"
            continue
        module.register(sub)
    return parser, unavailable


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sciflow`` console script; returns the process exit code."""
    parser, unavailable = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        if unavailable:
            print("\nunavailable here: " + "; ".join(f"{k} ({v})" for k, v in unavailable.items()))
        return 0
    if not hasattr(args, "func"):
        parser.parse_args([args.command, "--help"])
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        # user errors: a clear message, no traceback
        print(f"sciflow {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``sciflow`` command line.

    sciflow demo                      the main job: every domain's section, one report folder
    sciflow <group> --help            one group per domain, named like its package

Groups come from the ``sciflow.domains`` entry points (:mod:`sciflow.plugins`), so a lab's own
package can add one without editing sciflow. Building the parser imports each domain's small CLI
module and nothing heavy: ``sciflow --help`` and ``sciflow GROUP --help`` import no torch. A
handler imports what it needs when it runs.

Warnings a user must read (:class:`sciflow.errors.SciflowWarning`, e.g. a model worse than its
baseline) are printed as ``sciflow GROUP: warning: ...``.

Errors: a user's mistake (:class:`sciflow.errors.SciflowError`, ``ValueError``, a missing file)
is printed as ``sciflow GROUP: error: ...`` with exit status 2 and no traceback (``SCIFLOW_DEBUG=1``
shows it); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

from sciflow.plugins import DomainLoadError, domains

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Flow-matching generative models for the physical and chemical sciences.

Start with `sciflow demo` (trains and evaluates a small model per domain and writes a report
folder), then `sciflow <group> --help` for the domain you work in."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The full parser, and the groups that could not be loaded with the reason."""
    from sciflow import __version__
    from sciflow.demo import configure as configure_demo

    parser = argparse.ArgumentParser(prog="sciflow", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sciflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    configure_demo(sub.add_parser(
        "demo", help="the main job: a short real run of every domain, with a report",
        formatter_class=argparse.RawDescriptionHelpFormatter))
    unavailable: dict[str, str] = {}
    for domain in domains().values():
        missing = domain.missing()
        if missing:
            unavailable[domain.name] = f"needs {', '.join(missing)}"
            continue
        try:
            configure = domain.load("cli")
        except DomainLoadError as err:
            unavailable[domain.name] = str(err)
            continue
        p = sub.add_parser(domain.name, aliases=list(domain.aliases), help=domain.summary,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(group=domain.name)
        configure(p)
    return parser, unavailable


def _user_error(exc: BaseException) -> bool:
    from sciflow.errors import SciflowError

    return isinstance(exc, (SciflowError, ValueError, FileNotFoundError, IsADirectoryError,
                            NotADirectoryError, PermissionError))


@contextlib.contextmanager
def _printed_warnings(group: str) -> Iterator[None]:
    """Print every :class:`sciflow.errors.SciflowWarning` as ``sciflow GROUP: warning: ...`` on
    stderr when it is raised (other warnings keep Python's own format)."""
    from sciflow.errors import SciflowWarning

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        if isinstance(category, type) and issubclass(category, SciflowWarning):
            print(f"sciflow {group}: warning: {message}", file=sys.stderr, flush=True)
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", SciflowWarning)
        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = previous


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
        with _printed_warnings(args.command):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"sciflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _user_error(exc) or os.environ.get("SCIFLOW_DEBUG"):
            raise
        print(f"sciflow {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

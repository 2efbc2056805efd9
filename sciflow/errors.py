"""The errors sciflow raises for what a user did, each naming the argument, the value and the fix.

Every error here is a ``ValueError`` (so ``except ValueError`` in older lab code keeps working) and a
:class:`SciflowError` (so the command line can tell a user's mistake from a bug in sciflow: the
former is printed as ``sciflow GROUP: error: ...`` with exit status 2, the latter keeps its
traceback).

- :class:`InputError`: an argument or an input file is wrong (a count <= 0, an unknown format,
  all-NaN data, a population below the stated minimum, an atom the model was not trained on).
- :class:`OutputError`: an output cannot be written as asked (it is one of the inputs, it exists
  and ``--overwrite`` was not given, another process is writing it, its folder is not writable).
- :class:`ResourceError`: the request would need more memory (or time) than the machine has.
- :class:`NonFiniteError`: a computation produced NaN or inf where numbers were due; it says where
  (which sample, which step) and what to try. Nothing is written.
- ``sciflow.checkpoint.CheckpointError``: a file is not a safe, intact sciflow checkpoint.

Domain errors (``TSInputError``, ``CellDataError``, ...) subclass :class:`InputError`.

Warnings a user should read (the command line prints them as ``sciflow GROUP: warning: ...``):

- :class:`WorseThanBaselineWarning`: a model scored worse than its trivial baseline (predicting
  the source cells, linear interpolation, the (R + P)/2 midpoint, copying the last frame).
- :class:`SciflowWarning`: the base of these, e.g. a verdict that the data are too few to decide.
"""

from __future__ import annotations

__all__ = ["SciflowError", "InputError", "OutputError", "ResourceError", "NonFiniteError",
           "SciflowWarning", "WorseThanBaselineWarning", "require"]


class SciflowError(ValueError):
    """Base of the errors that describe what a user asked for, not a bug in sciflow."""


class InputError(SciflowError):
    """An argument or an input is not usable; the message names it, its value and the fix."""


class OutputError(SciflowError):
    """An output cannot be written as asked (it is an input, exists, is busy or not writable)."""


class ResourceError(InputError):
    """The request would need more memory or time than this machine has (estimated up front)."""


class NonFiniteError(SciflowError):
    """A result holds NaN or inf where numbers were due; nothing was written."""


class SciflowWarning(UserWarning):
    """Something a user must know about a result that is still returned (printed by the CLI)."""


class WorseThanBaselineWarning(SciflowWarning):
    """A model scored worse than the trivial baseline it must beat; the message names both."""


def require(ok: bool, name: str, value: object, expected: str) -> None:
    """Raise ``InputError("{name}={value!r}: expected {expected}")`` unless ``ok``.

    Example: ``require(n > 0, "--samples", n, "an integer >= 1")``.
    """
    if not ok:
        raise InputError(f"{name}={value!r}: expected {expected}")

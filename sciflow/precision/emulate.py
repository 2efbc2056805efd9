"""Run any torch code as if its floating-point arithmetic were done in another format.

:func:`emulate` returns a context manager (a ``TorchDispatchMode``) that rounds the floating-point
result of every aten operation to a :class:`~sciflow.precision.formats.Format`, with
round-to-nearest or stochastic rounding: the per-operation rounding of the Fortran emulator rpe
used by Paxton et al. (J. Climate 35(4), 2022). Each op is computed in the container (float32 or
float64) and rounded once at its output, so a matrix product or a reduction is rounded once, like a
fused operation with a wide accumulator. Values that enter from outside (parameters, the initial
state) are not touched until an op writes them; :func:`round_module_` rounds a module's weights.

The lighter mode, :class:`StateRounding`, is a callable that rounds only the state a time stepper
stores after each step (``x_{n+1} = round(x_n + dt * f(x_n))``, the tendency at full precision):
pass it to :func:`sciflow.solvers.odeint` as ``step_hook=`` or to the climate testbeds as
``state_rounding=``.

Examples
--------
>>> import torch
>>> from sciflow.precision import emulate, FLOAT16
>>> g = torch.Generator().manual_seed(0)
>>> with emulate(FLOAT16, rounding="stochastic", generator=g):
...     y = torch.ones(3) + 1e-4          # each op's result is a float16 value
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .formats import Format
from .rounding import (
    ROUNDINGS,
    Precision,
    RandomBits,
    Rounding,
    RoundingError,
    _plan,
    _round_sweep_unchecked,
    _round_unchecked,
    _row_plans,
    _RowPlans,
    round_sweep,
    round_to,
)

__all__ = ["Emulate", "EmulateSweep", "emulate", "emulate_sweep", "StateRounding", "round_module_"]

_aten = torch.ops.aten
# ops that create a tensor from Python data: their (aliasing) output is fresh, so round it
_FRESH_ALIASES = {_aten.lift_fresh.default}
# dtype conversions: round the wide source directly to the format, not twice via the target
_CASTS = {_aten._to_copy.default, _aten.copy_.default}
# ops that only move or select values already present in their inputs: nothing is computed, so
# nothing is rounded (like views); values from outside stay as they are until an op computes
_DATA_MOVEMENT = {
    _aten.cat.default,
    _aten.stack.default,
    _aten.clone.default,
    _aten.roll.default,
    _aten.flip.default,
    _aten.repeat.default,
    _aten.index.Tensor,
    _aten.index_select.default,
    _aten.gather.default,
    _aten.where.self,
    _aten.slice_scatter.default,
    _aten.select_scatter.default,
}
_CONTAINER_ORDER = {torch.bfloat16: 0, torch.float16: 0, torch.float32: 1, torch.float64: 2}


@dataclass(frozen=True)
class _OpInfo:
    """Where an op's results are: written arguments (by position and name), fresh returns."""

    written_positions: tuple[int, ...]
    written_names: frozenset[str]
    fresh_returns: tuple[int, ...]


@functools.lru_cache(maxsize=4096)
def _op_info(func: Any) -> _OpInfo:
    schema = func._schema
    written = [
        (k, a.name)
        for k, a in enumerate(schema.arguments)
        if a.alias_info is not None and a.alias_info.is_write
    ]
    fresh = tuple(
        k
        for k, r in enumerate(schema.returns)
        if r.alias_info is None or func in _FRESH_ALIASES
    )
    return _OpInfo(
        written_positions=tuple(k for k, _ in written),
        written_names=frozenset(name for _, name in written),
        fresh_returns=fresh,
    )


def _tensors(value: Any) -> list[Any]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Tensor)]
    return tree_leaves(value)


class _RoundingMode(TorchDispatchMode):
    """Dispatch logic shared by :class:`Emulate` and :class:`EmulateSweep`: which tensors an op
    produced (fresh outputs, written arguments), each rounded in place by ``_round``."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # eager-only mode: without torch's dynamo-disabling wrapper each op dispatches ~10 us faster
        return False

    def __init__(self, generator: torch.Generator | None) -> None:
        super().__init__()
        self.generator = generator
        # random bits for stochastic rounding come in pools: one generator call per 2^16 words
        self._bits = RandomBits(generator, pool=1 << 16)
        self.op_counts: Counter[str] = Counter()
        self.elements_rounded = 0
        self._fits_cache: dict[torch.dtype, bool] = {}

    def _format_fits(self, dtype: torch.dtype) -> bool:
        raise NotImplementedError

    def _round(self, t: Tensor, out: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def _fits(self, dtype: torch.dtype) -> bool:
        fits = self._fits_cache.get(dtype)
        if fits is None:
            fits = self._fits_cache[dtype] = self._format_fits(dtype)
        return fits

    def _check_device(self, t: Tensor) -> None:
        if self.generator is not None and self.generator.device.type != t.device.type:
            raise RoundingError(
                f"the emulation's generator is on {self.generator.device} but an op produced a "
                f"tensor on {t.device}; pass a generator made with "
                f"torch.Generator(device={str(t.device.type)!r})"
            )

    def _roundable(self, t: Any) -> bool:
        return (
            isinstance(t, Tensor)
            and t.dtype in _CONTAINER_ORDER
            and self._fits(t.dtype)
            and t.numel() > 0
        )

    @staticmethod
    def _float_source(func: Any, args: tuple) -> bool:
        src = args[0] if func is _aten._to_copy.default else args[1]
        return isinstance(src, Tensor) and src.is_floating_point()

    def _rounded_source(self, func: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """For a narrowing cast, round the wide source first so the value is rounded once."""
        if func is _aten._to_copy.default:
            src, target = args[0], kwargs.get("dtype")
        else:  # copy_(self, src)
            src, target = args[1], args[0].dtype
        if (
            self._roundable(src)
            and target in _CONTAINER_ORDER
            and _CONTAINER_ORDER[target] < _CONTAINER_ORDER[src.dtype]
            and self._fits(target)
        ):
            src = self._round(src)
            args = (src, *args[1:]) if func is _aten._to_copy.default else (args[0], src, *args[2:])
        return args, kwargs

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if (func.is_view and func not in _FRESH_ALIASES) or func in _DATA_MOVEMENT:
            return func(*args, **kwargs)  # views and copies compute nothing
        if func in _CASTS and self._float_source(func, args):
            # a float -> float conversion: exact, or narrowing from a source rounded first
            args, kwargs = self._rounded_source(func, args, kwargs)
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        info = _op_info(func)
        targets: list[Any] = []
        # arguments the op writes (in-place, out=, _foreach_*_) hold its results
        for k in info.written_positions:
            if k < len(args):
                targets.extend(_tensors(args[k]))
        if info.written_names and kwargs:
            for name in info.written_names.intersection(kwargs):
                targets.extend(_tensors(kwargs[name]))
        # fresh outputs (returns without alias info; views and written args are covered above)
        if info.fresh_returns:
            if isinstance(out, (tuple, list)) and len(info.fresh_returns) > 0:
                if len(func._schema.returns) == 1:  # one Tensor[] return
                    targets.extend(_tensors(out))
                else:
                    for k in info.fresh_returns:
                        targets.extend(_tensors(out[k]))
            else:
                targets.extend(_tensors(out))
        rounded = False
        for t in targets:
            if self._roundable(t):
                self._check_device(t)
                self._round(t, out=t)
                self.elements_rounded += t.numel()
                rounded = True
        if rounded:
            self.op_counts[str(func)] += 1
        return out


class Emulate(_RoundingMode):
    """Round every floating-point op result to ``fmt`` while active (use :func:`emulate`).

    Attributes
    ----------
    op_counts:
        ``Counter`` of rounded op names (``"aten.mm.default"``...), to see what was emulated.
    elements_rounded:
        total number of tensor elements rounded.
    """

    def __init__(
        self,
        fmt: Format,
        *,
        rounding: Rounding = "nearest",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        if not isinstance(fmt, Format):
            raise TypeError(f"fmt must be a sciflow.precision.Format, got {fmt!r}")
        if rounding not in ROUNDINGS:
            raise RoundingError(f"rounding={rounding!r} is not one of {ROUNDINGS}")
        self.fmt = fmt
        self.rounding: Rounding = rounding

    def _format_fits(self, dtype: torch.dtype) -> bool:
        return self.fmt.fits(dtype)

    def _round(self, t: Tensor, out: Tensor | None = None) -> Tensor:
        if t.dtype in (torch.float32, torch.float64):
            plan = _plan(self.fmt, t.dtype)
            return _round_unchecked(t, plan, self.rounding, self._bits, out)
        return round_to(t, self.fmt, rounding=self.rounding, generator=self.generator, out=out)


class EmulateSweep(_RoundingMode):
    """Round slice k (along dim 0) of every op result to ``precisions[k]`` (see :func:`emulate_sweep`).

    Every floating-point result must carry the sweep as its leading dimension; anything else
    raises :class:`~sciflow.precision.rounding.RoundingError` naming the op's result shape.
    """

    def __init__(
        self, precisions: Sequence[Precision], *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(generator)
        self._rows: dict[tuple[torch.dtype, torch.device], _RowPlans] = {}
        self.precisions = tuple(precisions)
        if not self.precisions:
            raise RoundingError("precisions is empty; a sweep needs at least one Precision")
        for p in self.precisions:
            if not isinstance(p, Precision):
                raise TypeError(f"precisions must hold sciflow.precision.Precision, got {p!r}")

    def _format_fits(self, dtype: torch.dtype) -> bool:
        return all(p.fmt.fits(dtype) for p in self.precisions)

    def _round(self, t: Tensor, out: Tensor | None = None) -> Tensor:
        if t.dim() == 0 or t.shape[0] != len(self.precisions):
            raise RoundingError(
                f"an op produced a {t.dtype} result of shape {tuple(t.shape)}; under "
                f"emulate_sweep every floating-point result needs the sweep of "
                f"{len(self.precisions)} precisions as its leading dimension"
            )
        if t.dtype in (torch.float32, torch.float64):
            key = (t.dtype, t.device)
            rows = self._rows.get(key)
            if rows is None:
                rows = self._rows[key] = _row_plans(self.precisions, t.dtype, t.device)
            return _round_sweep_unchecked(t, rows, self._bits, out)
        return round_sweep(t, self.precisions, generator=self.generator, out=out)


def emulate(
    fmt: Format,
    *,
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
) -> Emulate:
    """Context manager: round the result of every floating-point torch op to ``fmt``.

    Parameters
    ----------
    fmt:
        the emulated format, e.g. ``FLOAT16``, ``BFLOAT16`` or ``sbits(10)``.
    rounding:
        ``"nearest"`` (ties to even) or ``"stochastic"``.
    generator:
        random source for stochastic rounding (on the device of the tensors); None uses torch's
        default generator.

    Notes
    -----
    float32 and float64 results are rounded, and float16/bfloat16 ones when ``fmt`` fits them;
    integer, bool and complex results are left alone. Views (reshape, slicing, transpose) and pure
    data movement (cat, stack, clone, roll, indexing, where) compute nothing and are not rounded:
    values that enter from outside stay as they are until an op computes with them. A narrowing
    cast (float64 -> float32) rounds the wide value to ``fmt`` directly, not twice. Everything that
    runs inside the block is covered, backward passes included. Stochastic rounding draws its
    random bits from ``generator`` in blocks of 2^16 words (one generator call per block).
    """
    return Emulate(fmt, rounding=rounding, generator=generator)


def emulate_sweep(
    precisions: Sequence[Precision], *, generator: torch.Generator | None = None
) -> EmulateSweep:
    """Context manager: like :func:`emulate`, one precision per slice of the leading dimension.

    Runs a whole precision sweep as one batched program: write the model with a leading
    "arm" dimension (state (K, ...)) and slice k is rounded to ``precisions[k]`` after every op.
    With round-to-nearest each slice is bit-identical to running it alone under ``emulate``.

    Examples
    --------
    >>> import torch
    >>> from sciflow.precision import Precision, FLOAT64, FLOAT16
    >>> arms = [Precision(FLOAT64), Precision(FLOAT16), Precision(FLOAT16, "stochastic")]
    >>> with emulate_sweep(arms):
    ...     y = torch.ones(3, 4, dtype=torch.float64) / 3
    """
    return EmulateSweep(precisions, generator=generator)


@dataclass(frozen=True)
class StateRounding:
    """Round only a solver's state after each step (the lighter emulation mode).

    ``x_{n+1} = round(step(x_n))``: the tendency and the update are computed in the container's
    precision and only the stored state is rounded, which is where low precision stagnates (an
    increment below half a unit in the last place of the state is lost). Pass it to a stepper as
    ``state_rounding=StateRounding(fmt, "stochastic", generator)``.

    Shapes: ``(*) -> (*)``, dtype and device kept.
    """

    fmt: Format
    rounding: Rounding = "nearest"
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, Format):
            raise TypeError(f"fmt must be a sciflow.precision.Format, got {self.fmt!r}")
        if self.rounding not in ROUNDINGS:
            raise RoundingError(f"rounding={self.rounding!r} is not one of {ROUNDINGS}")

    def __call__(self, x: Tensor) -> Tensor:
        return round_to(x, self.fmt, rounding=self.rounding, generator=self.generator)


@torch.no_grad()
def round_module_(
    module: nn.Module,
    fmt: Format,
    *,
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Round a module's floating-point parameters and buffers to ``fmt`` in place; returns it."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.dtype in _CONTAINER_ORDER and fmt.fits(tensor.dtype):
            round_to(tensor, fmt, rounding=rounding, generator=generator, out=tensor)
    return module

"""Round float32 and float64 tensors to a :class:`~sciflow.precision.formats.Format`.

Two roundings, both computed on the integer view of the container (sign-magnitude bits), so no
float64 detour and no double rounding:

* round-to-nearest, ties to even (RN). Dropping ``s`` low bits of the bit pattern ``i``::

      i <- (i + (2^(s-1) - 1) + ((i >> s) & 1)) & ~(2^s - 1)

  A carry out of the significand increments the exponent field, which is the next binade, and
  from the largest finite value it gives the bit pattern of inf: sign-magnitude makes this right.
* stochastic rounding (SR), "mode 1" of Connolly, Higham & Mary (SIAM J. Sci. Comput. 43(1),
  2021): round away from zero with probability equal to the dropped fraction of the gap::

      i <- (i + r) & ~(2^s - 1),   r ~ U{0, ..., 2^s - 1}

  ``r`` comes from ``torch.Tensor.random_`` with the caller's ``torch.Generator``, so runs are
  reproducible on every device torch has; P(up) is exactly ``dropped / 2^s``.

Values the fixed-``s`` kernel cannot round (below the format's smallest normal when the format's
exponent range is narrower than the container's, above its largest finite value, inf, NaN) are found
by two reductions and rounded by an exact per-element routine: there the quantum is
``2^(emin - sbits)`` (gradual underflow) or ``2^emin`` (no subnormals), the result is assembled as an
integer times an exact power of two, and overflow gives inf, NaN or the saturated maximum as the
format says.

:func:`round_sweep` rounds slice k of a tensor to the k-th of several :class:`Precision` s in the
same few integer ops (per-slice shift and mask tensors), so a sweep over formats runs as one batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .formats import Format, container_bits, format_from_name

__all__ = [
    "Rounding",
    "ROUNDINGS",
    "RoundingError",
    "Precision",
    "round_to",
    "round_",
    "round_sweep",
]

Rounding = Literal["nearest", "stochastic"]
ROUNDINGS: tuple[str, ...] = ("nearest", "stochastic")

# the per-element routine never adds more than this many random bits (P(up) resolution 2^-60)
_MAX_SHIFT = 60
#: elements per CPU chunk: the kernels' temporaries then stay in the L2 cache, so main memory is
#: read and written once instead of once per integer op
_CPU_CHUNK = 1 << 16


class RoundingError(ValueError):
    """Bad arguments to a rounding function."""


@dataclass(frozen=True)
class Precision:
    """A format and a rounding: one arm of a precision sweep (``float16-SR``, ``sbits10-RN``)."""

    fmt: Format
    rounding: Rounding = "nearest"

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, Format):
            raise TypeError(f"fmt must be a sciflow.precision.Format, got {self.fmt!r}")
        if self.rounding not in ROUNDINGS:
            raise RoundingError(f"rounding={self.rounding!r} is not one of {ROUNDINGS}")

    @property
    def name(self) -> str:
        return f"{self.fmt.name}-{'RN' if self.rounding == 'nearest' else 'SR'}"


# ------------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class _Plan:
    """Integer-view constants for rounding one container dtype to one format."""

    int_dtype: torch.dtype
    frac_bits: int  # F: container fraction bits
    exp_bits: int  # container exponent bits
    bias: int  # container exponent bias
    shift: int  # s = F - p, bits dropped in the format's normal range
    emin_biased: int  # container's biased exponent of the format's smallest normal
    lo: int | None  # magnitude bits of the smallest normal, when smaller values need the slow path
    hi: int  # magnitude bits of the largest finite value of the format
    max_finite: float
    subnormals: bool
    saturate: bool
    infinities: bool

    @property
    def magnitude_mask(self) -> int:
        return (1 << (self.frac_bits + self.exp_bits)) - 1


@functools.lru_cache(maxsize=512)
def _plan(fmt: Format, dtype: torch.dtype) -> _Plan:
    fmt.check_container(dtype)
    frac_bits, exp_bits = container_bits(dtype)
    bias = 2 ** (exp_bits - 1) - 1
    shift = frac_bits - fmt.sbits
    emin_biased = fmt.emin(dtype) + bias
    narrower = emin_biased > 1
    lo = emin_biased << frac_bits if (narrower or not fmt.subnormals) else None
    top_fraction = (1 << fmt.sbits) - (1 if fmt.infinities else 2)
    hi = ((fmt.emax(dtype) + bias) << frac_bits) | (top_fraction << shift)
    return _Plan(
        int_dtype=torch.int32 if dtype == torch.float32 else torch.int64,
        frac_bits=frac_bits,
        exp_bits=exp_bits,
        bias=bias,
        shift=shift,
        emin_biased=emin_biased,
        lo=lo,
        hi=hi,
        max_finite=fmt.max_finite(dtype),
        subnormals=fmt.subnormals,
        saturate=fmt.saturate,
        infinities=fmt.infinities,
    )


def _check_tensor(x: Tensor, generator: torch.Generator | None, out: Tensor | None) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    container_bits(x.dtype)
    if generator is not None and generator.device.type != x.device.type:
        raise RoundingError(
            f"generator is on {generator.device} but x is on {x.device}; pass a generator made "
            f"with torch.Generator(device={str(x.device.type)!r})"
        )
    if out is not None and (
        out.shape != x.shape or out.dtype != x.dtype or out.device != x.device
    ):
        raise RoundingError(
            f"out has shape {tuple(out.shape)}, dtype {out.dtype} on {out.device}; expected "
            f"shape {tuple(x.shape)}, dtype {x.dtype} on {x.device} like x"
        )


def _into(x: Tensor, out: Tensor | None, kernel: Callable[[Tensor, Tensor], None]) -> Tensor:
    """Run ``kernel(src, dst)`` on a contiguous ``src`` holding ``x`` and a contiguous ``dst``.

    ``dst`` is ``out`` itself when that is contiguous (so ``out=x`` rounds in place), else a new
    tensor that is copied into ``out`` when one was given. Returns the result.
    """
    src = x if x.is_contiguous() else x.contiguous()
    dst = out if (out is not None and out.is_contiguous()) else torch.empty_like(src)
    kernel(src, dst)
    if out is not None and dst is not out:
        return out.copy_(dst)
    return dst


# ------------------------------------------------------------------------------- public API
def round_to(
    x: Tensor,
    fmt: Format | str,
    *,
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
    out: Tensor | None = None,
    dtype: torch.dtype | str | None = None,
) -> Tensor:
    """Round every element of ``x`` to the nearest values of ``fmt`` (RN-even or stochastic).

    Parameters
    ----------
    x:
        float32 or float64 tensor (float16/bfloat16 work through float32 when ``fmt`` fits them),
        any shape and device.
    fmt:
        the target format, or its name (``"bfloat16"``, ``"fp8_e4m3"``, ``"sbits10"``: see
        :func:`~sciflow.precision.format_from_name`); it must fit in ``x.dtype``.
    rounding:
        ``"nearest"`` (ties to even) or ``"stochastic"`` (away from zero with probability equal
        to the distance to the value toward zero, in units of the gap).
    generator:
        random source for stochastic rounding, on x's device; None uses torch's default one.
    out:
        where to write the result (may be ``x`` itself for in-place rounding).
    dtype:
        None keeps ``x.dtype`` (the emulation container); ``"native"`` returns the torch dtype
        that is exactly ``fmt`` (``torch.bfloat16`` for ``"bfloat16"``, FormatError if there is
        none); a ``torch.dtype`` converts to it (exact: FormatError unless ``fmt`` fits in it).

    Returns
    -------
    Tensor
        same shape and device as ``x``, ``x.dtype`` unless ``dtype`` says otherwise; every value
        is a value of ``fmt`` (or inf/NaN). The conversion to a native dtype adds no second
        rounding: the values already are that dtype's.

    Examples
    --------
    >>> from sciflow.precision import FLOAT16
    >>> round_to(torch.tensor([1 + 2**-11, 70000.0]), FLOAT16).tolist()
    [1.0, inf]
    >>> round_to(torch.tensor([1.0 + 2**-9]), "bfloat16", dtype="native").dtype
    torch.bfloat16
    """
    if isinstance(fmt, str):
        fmt = format_from_name(fmt)
    if dtype is not None:
        if out is not None:
            raise RoundingError("pass either out= or dtype=, not both")
        target = fmt.native_dtype() if dtype == "native" else dtype
        if not isinstance(target, torch.dtype):
            raise RoundingError(f"dtype must be None, 'native' or a torch.dtype, got {dtype!r}")
        fmt.check_container(target)
        return round_to(x, fmt, rounding=rounding, generator=generator).to(target)
    _check_tensor(x, generator, out)
    if not isinstance(fmt, Format):
        raise TypeError(
            f"fmt must be a sciflow.precision.Format or a format name (e.g. FLOAT16, 'bfloat16' "
            f"or sbits(10)), got {fmt!r}"
        )
    if rounding not in ROUNDINGS:
        raise RoundingError(f"rounding={rounding!r} is not one of {ROUNDINGS}")
    plan = _plan(fmt, x.dtype)
    if x.dtype in (torch.float16, torch.bfloat16):
        y = round_to(x.float(), fmt, rounding=rounding, generator=generator).to(x.dtype)
        return y if out is None else out.copy_(y)
    return _round_unchecked(x, plan, rounding, RandomBits(generator), out)


def _round_unchecked(
    x: Tensor,
    plan: _Plan,
    rounding: str,
    bits: RandomBits,
    out: Tensor | None,
) -> Tensor:
    """:func:`round_to` for a float32/float64 ``x`` whose arguments were checked."""
    it = plan.int_dtype
    return _into(x, out, lambda src, dst: _round_bits(
        src.view(-1), src.view(it).view(-1), dst.view(it).view(-1), plan, rounding, bits
    ))


def round_(
    x: Tensor,
    fmt: Format,
    *,
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
) -> Tensor:
    """In-place :func:`round_to`: ``x`` is overwritten and returned."""
    return round_to(x, fmt, rounding=rounding, generator=generator, out=x)


def round_sweep(
    x: Tensor,
    precisions: Sequence[Precision],
    *,
    generator: torch.Generator | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Round ``x[k]`` to ``precisions[k]`` for every k, in one batch of integer ops.

    The same kernels as :func:`round_to` with per-slice mask tensors: bit-identical to rounding
    each slice on its own with round-to-nearest. Stochastic slices draw their random bits
    together, 31 per element (half the generator calls of 63): where more than 31 bits are
    dropped, the round-up probability is the dropped fraction truncated to 31 bits (off by less
    than 2^-31; :func:`round_to` uses every bit).

    Shapes: x (K, *) with K = len(precisions) -> (K, *).

    Examples
    --------
    >>> from sciflow.precision import FLOAT16, BFLOAT16
    >>> arms = [Precision(FLOAT16), Precision(BFLOAT16)]
    >>> round_sweep(torch.full((2, 1), 1 + 2**-9), arms).flatten().tolist()
    [1.001953125, 1.0]
    """
    _check_tensor(x, generator, out)
    if x.dim() == 0 or x.shape[0] != len(precisions):
        raise RoundingError(
            f"x has shape {tuple(x.shape)} but {len(precisions)} precisions were given; the "
            f"sweep runs along dim 0, one slice per precision"
        )
    rows = _row_plans(tuple(precisions), x.dtype, x.device)
    if x.dtype in (torch.float16, torch.bfloat16):
        y = round_sweep(x.float(), precisions, generator=generator).to(x.dtype)
        return y if out is None else out.copy_(y)
    return _round_sweep_unchecked(x, rows, RandomBits(generator), out)


def _round_sweep_unchecked(
    x: Tensor, rows: _RowPlans, bits: RandomBits, out: Tensor | None
) -> Tensor:
    """:func:`round_sweep` for a float32/float64 ``x`` whose arguments were checked."""
    it, k = rows.plans[0].int_dtype, x.shape[0]
    return _into(x, out, lambda src, dst: _round_rows(
        src.view(it).view(k, -1), dst.view(it).view(k, -1), rows, bits
    ))


# ------------------------------------------------------------------------ one-format kernels
def _round_bits(
    xf: Tensor,
    i: Tensor,
    o: Tensor,
    plan: _Plan,
    rounding: str,
    bits: RandomBits,
) -> None:
    """Round 1-D container values ``xf`` (bit view ``i``) into the bit view ``o`` (may alias)."""
    n = i.numel()
    if n == 0:
        return
    chunk = min(n, _CPU_CHUNK) if i.device.type == "cpu" else n
    work = torch.empty(chunk, dtype=plan.int_dtype, device=i.device)
    indices: list[Tensor] = []
    originals: list[Tensor] = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        if chunk == n:
            xc, ic, oc, wc = xf, i, o, work
        else:
            xc, ic, oc, wc = xf[start:stop], i[start:stop], o[start:stop], work[: stop - start]
        special = _find_special(xc, ic, plan)  # read before oc (maybe ic) changes
        if special is not None:
            indices.append(special[0] + start)
            originals.append(special[1])
        if plan.shift == 0:
            if oc.data_ptr() != ic.data_ptr():
                oc.copy_(ic)
        elif rounding == "nearest":
            _nearest_kernel(ic, oc, plan.shift, wc)
        else:
            r = bits.take(stop - start, _lane_dtype(plan.shift), i.device)
            _stochastic_kernel(ic, r, oc, plan.shift, wc)
    if indices:  # one exact pass over all special elements, whatever their chunk
        special_bits = torch.cat(originals)
        o[torch.cat(indices)] = _round_exact(
            special_bits, plan, plan, rounding == "stochastic", bits
        )


def _nearest_kernel(i: Tensor, o: Tensor, s: int, t: Tensor) -> None:
    """o = RN-even of the bit patterns i to a multiple of 2^s (``t``: scratch like i)."""
    torch.bitwise_right_shift(i, s, out=t)
    t.bitwise_and_(1)
    t.add_((1 << (s - 1)) - 1)
    torch.add(i, t, out=o)
    o.bitwise_and_(~((1 << s) - 1))


def _stochastic_kernel(i: Tensor, r: Tensor, o: Tensor, s: int, t: Tensor) -> None:
    """o = (i + (r mod 2^s)) with the low s bits cleared (``r`` read-only, ``t`` scratch)."""
    torch.bitwise_and(r, (1 << s) - 1, out=t)
    torch.add(i, t, out=o)
    o.bitwise_and_(~((1 << s) - 1))


class RandomBits:
    """Uniform random integers from a ``torch.Generator``, fresh per call or from a pool.

    ``take(n, int_dtype, device)`` returns n integers of uniformly random bits (int16, int32 or
    int64: negative values included, so mask them before use); treat the result as read-only.
    The generator fills int64 words over the full 64-bit range (``random_(-2**63, None)``) and
    narrower requests read each word as 2 or 4 lanes, which halves or quarters the generator
    calls (the cost of stochastic rounding on a CPU). With ``pool > 0`` the generator fills ``pool`` int64 words at
    a time and small requests are slices of it: many small roundings (one per op under
    :func:`~sciflow.precision.emulate`) then cost one generator call per pool, and the stream is
    still fixed by the generator's seed.
    """

    def __init__(self, generator: torch.Generator | None = None, *, pool: int = 0) -> None:
        self.generator = generator
        self.pool_size = pool
        self._pool: Tensor | None = None
        self._used = 0  # int64 words of the pool already handed out

    _LANES = {torch.int16: 4, torch.int32: 2, torch.int64: 1}

    def _fresh(self, n: int, int_dtype: torch.dtype, device: torch.device) -> Tensor:
        lanes = self._LANES[int_dtype]
        words = -(-n // lanes)
        buf = torch.empty(words, dtype=torch.int64, device=device)
        buf.random_(-(2**63), None, generator=self.generator)  # all 64 bits uniform
        return buf.view(int_dtype)[:n]

    def take(self, n: int, int_dtype: torch.dtype, device: torch.device) -> Tensor:
        lanes = self._LANES[int_dtype]
        words = -(-n // lanes)
        if words > self.pool_size // 4:
            return self._fresh(n, int_dtype, device)
        if self._pool is None or self._pool.device != device or self._used + words > self.pool_size:
            self._pool = self._fresh(self.pool_size, torch.int64, device)
            self._used = 0
        chunk = self._pool[self._used : self._used + words]
        self._used += words
        return chunk.view(int_dtype)[:n]


def _lane_dtype(shift: int) -> torch.dtype:
    """The narrowest random lane whose masked low ``shift`` bits stay non-negative.

    A lane is signed: masking it to 2^shift - 1 keeps it >= 0 (zero-extended into the container's
    ints) only while ``shift`` is below its width.
    """
    if shift <= 15:
        return torch.int16
    return torch.int32 if shift <= 31 else torch.int64


def _find_special(xf: Tensor, i: Tensor, plan: _Plan) -> tuple[Tensor, Tensor] | None:
    """Indices and bit patterns of the elements the fixed-shift kernels cannot round.

    Those are magnitudes above the format's largest finite value (overflow, inf, NaN) and, when
    the format's range is narrower than the container's or it lacks subnormals, nonzero
    magnitudes below its smallest normal. One ``aminmax`` finds them (of the floats, NaN
    propagating, or of the integer magnitudes); only when zeros hide the smallest nonzero
    magnitude does ``(m - 1) & magnitude_mask`` (0 goes to the top) take a second reduction.
    """
    mask = plan.magnitude_mask
    if plan.lo is None:
        low, high = torch.aminmax(xf)
        # written so that NaN (which aminmax propagates) counts as found
        found = not (high.item() <= plan.max_finite and -low.item() <= plan.max_finite)
    else:
        magnitude = torch.bitwise_and(i, mask)
        low, high = torch.aminmax(magnitude)
        found = high.item() > plan.hi
        smallest = low.item()
        if not found and smallest == 0:
            smallest = magnitude.sub_(1).bitwise_and_(mask).min().item() + 1
        found = found or 0 < smallest < plan.lo
    if not found:
        return None
    magnitude = torch.bitwise_and(i, mask)
    select = magnitude > plan.hi
    if plan.lo is not None:
        select |= (magnitude < plan.lo) & (magnitude != 0)
    index = select.nonzero().view(-1)
    return index, i[index]


# ---------------------------------------------------------------------------- sweep kernels
@dataclass(frozen=True)
class _RowPlans:
    """Per-slice constants of a sweep: (K, 1) tensors for the kernels, (K,) for the exact path.

    The kernels use only broadcast and/add/compare with these columns (per-slice shifts would
    fall off torch's vectorised paths): the round-to-nearest tie bit is ``(i & 2^s) != 0``.
    """

    plans: tuple[_Plan, ...]
    tie_bit: Tensor  # 2^s, or 0 where nothing is dropped
    half: Tensor  # 2^(s-1) - 1, or 0
    keep: Tensor  # ~(2^s - 1)
    hi: Tensor
    lo_minus_1: Tensor  # lo - 1, or -1 where no lower check is needed (never true)
    stochastic_rows: Tensor  # (S,) indices of the stochastic slices
    stochastic_mask: Tensor  # (S, 1) 2^min(s, 31) - 1 of those slices
    stochastic_scale: Tensor | None  # (S, 1) 2^max(s - 31, 0), None when all are 1
    all_stochastic: bool
    any_lo: bool
    exact: dict[str, Tensor]  # (K,) parameters of the exact path


@functools.lru_cache(maxsize=64)
def _row_plans(
    precisions: tuple[Precision, ...], dtype: torch.dtype, device: torch.device
) -> _RowPlans:
    if not precisions:
        raise RoundingError("precisions is empty; a sweep needs at least one Precision")
    for p in precisions:
        if not isinstance(p, Precision):
            raise TypeError(f"precisions must hold sciflow.precision.Precision, got {p!r}")
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    for p in precisions:
        p.fmt.check_container(dtype)
    plans = tuple(_plan(p.fmt, compute) for p in precisions)
    it = plans[0].int_dtype

    def col(values: list[int]) -> Tensor:
        return torch.tensor(values, dtype=it, device=device).view(-1, 1)

    shifts = [pl.shift for pl in plans]
    stochastic = [p.rounding == "stochastic" for p in precisions]
    sr_rows = [k for k, sr in enumerate(stochastic) if sr]
    exact = {
        "shift": torch.tensor(shifts, dtype=torch.int64, device=device),
        "emin_biased": torch.tensor([pl.emin_biased for pl in plans], device=device),
        "max_finite": torch.tensor(
            [pl.max_finite for pl in plans], dtype=torch.float64, device=device
        ),
        "subnormals": torch.tensor([pl.subnormals for pl in plans], device=device),
        "saturate": torch.tensor([pl.saturate for pl in plans], device=device),
        "infinities": torch.tensor([pl.infinities for pl in plans], device=device),
        "stochastic": torch.tensor(stochastic, device=device),
    }
    return _RowPlans(
        plans=plans,
        tie_bit=col([1 << s if s > 0 else 0 for s in shifts]),
        half=col([(1 << (s - 1)) - 1 if s > 0 else 0 for s in shifts]),
        keep=col([~((1 << s) - 1) for s in shifts]),
        hi=col([pl.hi for pl in plans]),
        lo_minus_1=col([pl.lo - 1 if pl.lo is not None else -1 for pl in plans]),
        stochastic_rows=torch.tensor(sr_rows, dtype=torch.int64, device=device),
        stochastic_mask=col([(1 << min(shifts[k], 31)) - 1 for k in sr_rows]),
        stochastic_scale=(
            col([1 << max(shifts[k] - 31, 0) for k in sr_rows])
            if any(shifts[k] > 31 for k in sr_rows)
            else None
        ),
        all_stochastic=all(stochastic),
        any_lo=any(pl.lo is not None for pl in plans),
        exact=exact,
    )


class _Gathered:
    """The exact path's parameters for a set of elements, picked by their slice index."""

    def __init__(self, rows: _RowPlans, index: Tensor) -> None:
        for name, values in rows.exact.items():
            setattr(self, name, values[index])


def _round_rows(i: Tensor, o: Tensor, rows: _RowPlans, bits: RandomBits) -> None:
    """Round (K, m) bit patterns slice by slice into ``o`` (may alias ``i``)."""
    if i.numel() == 0:
        return
    plan = rows.plans[0]
    magnitude = torch.bitwise_and(i, plan.magnitude_mask)
    select = magnitude > rows.hi
    if rows.any_lo:
        below = magnitude.sub_(1).bitwise_and_(plan.magnitude_mask)
        select |= below < rows.lo_minus_1
    special = None
    if bool(select.any()):
        where = select.nonzero()
        special = (where[:, 0], where[:, 1], i[where[:, 0], where[:, 1]])
    n_sr = rows.stochastic_rows.numel()
    if rows.all_stochastic:
        add = torch.empty_like(i)
    else:  # round to nearest: add 2^(s-1) - 1, plus 1 if the last kept bit is odd
        add = torch.bitwise_and(i, rows.tie_bit).ne_(0)
        add.add_(rows.half)
    if n_sr:
        m = i.shape[1]
        r = bits.take(n_sr * m, torch.int32, i.device).view(n_sr, m)
        r = torch.bitwise_and(r, rows.stochastic_mask)
        if rows.stochastic_scale is not None:
            r.mul_(rows.stochastic_scale)
        add.index_copy_(0, rows.stochastic_rows, r)
    torch.add(i, add, out=o)
    o.bitwise_and_(rows.keep)
    if special is not None:
        row, column, originals = special
        params = _Gathered(rows, row)
        o[row, column] = _round_exact(originals, plan, params, params.stochastic, bits)


# -------------------------------------------------------------------------------- exact path
def _pow2(e: Tensor) -> Tensor:
    """2^e as float64 for integer e in [-1022, 1023], built from the bits (exact)."""
    return torch.bitwise_left_shift(e + 1023, 52).view(torch.float64)


def _round_exact(
    bits: Tensor,
    container: _Plan,
    params: _Plan | _Gathered,
    stochastic: bool | Tensor,
    random: RandomBits,
) -> Tensor:
    """Round container bit patterns one by one with a per-element quantum (slow, exact).

    A finite magnitude is ``sig * 2^(e1 - bias - F)`` with ``e1 = max(exponent field, 1)`` and
    ``sig`` the significand with its implicit bit. The quantum is ``2^(sh + e1 - bias - F)`` with
    ``sh = s`` in the normal range, ``s + (emin_b - e1)`` below it (gradual underflow) or
    ``F + (emin_b - e1)`` without subnormals; ``n = round(sig / 2^sh)`` and the result
    ``n * 2^(sh + e1 - bias - F)`` is formed exactly in float64 and cast to the container (it is a
    value of the format, so the cast is exact).

    ``container`` gives the container's constants; ``params`` the format's (scalars of a
    :class:`_Plan`, or per-element tensors). Returns bit patterns like ``bits``.
    """
    frac_bits, exp_bits = container.frac_bits, container.exp_bits
    device = bits.device
    b = bits.to(torch.int64)
    negative = b < 0
    m = b & container.magnitude_mask
    exponent = m >> frac_bits
    fraction = m & ((1 << frac_bits) - 1)
    top = (1 << exp_bits) - 1
    is_nan = (exponent == top) & (fraction != 0)
    is_inf = (exponent == top) & (fraction == 0)
    e1 = exponent.clamp(min=1)
    sig = fraction | ((exponent > 0).to(torch.int64) << frac_bits)
    deficit = (params.emin_biased - e1).clamp(min=0)
    # below the smallest normal without subnormals the only values are 0 and 2^emin
    flush = (exponent < params.emin_biased) & ~torch.as_tensor(params.subnormals, device=device)
    sh = torch.where(flush, frac_bits + deficit, params.shift + deficit)
    k = sh + e1 - (container.bias + frac_bits)  # the result is n * 2^k
    # far below the smallest value only P(up) matters: keep _MAX_SHIFT bits of it
    excess = (sh - _MAX_SHIFT).clamp(min=0)
    sig = sig >> excess
    sh = sh - excess
    one = torch.ones_like(sh)
    stochastic = torch.as_tensor(stochastic, device=device)
    n = None
    if not bool(stochastic.all()):
        half = torch.where(sh > 0, (one << (sh - 1).clamp(min=0)) - 1, 0)
        lsb = torch.where(sh > 0, (sig >> sh) & 1, 0)
        n = (sig + half + lsb) >> sh
    if bool(stochastic.any()):
        r = random.take(sig.numel(), torch.int64, device)
        n_sr = (sig + (r & ((one << sh) - 1))) >> sh
        n = n_sr if n is None else torch.where(stochastic, n_sr, n)
    k_half = torch.div(k, 2, rounding_mode="floor")
    value = n.to(torch.float64) * _pow2(k_half) * _pow2(k - k_half)
    max_finite = torch.as_tensor(params.max_finite, dtype=torch.float64, device=device)
    overflow = torch.where(
        torch.as_tensor(params.infinities, device=device), float("inf"), float("nan")
    )
    big = torch.where(torch.as_tensor(params.saturate, device=device), max_finite, overflow)
    value = torch.where((value > max_finite) | is_inf, big, value)
    value = torch.where(is_nan, float("nan"), value)
    value = torch.where(negative, -value, value)
    dtype = torch.float32 if container.int_dtype == torch.int32 else torch.float64
    return value.to(dtype).view(container.int_dtype)

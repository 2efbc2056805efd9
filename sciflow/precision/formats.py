"""Binary floating-point number formats, named by their bits.

A :class:`Format` says how many explicit significand (fraction) bits a number keeps, how many
exponent bits it has, whether it has subnormals and infinities, and what overflow does. Values are
stored in a wider torch *container* (float32 or float64) and rounded to the format, the way the
Fortran emulator rpe and CPFloat emulate low precision (Paxton et al., J. Climate 35(4), 2022,
arXiv:2104.15076; Fasi & Mikaitis, ACM TOMS 47(1), 2021).

With ``ebits=None`` the format keeps the container's exponent range: "10 sbits" in the study is a
float64 whose significand is cut to 10 bits, not IEEE float16 (no overflow at 65504, no subnormal
limit at 2^-24). IEEE-like formats follow IEEE 754: ``bias = 2^(ebits-1) - 1``, normal exponents in
``[1 - bias, bias]``, ``max = (2 - 2^-sbits) 2^bias``. Formats without infinities (OCP FP8 E4M3)
use the top binade for finite values, reserve the all-ones significand there for NaN, so
``max = (2 - 2^(1-sbits)) 2^(bias+1)`` (448 for E4M3).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

__all__ = [
    "Format",
    "FormatError",
    "FLOAT16",
    "BFLOAT16",
    "FLOAT32",
    "FLOAT64",
    "TF32",
    "FP8_E4M3",
    "FP8_E5M2",
    "PRESETS",
    "sbits",
    "format_from_name",
    "container_bits",
]


class FormatError(ValueError):
    """A number format or a format/container pair that cannot be used."""


#: dtype -> (explicit significand bits, exponent bits) of the containers the rounding works in
_CONTAINERS: dict[torch.dtype, tuple[int, int]] = {
    torch.float16: (10, 5),
    torch.bfloat16: (7, 8),
    torch.float32: (23, 8),
    torch.float64: (52, 11),
}


def container_bits(dtype: torch.dtype) -> tuple[int, int]:
    """(significand bits, exponent bits) of a torch floating dtype.

    Raises
    ------
    FormatError
        if ``dtype`` is not float16, bfloat16, float32 or float64.
    """
    try:
        return _CONTAINERS[dtype]
    except KeyError:
        raise FormatError(
            f"dtype {dtype} is not a supported container; expected one of "
            f"{', '.join(str(d) for d in _CONTAINERS)}"
        ) from None


@dataclass(frozen=True, kw_only=True)
class Format:
    """A binary floating-point format: ``(-1)^s 1.f 2^e`` with ``sbits`` fraction bits.

    Parameters
    ----------
    name:
        label used in tables and figures.
    sbits:
        explicit significand (fraction) bits, 1..52 (float16: 10, bfloat16: 7, float32: 23).
    ebits:
        exponent bits, 2..11, or None to keep the container's exponent range (rpe's convention).
    subnormals:
        whether gradual underflow exists; without it the representable values below the smallest
        normal are only 0 (round-to-nearest gives 0 or the smallest normal, stochastic rounding
        picks between them with probability proportional to the distance).
    saturate:
        overflow (and infinite input) gives +/- the largest finite value instead of inf (or NaN).
    infinities:
        False for formats like OCP FP8 E4M3 (torch.float8_e4m3fn): no inf, the top binade holds
        finite values and overflow gives NaN unless ``saturate``.
    """

    name: str
    sbits: int
    ebits: int | None = None
    subnormals: bool = True
    saturate: bool = False
    infinities: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.sbits, int) or isinstance(self.sbits, bool):
            raise FormatError(f"sbits must be an int, got {self.sbits!r}")
        if not 1 <= self.sbits <= 52:
            raise FormatError(f"sbits={self.sbits} is out of range; expected 1 <= sbits <= 52")
        if self.ebits is not None:
            if not isinstance(self.ebits, int) or isinstance(self.ebits, bool):
                raise FormatError(f"ebits must be an int or None, got {self.ebits!r}")
            if not 2 <= self.ebits <= 11:
                raise FormatError(f"ebits={self.ebits} is out of range; expected 2 <= ebits <= 11")
        if not self.infinities and self.sbits < 2:
            raise FormatError(
                f"a format without infinities needs sbits >= 2 (the all-ones significand of the "
                f"top binade is NaN), got sbits={self.sbits}"
            )

    # ----------------------------------------------------------------------------- range
    def ebits_in(self, dtype: torch.dtype | None = None) -> int:
        """Exponent bits of this format when its values live in ``dtype``.

        ``dtype`` matters only for ``ebits=None`` (the container's range), where it is required.
        """
        if self.ebits is not None:
            return self.ebits
        if dtype is None:
            raise FormatError(
                f"format {self.name!r} keeps the container's exponent range (ebits=None); pass the "
                f"container dtype, e.g. dtype=torch.float64"
            )
        return container_bits(dtype)[1]

    def emax(self, dtype: torch.dtype | None = None) -> int:
        """Largest unbiased exponent of a finite value."""
        bias = 2 ** (self.ebits_in(dtype) - 1) - 1
        return bias if self.infinities else bias + 1

    def emin(self, dtype: torch.dtype | None = None) -> int:
        """Unbiased exponent of the smallest normal number, ``1 - bias``."""
        return 2 - 2 ** (self.ebits_in(dtype) - 1)

    def max_finite(self, dtype: torch.dtype | None = None) -> float:
        """Largest finite value (65504 for float16, 448 for FP8 E4M3)."""
        top = (2 ** (self.sbits + 1) - 1) if self.infinities else (2 ** (self.sbits + 1) - 2)
        return math.ldexp(top, self.emax(dtype) - self.sbits)

    def min_normal(self, dtype: torch.dtype | None = None) -> float:
        """Smallest positive normal value, ``2^emin``."""
        return math.ldexp(1.0, self.emin(dtype))

    def min_positive(self, dtype: torch.dtype | None = None) -> float:
        """Smallest positive value: ``2^(emin - sbits)`` with subnormals, else ``2^emin``."""
        return math.ldexp(1.0, self.emin(dtype) - (self.sbits if self.subnormals else 0))

    def eps(self) -> float:
        """Machine epsilon, the gap between 1 and the next value: ``2^-sbits``."""
        return math.ldexp(1.0, -self.sbits)

    def fits(self, dtype: torch.dtype) -> bool:
        """Whether every value of this format is exactly representable in ``dtype``."""
        c_sbits, c_ebits = container_bits(dtype)
        if self.sbits > c_sbits:
            return False
        c_emax = 2 ** (c_ebits - 1) - 1
        lowest = self.emin(dtype) - (self.sbits if self.subnormals else 0)
        return self.emax(dtype) <= c_emax and lowest >= (1 - c_emax) - c_sbits

    def check_container(self, dtype: torch.dtype) -> None:
        """Raise :class:`FormatError` unless ``dtype`` can hold every value of this format."""
        if not self.fits(dtype):
            c_sbits, c_ebits = container_bits(dtype)
            raise FormatError(
                f"format {self.name!r} (sbits={self.sbits}, ebits={self.ebits}) does not fit in "
                f"{dtype} (sbits={c_sbits}, ebits={c_ebits}); use a wider container, e.g. "
                f"x.to(torch.float64)"
            )

    def native_dtype(self) -> torch.dtype:
        """The torch dtype whose values are exactly this format's (float16 -> torch.float16,
        bfloat16 -> torch.bfloat16, fp8_e4m3 -> torch.float8_e4m3fn, ...); FormatError if none."""
        for dtype, (sb, eb, subnormals, infinities) in _NATIVE.items():
            if (self.sbits, self.ebits, self.subnormals, self.infinities) == (sb, eb, subnormals,
                                                                              infinities):
                return dtype
        raise FormatError(f"format {self.name!r} (sbits={self.sbits}, ebits={self.ebits}) has no "
                          "native torch dtype; keep the result in its float32/float64 container "
                          "(dtype=None)")

    def __str__(self) -> str:
        return self.name


#: torch dtypes that hold exactly one format: (sbits, ebits, subnormals, infinities)
_NATIVE: dict[torch.dtype, tuple[int, int, bool, bool]] = {
    torch.float16: (10, 5, True, True),
    torch.bfloat16: (7, 8, True, True),
    torch.float32: (23, 8, True, True),
    torch.float64: (52, 11, True, True),
    **({torch.float8_e4m3fn: (3, 4, True, False)} if hasattr(torch, "float8_e4m3fn") else {}),
    **({torch.float8_e5m2: (2, 5, True, True)} if hasattr(torch, "float8_e5m2") else {}),
}


FLOAT16 = Format(name="float16", sbits=10, ebits=5)
BFLOAT16 = Format(name="bfloat16", sbits=7, ebits=8)
FLOAT32 = Format(name="float32", sbits=23, ebits=8)
FLOAT64 = Format(name="float64", sbits=52, ebits=11)
TF32 = Format(name="tf32", sbits=10, ebits=8)
# saturating, like torch's float32 -> float8_e4m3fn cast (inf and overflow -> +/-448)
FP8_E4M3 = Format(name="fp8_e4m3", sbits=3, ebits=4, infinities=False, saturate=True)
FP8_E5M2 = Format(name="fp8_e5m2", sbits=2, ebits=5)

#: explicit registry of the named presets
PRESETS: dict[str, Format] = {
    f.name: f for f in (FLOAT16, BFLOAT16, FLOAT32, FLOAT64, TF32, FP8_E4M3, FP8_E5M2)
}


def sbits(k: int) -> Format:
    """``k`` significand bits with the container's exponent range (rpe's "k sbits").

    Examples
    --------
    >>> sbits(10).name
    'sbits10'
    """
    return Format(name=f"sbits{k}", sbits=k, ebits=None)


_SBITS_NAME = re.compile(r"^sbits(\d+)$")


def format_from_name(name: str) -> Format:
    """A preset by name (``float16``, ``bfloat16``, ``tf32``, ``fp8_e4m3``, ...) or ``sbits<k>``.

    Raises
    ------
    FormatError
        for an unknown name, listing the known ones.
    """
    key = name.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    match = _SBITS_NAME.match(key)
    if match:
        return sbits(int(match.group(1)))
    raise FormatError(
        f"unknown number format {name!r}; expected one of {', '.join(PRESETS)} or 'sbits<k>' "
        f"(k significand bits with the container's exponent range, e.g. 'sbits10')"
    )

"""Number formats: presets agree with torch's own dtypes, ranges, containers, clear errors."""

import math

import pytest
import torch

from sciflow.precision import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    FP8_E4M3,
    FP8_E5M2,
    PRESETS,
    TF32,
    Format,
    FormatError,
    format_from_name,
    sbits,
)


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        (FLOAT16, torch.float16),
        (BFLOAT16, torch.bfloat16),
        (FLOAT32, torch.float32),
        (FLOAT64, torch.float64),
        (FP8_E4M3, torch.float8_e4m3fn),
        (FP8_E5M2, torch.float8_e5m2),
    ],
)
def test_presets_match_torch_finfo(fmt: Format, dtype: torch.dtype) -> None:
    assert fmt.native_dtype() == dtype
    info = torch.finfo(dtype)
    assert fmt.max_finite() == info.max
    assert fmt.min_normal() == info.smallest_normal
    assert fmt.eps() == info.eps
    # the smallest subnormal is one gap above zero: 2^(emin - sbits)
    assert fmt.min_positive() == math.ldexp(info.smallest_normal, -fmt.sbits)


def test_tf32_has_float32_range_and_float16_precision() -> None:
    assert TF32.max_finite() == pytest.approx(torch.finfo(torch.float32).max, rel=1e-3)
    assert TF32.min_normal() == torch.finfo(torch.float32).smallest_normal
    assert TF32.eps() == FLOAT16.eps()


def test_sbits_keeps_the_container_range() -> None:
    fmt = sbits(10)
    assert fmt.ebits is None
    assert fmt.max_finite(torch.float64) > 1e300
    assert fmt.min_normal(torch.float32) == torch.finfo(torch.float32).smallest_normal
    with pytest.raises(FormatError, match="pass the container dtype"):
        fmt.max_finite()


def test_fits() -> None:
    assert FLOAT16.fits(torch.float32) and BFLOAT16.fits(torch.float32)
    assert FLOAT32.fits(torch.float64) and not FLOAT32.fits(torch.float16)
    assert not FLOAT64.fits(torch.float32)
    assert sbits(7).fits(torch.bfloat16) and not sbits(8).fits(torch.bfloat16)
    # no infinities: the top binade holds finite values, past the container's range
    assert not Format(name="x", sbits=7, ebits=8, infinities=False).fits(torch.float32)
    with pytest.raises(FormatError, match="does not fit in torch.float32"):
        FLOAT64.check_container(torch.float32)


def test_no_subnormals_raises_the_smallest_positive_value() -> None:
    fmt = Format(name="f16-ftz", sbits=10, ebits=5, subnormals=False)
    assert fmt.min_positive() == FLOAT16.min_normal()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sbits": 0}, "sbits=0 is out of range"),
        ({"sbits": 53}, "sbits=53 is out of range"),
        ({"sbits": 2.5}, "sbits must be an int"),
        ({"sbits": 4, "ebits": 1}, "ebits=1 is out of range"),
        ({"sbits": 4, "ebits": 12}, "ebits=12 is out of range"),
        ({"sbits": 1, "ebits": 4, "infinities": False}, "needs sbits >= 2"),
    ],
)
def test_bad_formats_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        Format(name="bad", **kwargs)


def test_format_from_name() -> None:
    for name, fmt in PRESETS.items():
        assert format_from_name(name.upper()) == fmt
    assert format_from_name("sbits12") == sbits(12)
    with pytest.raises(FormatError, match="unknown number format 'float8'"):
        format_from_name("float8")


def test_formats_are_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        FLOAT16.sbits = 3  # type: ignore[misc]
    assert len({FLOAT16, FLOAT16, BFLOAT16}) == 2

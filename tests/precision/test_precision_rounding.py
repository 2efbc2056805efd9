"""Rounding to a format: bit-exact RN against torch's and numpy's casts, SR's distribution, API.

The boundary set (every value of the format, every midpoint, one container ulp either side, the
edges) is the CI-sized stand-in for the exhaustive 2^32 run in benchmarks/exhaustive_rounding.py.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sciflow.precision import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    FP8_E4M3,
    FP8_E5M2,
    Format,
    FormatError,
    Precision,
    RoundingError,
    round_,
    round_sweep,
    round_to,
    sbits,
)
from sciflow.precision.boundary import boundary_values, representable_values
from sciflow.precision.reference import reference_neighbours, reference_round
from sciflow.precision.rounding import _stochastic_kernel

INT = {torch.float32: torch.int32, torch.float64: torch.int64}


def assert_same_bits(got: torch.Tensor, ref: torch.Tensor, x: torch.Tensor) -> None:
    """Equal bit patterns, NaN matching any NaN."""
    it = INT[got.dtype]
    same = (got.view(it) == ref.view(it)) | (got.isnan() & ref.isnan())
    if not bool(same.all()):
        bad = (~same).nonzero().view(-1)[:5]
        raise AssertionError(
            f"{int((~same).sum())} mismatches, e.g. x={x[bad].tolist()} got={got[bad].tolist()} "
            f"expected={ref[bad].tolist()}"
        )


# ------------------------------------------------------------------ bit-exact against casts
# each format's torch dtype is checked against torch.finfo in test_precision_formats.py
@pytest.mark.parametrize("fmt", [FLOAT16, BFLOAT16, FP8_E5M2, FP8_E4M3], ids=str)
def test_nearest_float32_is_bit_exact_with_torch_casts(fmt: Format) -> None:
    x = boundary_values(fmt, torch.float32)
    assert_same_bits(round_to(x, fmt), x.to(fmt.native_dtype()).to(torch.float32), x)


def test_boundary_set_covers_every_float16_midpoint_and_edge() -> None:
    x = boundary_values(FLOAT16, torch.float32)
    values, gaps = representable_values(FLOAT16, torch.float32)
    assert values.numel() == 31 * 2**10  # every finite non-negative float16, 0 included
    present = set(x.tolist())
    mids = (values + gaps / 2).float()
    assert all(m in present and -m in present for m in mids.tolist())
    for v in (65520.0, 2.0**-25, 0.0, math.inf, torch.finfo(torch.float32).tiny):
        assert v in present and -v in present
    assert bool(x.isnan().any()) and bool((x.view(torch.int32) == -(2**31)).any())  # -0.0


def test_nearest_float64_to_float16_matches_numpy() -> None:
    x = boundary_values(FLOAT16, torch.float64)
    with np.errstate(over="ignore"):
        ref = torch.from_numpy(x.numpy().astype(np.float16).astype(np.float64))
    assert_same_bits(round_to(x, FLOAT16), ref, x)


def test_float64_path_rounds_once_where_torch_rounds_twice() -> None:
    x = torch.tensor([1 + 2.0**-11 + 2.0**-40], dtype=torch.float64)
    assert round_to(x, FLOAT16).item() == 1 + 2.0**-10
    assert x.to(torch.float16).item() == 1.0  # torch goes through float32 first


def test_nearest_float64_to_float32_matches_torch_cast() -> None:
    x = boundary_values(FLOAT32, torch.float64, max_values=1 << 14)
    assert_same_bits(round_to(x, FLOAT32), x.to(torch.float32).to(torch.float64), x)


# -------------------------------------------------------------- against the exact reference
def _formats() -> st.SearchStrategy[Format]:
    @st.composite
    def build(draw: st.DrawFn) -> Format:
        p = draw(st.integers(1, 20))
        ebits = draw(st.one_of(st.none(), st.integers(2, 8)))
        infinities = draw(st.booleans()) if (ebits is not None and p >= 2) else True
        return Format(
            name="random",
            sbits=p,
            ebits=ebits,
            subnormals=draw(st.booleans()),
            saturate=draw(st.booleans()),
            infinities=infinities,
        )

    return build()


def _cases() -> st.SearchStrategy[tuple[Format, torch.dtype, int]]:
    """A random format, a container dtype that holds it, and a seed for :func:`_values`."""
    @st.composite
    def build(draw: st.DrawFn) -> tuple[Format, torch.dtype, int]:
        fmt = draw(_formats())
        dtype = draw(st.sampled_from([torch.float32, torch.float64]).filter(fmt.fits))
        return fmt, dtype, draw(st.integers(0, 2**31))

    return build()


def _values(fmt: Format, dtype: torch.dtype, seed: int, n: int = 64) -> torch.Tensor:
    """Random bit patterns plus values scattered over the format's range and just beyond."""
    g = torch.Generator().manual_seed(seed)
    it = INT[dtype]
    bits = torch.randint(-(2**31), 2**31, (n,), generator=g, dtype=torch.int64)
    if dtype == torch.float64:
        bits = (bits << 32) ^ torch.randint(0, 2**31, (n,), generator=g, dtype=torch.int64)
    patterns = bits.to(it).view(dtype)
    lo, hi = fmt.emin(dtype) - fmt.sbits - 3, fmt.emax(dtype) + 2
    e = torch.randint(lo, hi, (n,), generator=g).to(torch.float64)
    scaled = (torch.randn(n, generator=g, dtype=torch.float64) * torch.exp2(e)).to(dtype)
    return torch.cat([patterns, scaled])


@settings(max_examples=40, deadline=None)
@given(case=_cases())
def test_nearest_matches_exact_reference(case: tuple[Format, torch.dtype, int]) -> None:
    fmt, dtype, seed = case
    x = _values(fmt, dtype, seed)
    ref = torch.tensor([reference_round(v, fmt, dtype) for v in x.tolist()], dtype=torch.float64)
    assert_same_bits(round_to(x, fmt), ref.to(dtype), x)


@settings(max_examples=30, deadline=None)
@given(case=_cases())
def test_stochastic_lands_on_a_neighbour(case: tuple[Format, torch.dtype, int]) -> None:
    fmt, dtype, seed = case
    x = _values(fmt, dtype, seed)
    g = torch.Generator().manual_seed(seed)
    got = round_to(x, fmt, rounding="stochastic", generator=g)
    for v, r in zip(x.tolist(), got.tolist()):
        allowed = {reference_round(v, fmt, dtype, up=u) for u in (False, True)}
        assert r in allowed or (math.isnan(r) and any(math.isnan(a) for a in allowed)), (v, r)


# ------------------------------------------------------------- stochastic rounding's law
def test_stochastic_round_up_probability_is_exactly_the_dropped_fraction() -> None:
    """Enumerate every random draw r in [0, 2^s): exactly `dropped` of them round up."""
    s = 6
    fmt = sbits(23 - s)
    x = torch.tensor([1.0 + k * 2.0**-23 for k in range(0, 2**s, 5)], dtype=torch.float32)
    i = x.view(torch.int32)
    down = round_to(x, fmt, rounding="nearest")  # only to get the rounding grid below
    for j in range(x.numel()):
        dropped = int(i[j]) & (2**s - 1)
        r = torch.arange(2**s, dtype=torch.int32)
        o = torch.empty_like(r)
        _stochastic_kernel(i[j].expand(2**s).contiguous(), r, o, s, torch.empty_like(r))
        ups = int((o != (int(i[j]) & ~(2**s - 1))).sum())
        assert ups == dropped, (x[j].item(), ups, dropped, down[j].item())


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        (FLOAT16, 1.0 + 0.3 * 2.0**-10),  # normal range, fast kernel
        (BFLOAT16, -3.0 - 0.8 * 2.0**-6),
        (FLOAT16, 0.3 * 2.0**-24),  # below the smallest subnormal, exact per-element path
        (FLOAT16, 2.0**-20 * (1 + 2.0**-12)),  # subnormal range
        (sbits(4), 1e10 * (1 + 0.05)),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stochastic_is_unbiased_with_the_right_probability(
    fmt: Format, value: float, dtype: torch.dtype
) -> None:
    x = torch.full((40_000,), value, dtype=dtype)
    value = x[0].item()
    nb = reference_neighbours(value, fmt, dtype)
    g = torch.Generator().manual_seed(7)
    got = round_to(x, fmt, rounding="stochastic", generator=g).to(torch.float64)
    assert set(got.unique().tolist()) <= {nb.toward_zero, nb.away_from_zero}
    p_up = float((got == nb.away_from_zero).double().mean())
    p = float(nb.fraction)
    sd = math.sqrt(p * (1 - p) / x.numel())
    assert abs(p_up - p) < 5 * sd + 1e-12
    gap = abs(nb.away_from_zero - nb.toward_zero)
    assert abs(float(got.mean()) - value) < 5 * sd * gap + 1e-300


def test_stochastic_is_reproducible_with_a_seeded_generator() -> None:
    x = torch.randn(10_000)
    a = round_to(x, BFLOAT16, rounding="stochastic", generator=torch.Generator().manual_seed(1))
    b = round_to(x, BFLOAT16, rounding="stochastic", generator=torch.Generator().manual_seed(1))
    c = round_to(x, BFLOAT16, rounding="stochastic", generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_stochastic_leaves_representable_values_and_specials_alone() -> None:
    x = torch.tensor([0.0, -0.0, 1.0, -65504.0, 2.0**-24, math.inf, -math.inf])
    got = round_to(x, FLOAT16, rounding="stochastic", generator=torch.Generator().manual_seed(0))
    assert_same_bits(got, x, x)
    assert round_to(torch.tensor([math.nan]), FLOAT16, rounding="stochastic").isnan().all()


# ------------------------------------------------------------------ properties (hypothesis)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite32, min_size=2, max_size=32), p=st.integers(1, 22))
def test_nearest_is_idempotent_monotone_and_odd(values: list[float], p: int) -> None:
    fmt = sbits(p)
    x = torch.tensor(values, dtype=torch.float32)
    r = round_to(x, fmt)
    assert torch.equal(round_to(r, fmt), r)
    xs, order = x.sort()
    rs = r[order]
    assert bool((rs[1:] >= rs[:-1]).all())
    assert torch.equal(round_to(-x, fmt), -r)
    finite = r.isfinite()
    binade = torch.floor(torch.log2(x.abs().double())).clamp(min=-126)  # float32 subnormals
    gap = torch.exp2(binade - p)
    err = (r.double() - x.double()).abs()
    assert bool((err[finite] <= gap[finite] / 2).all())


# ------------------------------------------------------------------------------------ API
def test_out_inplace_noncontiguous_and_empty() -> None:
    x = torch.randn(64, 32, dtype=torch.float64).t()
    expected = round_to(x.contiguous(), FLOAT16)
    assert torch.equal(round_to(x, FLOAT16), expected)
    out = torch.empty_like(x)
    assert round_to(x, FLOAT16, out=out) is out and torch.equal(out, expected)
    y = x.clone()
    assert round_(y, FLOAT16) is y and torch.equal(y, expected)
    assert round_to(torch.empty(0, 3), FLOAT16).shape == (0, 3)


def test_half_containers_round_through_float32() -> None:
    x = torch.randn(1000).to(torch.bfloat16)
    got = round_to(x, sbits(4))
    assert got.dtype == torch.bfloat16
    assert torch.equal(got.float(), round_to(x.float(), sbits(4)))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: round_to(torch.ones(2), FLOAT16, rounding="up"), RoundingError, "not one of"),
        (lambda: round_to(torch.ones(2, dtype=torch.int32), FLOAT16), TypeError, "floating"),
        (lambda: round_to(torch.ones(2), 16), TypeError, "sciflow.precision.Format"),
        (lambda: round_to([1.0], FLOAT16), TypeError, "torch.Tensor"),
        (lambda: round_to(torch.ones(2), FLOAT32.__class__(name="w", sbits=30)), FormatError,
         "does not fit"),
        (lambda: round_to(torch.ones(2), FLOAT16, out=torch.ones(3)), RoundingError, "shape"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_and_checks_the_generator_device() -> None:
    x = boundary_values(FLOAT16, torch.float32)
    assert torch.equal(round_to(x.cuda(), FLOAT16).cpu().nan_to_num(), round_to(x, FLOAT16).nan_to_num())
    with pytest.raises(RoundingError, match="generator is on"):
        round_to(x.cuda(), FLOAT16, rounding="stochastic", generator=torch.Generator())


# ------------------------------------------------------------------------------ sweeps
SWEEP = [
    Precision(FLOAT16),
    Precision(BFLOAT16, "stochastic"),
    Precision(sbits(3)),
    Precision(FP8_E4M3),
    Precision(FLOAT32),
    Precision(Format(name="ftz", sbits=5, ebits=4, subnormals=False), "stochastic"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sweep_is_bit_identical_to_rounding_each_slice_alone(dtype: torch.dtype) -> None:
    arms = [p for p in SWEEP if p.fmt.fits(dtype)]
    x = boundary_values(FLOAT16, dtype)[: 50_000]
    xs = x.expand(len(arms), -1).contiguous()
    g = torch.Generator().manual_seed(0)
    got = round_sweep(xs, arms, generator=g)
    for k, arm in enumerate(arms):
        if arm.rounding == "nearest":
            assert_same_bits(got[k], round_to(x, arm.fmt), x)
        else:  # the same law: every result is one of the two neighbours
            down = round_to(x, arm.fmt, rounding="stochastic", generator=torch.Generator())
            lo = torch.minimum(down, got[k])
            finite = x.isfinite() & lo.isfinite()
            for v, r in zip(x[finite][::97].tolist(), got[k][finite][::97].tolist()):
                assert r in {reference_round(v, arm.fmt, dtype, up=u) for u in (False, True)}


def test_sweep_checks_its_leading_dimension() -> None:
    with pytest.raises(RoundingError, match="2 precisions were given"):
        round_sweep(torch.ones(3, 4), [Precision(FLOAT16), Precision(BFLOAT16)])
    with pytest.raises(RoundingError, match="not one of"):
        Precision(FLOAT16, "up")  # type: ignore[arg-type]


def test_random_bits_pool_is_reproducible() -> None:
    from sciflow.precision.rounding import RandomBits

    def draws(pool: int) -> list[torch.Tensor]:
        bits = RandomBits(torch.Generator().manual_seed(5), pool=pool)
        return [bits.take(n, dt, torch.device("cpu")).clone()
                for n, dt in ((7, torch.int32), (300, torch.int64), (5000, torch.int32))]

    a, b = draws(1 << 10), draws(1 << 10)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    words = torch.cat([a[0], a[2]]).to(torch.int64)
    for bit in (0, 15, 31):  # low, middle and sign bit of every lane are fair coins
        assert 0.45 < float(((words >> bit) & 1).double().mean()) < 0.55
    assert 0.4 < float((a[1] < 0).double().mean()) < 0.6  # int64 words use all 64 bits
    assert [x.shape[0] for x in a] == [7, 300, 5000] and a[2].dtype == torch.int32


def test_round_to_takes_format_names_and_returns_native_dtypes() -> None:
    """round_to(x, "bfloat16") works like round_to(x, BFLOAT16); dtype="native" gives a real
    torch.bfloat16 tensor equal, bit for bit, to torch's own cast (RN)."""
    from sciflow.precision import BFLOAT16, FormatError, round_to, sbits

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, generator=g) * 100
    assert torch.equal(round_to(x, "bfloat16"), round_to(x, BFLOAT16))
    native = round_to(x, "bfloat16", dtype="native")
    assert native.dtype == torch.bfloat16
    assert torch.equal(native.view(torch.int16), x.to(torch.bfloat16).view(torch.int16))
    half = round_to(x.double(), "float16", dtype=torch.float16)
    assert half.dtype == torch.float16 and torch.equal(half, x.double().to(torch.float16))
    sr = round_to(x, "bfloat16", rounding="stochastic", generator=g, dtype="native")
    assert sr.dtype == torch.bfloat16 and torch.equal(sr.float(), sr.float().to(torch.bfloat16).float())
    with pytest.raises(FormatError, match="no native torch dtype"):
        round_to(x, sbits(9), dtype="native")
    with pytest.raises(FormatError, match="does not fit"):
        round_to(x, "float32", dtype=torch.bfloat16)
    with pytest.raises(FormatError, match="unknown number format 'bf17'"):
        round_to(x, "bf17")

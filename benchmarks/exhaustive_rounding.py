"""Exhaustive check of sciflow.precision.round_to on all 2^32 float32 bit patterns.

For each format with a torch dtype (float16, bfloat16, FP8 E5M2, FP8 E4M3):

* round-to-nearest must equal torch's float32 -> format cast bit for bit (NaN: any NaN);
* stochastic rounding (float16 and bfloat16) must land on one of the two format values around
  x: the cast's value, or its neighbour on the other side of x (found by stepping the format's bit
  pattern), and on exactly x when x is representable.

Not part of the test suite (minutes); the CI-sized version is the boundary-set test in
tests/precision/test_precision_rounding.py.

    .venv/bin/python benchmarks/exhaustive_rounding.py [--chunk-log2 24] [--formats float16,bfloat16]
    .venv/bin/python benchmarks/exhaustive_rounding.py --patterns-log2 20 --no-write   (smoke run)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import splice_section  # noqa: E402

from sciflow.precision import BFLOAT16, FLOAT16, FP8_E4M3, FP8_E5M2, Format, round_to

CASES: dict[str, tuple[Format, torch.dtype, torch.dtype | None]] = {
    # name: (format, torch dtype, integer view of that dtype for neighbour stepping)
    "float16": (FLOAT16, torch.float16, torch.int16),
    "bfloat16": (BFLOAT16, torch.bfloat16, torch.int16),
    "fp8_e5m2": (FP8_E5M2, torch.float8_e5m2, None),
    "fp8_e4m3": (FP8_E4M3, torch.float8_e4m3fn, None),
}


def _same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())


def _other_neighbour(x: torch.Tensor, cast: torch.Tensor, small: torch.dtype,
                     int_view: torch.dtype) -> torch.Tensor:
    """The format value on the other side of x from its RN cast (float32)."""
    bits = cast.view(int_view).to(torch.int32)
    sign = bits & 0x8000
    mag = bits & 0x7FFF
    value = cast.to(torch.float32)
    step = torch.where(value.abs() < x.abs(), 1, -1)
    stepped = (mag + step).clamp(min=0) | sign
    return stepped.to(int_view).view(small).to(torch.float32)


def check(name: str, chunk_log2: int, seed: int = 0, patterns_log2: int = 32) -> dict[str, float]:
    """Mismatch counts over the float32 bit patterns 0 .. 2^patterns_log2 - 1 (all of them by
    default; fewer only for a smoke run)."""
    fmt, small, int_view = CASES[name]
    chunk = 1 << min(chunk_log2, patterns_log2)
    g = torch.Generator().manual_seed(seed)
    bad_rn = bad_sr = 0
    t0 = time.perf_counter()
    for start in range(0, 1 << patterns_log2, chunk):
        pattern = torch.arange(start, start + chunk, dtype=torch.int64)
        x = pattern.to(torch.int32).view(torch.float32)  # wraps to negative above 2^31: all signs
        cast = x.to(small)
        ref = cast.to(torch.float32)
        got = round_to(x, fmt)
        bad_rn += int((~_same(got, ref)).sum())
        if int_view is not None:
            sr = round_to(x, fmt, rounding="stochastic", generator=g)
            other = _other_neighbour(x, cast, small, int_view)
            exact = ref == x
            ok = _same(sr, ref) | (_same(sr, other) & ~exact) | (x.isnan() & sr.isnan())
            bad_sr += int((~ok).sum())
    return {
        "patterns": float(1 << patterns_log2),
        "rn_mismatches": float(bad_rn),
        "sr_off_neighbours": float(bad_sr) if int_view is not None else float("nan"),
        "seconds": time.perf_counter() - t0,
    }


def markdown(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| format | float32 patterns | RN mismatches vs torch cast | SR results off the two "
        "neighbours | seconds |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        sr = "not checked" if r["sr_off_neighbours"] != r["sr_off_neighbours"] else \
            f"{int(r['sr_off_neighbours'])}"
        count = int(r["patterns"]).bit_length() - 1
        lines.append(f"| {name} | 2^{count} | {int(r['rn_mismatches'])} | {sr} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines)


RESULTS = Path(__file__).resolve().parent / "results" / "precision.md"
SECTION = "## Exhaustive: all 2^32 float32 patterns"


def write_section(table: str, command: str) -> None:
    """Put the table into benchmarks/results/precision.md, replacing an earlier one."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Precision\n"
    body = (f"{SECTION}\n\nCommand: `{command}`; every float32 bit pattern (both signs, "
            f"subnormals, inf, NaN).\n\n{table}\n")
    text = splice_section(text, SECTION, body)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk-log2", type=int, default=22)
    parser.add_argument("--formats", default="float16,bfloat16",
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--patterns-log2", type=int, default=32, choices=range(1, 33),
                        metavar="K", help="check only the first 2^K patterns (a smoke run; "
                                          "implies --no-write unless K is 32)")
    parser.add_argument("--no-write", action="store_true",
                        help="only print; do not update benchmarks/results/precision.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.formats.split(","):
        results[name] = check(name.strip(), args.chunk_log2, patterns_log2=args.patterns_log2)
        print(name, results[name], flush=True)
    table = markdown(results)
    print(table)
    if not args.no_write and args.patterns_log2 == 32:
        write_section(table, "python " + " ".join(shlex.quote(a) for a in sys.argv))


if __name__ == "__main__":
    main()

"""Low-precision arithmetic: number formats, RN and stochastic rounding, emulation, W1 test.

* :mod:`~sciflow.precision.formats` -- :class:`Format` (significand and exponent bits,
  subnormals, overflow) and presets: float16, bfloat16, float32, TF32, FP8 E4M3/E5M2, ``sbits(k)``.
* :mod:`~sciflow.precision.rounding` -- :func:`round_to`: round float32/float64 tensors to a format
  with round-to-nearest-even or stochastic rounding, bit-exact, on integer views;
  :func:`round_sweep`: one :class:`Precision` per slice.
* :mod:`~sciflow.precision.emulate` -- :func:`emulate`: a context manager that rounds every torch
  op's result (whole-program emulation); :func:`emulate_sweep`: a batch of precisions at once;
  :class:`StateRounding`: round only a solver's state after each step.
* :mod:`~sciflow.precision.wasserstein` -- the Wasserstein rounding-error test of Paxton et al.
  (J. Climate 2022): W1 to the float64 reference against a float64-vs-float64 null.
* :mod:`~sciflow.precision.boundary`, :mod:`~sciflow.precision.reference` -- test inputs at every
  rounding decision, and a slow exact rounding in rational arithmetic to check against.
"""

from .boundary import boundary_values, representable_values
from .emulate import (
    Emulate,
    EmulateSweep,
    StateRounding,
    emulate,
    emulate_sweep,
    round_module_,
)
from .formats import (
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
from .reference import reference_neighbours, reference_round
from .rounding import (
    ROUNDINGS,
    Precision,
    Rounding,
    RoundingError,
    round_,
    round_sweep,
    round_to,
)
from .wasserstein import (
    RoundingErrorResult,
    rounding_error_test,
    same_noise_deviation,
    wasserstein1_1d,
)

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
    "Rounding",
    "ROUNDINGS",
    "RoundingError",
    "Precision",
    "round_to",
    "round_",
    "round_sweep",
    "Emulate",
    "EmulateSweep",
    "emulate",
    "emulate_sweep",
    "StateRounding",
    "round_module_",
    "RoundingErrorResult",
    "rounding_error_test",
    "same_noise_deviation",
    "wasserstein1_1d",
    "boundary_values",
    "representable_values",
    "reference_neighbours",
    "reference_round",
]

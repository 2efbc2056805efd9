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

# every submodule's public names, listed once (in its own __all__)
from . import boundary, formats, reference, rounding, wasserstein
from . import emulate as _emulate  # the module; ``emulate`` is its context manager
from .boundary import *  # noqa: F403
from .emulate import *  # noqa: F403
from .formats import *  # noqa: F403
from .reference import *  # noqa: F403
from .rounding import *  # noqa: F403
from .wasserstein import *  # noqa: F403

__all__ = [*formats.__all__, *rounding.__all__, *_emulate.__all__, *wasserstein.__all__,
           *boundary.__all__, *reference.__all__]

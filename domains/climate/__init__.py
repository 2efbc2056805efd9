"""Testbeds of the low-precision study (Paxton et al., J. Climate 35(4), 2022), in plain torch.

Every model is written with torch ops on tensors with arbitrary leading dimensions, so
:func:`sciflow.precision.emulate` rounds each op like the Fortran emulator rpe, and
:func:`sciflow.precision.emulate_sweep` runs a whole sweep of precisions as one batch (a leading
"arm" dimension):

* :mod:`.lorenz` -- Lorenz 1963 (sigma 10, rho 28, beta 8/3), RK4 with dt 0.01, ensembles.
* :mod:`.heat` -- heat diffusion in a 60 m soil column, forward Euler, dt 1800 s (the stagnation
  example: increments below half an ulp are lost under round-to-nearest).
* :mod:`.shallow_water` -- wind-driven flow over a ridge in a periodic channel, C-grid,
  vector-invariant form, RK4.
* :mod:`.study` -- the sweeps, the Wasserstein test, tables and figures; :mod:`.cli` the
  ``sciflow precision`` commands; :mod:`.demo` the section of ``sciflow demo``.
"""

"""Refining a generated TS into a saddle point with Sella, and the classic IDPP guess to compare.

:func:`refine` runs Sella (order 1, internal coordinates; Hermes et al., J. Chem. Theory Comput. 18,
6974, 2022) from a generated TS with an ASE calculator (GFN2-xTB via tblite by default) and, for
comparison, from the IDPP guess (:func:`idpp_guess`: the highest-energy image of an IDPP path;
Smidstrup et al., J. Chem. Phys. 140, 214106, 2014), and reports the optimiser steps saved. A Sella
search that gives up (its internal-coordinate update does not converge) is a failed refinement
charged the whole step budget, not a crash.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from sciflow.errors import InputError, NonFiniteError

from .data import prepare_endpoints
from .ranking import CalculatorFactory

__all__ = ["RefinementResult", "refine", "idpp_guess", "imaginary_modes"]


@dataclass(frozen=True)
class RefinementResult:
    """Sella saddle refinement of a generated TS, and (optionally) the same from the IDPP guess.

    ``steps`` are Sella optimiser steps (each one gradient); ``steps_saved`` = IDPP-start steps
    minus generated-start steps (None without the comparison). Energies in eV, ``fmax`` in eV/A.
    ``imaginary_modes`` counts the harmonic frequencies of the refined geometry below
    -``imag_threshold`` cm^-1 (a first-order saddle has exactly one) and
    ``imaginary_frequency`` is the lowest frequency (cm^-1, negative when imaginary); both None
    when frequencies were not computed.
    """

    atoms: Atoms
    converged: bool
    steps: int
    fmax: float
    energy: float
    start_energy: float
    seconds: float
    idpp_atoms: Atoms | None = None
    idpp_converged: bool | None = None
    idpp_steps: int | None = None
    idpp_seconds: float | None = None
    imaginary_modes: int | None = None
    imaginary_frequency: float | None = None

    @property
    def steps_saved(self) -> int | None:
        return None if self.idpp_steps is None else self.idpp_steps - self.steps


def _sella(atoms: Atoms, calculator: CalculatorFactory, fmax: float, max_steps: int
           ) -> tuple[Atoms, bool, int, float]:
    from sella import Sella

    a = Atoms(numbers=atoms.numbers, positions=atoms.get_positions())
    a.calc = calculator()
    opt = Sella(a, order=1, internal=True, logfile=None, trajectory=None)
    try:
        converged, steps = bool(opt.run(fmax=fmax, steps=max_steps)), int(opt.nsteps)
    except RuntimeError:
        # Sella gives up when its internal-coordinate update does not converge (a distorted
        # start): a failed search, charged the whole step budget like any other that fails
        converged, steps = False, max_steps
    return a, converged, steps, float(np.linalg.norm(a.get_forces(), axis=1).max())


def idpp_guess(reactant: Atoms, product: Atoms, *, calculator: CalculatorFactory,
               images: int = 9) -> Atoms:
    """Highest-energy interior image of an IDPP path from R to P (P Kabsch-aligned onto R first).

    The classic TS guess and the start of the builder's CI-NEB (Smidstrup et al. 2014).
    """
    from ase.mep import NEB

    ep = prepare_endpoints(reactant, product, elements=sorted(set(int(z) for z in reactant.numbers)))
    ends = [Atoms(numbers=ep.numbers, positions=ep.reactant),
            Atoms(numbers=ep.numbers, positions=ep.product)]
    path = [ends[0]] + [ends[0].copy() for _ in range(images)] + [ends[1]]
    neb = NEB(path, method="improvedtangent")
    try:
        neb.interpolate("idpp")
    except Exception:  # IDPP can fail on degenerate geometries; the straight line remains
        neb.interpolate()
    best, best_e = None, -math.inf
    for img in path[1:-1]:
        a = img.copy()
        a.calc = calculator()
        try:
            e = float(a.get_potential_energy())
        except Exception:
            continue
        if e > best_e:
            best, best_e = a, e
    if best is None:
        raise NonFiniteError(f"the calculator failed on all {images} IDPP images (no energy); "
                             "refine without the IDPP comparison (--no-idpp, compare_idpp=False)")
    return Atoms(numbers=best.numbers, positions=best.get_positions() + ep.origin)


def imaginary_modes(atoms: Atoms, calculator: CalculatorFactory) -> tuple[int, float]:
    """(number of imaginary modes, lowest frequency in cm^-1) of ``atoms`` from the reaction
    builder's finite-difference Hessian, counting modes below -``imag_threshold`` of its
    :class:`~sciflow.datasets.reactions.PipelineSettings` (50 cm^-1; softer ones are noise)."""
    from sciflow.datasets.reactions import PipelineSettings
    from sciflow.datasets.reactions.hessian import harmonic_frequencies

    a = Atoms(numbers=atoms.numbers, positions=atoms.get_positions())
    a.calc = calculator()
    s = PipelineSettings()
    freqs, _ = harmonic_frequencies(a, delta=s.hessian_delta)
    return int(np.sum(freqs < -s.imag_threshold)), float(freqs[0])


def refine(ts: Atoms, *, reactant: Atoms | None = None, product: Atoms | None = None,
           calculator: CalculatorFactory | None = None, fmax: float = 0.01, max_steps: int = 500,
           compare_idpp: bool = True, frequencies: bool = False) -> RefinementResult:
    """Sella (order 1, internal coordinates) from ``ts``; optionally also from the IDPP guess.

    ``calculator`` is a zero-argument factory of ASE calculators (default GFN2-xTB via tblite,
    ``sciflow.datasets.reactions.GFN2()``; :class:`.calculators.XTB` for a charge or spin).
    ``compare_idpp`` needs ``reactant`` and ``product``. ``frequencies`` counts the imaginary
    modes of the result (:func:`imaginary_modes`, 6N more gradients).
    """
    if not (isinstance(fmax, (int, float)) and math.isfinite(fmax) and fmax > 0):
        raise InputError(f"fmax={fmax!r}: expected the force threshold, a number > 0 (eV/A)")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise InputError(f"max_steps={max_steps!r}: expected an integer >= 1")
    if not np.isfinite(ts.get_positions()).all():
        raise InputError("the TS to refine has non-finite (NaN or inf) coordinates")
    if calculator is None:
        from sciflow.datasets.reactions import GFN2

        calculator = GFN2()
    if compare_idpp and (reactant is None or product is None):
        raise InputError("refine(compare_idpp=True) needs reactant= and product= for the IDPP "
                         "guess (or pass compare_idpp=False)")
    start = ts.copy()
    start.calc = calculator()
    e0 = float(start.get_potential_energy())
    t0 = time.perf_counter()
    atoms, ok, steps, fm = _sella(ts, calculator, fmax, max_steps)
    seconds = time.perf_counter() - t0
    extra: dict[str, Any] = {}
    if compare_idpp:
        t1 = time.perf_counter()
        guess = idpp_guess(reactant, product, calculator=calculator)
        a2, ok2, steps2, _ = _sella(guess, calculator, fmax, max_steps)
        extra = dict(idpp_atoms=a2, idpp_converged=ok2, idpp_steps=steps2,
                     idpp_seconds=time.perf_counter() - t1)
    if frequencies:
        extra["imaginary_modes"], extra["imaginary_frequency"] = imaginary_modes(atoms, calculator)
    return RefinementResult(atoms=atoms, converged=ok, steps=steps, fmax=fm,
                            energy=float(atoms.get_potential_energy()), start_energy=e0,
                            seconds=seconds, **extra)

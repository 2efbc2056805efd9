"""Picklable calculator factories for the builder (GFN2-xTB via tblite, EMT).

Worker processes receive a factory, not a calculator, because calculators hold native state that
does not pickle. Any zero-argument callable returning an ASE calculator works as a factory (it must
pickle for process or dask executors: a module-level function or a ``functools.partial``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ase.calculators.calculator import Calculator

__all__ = ["GFN2", "EMTFactory", "software_versions"]


def _robust_tblite_class():
    from tblite.ase import TBLite

    class RobustTBLite(TBLite):
        """TBLite that retries a failed SCF once with stronger damping and more iterations."""

        def calculate(self, atoms=None, properties=None, system_changes=None):  # noqa: D401
            from ase.calculators.calculator import all_changes

            changes = all_changes if system_changes is None else system_changes
            try:
                super().calculate(atoms, properties, changes)
            except Exception:
                saved = dict(self.parameters)
                # parameters are edited in place: Calculator.set() would reset the results
                self.parameters.update(mixer_damping=0.1, max_iterations=500)
                self._xtb = None
                self._res = None
                try:
                    super().calculate(atoms, properties, all_changes)
                finally:
                    self.parameters.update(saved)
                    self._xtb = None
                    self._res = None

    return RobustTBLite


@dataclass(frozen=True, kw_only=True)
class GFN2:
    """Factory for GFN2-xTB (tblite) calculators; retries a failed SCF once (damping 0.1, 500 cycles)."""

    method: str = "GFN2-xTB"
    accuracy: float = 1.0
    electronic_temperature: float = 300.0

    def __call__(self) -> Calculator:
        cls = _robust_tblite_class()
        return cls(method=self.method, accuracy=self.accuracy,
                   electronic_temperature=self.electronic_temperature, verbosity=0)

    def describe(self) -> str:
        return f"{self.method} (tblite, accuracy={self.accuracy}, T_el={self.electronic_temperature} K)"


@dataclass(frozen=True)
class EMTFactory:
    """Factory for ASE's effective-medium-theory calculator (the fast test tier)."""

    def __call__(self) -> Calculator:
        from ase.calculators.emt import EMT

        return EMT()

    def describe(self) -> str:
        return "EMT (ASE)"


def software_versions() -> dict[str, str]:
    """Versions of the packages that shape the results (absent ones are left out)."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("ase", "tblite", "sella", "rdkit", "numpy", "scipy", "sciflow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out

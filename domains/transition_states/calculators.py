"""The xTB calculator factory of the TS commands, at a given total charge and spin multiplicity.

:class:`XTB` is the reaction builder's :class:`sciflow.datasets.reactions.GFN2` factory (GFN2-xTB
through tblite, a failed SCF retried once with stronger damping) whose calculators are told the
molecule's total charge and multiplicity 2S + 1 (tblite's ``charge`` and ``multiplicity``
parameters; unpaired electrons = multiplicity - 1). It pickles, like every builder factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["XTB"]


@dataclass(frozen=True, kw_only=True)
class XTB:
    """Zero-argument factory of GFN2-xTB calculators at ``charge`` and ``multiplicity``.

    >>> calc = XTB(charge=-1)()          # an ASE calculator for an anion      # doctest: +SKIP
    """

    charge: int = 0
    multiplicity: int = 1
    method: str = "GFN2-xTB"

    def __call__(self) -> Any:
        from sciflow.datasets.reactions import GFN2

        calc = GFN2(method=self.method)()
        calc.parameters.update(charge=self.charge, multiplicity=self.multiplicity)
        return calc

    def describe(self) -> str:
        """What it computes, for provenance lines."""
        return (f"{self.method} (tblite), charge {self.charge:+d}, multiplicity "
                f"{self.multiplicity}")

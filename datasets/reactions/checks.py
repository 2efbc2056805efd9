"""What the two minima reached from a saddle must show, per candidate kind.

* bond edits and templates: the two ends carry the intended R and P bond graphs (``intended``),
  or, with ``accept_discovered``, two other closed-shell graphs (``discovered``); two ends with
  one graph are ``ends_identical`` (a conformational saddle found while looking for a bond
  edit), and every bond that changes is partial at the saddle (:func:`check_partial_bonds`);
* conformational and inversion candidates: both ends keep the bond graph and the key coordinate
  differs between them (the dihedral by at least ``min_dihedral_change`` degrees; the
  pyramidalisation changes sign with at least ``pyramidal_end_min`` A on each side), the saddle
  lies between them (``key_partial_margin`` degrees from either end's dihedral; a centre at most
  half as pyramidal as the flatter end), and the ends are ``intended`` when they are the relaxed
  reactant and product conformers (dihedral within ``min_dihedral_change / 2``, same
  pyramidalisation sign), otherwise ``discovered``.

Each function returns the origin, whether the ends must be swapped to put R first, and raises
:class:`Rejected` with a short reason otherwise (every failure of the verification chain is one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase.data import covalent_radii

from .conformers import angle_difference, key_values
from .molgraph import Graph, bond_orders

if TYPE_CHECKING:  # pragma: no cover
    from .candidates import Candidate
    from .pipeline import PipelineSettings

__all__ = ["Rejected", "CandidateTimeout", "bond_edit_ends", "conformer_ends", "check_partial_bonds",
           "key_coordinate_text", "CONFORMER_KINDS"]

CONFORMER_KINDS = ("conformational", "inversion")


class Rejected(Exception):
    """A candidate failed a check; ``reason`` is a short key, ``detail`` says more.

    ``info`` carries extra fields for the candidate's record (e.g. which TS guesses were tried).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.info: dict = {}


class CandidateTimeout(Rejected):
    """The candidate ran past its wall-time limit."""

    def __init__(self, stage: str, limit: float) -> None:
        super().__init__("timeout", f"over {limit:.0f} s during {stage}")


def bond_edit_ends(cand: Candidate, graphs: list[Graph], energies: list[float], numbers,
                   s: PipelineSettings) -> tuple[str, bool]:
    """Origin and swap flag for a bond-edit or template saddle whose ends have ``graphs``."""
    seen = ["R" if x == cand.r_graph else "P" if x == cand.p_graph else "other" for x in graphs]
    if graphs[0] == graphs[1]:
        raise Rejected("ends_identical", f"both ends reached {seen[0]}")
    if {graphs[0], graphs[1]} == {cand.r_graph, cand.p_graph}:
        return "intended", graphs[0] != cand.r_graph
    if s.accept_discovered and all(bond_orders(numbers, x) is not None for x in graphs):
        if graphs[1] == cand.r_graph:
            return "discovered", True
        if graphs[0] == cand.r_graph:
            return "discovered", False
        return "discovered", energies[1] < energies[0]
    raise Rejected("wrong_connectivity", f"ends reached {seen[0]} and {seen[1]}")


def conformer_ends(cand: Candidate, graphs: list[Graph], ends: list[np.ndarray], ts: np.ndarray,
                   r_value: float, p_value: float, s: PipelineSettings) -> tuple[str, bool]:
    """Origin and swap flag for a conformational or inversion saddle (see the module docstring).

    ``ends`` are the two minima's positions (N, 3), ``ts`` the saddle's; ``r_value`` and
    ``p_value`` the key coordinate of the relaxed reactant and product conformers.
    """
    if any(g != cand.r_graph for g in graphs):
        raise Rejected("wrong_connectivity", "a bond formed or broke between the ends of a "
                        f"{cand.kind} saddle")
    v = [key_values(cand.kind, cand.key, e) for e in ends]
    v_ts = key_values(cand.kind, cand.key, ts)
    if cand.kind == "conformational":
        if abs(angle_difference(v[0], v[1])) < s.min_dihedral_change:
            raise Rejected("key_unchanged", f"dihedral {v[0]:.0f} and {v[1]:.0f} deg at the two ends; "
                            f"expected a change of >= {s.min_dihedral_change:.0f}")
        if min(abs(angle_difference(v_ts, x)) for x in v) < s.key_partial_margin:
            raise Rejected("key_not_partial", f"saddle dihedral {v_ts:.0f} deg, ends {v[0]:.0f} and {v[1]:.0f}")

        def same(a: float, b: float) -> bool:
            return abs(angle_difference(a, b)) < s.min_dihedral_change / 2
    else:
        if v[0] * v[1] >= 0 or min(abs(v[0]), abs(v[1])) < s.pyramidal_end_min:
            raise Rejected("key_unchanged", f"pyramidalisation {v[0]:.2f} and {v[1]:.2f} A at the two ends; "
                            f"expected opposite signs, |h| >= {s.pyramidal_end_min}")
        if abs(v_ts) > 0.5 * min(abs(v[0]), abs(v[1])):
            raise Rejected("key_not_partial", f"saddle pyramidalisation {v_ts:.2f} A, ends {v[0]:.2f} and {v[1]:.2f}")

        def same(a: float, b: float) -> bool:
            return a * b > 0
    if same(v[0], r_value) and same(v[1], p_value):
        return "intended", False
    if same(v[1], r_value) and same(v[0], p_value):
        return "intended", True
    if not s.accept_discovered:
        raise Rejected("wrong_connectivity", f"ends at {v[0]:.1f} and {v[1]:.1f}, expected "
                        f"{r_value:.1f} and {p_value:.1f}")
    flip = abs(angle_difference(v[1], r_value)) < abs(angle_difference(v[0], r_value)) \
        if cand.kind == "conformational" else v[1] * r_value > 0
    return "discovered", bool(flip)


def key_coordinate_text(cand: Candidate, r: np.ndarray, ts: np.ndarray, p: np.ndarray) -> str:
    """``dihedral:a-i-j-b:R/TS/P`` (degrees) or ``pyramidalization:c-n1-n2-n3:R/TS/P`` (A); '' for bond edits."""
    if cand.kind not in CONFORMER_KINDS:
        return ""
    vals = [key_values(cand.kind, cand.key, x) for x in (r, ts, p)]
    atoms = "-".join(str(k) for k in cand.key)
    if cand.kind == "conformational":
        return f"dihedral:{atoms}:" + "/".join(f"{x:.1f}" for x in vals)
    return f"pyramidalization:{atoms}:" + "/".join(f"{x:.3f}" for x in vals)


def check_partial_bonds(numbers, r_graph: Graph, p_graph: Graph, d_r: np.ndarray, d_ts: np.ndarray,
                        d_p: np.ndarray, origin: str, s: PipelineSettings) -> None:
    """Every bond that breaks or forms between R and P is partial at the saddle (distances (N, N))."""
    radii = covalent_radii[np.asarray(numbers)]
    changed = [(e, d_r, d_p) for e in sorted(r_graph - p_graph)] + [(e, d_p, d_r) for e in sorted(p_graph - r_graph)]
    for (i, j), bonded, apart in changed:
        is_h = numbers[i] == 1 or numbers[j] == 1
        hi = (s.partial_max_ratio_h if is_h else s.partial_max_ratio) * (radii[i] + radii[j])
        hi = max(hi, bonded[i, j] + s.partial_min_stretch)  # short bonds (H-H) stretch by absolute amounts
        lo = s.partial_min_ratio * bonded[i, j]
        progress = (d_ts[i, j] - bonded[i, j]) / max(apart[i, j] - bonded[i, j], 1e-6)
        if not (lo <= d_ts[i, j] <= hi and progress <= s.partial_max_progress):
            raise Rejected(
                "bond_not_partial",
                f"{origin} bond {i}-{j} at {d_ts[i, j]:.2f} A (bonded {bonded[i, j]:.2f}, apart "
                f"{apart[i, j]:.2f}); expected {lo:.2f}-{hi:.2f} and progress <= {s.partial_max_progress}",
            )

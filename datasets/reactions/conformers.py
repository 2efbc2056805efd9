"""Conformational and inversion candidates: one bond graph, two conformers.

Two candidate kinds whose reactant and product share the bond graph and differ in one key
internal coordinate:

* ``conformational``: a rotation about a non-ring bond i-j, keyed by the dihedral a-i-j-b (a, b
  the heaviest other neighbours of i and j, lowest index first). Classes (the family label
  ``rot:<class>:<bond>``): ``double`` (C=N, N=N, C=P, ... E/Z; not C=C, whose twisted saddle
  is a diradical that closed-shell GFN2-xTB renders as a cusp with ~2,500i cm^-1), ``partial`` (a single bond
  from a lone-pair atom N/O/S to an unsaturated atom: amides, thioamides, esters, thioesters,
  enols, enamines, vinyl ethers, carbamates), ``conjugated`` (a single bond between two
  unsaturated atoms: s-cis/s-trans dienes and enones) and ``single`` (other single bonds between
  heavy atoms). Rotations of XH3 groups about single bonds and of =XH2 groups about double bonds
  are left out: their rotated conformer is the start up to relabelling the H atoms. The product start is the reactant with the j side
  rotated by ``angle`` (180 degrees, or 360 / n for a single bond whose ends carry up to n other
  substituents);
* ``inversion``: pyramidal inversion at a three-coordinate N, P or S (amines, phosphines,
  sulfoxides) whose seed geometry is pyramidal, keyed by the signed pyramidalisation (the
  height of the centre over the plane of its neighbours); the product start is the mirror
  image through that plane (the invertomer when nothing else in the molecule is chiral), or the
  centre alone mirrored. The family label is ``inv:<centre>(<neighbour elements>)``.

Verification (:mod:`.pipeline`) replaces the bond-graph connectivity test by a geometric one:
both ends keep the bond graph and the key coordinate differs between them (dihedral by at least
``min_dihedral_change``; pyramidalisation changes sign).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .candidates import Candidate, Seed, mapped_smiles
from .molgraph import Graph, bond_orders, components, reaction_key, smallest_ring_with

__all__ = [
    "dihedral",
    "pyramidalization",
    "rotate_about_bond",
    "invert_centre",
    "mirror_through_plane",
    "moving_side",
    "rotation_path",
    "conformer_candidates",
    "key_values",
    "PYRAMIDAL_MIN",
]

PYRAMIDAL_MIN = 0.15
"""Smallest |pyramidalisation| (A) of a seed centre that is offered for inversion."""

_LONE_PAIR = {7, 8, 16}
_INVERTIBLE = {7: (3,), 15: (3,), 16: (4,)}  # element: valences at which a 3-coordinate centre is pyramidal


def dihedral(pos: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    """Dihedral angle a-b-c-d in degrees, in (-180, 180]. Shapes: pos (N, 3)."""
    b0, b1, b2 = pos[a] - pos[b], pos[c] - pos[b], pos[d] - pos[c]
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    x = float(np.dot(v, w))
    y = float(np.dot(np.cross(b1n, v), w))
    return float(np.degrees(np.arctan2(y, x)))


def angle_difference(x: float, y: float) -> float:
    """Signed difference x - y of two angles in degrees, wrapped to (-180, 180]."""
    d = (x - y) % 360.0
    return d - 360.0 if d > 180.0 else d


def pyramidalization(pos: np.ndarray, centre: int, nbrs: Sequence[int]) -> float:
    """Signed height (A) of ``centre`` over the plane of its three neighbours.

    h = n . (x_c - (x_1 + x_2 + x_3) / 3), n = (x_2 - x_1) x (x_3 - x_1) / |...| for the neighbours
    in the given order; mirroring the centre through the plane flips the sign.
    """
    p1, p2, p3 = (pos[k] for k in nbrs)
    n = np.cross(p2 - p1, p3 - p1)
    n /= np.linalg.norm(n)
    return float(np.dot(n, pos[centre] - (p1 + p2 + p3) / 3.0))


def moving_side(n: int, graph: Graph, i: int, j: int) -> list[int] | None:
    """Atoms on ``j``'s side of bond i-j (j included), or None when i-j lies on a ring."""
    edge = (min(i, j), max(i, j))
    parts = components(n, frozenset(graph - {edge}))
    side = next(c for c in parts if j in c)
    return None if i in side else side


def rotate_about_bond(pos: np.ndarray, i: int, j: int, side: Sequence[int], angle: float) -> np.ndarray:
    """Rotate the atoms ``side`` by ``angle`` degrees about the axis i -> j (Rodrigues). (N, 3) -> (N, 3)."""
    out = np.array(pos, dtype=float)
    axis = out[j] - out[i]
    axis /= np.linalg.norm(axis)
    t = np.radians(angle)
    x = out[list(side)] - out[j]
    rot = (x * np.cos(t) + np.cross(axis, x) * np.sin(t) + np.outer(x @ axis, axis) * (1 - np.cos(t)))
    out[list(side)] = rot + out[j]
    return out


def invert_centre(pos: np.ndarray, centre: int, nbrs: Sequence[int]) -> np.ndarray:
    """Mirror ``centre`` through the plane of its three neighbours. (N, 3) -> (N, 3)."""
    out = np.array(pos, dtype=float)
    h = pyramidalization(out, centre, nbrs)
    p1, p2, p3 = (out[k] for k in nbrs)
    nrm = np.cross(p2 - p1, p3 - p1)
    out[centre] -= 2.0 * h * nrm / np.linalg.norm(nrm)
    return out


def mirror_through_plane(pos: np.ndarray, plane: Sequence[int]) -> np.ndarray:
    """Reflect every atom through the plane of the three atoms ``plane``. (N, 3) -> (N, 3)."""
    out = np.array(pos, dtype=float)
    p1, p2, p3 = (out[k] for k in plane)
    nrm = np.cross(p2 - p1, p3 - p1)
    nrm /= np.linalg.norm(nrm)
    return out - 2.0 * np.outer((out - p1) @ nrm, nrm)


def key_values(kind: str, key: Sequence[int], pos: np.ndarray) -> float:
    """The key coordinate of a conformational (dihedral, degrees) or inversion (height, A) candidate."""
    if kind == "conformational":
        return dihedral(pos, *key)
    if kind == "inversion":
        return pyramidalization(pos, key[0], key[1:])
    raise ValueError(f"kind={kind!r} has no key coordinate; expected 'conformational' or 'inversion'")


def rotation_path(r_pos: np.ndarray, p_pos: np.ndarray, key: Sequence[int], side: Sequence[int],
                  images: int) -> list[np.ndarray]:
    """Interior images (each (N, 3)) for a rotation, interpolated in the key dihedral.

    With phi the key dihedral and Delta = wrap(phi_P - phi_R), image k at f = k / (images + 1) is
    (1 - f) rot(R, f Delta) + f rot(P, -(1 - f) Delta), P first Kabsch-aligned on R over the
    atoms that do not move: both terms carry the dihedral phi_R + f Delta, and the blend takes
    the other coordinates smoothly from R to P (a straight line in Cartesians would shrink the
    rotating group through the axis).
    """
    from .align import kabsch_align

    a, i, j, b = key
    fixed = [k for k in range(len(r_pos)) if k not in set(side)] + [j]
    p_al = kabsch_align(p_pos, r_pos, fit=fixed)
    delta = angle_difference(dihedral(p_al, a, i, j, b), dihedral(r_pos, a, i, j, b))
    out = []
    for k in range(1, images + 1):
        f = k / (images + 1)
        x = rotate_about_bond(r_pos, i, j, side, f * delta)
        y = rotate_about_bond(p_al, i, j, side, -(1 - f) * delta)
        out.append((1 - f) * x + f * y)
    return out


def _pick(numbers: Sequence[int], nbrs: list[list[int]], atom: int, exclude: int) -> int:
    others = [k for k in nbrs[atom] if k != exclude]
    return min(others, key=lambda k: (-int(numbers[k]), k))


def _bond_label(numbers: Sequence[int], i: int, j: int, order: int) -> str:
    from ase.data import chemical_symbols

    a, b = sorted((chemical_symbols[int(numbers[i])], chemical_symbols[int(numbers[j])]))
    return f"{a}{'=' if order == 2 else '-'}{b}"


def _rotation_class(numbers, orders, unsat, i: int, j: int) -> str | None:
    order = orders[(min(i, j), max(i, j))]
    if order == 3:
        return None
    if order == 2:  # a twisted C=C is a diradical, outside the closed-shell data
        return None if int(numbers[i]) == int(numbers[j]) == 6 else "double"
    zi, zj = int(numbers[i]), int(numbers[j])
    if unsat[i] and unsat[j]:
        return "conjugated"
    if (zi in _LONE_PAIR and not unsat[i] and unsat[j]) or (zj in _LONE_PAIR and not unsat[j] and unsat[i]):
        return "partial"
    return "single"


def _dedup(tag: str, numbers: Sequence[int], graph: Graph, marked: Sequence[int]) -> str:
    z = [int(x) + 1000 * (k in marked) for k, x in enumerate(numbers)]
    return f"{tag}:{reaction_key(z, graph, graph)}"


def conformer_candidates(seed: Seed, *, kinds: Sequence[str] = ("conformational", "inversion"),
                         pyramidal_min: float = PYRAMIDAL_MIN) -> list[Candidate]:
    """Rotation and inversion candidates of one seed, one per symmetry-distinct bond or centre."""
    numbers = tuple(int(z) for z in seed.atoms.numbers)
    n = len(numbers)
    graph = seed.graph
    orders = bond_orders(numbers, graph)
    if orders is None:
        return []
    pos = seed.atoms.get_positions()
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for i, j in graph:
        nbrs[i].append(j)
        nbrs[j].append(i)
    unsat = [any(orders[(min(k, m), max(k, m))] >= 2 for m in nbrs[k]) for k in range(n)]
    smiles = mapped_smiles(numbers, graph)
    rxn_smiles = f"{smiles}>>{smiles}" if smiles else ""
    positions = tuple(tuple(float(x) for x in row) for row in pos)
    out: list[Candidate] = []
    seen: set[str] = set()

    def add(cid: str, family: str, kind: str, key: tuple[int, ...], angle: float, dkey: str) -> None:
        if dkey in seen:
            return
        seen.add(dkey)
        out.append(Candidate(id=f"{seed.name}|{cid}", seed=seed.name, numbers=numbers, positions=positions,
                             r_graph=graph, p_graph=graph, broken=(), formed=(), family=family,
                             smiles=rxn_smiles, kind=kind, key=key, angle=angle, dedup_key=dkey))

    if "conformational" in kinds:
        for i, j in sorted(graph):
            if numbers[i] == 1 or numbers[j] == 1 or len(nbrs[i]) < 2 or len(nbrs[j]) < 2:
                continue
            if smallest_ring_with(n, graph, (i, j)) is not None:
                continue
            cls = _rotation_class(numbers, orders, unsat, i, j)
            if cls is None or _linear(pos, nbrs, i, j):
                continue
            others_i, others_j = len(nbrs[i]) - 1, len(nbrs[j]) - 1
            if cls in ("single", "double") and (_is_xh(numbers, nbrs, i, j, cls) or _is_xh(numbers, nbrs, j, i, cls)):
                continue
            angle = 180.0 if cls != "single" else 360.0 / max(others_i, others_j, 2)
            # rotate the smaller side; the key dihedral is a-i-j-b with j on the moving side
            si, sj = moving_side(n, graph, j, i), moving_side(n, graph, i, j)
            if si is None or sj is None:
                continue
            if len(si) < len(sj):
                i, j = j, i
            key = (_pick(numbers, nbrs, i, j), i, j, _pick(numbers, nbrs, j, i))
            family = f"rot:{cls}:{_bond_label(numbers, i, j, orders[(min(i, j), max(i, j))])}"
            add(f"rot:{i}.{j}", family, "conformational", key, angle,
                _dedup("rot", numbers, graph, (i, j)))
    if "inversion" in kinds:
        from ase.data import chemical_symbols

        for c in range(n):
            z = numbers[c]
            if z not in _INVERTIBLE or len(nbrs[c]) != 3:
                continue
            valence = sum(orders[(min(c, m), max(c, m))] for m in nbrs[c])
            if valence not in _INVERTIBLE[z] or (z == 7 and unsat[c]):
                continue
            key = (c, *sorted(nbrs[c]))
            if abs(pyramidalization(pos, c, key[1:])) < pyramidal_min:
                continue  # planar already (amide-like N, aniline N): no inversion to offer
            subs = "".join(sorted(chemical_symbols[numbers[m]] for m in nbrs[c]))
            add(f"inv:{c}", f"inv:{chemical_symbols[z]}({subs})", "inversion", key, 0.0,
                _dedup("inv", numbers, graph, (c,)))
    return out


def _linear(pos: np.ndarray, nbrs: list[list[int]], i: int, j: int, *, limit: float = 165.0) -> bool:
    """True when some neighbour makes a near-linear angle with the bond i-j (dihedral undefined)."""
    for a, b in ((i, j), (j, i)):
        for k in nbrs[a]:
            if k == b:
                continue
            u, v = pos[k] - pos[a], pos[b] - pos[a]
            cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
            if np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) > limit:
                return True
    return False


def _is_xh(numbers: Sequence[int], nbrs: list[list[int]], atom: int, other: int, cls: str) -> bool:
    """An XH3 end of a single bond or an =XH2 end of a double bond (rotated = relabelled H)."""
    rest = [k for k in nbrs[atom] if k != other]
    return len(rest) == (3 if cls == "single" else 2) and all(numbers[k] == 1 for k in rest)

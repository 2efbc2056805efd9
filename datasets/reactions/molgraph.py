"""Molecular bond graphs: connectivity from geometry, closed-shell bond orders, symmetry classes.

A bond graph here is a ``frozenset`` of sorted index pairs ``(i, j)`` with ``i < j``; atoms keep
their index, so two graphs over the same atom order compare by plain equality (an atom-mapped
comparison). Bonds come from covalent radii (Cordero et al., Dalton Trans. 2008, as tabulated in
``ase.data.covalent_radii``): atoms ``i`` and ``j`` are bonded when

    d_ij < scale * (r_i + r_j),   scale = 1.3 by default.

Closed-shell checks assign integer bond orders 1..3 so that every atom reaches one of its neutral
valences (:data:`VALENCES`: H, F, Cl 1; O 2; N 3; C 4; S 2, 4 or 6; P 3 or 5); a graph with no
such assignment would need a radical or a charge. The expanded valences of S and P are allowed
only as in sulfoxides, sulfones and SO2 (S 4, 6) and in phosphine oxides, phosphates and
phosphine sulfides (P 5): every two valence units above the normal one must be matched by a
double bond to O or N (and, for P, S), so SH4, SF4 or PH5 are not closed-shell here. Formal
charges are not modelled, which leaves out nitro groups, N-oxides and zwitterions.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

__all__ = [
    "Graph",
    "VALENCE",
    "VALENCES",
    "bond_graph",
    "bond_orders",
    "is_closed_shell",
    "symmetry_classes",
    "components",
    "topological_distances",
    "smallest_ring_with",
    "reaction_key",
]

Graph = frozenset[tuple[int, int]]

VALENCES: dict[int, tuple[int, ...]] = {
    1: (1,), 6: (4,), 7: (3,), 8: (2,), 9: (1,), 15: (3, 5), 16: (2, 4, 6), 17: (1,),
}
"""Neutral closed-shell valences by atomic number, normal one first (other elements are rejected)."""

VALENCE: dict[int, int] = {z: v[0] for z, v in VALENCES.items()}
"""The normal neutral valence by atomic number (H 1, C 4, N 3, O 2, F 1, P 3, S 2, Cl 1)."""

# double-bond partners that may carry an expanded valence (S=O in sulfoxides, P=O, P=S, S=N ...)
_EXPANDED_PARTNERS: dict[int, frozenset[int]] = {15: frozenset({7, 8, 16}), 16: frozenset({7, 8})}

BOND_SCALE = 1.3


def _pair(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)


def bond_graph(atoms: Atoms, *, scale: float = BOND_SCALE) -> Graph:
    """Bonds of a geometry by the covalent-radius rule ``d_ij < scale * (r_i + r_j)``.

    Shapes: ``atoms`` with N atoms -> a set of (i, j) pairs, i < j.
    """
    pos = atoms.get_positions()
    radii = covalent_radii[atoms.numbers]
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    limit = scale * (radii[:, None] + radii[None, :])
    ii, jj = np.nonzero(np.triu(dist < limit, k=1))
    return frozenset((int(i), int(j)) for i, j in zip(ii, jj))


def _neighbours(n: int, graph: Iterable[tuple[int, int]]) -> list[list[int]]:
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for i, j in graph:
        nbrs[i].append(j)
        nbrs[j].append(i)
    return nbrs


def bond_orders(numbers: Sequence[int], graph: Graph) -> dict[tuple[int, int], int] | None:
    """Integer bond orders (1-3) giving every atom a neutral valence, or None if impossible.

    Each atom ``i`` needs ``sum_j b_ij = v_i`` for one of its :data:`VALENCES`; expanded valences
    of S and P need ``(v_i - v_normal) / 2`` double bonds to their partners (module docstring).
    The normal valences are tried first, then the expanded ones (fewest extra units first). For
    each choice, the search starts from all single bonds and distributes the remaining
    ``v - degree`` over the edges by depth-first search, which is instant for the <= 30-atom
    molecules this package handles.
    """
    n = len(numbers)
    degree = [0] * n
    for i, j in graph:
        degree[i] += 1
        degree[j] += 1
    options: list[tuple[int, ...]] = []
    for k, z in enumerate(numbers):
        vals = VALENCES.get(int(z))
        if vals is None:
            return None
        fits = tuple(v for v in vals if v >= degree[k])
        if not fits:
            return None
        options.append(fits)
    flexible = [k for k in range(n) if len(options[k]) > 1]
    choices = itertools.product(*(options[k] for k in flexible))
    for choice in sorted(choices, key=lambda c: (sum(c), c)):
        valence = [o[0] for o in options]
        for k, v in zip(flexible, choice):
            valence[k] = v
        expanded = {k: (v - VALENCE[int(numbers[k])]) // 2 for k, v in enumerate(valence)
                    if v > VALENCE[int(numbers[k])]}
        orders = _assign(numbers, graph, valence, degree, expanded)
        if orders is not None:
            return orders
    return None


def _assign(numbers: Sequence[int], graph: Graph, valence: list[int], degree: list[int],
            expanded: dict[int, int]) -> dict[tuple[int, int], int] | None:
    """Bond orders reaching ``valence`` exactly, with ``expanded[a]`` double bonds to partners."""
    n = len(numbers)
    excess = [valence[a] - degree[a] for a in range(n)]
    if min(excess, default=0) < 0 or sum(excess) % 2:
        return None
    edges = sorted(graph)
    nbr_edges: list[list[int]] = [[] for _ in range(n)]
    for k, (i, j) in enumerate(edges):
        nbr_edges[i].append(k)
        nbr_edges[j].append(k)
    extra = [0] * len(edges)

    def expanded_ok() -> bool:
        for a, need in expanded.items():
            partners = _EXPANDED_PARTNERS[int(numbers[a])]
            got = sum(1 for k in nbr_edges[a] if extra[k] == 1
                      and int(numbers[edges[k][0] if edges[k][1] == a else edges[k][1]]) in partners)
            if got < need:
                return False
        return True

    def solve() -> bool:
        # the atom with unmet valence and the fewest options goes first
        best_opts = None
        for a in range(n):
            if excess[a] == 0:
                continue
            opts = [
                k for k in nbr_edges[a]
                if extra[k] < 2 and excess[edges[k][0] if edges[k][1] == a else edges[k][1]] > 0
            ]
            if not opts:
                return False
            if best_opts is None or len(opts) < len(best_opts):
                best_opts = opts
        if best_opts is None:
            return not expanded or expanded_ok()
        for k in best_opts:
            i, j = edges[k]
            extra[k] += 1
            excess[i] -= 1
            excess[j] -= 1
            if solve():
                return True
            extra[k] -= 1
            excess[i] += 1
            excess[j] += 1
        return False

    if not solve():
        return None
    return {e: 1 + x for e, x in zip(edges, extra)}


def is_closed_shell(numbers: Sequence[int], graph: Graph) -> bool:
    """True when ``graph`` admits a neutral closed-shell bond-order assignment (see :func:`bond_orders`)."""
    return bond_orders(numbers, graph) is not None


def symmetry_classes(numbers: Sequence[int], graph: Graph, *, rounds: int = 8) -> list[int]:
    """Atom equivalence classes by Weisfeiler-Lehman colour refinement of the labelled graph.

    Atoms in one class are (almost always, for small molecules exactly) related by a graph
    automorphism; used to drop symmetry-equivalent reaction candidates.
    """
    nbrs = _neighbours(len(numbers), graph)
    colours = [int(z) for z in numbers]
    for _ in range(rounds):
        sig = [(colours[a], tuple(sorted(colours[b] for b in nbrs[a]))) for a in range(len(numbers))]
        table = {s: k for k, s in enumerate(sorted(set(sig)))}
        new = [table[s] for s in sig]
        if len(set(new)) == len(set(colours)):
            colours = new
            break
        colours = new
    return colours


def components(n: int, graph: Graph) -> list[list[int]]:
    """Connected components (lists of atom indices) of a graph over ``n`` atoms."""
    nbrs = _neighbours(n, graph)
    seen = [False] * n
    out = []
    for start in range(n):
        if seen[start]:
            continue
        stack, comp = [start], []
        seen[start] = True
        while stack:
            a = stack.pop()
            comp.append(a)
            for b in nbrs[a]:
                if not seen[b]:
                    seen[b] = True
                    stack.append(b)
        out.append(sorted(comp))
    return out


def topological_distances(n: int, graph: Graph) -> np.ndarray:
    """All-pairs shortest path lengths (bond counts), ``n + 1`` where disconnected. Shape (n, n)."""
    d = np.full((n, n), n + 1, dtype=int)
    np.fill_diagonal(d, 0)
    for i, j in graph:
        d[i, j] = d[j, i] = 1
    for k in range(n):
        d = np.minimum(d, d[:, k : k + 1] + d[k : k + 1, :])
    return d


def smallest_ring_with(n: int, graph: Graph, edge: tuple[int, int]) -> int | None:
    """Size of the smallest ring through ``edge`` (None when it is not on a ring)."""
    d = topological_distances(n, frozenset(graph - {edge}))
    k = d[edge[0], edge[1]]
    return int(k) + 1 if k <= n else None


def reaction_key(numbers: Sequence[int], graph_a: Graph, graph_b: Graph, *, rounds: int = 10) -> str:
    """A relabelling-invariant key of the reaction between two graphs on one atom set.

    Weisfeiler-Lehman refinement on the union graph whose edges carry a type (in A only, in B
    only, in both); the key is the hash of the refined colour multiset and typed-edge multiset,
    minimised over the two directions so that A -> B and B -> A share a key. Equal keys mean the
    same reaction up to atom relabelling (WL is exact for these small molecules in practice).
    """
    import hashlib

    def one(a: Graph, b: Graph) -> str:
        n = len(numbers)
        typed: dict[tuple[int, int], int] = {}
        for e in a | b:
            typed[e] = (e in a) + 2 * (e in b)
        nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for (i, j), t in typed.items():
            nbrs[i].append((j, t))
            nbrs[j].append((i, t))
        colours = [str(int(z)) for z in numbers]
        for _ in range(rounds):
            colours = [
                hashlib.sha1((colours[x] + "|" + ",".join(sorted(f"{t}:{colours[y]}" for y, t in nbrs[x])))
                             .encode()).hexdigest()[:16]
                for x in range(n)
            ]
        edges = sorted("-".join(sorted((colours[i], colours[j]))) + f":{t}" for (i, j), t in typed.items())
        return hashlib.sha1(("/".join(sorted(colours)) + "#" + "/".join(edges)).encode()).hexdigest()

    return min(one(graph_a, graph_b), one(graph_b, graph_a))

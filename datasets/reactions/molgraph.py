"""Molecular bond graphs: connectivity from geometry, closed-shell bond orders, symmetry classes.

A bond graph here is a ``frozenset`` of sorted index pairs ``(i, j)`` with ``i < j``; atoms keep
their index, so two graphs over the same atom order compare by plain equality (an atom-mapped
comparison). Bonds come from covalent radii (Cordero et al., Dalton Trans. 2008, as tabulated in
``ase.data.covalent_radii``): atoms ``i`` and ``j`` are bonded when

    d_ij < scale * (r_i + r_j),   scale = 1.3 by default.

Closed-shell checks assign integer bond orders 1..3 so that every atom reaches its usual neutral
valence (H 1, C 4, N 3, O 2); a graph with no such assignment would need a radical or a charge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

__all__ = [
    "Graph",
    "VALENCE",
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

VALENCE: dict[int, int] = {1: 1, 6: 4, 7: 3, 8: 2}
"""Neutral closed-shell valence by atomic number (elements outside this table are rejected)."""

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
    """Integer bond orders (1-3) giving every atom its neutral valence, or None if impossible.

    Each atom ``i`` needs ``sum_j b_ij = VALENCE[Z_i]``. The search starts from all single bonds
    and distributes the remaining ``VALENCE - degree`` over the edges by depth-first search, which
    is instant for the <= 20-atom molecules this package handles.
    """
    n = len(numbers)
    excess = []
    for z in numbers:
        if int(z) not in VALENCE:
            return None
        excess.append(VALENCE[int(z)])
    for i, j in graph:
        excess[i] -= 1
        excess[j] -= 1
    if min(excess, default=0) < 0:
        return None
    if sum(excess) % 2:
        return None
    edges = sorted(graph)
    nbr_edges: list[list[int]] = [[] for _ in range(n)]
    for k, (i, j) in enumerate(edges):
        nbr_edges[i].append(k)
        nbr_edges[j].append(k)
    extra = [0] * len(edges)

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
            return True
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
    """True when ``graph`` admits a neutral closed-shell bond-order assignment."""
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

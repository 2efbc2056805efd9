"""Ragged graph batches: per-graph time, centring, edges and reductions.

sciflow stores point clouds of different sizes the PyG way: node rows of every graph are stacked
into one tensor and ``batch`` (N,) gives the graph index of each row. Everything here is pure
torch (reductions by ``index_add``), and edges come from pairwise distances computed graph by
graph in padded blocks (``torch.cdist`` on (b, n_max, 3) blocks of whole graphs, bounded in
memory), so no compiled extension (torch-cluster, pyg-lib) is needed.

Edges for large molecules (:func:`radius_edges`, cost O(sum_g n_g k) in the network with k
neighbours, the O(n_g^2) distance pass being cheap beside it) can keep what a model must see across
the molecule whatever the current geometry: :func:`reference_edges` (pairs close in any reference
geometry, e.g. the reactant's and the product's bonds) and :func:`changing_edges` (pairs whose
length changes between reference geometries: the reacting atoms), merged by :func:`union_edges`.

Shapes: ``x`` (N, D) node rows, ``batch`` (N,) int64 sorted or not, ``num_graphs`` = B.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "num_graphs",
    "expand_per_graph",
    "graph_mean",
    "graph_sum",
    "center",
    "radius_edges",
    "reference_edges",
    "changing_edges",
    "union_edges",
    "full_edges",
    "graph_sizes",
    "PAIR_BLOCK",
]


def num_graphs(batch: Tensor | None, n_rows: int) -> int:
    """Number of graphs in a ragged batch (1 when ``batch`` is None)."""
    if batch is None:
        return 1 if n_rows > 0 else 0
    return int(batch.max().item()) + 1 if batch.numel() else 0


def graph_sizes(batch: Tensor, num: int | None = None) -> Tensor:
    """Nodes per graph, shape (B,)."""
    num = num_graphs(batch, batch.numel()) if num is None else num
    return torch.bincount(batch, minlength=num)


def expand_per_graph(value: Tensor, batch: Tensor | None) -> Tensor:
    """Broadcast a per-graph quantity (B, *) to node rows (N, *) by ``value[batch]``.

    With ``batch`` None the value is returned unchanged (dense data: one row a sample).
    """
    return value if batch is None else value[batch]


def graph_sum(x: Tensor, batch: Tensor, num: int | None = None) -> Tensor:
    """Sum of node rows per graph: (N, *) -> (B, *)."""
    num = num_graphs(batch, x.shape[0]) if num is None else num
    return x.new_zeros((num, *x.shape[1:])).index_add_(0, batch, x)


def graph_mean(x: Tensor, batch: Tensor, num: int | None = None) -> Tensor:
    """Mean of node rows per graph: (N, *) -> (B, *) (0 for a graph without nodes)."""
    total = graph_sum(x, batch, num)
    count = torch.bincount(batch, minlength=total.shape[0]).clamp_min(1).to(x.dtype)
    return total / count.reshape(-1, *([1] * (x.dim() - 1)))


def center(x: Tensor, batch: Tensor | None = None) -> Tensor:
    """Remove each graph's mean: x_i <- x_i - mean_{j in g(i)} x_j.

    Shapes: x (N, D), batch (N,) -> (N, D). With ``batch`` None the whole tensor is one graph.
    """
    if batch is None:
        return x - x.mean(dim=0, keepdim=True)
    return x - graph_mean(x, batch)[batch]


def _pairs_within_graphs(pos: Tensor, batch: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """All ordered pairs (src, dst), src != dst, inside each graph, and their distances.

    Costs O(sum_g n_g^2), not O(N^2) over the batch, when ``batch`` is sorted (as PyG makes it).
    """
    n = pos.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    if n > 1 and bool((batch[1:] < batch[:-1]).any()):
        same = batch[:, None] == batch[None, :]
        same.fill_diagonal_(False)
        src, dst = same.nonzero(as_tuple=True)
    else:
        sizes = torch.bincount(batch)
        ptr = torch.cumsum(sizes, 0) - sizes  # first node of each graph
        per_node = sizes[batch]  # partners of each node, itself included
        src = torch.repeat_interleave(torch.arange(n, device=pos.device), per_node)
        start = torch.repeat_interleave(torch.cumsum(per_node, 0) - per_node, per_node)
        dst = ptr[batch[src]] + torch.arange(src.numel(), device=pos.device) - start
        keep = src != dst
        src, dst = src[keep], dst[keep]
    dist = (pos[src] - pos[dst]).norm(dim=-1)
    return src, dst, dist


def full_edges(pos: Tensor, batch: Tensor | None = None) -> Tensor:
    """Fully connected directed edges inside each graph, no self loops.

    Returns ``edge_index`` (2, E) with row 0 the source j and row 1 the target i (PyG's
    ``source_to_target`` flow). Memory is O(N^2) over the whole batch, fine for molecules.
    """
    src, dst, _ = _pairs_within_graphs(pos, batch)
    return torch.stack([src, dst])


PAIR_BLOCK = 1 << 22
"""Largest number of atom pairs whose distances one block of whole graphs holds (16 MiB of
float32); bigger batches are cut into blocks of graphs, a graph larger than that into row
blocks."""


def _blocked_pairs(coords: Tensor, batch: Tensor | None,
                   keep: Callable[[Tensor], Tensor]) -> Tensor:
    """Ordered pairs (src, dst), src != dst, of one graph where ``keep`` holds.

    ``coords`` (N, K, 3): K geometries of every atom. Graphs are padded to n_max atoms in blocks;
    ``keep`` gets the distances (b, K, r, n_max) of a block's rows to all atoms of their graph and
    returns a bool mask (b, r, n_max). Returns edge_index (2, E), row 0 the source j, row 1 the
    target i, sorted by target then source.
    """
    n = coords.shape[0]
    device = coords.device
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    if n < 2:
        return torch.zeros((2, 0), dtype=torch.long, device=device)
    order = torch.argsort(batch, stable=True)
    sorted_batch = batch[order]
    sizes = torch.bincount(sorted_batch)
    ptr = torch.cumsum(sizes, 0) - sizes
    b, m = sizes.shape[0], int(sizes.max())
    local = torch.arange(n, device=device) - ptr[sorted_batch]
    k = coords.shape[1]
    padded = coords.new_zeros((b, k, m, 3))
    padded[sorted_batch, :, local] = coords[order]
    valid = torch.zeros((b, m), dtype=torch.bool, device=device)
    valid[sorted_batch, local] = True
    graphs_per_block = max(1, PAIR_BLOCK // (k * m * m))
    rows_per_block = m if graphs_per_block > 1 else max(1, PAIR_BLOCK // (k * m))
    found = []
    for g0 in range(0, b, graphs_per_block):
        g1 = min(b, g0 + graphs_per_block)
        block = padded[g0:g1]
        for r0 in range(0, m, rows_per_block):
            r1 = min(m, r0 + rows_per_block)
            dist = torch.cdist(block[:, :, r0:r1], block,
                               compute_mode="donot_use_mm_for_euclid_dist")
            mask = keep(dist) & valid[g0:g1, r0:r1, None] & valid[g0:g1, None, :]
            rows = torch.arange(r0, r1, device=device)
            mask &= rows[:, None] != torch.arange(m, device=device)[None, :]
            g, i, j = mask.nonzero(as_tuple=True)
            start = ptr[g + g0]
            found.append(torch.stack([order[start + j], order[start + i + r0]]))
    edges = torch.cat(found, dim=1)
    key = edges[1] * n + edges[0]
    return edges[:, torch.argsort(key)]


def _check_cutoff(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


def radius_edges(pos: Tensor, cutoff: float, batch: Tensor | None = None) -> Tensor:
    """Directed edges between distinct nodes of the same graph closer than ``cutoff``.

    A drop-in for ``torch_geometric.nn.radius_graph`` built on blocked pairwise distances, so it
    needs no compiled extension. Shapes: pos (N, 3), batch (N,) -> edge_index (2, E), sorted by
    target then source.
    """
    _check_cutoff("cutoff", cutoff)
    return _blocked_pairs(pos[:, None, :], batch, lambda d: d[:, 0] < cutoff)


def reference_edges(references: Tensor, cutoff: float, batch: Tensor | None = None) -> Tensor:
    """Pairs closer than ``cutoff`` in at least one reference geometry (e.g. the bonds of the
    reactant and of the product): fixed edges whatever the current positions.

    Shapes: references (N, K, 3), batch (N,) -> edge_index (2, E).
    """
    _check_cutoff("reference cutoff", cutoff)
    return _blocked_pairs(references, batch, lambda d: (d < cutoff).any(dim=1))


def changing_edges(references: Tensor, threshold: float, batch: Tensor | None = None) -> Tensor:
    """Pairs whose length differs by more than ``threshold`` between two of the K >= 2 reference
    geometries: max_k d_ij^k - min_k d_ij^k > threshold (for a reaction, the bonds that break or
    form, however far apart the atoms are now).

    Shapes: references (N, K, 3), batch (N,) -> edge_index (2, E).
    """
    _check_cutoff("changing-pair threshold", threshold)
    if references.dim() != 3 or references.shape[1] < 2:
        raise ValueError(f"changing pairs need K >= 2 reference geometries (N, K, 3), got shape "
                         f"{tuple(references.shape)}")
    return _blocked_pairs(references, batch,
                          lambda d: d.amax(dim=1) - d.amin(dim=1) > threshold)


def union_edges(num_nodes: int, *edge_sets: Tensor) -> tuple[Tensor, list[Tensor]]:
    """The union of directed edge sets, sorted by target then source, and for each input set a
    bool mask (E,) of the union's edges it contains. Shapes: each (2, E_k) -> (2, E), [(E,)]."""
    keys = [e[1] * num_nodes + e[0] for e in edge_sets]
    union = torch.unique(torch.cat(keys)) if keys else torch.zeros(0, dtype=torch.long)
    edges = torch.stack([union % num_nodes, union // num_nodes])
    return edges, [torch.isin(union, k) for k in keys]

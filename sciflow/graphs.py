"""Ragged graph batches: per-graph time, centring, edges and reductions.

sciflow stores point clouds of different sizes the PyG way: node rows of every graph are stacked
into one tensor and ``batch`` (N,) gives the graph index of each row. Everything here is pure torch
plus ``torch_geometric.utils.scatter``; edges come from ``torch.cdist``, so no compiled extension
(torch-cluster, pyg-lib) is needed.

Shapes: ``x`` (N, D) node rows, ``batch`` (N,) int64 sorted or not, ``num_graphs`` = B.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter

__all__ = [
    "num_graphs",
    "expand_per_graph",
    "graph_mean",
    "graph_sum",
    "center",
    "radius_edges",
    "full_edges",
    "graph_sizes",
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
    return scatter(x, batch, dim=0, dim_size=num, reduce="sum")


def graph_mean(x: Tensor, batch: Tensor, num: int | None = None) -> Tensor:
    """Mean of node rows per graph: (N, *) -> (B, *)."""
    return scatter(x, batch, dim=0, dim_size=num, reduce="mean")


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


def radius_edges(pos: Tensor, cutoff: float, batch: Tensor | None = None) -> Tensor:
    """Directed edges between distinct nodes of the same graph closer than ``cutoff``.

    A drop-in for ``torch_geometric.nn.radius_graph`` built on pairwise distances, so it needs no
    compiled extension. Shapes: pos (N, 3), batch (N,) -> edge_index (2, E).
    """
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    src, dst, dist = _pairs_within_graphs(pos, batch)
    keep = dist < cutoff
    return torch.stack([src[keep], dst[keep]])

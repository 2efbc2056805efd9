"""Population (set) encoders: one embedding for a whole population of points.

Meta Flow Matching (Atanackovic et al., ICLR 2025) conditions a vector field on the population it
acts on. The population is summarised by a graph network over a k-nearest-neighbour graph of its
points, mean-pooled to one vector and scaled to unit length:

    H^(0) = X,   H^(l+1) = relu( A_hat H^(l) W_l + b_l )   (no relu after the last layer),
    A_hat = D^(-1/2) (A + I) D^(-1/2)                       (Kipf & Welling 2017, GCN),
    e = mean_i H^(L)_i,   z = e / ||e||.

A is the k-NN graph inside the population (edges j -> i for the k nearest other points j of i), so
with every in-degree k + 1 the normalised operator averages a point with its k neighbours. With
k = 0 no edges are built and each point is encoded on its own before pooling (a DeepSets encoder:
the "no graph" ablation).

Populations are ragged: rows of all populations are stacked and ``batch`` (N,) names the
population of each row, as for graphs in :mod:`sciflow.graphs`. Neighbours come from
``torch.cdist`` + ``topk`` per population (in row chunks, so memory stays O(chunk x n)), never from
torch-cluster. Nothing here knows about cells: any domain with sets of vectors can use it.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from sciflow.graphs import graph_mean

__all__ = ["knn_neighbors", "knn_edges", "NormalizedAdjacency", "GCNLayer", "PopulationEncoder"]

_CHUNK_ROWS = 2048


def _check_points(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 2:
        what = (
            f"{x.dtype} tensor of shape {tuple(x.shape)}"
            if isinstance(x, Tensor)
            else type(x).__name__
        )
        raise TypeError(f"{name} must be a floating-point (N, D) tensor, got {what}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(
            f"{name} contains NaN or inf values in {bad} of {x.shape[0]} rows; "
            "drop or impute them before embedding a population"
        )


def _population_rows(batch: Tensor | None, n: int, num: int | None) -> list[Tensor]:
    """Row indices of each population (in order 0..B-1), with clear errors for bad ``batch``."""
    if batch is None:
        return [torch.arange(n)]
    if batch.dim() != 1 or batch.shape[0] != n or batch.is_floating_point():
        raise ValueError(
            f"batch must be an integer (N,) tensor with N={n} (one population index "
            f"per row), got {batch.dtype} of shape {tuple(batch.shape)}"
        )
    if n and int(batch.min()) < 0:
        raise ValueError(f"batch holds negative population indices (min {int(batch.min())})")
    b = (int(batch.max()) + 1 if n else 0) if num is None else num
    if n and int(batch.max()) >= b:
        raise ValueError(f"batch holds population index {int(batch.max())} but num_populations={b}")
    order = torch.argsort(batch.cpu(), stable=True)
    sizes = torch.bincount(batch.cpu(), minlength=b).tolist()
    return list(torch.split(order, sizes))


def knn_neighbors(
    x: Tensor, k: int, batch: Tensor | None = None, *, num_populations: int | None = None
) -> Tensor:
    """The k nearest other points of every point, inside its own population.

    Euclidean distances from ``torch.cdist``; a point is never its own neighbour (duplicated points
    are neighbours at distance 0). Ties are broken by ``topk``.

    Shapes: x (N, D), batch (N,) -> (N, k) int64 global row indices, row i listing the neighbours
    of point i nearest first. Every population needs at least k + 1 points (ValueError otherwise,
    naming the population).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    _check_points(x)
    groups = _population_rows(batch, x.shape[0], num_populations)
    out = torch.empty(x.shape[0], k, dtype=torch.long, device=x.device)
    if k == 0:
        return out
    for p, rows in enumerate(groups):
        rows = rows.to(x.device)
        n = rows.numel()
        if n < k + 1:
            raise ValueError(
                f"population {p} has {n} points but a {k}-nearest-neighbour graph "
                f"needs at least k + 1 = {k + 1}; lower k or merge small populations"
            )
        pts = x.detach()[rows]
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n)
            d = torch.cdist(pts[start:stop], pts)
            d[
                torch.arange(stop - start, device=x.device),
                torch.arange(start, stop, device=x.device),
            ] = float("inf")
            nearest = d.topk(k, dim=1, largest=False).indices
            out[rows[start:stop]] = rows[nearest]
    return out


def knn_edges(
    x: Tensor, k: int, batch: Tensor | None = None, *, num_populations: int | None = None
) -> Tensor:
    """Directed k-NN edges j -> i inside each population, as ``edge_index`` (2, N k).

    Row 0 holds the neighbour j (source), row 1 the point i (target): PyG's ``source_to_target``
    flow, the layout of :func:`sciflow.graphs.radius_edges`. No self loops.
    """
    nbr = knn_neighbors(x, k, batch, num_populations=num_populations)
    dst = torch.arange(x.shape[0], device=x.device).repeat_interleave(k)
    return torch.stack([nbr.reshape(-1), dst])


class NormalizedAdjacency:
    """The GCN propagation operator A_hat = D^(-1/2) (A + I) D^(-1/2) of a graph, as sparse CSR.

    ``adj @ h`` multiplies node features (N, d) by A_hat with a custom backward that multiplies by
    the stored transpose, so gradients cost one sparse product too (autograd through a CSR product
    would rebuild the transpose on every call). deg = in-degree + 1 (Kipf & Welling 2017).

    Shapes: edge_index (2, E) with row 0 the source j and row 1 the target i; h (N, d) -> (N, d).
    """

    def __init__(
        self,
        edge_index: Tensor,
        num_nodes: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        device = edge_index.device if device is None else device
        loops = torch.arange(num_nodes, device=device)
        src = torch.cat([edge_index[0].to(device), loops])
        dst = torch.cat([edge_index[1].to(device), loops])
        deg = torch.bincount(dst, minlength=num_nodes).to(dtype)
        inv = deg.rsqrt()
        values = inv[src] * inv[dst]
        self.matrix = _csr(dst, src, values, num_nodes)
        self.transpose = _csr(src, dst, values, num_nodes)
        self.num_nodes = num_nodes

    def __matmul__(self, h: Tensor) -> Tensor:
        if h.dim() != 2 or h.shape[0] != self.num_nodes:
            raise ValueError(f"features must be ({self.num_nodes}, d), got {tuple(h.shape)}")
        return _SparseProduct.apply(h, self.matrix.to(h.dtype), self.transpose.to(h.dtype))


def _csr(rows: Tensor, cols: Tensor, values: Tensor, n: int) -> Tensor:
    """An n x n CSR matrix from (row, col, value) triplets without duplicates."""
    order = torch.argsort(rows * n + cols)
    crow = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols[order], values[order], (n, n))


class _SparseProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, matrix: Tensor, transpose: Tensor) -> Tensor:
        ctx.transpose = transpose
        return matrix @ h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.transpose @ grad, None, None


class GCNLayer(nn.Module):
    """One graph convolution (Kipf & Welling 2017) with self loops and symmetric normalisation.

    h'_i = sum_{j in N(i) U {i}} (deg_j deg_i)^(-1/2) (W h_j) + b,  deg = in-degree + 1,

    i.e. H' = A_hat H W + b, computed as (A_hat H) W when that is cheaper (d_in < d_out).

    Shapes: h (N, d_in), graph: ``edge_index`` (2, E) or a prebuilt :class:`NormalizedAdjacency`
    (reuse it across layers) -> (N, d_out).
    """

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, h: Tensor, graph: Tensor | NormalizedAdjacency) -> Tensor:
        adj = (
            graph
            if isinstance(graph, NormalizedAdjacency)
            else NormalizedAdjacency(graph, h.shape[0], dtype=h.dtype, device=h.device)
        )
        if self.linear.in_features < self.linear.out_features:
            return self.linear(adj @ h) + self.bias
        return adj @ self.linear(h) + self.bias


class PopulationEncoder(nn.Module):
    """GCN over each population's k-NN graph, mean-pooled to one unit-length embedding.

    Parameters
    ----------
    in_dim:
        Features per point (D).
    hidden:
        Width of every GCN layer and of the embedding (Meta Flow Matching: 64 on letters, 128 on
        the organoid screen).
    layers:
        Number of GCN layers (3 on letters, 2 on organoids); relu between layers.
    k:
        Neighbours per point (50 on letters, 100 on organoids). ``k=0``: no graph (DeepSets).
    normalize:
        Scale each embedding to unit L2 norm (as in the paper).

    Notes
    -----
    Shapes: x (N, D), batch (N,) with values in [0, B) -> (B, hidden). Without ``batch`` the rows
    are one population and the result is (1, hidden).

    Example
    -------
    >>> enc = PopulationEncoder(2, hidden=16, layers=2, k=5)
    >>> x, batch = torch.randn(40, 2), torch.arange(4).repeat_interleave(10)
    >>> enc(x, batch).shape
    torch.Size([4, 16])
    """

    def __init__(
        self, in_dim: int, *, hidden: int = 64, layers: int = 3, k: int = 50, normalize: bool = True
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("in_dim", in_dim, 1),
            ("hidden", hidden, 1),
            ("layers", layers, 1),
            ("k", k, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(
                    f"PopulationEncoder {name} must be an integer >= {low}, got {value!r}"
                )
        self.in_dim, self.hidden, self.k, self.normalize = in_dim, hidden, k, normalize
        widths = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(GCNLayer(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(
        self, x: Tensor, batch: Tensor | None = None, *, num_populations: int | None = None
    ) -> Tensor:
        _check_points(x)
        if x.shape[1] != self.in_dim:
            raise ValueError(
                f"x has {x.shape[1]} features per point but this encoder was built "
                f"for in_dim={self.in_dim}"
            )
        if x.shape[0] == 0:
            raise ValueError("x holds no points: a population embedding needs at least one point")
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        num = int(batch.max()) + 1 if num_populations is None else num_populations
        sizes = torch.bincount(batch, minlength=num)
        if bool((sizes == 0).any()):
            empty = torch.nonzero(sizes == 0).flatten().tolist()
            raise ValueError(
                f"population(s) {empty[:10]} have no points; every population index "
                f"in [0, {num}) needs at least one row"
            )
        edges = (
            knn_edges(x, self.k, batch, num_populations=num)
            if self.k > 0
            else torch.empty(2, 0, dtype=torch.long, device=x.device)
        )
        adj = NormalizedAdjacency(edges, x.shape[0], dtype=x.dtype, device=x.device)
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h, adj)
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        e = graph_mean(h, batch, num)
        if self.normalize:
            e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return e

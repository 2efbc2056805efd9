"""Velocity networks: embeddings, MLPs, E(3)-equivariant graph networks, set and frame encoders.

Dense data uses ``MLPVelocity``; point clouds (molecules) use one of the graph networks behind the
``GraphVelocityNet`` contract — ``EGNN``, ``PaiNN`` or the e3nn ``TensorProductNet`` — built
directly or by name with ``make_graph_velocity``, and wrapped in ``GraphVelocityField`` where the
core contract ``model(x, t, *, cond=None, batch=None)`` is needed. Whole populations of points are
summarised by ``PopulationEncoder`` (a GCN over a k-NN graph, Meta Flow Matching); image series
(B, T, C, H, W) use the ``SpaceTimeTransformer``.
"""

from sciflow.nn.egnn import EGNN, EGNNLayer
from sciflow.nn.embeddings import (
    CosineCutoff,
    ElementEmbedding,
    GaussianFourierTimeEmbedding,
    GaussianRBF,
    SinusoidalTimeEmbedding,
    make_time_embedding,
)
from sciflow.nn.graph_velocity import (
    GRAPH_VELOCITY_NETWORKS,
    EncodedGraph,
    GraphCondition,
    GraphContext,
    GraphNetOptions,
    GraphVelocityField,
    GraphVelocityModel,
    GraphVelocityNet,
    make_graph_velocity,
)
from sciflow.nn.mlp import MLPVelocity, mlp, per_sample_time
from sciflow.nn.painn import PaiNN
from sciflow.nn.population import (
    GCNLayer,
    NormalizedAdjacency,
    PopulationEncoder,
    knn_edges,
    knn_neighbors,
)
from sciflow.nn.spacetime import SpaceTimeBlock, SpaceTimeCondition, SpaceTimeTransformer


def __getattr__(name: str):  # noqa: ANN202 - e3nn costs seconds to import: only when asked for
    if name == "TensorProductNet":
        from sciflow.nn.tensor_product import TensorProductNet

        return TensorProductNet
    raise AttributeError(f"module 'sciflow.nn' has no attribute {name!r}")


__all__ = [
    "CosineCutoff",
    "EGNN",
    "EGNNLayer",
    "ElementEmbedding",
    "EncodedGraph",
    "GCNLayer",
    "GRAPH_VELOCITY_NETWORKS",
    "GaussianFourierTimeEmbedding",
    "GaussianRBF",
    "GraphCondition",
    "GraphContext",
    "GraphNetOptions",
    "GraphVelocityField",
    "GraphVelocityModel",
    "GraphVelocityNet",
    "MLPVelocity",
    "NormalizedAdjacency",
    "PaiNN",
    "PopulationEncoder",
    "SinusoidalTimeEmbedding",
    "SpaceTimeBlock",
    "SpaceTimeCondition",
    "SpaceTimeTransformer",
    "TensorProductNet",
    "knn_edges",
    "knn_neighbors",
    "make_graph_velocity",
    "make_time_embedding",
    "mlp",
    "per_sample_time",
]

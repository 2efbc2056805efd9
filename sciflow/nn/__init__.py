"""Velocity networks: embeddings, MLPs and E(3)-equivariant graph networks.

Dense data uses ``MLPVelocity``; point clouds (molecules) use one of the graph networks behind the
``GraphVelocityNet`` contract — ``EGNN``, ``PaiNN`` or the e3nn ``TensorProductNet`` — built
directly or by name with ``make_graph_velocity``, and wrapped in ``GraphVelocityField`` where the
core contract ``model(x, t, *, cond=None, batch=None)`` is needed.
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
from sciflow.nn.tensor_product import TensorProductNet

__all__ = [
    "CosineCutoff",
    "EGNN",
    "EGNNLayer",
    "ElementEmbedding",
    "EncodedGraph",
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
    "PaiNN",
    "SinusoidalTimeEmbedding",
    "TensorProductNet",
    "make_graph_velocity",
    "make_time_embedding",
    "mlp",
    "per_sample_time",
]

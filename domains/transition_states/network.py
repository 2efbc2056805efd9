"""The TS velocity network: an equivariant graph network from ``sciflow.nn`` conditioned on R and P.

For a reaction with reactant R, product P (one atom order, P Kabsch-aligned onto R) and current
positions x_t on the path from the source to the TS, every atom i gets

    vectors  V_i = [R_i - x_i, P_i - x_i]                    (2 polar vectors, translation-free)
    scalars  s_i = [|R_i - x_i|, |P_i - x_i|, |R_i - P_i|]   (invariants)
    features f_i = one-hot element of atom i
    edges    e_ij = [rbf(|x_i - x_j|), rbf(|R_i - R_j|), rbf(|P_i - P_j|)]  (with ``pair_distances``)

and the network (EGNN, PaiNN or the e3nn tensor-product net, fully connected inside each molecule)
returns an equivariant vector per atom with sum_i = 0 per molecule: the velocity, or (default) a
correction to the R/P midpoint that gives the predicted TS (see :class:`TSVelocity`). Because x_t,
R and P rotate, reflect and translate together, the output is E(3)-equivariant in the whole input,
and the generated TS follows any rigid motion of the reactant. This is the conditioning of TS-GEN
(Tuo et al., arXiv 2507.10530: R and P geometries as equivariant inputs to a PaiNN-style network),
with the relative vectors R - x, P - x in place of its shared R/P encoder, and the reactant and
product bond lengths of every pair as edge features (which bonds break and form is then read off
each edge directly instead of being inferred through message passing).

The source and its coupling are in :mod:`.sources`; the x1 -> velocity conversion is the core's
(:meth:`sciflow.matcher.FlowMatcher.velocity`, finite at t = 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from sciflow.matcher import FlowMatcher
from sciflow.nn import GraphCondition, GraphVelocityNet, make_graph_velocity
from sciflow.resources import check_memory

from .config import Config
from .data import TSCondition
from .sources import make_source, midpoint

__all__ = ["TSVelocity", "build_network", "build_model", "parameter_bytes"]


def parameter_bytes(config: Config) -> int:
    """A generous estimate of the bytes training ``config``'s network holds: weights, EMA copy,
    gradients and two AdamW moments, ~12 hidden x hidden matrices per layer, float32."""
    per_layer = 12 * config.hidden * (config.hidden + config.num_rbf * 3 + config.time_dim)
    return 5 * 4 * config.layers * per_layer


class TSVelocity(nn.Module):
    """The TS flow's network for ragged batches of reactions (see the module docstring).

    ``forward`` returns what the network is trained on: with ``target="velocity"`` the velocity
    v(x, t), with ``target="x1"`` (default) the TS it predicts,

        x1hat(x, t) = (R + P)/2 + f(x, t | R, P, elements),

    an equivariant correction f (zero net per molecule) to the R/P midpoint, so an untrained or
    unsure network falls back to the midpoint and atoms whose bonds do not change keep their
    geometry. :meth:`velocity` is the velocity of the linear path for either target, through the
    core's :class:`~sciflow.matcher.FlowMatcher` (v = (x1hat - x) / (1 - t), guarded at t = 1).

    Shapes: x (N, 3), t (B,), cond.features (N, E), cond.reactant / cond.product (N, 3),
    batch (N,) -> (N, 3).
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        kwargs: dict[str, Any] = dict(
            hidden=config.hidden, layers=config.layers, node_feature_dim=len(config.elements),
            node_vector_dim=2, node_scalar_dim=3, time_dim=config.time_dim,
            num_rbf=config.num_rbf, rbf_max=config.rbf_max, cutoff=None,
            avg_num_neighbors=10.0, zero_net_velocity=True,
            reference_dim=2 if config.pair_distances else 0, aggregation=config.aggregation,
        )
        if config.network == "egnn":
            kwargs["vector_channels"] = config.vector_channels
        self.net: GraphVelocityNet = make_graph_velocity(config.network, **kwargs)
        # the source's conditional mean (R + P)/2 makes the x1 -> velocity conversion exact at t = 1
        self._matcher = FlowMatcher(target=config.target, source=make_source(config))

    def forward(self, x: Tensor, t: Tensor, *, cond: TSCondition | None = None,
                batch: Tensor | None = None) -> Tensor:
        if not isinstance(cond, TSCondition):
            raise TypeError("the TS velocity field needs cond=TSCondition(features, reactant, "
                            f"product), got {type(cond).__name__}")
        to_r, to_p = cond.reactant - x, cond.product - x
        vectors = torch.stack([to_r, to_p], dim=1)
        scalars = torch.stack([to_r.norm(dim=-1), to_p.norm(dim=-1),
                               (cond.reactant - cond.product).norm(dim=-1)], dim=-1)
        references = (torch.stack([cond.reactant, cond.product], dim=1)
                      if self.config.pair_distances else None)
        out = self.net(x, t, node_features=cond.features, batch=batch,
                       cond=GraphCondition(node_vectors=vectors, node_scalars=scalars,
                                           reference_positions=references))
        if self.config.target == "x1":
            return midpoint(cond) + out
        return out

    def velocity(self, x: Tensor, t: Tensor, *, cond: TSCondition | None = None,
                 batch: Tensor | None = None) -> Tensor:
        """dx/dt of the flow: the core's conversion of this network's output (the velocity
        itself, or x1hat through ``AffinePath.x1_to_velocity``, finite at t = 1)."""
        return self._matcher.prediction_to_velocity(self(x, t, cond=cond, batch=batch), x, t,
                                                    cond=cond, batch=batch)

    def source_mean(self, cond: TSCondition) -> Tensor:
        """Centre of the source distribution per atom: (R + P)/2 or 0. Shapes: -> (N, 3)."""
        if self.config.source == "midpoint":
            return midpoint(cond)
        return torch.zeros_like(cond.reactant)

    def sample_source(self, cond: TSCondition, batch: Tensor | None, *,
                      generator: torch.Generator | None = None) -> Tensor:
        """x0 from :func:`.sources.make_source` (m(R, P) + sigma center(eps)). Shapes: -> (N, 3)."""
        return make_source(self.config).sample(cond.reactant, cond=cond, batch=batch,
                                               generator=generator)


def build_network(config: Config) -> TSVelocity:
    """A fresh TS network for ``config``; ResourceError if it would not fit in memory."""
    check_memory(parameter_bytes(config), f"a network of hidden={config.hidden} x "
                 f"layers={config.layers}", name="--hidden/--layers")
    return TSVelocity(config)


def build_model(config: Config | None = None, **overrides: Any) -> TSVelocity:
    """Former name: a fresh network; ``overrides`` replace fields of ``config`` (or the
    defaults)."""
    config = config or Config()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    return build_network(config)

"""The TS velocity field: an equivariant graph network from ``sciflow.nn`` conditioned on R and P.

For a reaction with reactant R, product P (one atom order, P Kabsch-aligned onto R) and current
positions x_t on the path from the source to the TS, every atom i gets

    vectors  V_i = [R_i - x_i, P_i - x_i]                    (2 polar vectors, translation-free)
    scalars  s_i = [|R_i - x_i|, |P_i - x_i|, |R_i - P_i|]   (invariants)
    features f_i = one-hot element of atom i
    edges    e_ij = [rbf(|x_i - x_j|), rbf(|R_i - R_j|), rbf(|P_i - P_j|)]  (with ``pair_distances``)

and the network (EGNN, PaiNN or the e3nn tensor-product net, fully connected inside each molecule)
returns an equivariant vector per atom with sum_i = 0 per molecule: the velocity, or (default) a
correction to the R/P midpoint that gives the predicted TS (see :class:`TSVelocity`). Because x_t, R and P
rotate, reflect and translate together, v is E(3)-equivariant in the whole input, and the
generated TS follows any rigid motion of the reactant. This is the conditioning of TS-GEN (Tuo et
al., arXiv 2507.10530: R and P geometries as equivariant inputs to a PaiNN-style network), with the
relative vectors R - x, P - x in place of its shared R/P encoder, and the reactant and product
bond lengths of every pair as edge features (which bonds break and form is then read off each edge
directly instead of being inferred through message passing).

The source (t = 0) is either standard Gaussian noise (``source="gaussian"``, TS-GEN) or a Gaussian
of width ``source_scale`` around the R/P midpoint (``source="midpoint"``, a noisy version of the
React-OT interpolation start, Duan et al. 2025); both centred per molecule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sciflow.graphs import center
from sciflow.nn import GraphCondition, GraphVelocityNet, make_graph_velocity

from .data import DEFAULT_ELEMENTS, TSCondition

__all__ = ["TSModelConfig", "TSVelocity", "NETWORKS", "SOURCES", "build_model"]

NETWORKS = ("egnn", "painn", "e3nn")
SOURCES = ("gaussian", "midpoint")


@dataclass(frozen=True, kw_only=True)
class TSModelConfig:
    """Hyper-parameters of the TS generator (stored as JSON in every checkpoint).

    network : "egnn", "painn" or "e3nn" (``sciflow.nn.make_graph_velocity`` names).
    hidden, layers : width of the scalar features and number of message-passing layers.
    vector_channels : EGNN's vector channels per atom (ignored by the other networks).
    elements : atomic numbers the model accepts, in the order of the one-hot features.
    source : "gaussian" (N(0, source_scale^2 I), centred) or "midpoint" ((R + P)/2 plus centred
        Gaussian noise of scale ``source_scale``).
    source_scale : standard deviation of the source noise (A).
    target : "x1" (the network predicts the TS as a correction to the R/P midpoint; default) or
        "velocity" (it predicts the velocity, as TS-GEN).
    time_dim, num_rbf, rbf_max : time embedding size, radial basis size and range (A).
    pair_distances : give every edge the radial basis of its reactant and product distances
        (``GraphCondition.reference_positions``); checkpoints written before this option existed
        load with it off.
    """

    network: Literal["egnn", "painn", "e3nn"] = "egnn"
    hidden: int = 96
    layers: int = 4
    vector_channels: int = 8
    elements: tuple[int, ...] = DEFAULT_ELEMENTS
    source: Literal["gaussian", "midpoint"] = "midpoint"
    source_scale: float = 0.2
    target: Literal["x1", "velocity"] = "x1"
    time_dim: int = 32
    num_rbf: int = 24
    rbf_max: float = 6.0
    pair_distances: bool = True

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {self.network!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.target not in ("x1", "velocity"):
            raise ValueError(f"target must be 'x1' or 'velocity', got {self.target!r}")
        if not self.source_scale > 0:
            raise ValueError(f"source_scale must be > 0 (A), got {self.source_scale}")
        for name in ("hidden", "layers", "vector_channels", "time_dim", "num_rbf"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if len(self.elements) == 0 or len(set(self.elements)) != len(self.elements):
            raise ValueError(f"elements must be distinct atomic numbers, got {self.elements}")
        object.__setattr__(self, "elements", tuple(int(e) for e in self.elements))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["elements"] = list(self.elements)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TSModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TS model settings {unknown}; known: {sorted(known)}")
        d = dict(d)
        d.setdefault("pair_distances", False)  # older checkpoints had no pair-distance edges
        if "elements" in d:
            d["elements"] = tuple(d["elements"])
        return cls(**d)


class TSVelocity(nn.Module):
    """The TS flow's network for ragged batches of reactions (see the module docstring).

    ``forward`` returns what the network is trained on: with ``target="velocity"`` the velocity
    v(x, t), with ``target="x1"`` (default) the TS it predicts,

        x1hat(x, t) = (R + P)/2 + f(x, t | R, P, elements),

    an equivariant correction f (zero net per molecule) to the R/P midpoint, so an untrained or
    unsure network falls back to the midpoint and atoms whose bonds do not change keep their
    geometry. :meth:`velocity` always returns the velocity of the linear path,
    v = (x1hat - x) / (1 - t), the core contract ``model(x, t, *, cond, batch)`` that solvers use.

    Shapes: x (N, 3), t (B,), cond.features (N, E), cond.reactant / cond.product (N, 3),
    batch (N,) -> (N, 3).
    """

    def __init__(self, config: TSModelConfig) -> None:
        super().__init__()
        self.config = config
        kwargs: dict[str, Any] = dict(
            hidden=config.hidden, layers=config.layers, node_feature_dim=len(config.elements),
            node_vector_dim=2, node_scalar_dim=3, time_dim=config.time_dim,
            num_rbf=config.num_rbf, rbf_max=config.rbf_max, cutoff=None,
            avg_num_neighbors=10.0, zero_net_velocity=True,
            reference_dim=2 if config.pair_distances else 0,
        )
        if config.network == "egnn":
            kwargs["vector_channels"] = config.vector_channels
        self.net: GraphVelocityNet = make_graph_velocity(config.network, **kwargs)

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
            return 0.5 * (cond.reactant + cond.product) + out
        return out

    def velocity(self, x: Tensor, t: Tensor, *, cond: TSCondition | None = None,
                 batch: Tensor | None = None) -> Tensor:
        """dx/dt of the flow; for ``target="x1"`` v = (x1hat - x) / max(1 - t, 1e-4)."""
        out = self(x, t, cond=cond, batch=batch)
        if self.config.target == "velocity":
            return out
        t_rows = (t if batch is None else t[batch]).reshape(-1, 1)
        return (out - x) / (1.0 - t_rows).clamp_min(1e-4)

    def source_mean(self, cond: TSCondition) -> Tensor:
        """Centre of the source distribution per atom: 0 or (R + P)/2. Shapes: -> (N, 3)."""
        if self.config.source == "midpoint":
            return 0.5 * (cond.reactant + cond.product)
        return torch.zeros_like(cond.reactant)

    def sample_source(self, cond: TSCondition, batch: Tensor | None, *,
                      generator: torch.Generator | None = None) -> Tensor:
        """x0 = m(R, P) + sigma * center(eps), eps ~ N(0, I). Shapes: -> (N, 3)."""
        eps = torch.randn(cond.reactant.shape, generator=generator, dtype=cond.reactant.dtype,
                          device=cond.reactant.device)
        return self.source_mean(cond) + self.config.source_scale * center(eps, batch)


def build_model(config: TSModelConfig | None = None, **overrides: Any) -> TSVelocity:
    """A fresh TS velocity field; ``overrides`` replace fields of ``config`` (or the defaults)."""
    config = config or TSModelConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    return TSVelocity(config)


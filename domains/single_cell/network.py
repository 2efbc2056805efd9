"""Population-conditioned velocity fields: MFM and its FM / CGFM baselines.

All three share one decoder (Atanackovic et al. 2025, Meta Flow Matching, App. on letters):

    v(x, t | c) = SkipMLP( [c, tau(t), cos(2 pi x B), sin(2 pi x B), x] ),

a SELU perceptron with residual hidden layers, on a conditioning vector c, a sinusoidal time
embedding tau and random Fourier features of x (B ~ N(0, s^2), fixed). They differ in c
(``Config.model_type``):

- ``"mfm"``  c = [sqrt(H) phi(source population), treatment one-hot], phi the unit-length
  embedding of a GCN population encoder (:class:`sciflow.nn.population.PopulationEncoder`,
  H = gnn_hidden): a new population gets its own field. The factor sqrt(H) gives the embedding
  unit RMS per feature, like the other decoder inputs (the paper feeds the unit vector itself;
  on letters the rescaled one was learned faster: held-out X W1 0.241 vs 0.249 at 2,000 steps);
- ``"fm"``   c = [treatment one-hot]: one field for every population;
- ``"cgfm"`` c = [population one-hot, treatment one-hot]: one slot per training population plus
  spare slots; an unseen population is given a spare slot, whose weights were never trained.

The model follows the core contract ``model(x, t, *, cond, batch)`` with ``cond`` the vector c per
group (B, C) when ``batch`` (N,) is given, or per row (N, C) without it; :meth:`CellFlowModel.
condition` builds c from the source cells and names. Features are standardised inside the model
(per-feature mean and std of the training cells), so users pass cells in their own units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciflow.errors import InputError
from sciflow.graphs import expand_per_graph
from sciflow.nn.embeddings import SinusoidalTimeEmbedding
from sciflow.nn.mlp import per_sample_time
from sciflow.nn.population import PopulationEncoder

from .config import Config

__all__ = ["SkipMLP", "CellFlowModel"]


class SkipMLP(nn.Module):
    """SELU perceptron with residual hidden layers (Meta Flow Matching's decoder).

    h_0 = selu(W_in x),  h_l = selu(W_l h_{l-1} + h_{l-1}) for l = 1..L-1,  y = W_out h_{L-1}.

    Shapes: (*, d_in) -> (*, d_out).
    """

    def __init__(self, d_in: int, d_out: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.input = nn.Linear(d_in, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.output = nn.Linear(hidden, d_out)
        self.act = nn.SELU()

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.input(x))
        for layer in self.hidden:
            h = self.act(layer(h) + h)
        return self.output(h)


class CellFlowModel(nn.Module):
    """The velocity field of one model type, with its population encoder for MFM.

    Call as ``model(x, t, cond=c, batch=batch)`` (the core contract); build ``c`` with
    :meth:`condition`. ``encoder`` is None except for MFM; ``velocity`` is the decoder.

    Shapes: x (N, dim); t (B,) or scalar; cond (B, cond_dim) with batch (N,) in [0, B), or
    (N, cond_dim) without batch -> (N, dim).
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        if config.dim is None:
            raise InputError("the network needs config.dim (features per cell); build the config "
                             "for the data first: config.for_data(cells)")
        if config.model_type == "cgfm" and not config.populations:
            raise InputError("model_type='cgfm' needs the training population names "
                             "(config.for_data(cells) fills them in)")
        self.config = cfg = config
        self.encoder = PopulationEncoder(cfg.dim, hidden=cfg.gnn_hidden, layers=cfg.gnn_layers,
                                         k=cfg.knn) if cfg.model_type == "mfm" else None
        self.time_embed = SinusoidalTimeEmbedding(cfg.time_dim, scale=cfg.time_scale)
        gen = torch.Generator().manual_seed(0)  # fixed features: part of the architecture
        self.register_buffer("fourier_b", cfg.fourier_scale * torch.randn(
            cfg.dim, cfg.fourier, generator=gen))
        self.register_buffer("shift", torch.zeros(cfg.dim))
        self.register_buffer("scale", torch.ones(cfg.dim))
        d_in = cfg.cond_dim + cfg.time_dim + 2 * cfg.fourier + cfg.dim
        self.velocity = SkipMLP(d_in, cfg.dim, cfg.hidden, cfg.layers)
        self._condition_index = {c: i for i, c in enumerate(cfg.conditions)}
        self._population_index = {p: i for i, p in enumerate(cfg.populations)}

    @property
    def spec(self) -> Config:
        """The config that built this network (its former name)."""
        return self.config

    @torch.no_grad()
    def set_standardization(self, cells: Tensor) -> None:
        """Use the per-feature mean and std of ``cells`` (M, dim) to standardise inputs."""
        if cells.dim() != 2 or cells.shape[1] != self.config.dim or cells.shape[0] < 2:
            raise ValueError(f"cells must be (M >= 2, {self.config.dim}), got {tuple(cells.shape)}")
        self.shift.copy_(cells.mean(0))
        self.scale.copy_(cells.std(0).clamp_min(1e-6))

    def _standardize(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    def population_slot(self, population: str) -> int:
        """CGFM's one-hot slot: the training index, or a spare slot for an unseen population."""
        if population in self._population_index:
            return self._population_index[population]
        if self.config.spare_slots == 0:
            raise InputError(f"population {population!r} was not seen in training and this CGFM "
                             "model has no spare slots (spare_slots=0)")
        digest = sum((i + 1) * ord(ch) for i, ch in enumerate(population))  # stable, no hash()
        return len(self.config.populations) + digest % self.config.spare_slots

    def treatment_onehot(self, conditions: Sequence[str | None], *, like: Tensor) -> Tensor:
        """(B, n_conditions) one-hot of each group's condition (zeros when there are none)."""
        out = like.new_zeros(len(conditions), len(self.config.conditions))
        for i, c in enumerate(conditions):
            if not self.config.conditions:
                continue
            if c not in self._condition_index:
                raise InputError(f"condition {c!r} is unknown to this model; it was trained on "
                                 f"{list(self.config.conditions)}")
            out[i, self._condition_index[c]] = 1.0
        return out

    def embed(self, source: Tensor, batch: Tensor, num: int) -> Tensor:
        """MFM population embeddings sqrt(H) phi(source) of ``num`` groups: (B, H = gnn_hidden),
        each of norm sqrt(H)."""
        if self.encoder is None:
            raise ValueError(f"model_type {self.config.model_type!r} has no population encoder")
        phi = self.encoder(self._standardize(source), batch, num_populations=num)
        return math.sqrt(self.config.gnn_hidden) * phi

    def condition(
        self,
        source: Tensor,
        batch: Tensor,
        *,
        populations: Sequence[str],
        conditions: Sequence[str | None],
        embedding: Tensor | None = None,
    ) -> Tensor:
        """The conditioning vectors c (B, cond_dim) of B groups.

        source, batch: (N, dim) source cells and their group index (N,) in [0, B) (MFM only).
        populations, conditions: the name and condition of each group. ``embedding`` (B, H)
        reuses precomputed MFM embeddings (e.g. detached ones during alternating training).
        """
        num = len(populations)
        if len(conditions) != num:
            raise ValueError(f"got {num} populations but {len(conditions)} conditions")
        like = source if source.is_floating_point() else self.shift
        parts: list[Tensor] = []
        if self.config.model_type == "mfm":
            parts.append(self.embed(source, batch, num) if embedding is None else embedding)
        elif self.config.model_type == "cgfm":
            slots = torch.tensor([self.population_slot(p) for p in populations],
                                 device=like.device)
            parts.append(nn.functional.one_hot(
                slots, len(self.config.populations) + self.config.spare_slots).to(like.dtype))
        parts.append(self.treatment_onehot(conditions, like=like))
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor, t: Tensor | float, *, cond: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        cfg = self.config
        if x.dim() != 2 or x.shape[1] != cfg.dim:
            raise ValueError(f"x must have shape (N, {cfg.dim}), got {tuple(x.shape)}")
        groups = x.shape[0] if batch is None else (int(batch.max()) + 1 if batch.numel() else 0)
        t = expand_per_graph(per_sample_time(t, groups, like=x), batch)
        if cond is None:
            if cfg.cond_dim:
                raise ValueError(f"model_type {cfg.model_type!r} needs cond of width "
                                 f"{cfg.cond_dim}; build it with model.condition(...)")
            cond = x.new_zeros(groups, 0)
        if cond.dim() != 2 or cond.shape != (groups, cfg.cond_dim):
            raise ValueError(f"cond must have shape ({groups}, {cfg.cond_dim}), "
                             f"got {tuple(cond.shape)}")
        z = self._standardize(x)
        proj = 2.0 * math.pi * z @ self.fourier_b
        feats = [expand_per_graph(cond.to(x.dtype), batch), self.time_embed(t).to(x.dtype),
                 torch.cos(proj), torch.sin(proj), z]
        return self.velocity(torch.cat(feats, dim=1)) * self.scale

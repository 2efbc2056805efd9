"""Couplings: how a training batch pairs sources x0 with targets x1.

Conditional flow matching trains on pairs (x0, x1) drawn from a coupling pi(x0, x1). Independent
pairs give curved, crossing paths; a minibatch optimal-transport coupling (Tong et al. 2024,
"Improving and generalizing flow-based generative models with minibatch optimal transport";
Pooladian et al. 2023, "Multisample flow matching") straightens them, and an entropic coupling with
regularisation 2 sigma^2 is the static Schroedinger bridge between the two minibatches (Tong et al.
2024, SB-CFM).

POT and SciPy are imported on first use. Both solvers release the GIL while they solve (measured
in ``benchmarks/core_2d.py``), so a coupling can run in a worker thread beside training: the
:class:`~sciflow.train.Trainer` solves the next batch's coupling while the current one trains
(``FlowMatcher.couple`` with ``Trainer(prepare=...)``). A coupling that draws random numbers
(the entropic ones) must take them from its ``generator`` argument only, never from a global
stream, so that it gives the same pairs in any thread.

Every coupling here is a callable with one contract,

    coupling(x0, x1, *, cond=None, batch=None, generator=None) -> CouplingResult

and **reorders x0 only**: x1 and its conditions stay in place, so ``cond`` passes through untouched
and ``result.x0 == x0[result.index0]`` (up to a rotation for the point-cloud couplings).

Dense data: x0, x1 (B, *), one row a sample; the OT cost is the squared Euclidean distance between
flattened samples. Ragged point clouds (PyG batches): x0, x1 (N, D) node rows with ``batch`` (N,);
:class:`KabschCoupling` rotates each graph's noise onto its target (and optionally permutes atoms of
one element type), which is what equivariant flow matching on molecules uses (Klein et al. 2023,
"Equivariant flow matching"; Song et al. 2023, "Equivariant flow matching with hybrid probability
transport").
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

from sciflow import graphs

__all__ = [
    "Cond",
    "ConditionalOTCoupling",
    "Coupling",
    "CouplingResult",
    "DenseCoupling",
    "EMD_MIN_POINTS",
    "ExactOTCoupling",
    "IndependentCoupling",
    "KabschCoupling",
    "PairedCoupling",
    "SchrodingerBridgeCoupling",
    "SinkhornCoupling",
    "auto_solver",
    "kabsch_align",
    "kabsch_rotation",
    "permutation_match",
    "sinkhorn_plan",
    "squared_distance_cost",
]

Cond = Tensor | Mapping[str, Any]
"""A condition: a tensor with one row per sample (or node), or a dict of such tensors."""


@dataclass(frozen=True)
class CouplingResult:
    """Pairs ready for the path.

    Attributes
    ----------
    x0:
        The sources, reordered (and for point clouds rotated) so that row i pairs with ``x1[i]``.
    x1:
        The targets, unchanged and in their original order.
    cond:
        The conditions of ``x1``, unchanged (x1 never moves, so they stay consistent).
    index0:
        (B,) or (N,) int64: row i of ``x0`` came from row ``index0[i]`` of the input x0. A true
        permutation for exact OT, Kabsch and permutation matching; drawn with replacement for the
        entropic couplings.
    """

    x0: Tensor
    x1: Tensor
    cond: Any
    index0: Tensor


class Coupling(Protocol):
    """``coupling(x0, x1, *, cond=None, batch=None, generator=None) -> CouplingResult``."""

    def __call__(
        self,
        x0: Tensor,
        x1: Tensor,
        *,
        cond: Any = None,
        batch: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> CouplingResult: ...


# --------------------------------------------------------------------------- input checks


def _check_pair(x0: Tensor, x1: Tensor, *, finite: bool = True) -> None:
    """Types and shapes of a pair; ``finite`` also scans both for NaN/inf (the couplings that
    solve a transport problem need finite costs; the others leave NaN to the loss's guard)."""
    for name, x in (("x0", x0), ("x1", x1)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} must have at least one row, got shape {tuple(x.shape)}")
        if finite and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or inf values; couplings need finite samples")
    if x0.shape != x1.shape:
        raise ValueError(
            f"x0 has shape {tuple(x0.shape)} but x1 has shape {tuple(x1.shape)}; a coupling pairs "
            "one source with each target, so both must have the same shape"
        )


def _check_cond_rows(cond: Any, n: int, what: str) -> None:
    items = cond.items() if isinstance(cond, Mapping) else [("cond", cond)]
    for key, value in items:
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] != n:
            raise ValueError(
                f"{key} has {value.shape[0]} rows but there are {n} {what}; conditions need one "
                "row per sample"
            )


# --------------------------------------------------------------------------- dense couplings


def squared_distance_cost(x0: Tensor, x1: Tensor) -> Tensor:
    """Squared Euclidean cost between flattened samples, in float64.

    C_ij = || x0_i - x1_j ||^2.  Shapes: x0 (n, *), x1 (m, *) -> (n, m).
    """
    a = x0.reshape(x0.shape[0], -1).double()
    b = x1.reshape(x1.shape[0], -1).double()
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").square()


class DenseCoupling(ABC):
    """Base of the couplings for dense batches (B, *): subclasses choose ``index0``.

    ``__call__`` checks the inputs, refuses ragged graph batches (use :class:`KabschCoupling`)
    unless ``ragged_ok``, and builds the :class:`CouplingResult`; :meth:`pair_indices` is the only
    method to write (a coupling that reads ``cond`` also overrides :meth:`_pair`).
    """

    ragged_ok: ClassVar[bool] = False
    #: the pairing is the identity (row i with row i): x0 is returned as it is, without a copy
    keeps_order: ClassVar[bool] = False
    #: scan both sides for NaN/inf first (the solvers need finite costs)
    needs_finite: ClassVar[bool] = True

    @abstractmethod
    def pair_indices(
        self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """(B,) int64 indices into x0, one partner for each row of x1."""

    def __call__(
        self,
        x0: Tensor,
        x1: Tensor,
        *,
        cond: Any = None,
        batch: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> CouplingResult:
        _check_pair(x0, x1, finite=self.needs_finite)
        if batch is not None and not self.ragged_ok:
            raise ValueError(
                f"{type(self).__name__} pairs whole samples of a dense batch (B, *) and got a "
                "ragged graph batch; use KabschCoupling for point clouds"
            )
        index0 = self._pair(x0, x1, cond, generator)
        return CouplingResult(x0=x0 if self.keeps_order else x0[index0], x1=x1, cond=cond,
                              index0=index0)

    def _pair(
        self, x0: Tensor, x1: Tensor, cond: Any, generator: torch.Generator | None
    ) -> Tensor:
        """Check that ``cond`` has a row per sample, then :meth:`pair_indices`."""
        _check_cond_rows(cond, x1.shape[0], "samples")
        return self.pair_indices(x0, x1, generator=generator)


@dataclass(frozen=True)
class IndependentCoupling(DenseCoupling):
    """Independent pairs: x0 row i with x1 row i (x0 is already an independent draw).

    Also valid on ragged graph batches, where row i is a node. Returns x0 itself (no copy, no
    NaN scan: a non-finite sample surfaces in the loss, which names it).
    """

    ragged_ok: ClassVar[bool] = True
    keeps_order: ClassVar[bool] = True
    needs_finite: ClassVar[bool] = False

    def pair_indices(
        self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        return torch.arange(x0.shape[0], device=x0.device)


EMD_MIN_POINTS: tuple[tuple[int, int], ...] = ((4, 192), (32, 256), (1 << 62, 512))
"""(largest dimension, smallest batch) pairs: ``ExactOTCoupling(solver="auto")`` uses POT's network
simplex on n points of dimension d when n reaches the batch size of the first pair with d <= its
dimension, else SciPy's Hungarian method. These are the crossovers measured on noise-to-data
batches of d = 2, 16 and 64 in ``benchmarks/core_2d.py`` (its "exact solvers" table): the
simplex gains with the batch size, and faster at low dimension."""


def auto_solver(n: int, dim: int) -> Literal["emd", "hungarian"]:
    """The faster exact solver for n points of dimension ``dim`` (see :data:`EMD_MIN_POINTS`)."""
    start = next(points for top, points in EMD_MIN_POINTS if dim <= top)
    return "emd" if n >= start else "hungarian"


def _emd_permutation(cost: np.ndarray) -> np.ndarray | None:
    """POT's network simplex on uniform weights; the permutation, or None if it is not one."""
    import ot

    n = cost.shape[0]
    w = np.full(n, 1.0 / n)
    plan, log = ot.emd(w, w, cost, numItermax=max(100_000, 20 * n * n), log=True)
    perm = plan.argmax(axis=0)
    # A vertex of the assignment polytope is a permutation matrix / n; trust it only then.
    if (
        log.get("result_code", 1) == 1
        and np.bincount(perm, minlength=n).max() == 1
        and bool((plan[perm, np.arange(n)] * n > 0.5).all())
    ):
        return perm
    return None


def _assignment(cost: np.ndarray, solver: str) -> np.ndarray:
    """perm with perm[j] = source row for target column j, minimising sum_j C[perm[j], j]."""
    from scipy.optimize import linear_sum_assignment

    n = cost.shape[0]
    if solver == "emd" and n > 1:
        perm = _emd_permutation(cost)
        if perm is not None:
            return perm
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(n, dtype=np.int64)
    perm[cols] = rows
    return perm


SOLVERS = ("auto", "emd", "hungarian")
"""The exact assignment solvers of :class:`ExactOTCoupling`."""


@dataclass(frozen=True, kw_only=True)
class ExactOTCoupling(DenseCoupling):
    """Exact minibatch optimal transport, returned as a true permutation of x0.

    Solves  min_{perm} sum_j || x0_{perm(j)} - x1_j ||^2  over all permutations, the squared-W2
    optimal assignment of the minibatch (Tong et al. 2024, OT-CFM; Pooladian et al. 2023). Unlike
    sampling pairs from the plan with replacement, every source is used exactly once: no duplicated
    or dropped pairs.

    Parameters
    ----------
    solver:
        ``"auto"`` (the default: the one measured faster for the batch size and dimension,
        :func:`auto_solver`),
        ``"emd"`` (POT's network simplex, whose optimal vertex is a permutation matrix) or
        ``"hungarian"`` (``scipy.optimize.linear_sum_assignment``). If the simplex stops early or
        its plan is not a permutation, the Hungarian method takes over, so the result is always an
        exact optimum. Both release the GIL, so the solve can overlap training
        (``FlowMatcher.couple``).
    """

    solver: Literal["auto", "emd", "hungarian"] = "auto"

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")

    def pair_indices(
        self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        cost = squared_distance_cost(x0, x1).cpu().numpy()
        solver = self.solver
        if solver == "auto":
            solver = auto_solver(x0.shape[0], x0[0].numel())
        perm = _assignment(cost, solver)
        return torch.as_tensor(perm, dtype=torch.long, device=x0.device)


def sinkhorn_plan(
    cost: Tensor,
    *,
    reg: float,
    max_iter: int = 2000,
    tol: float = 1e-4,
) -> Tensor:
    """Entropic optimal-transport plan between two uniform minibatches, in the log domain.

    Solves  min_P <P, C> + reg * sum_ij P_ij (log P_ij - 1)  with P 1 = 1/n, P^T 1 = 1/m
    (Cuturi 2013) by Sinkhorn iterations on the dual potentials f, g:

        f_i = reg log(1/n) - reg LSE_j((g_j - C_ij) / reg),
        g_j = reg log(1/m) - reg LSE_i((f_i - C_ij) / reg),   P_ij = exp((f_i + g_j - C_ij) / reg).

    The log-domain updates stay finite for small ``reg`` where the plain kernel exp(-C/reg) would
    underflow. Column sums are exact after each g update; iteration stops when the row sums are
    within ``tol`` (L1, i.e. the misplaced fraction of the unit mass) of 1/n, with a RuntimeWarning
    if ``max_iter`` is reached first. The iteration count grows like 1/reg (measured on 256 points,
    d = 2, cost scale ~10: 30 iterations at reg 1, 270 at 0.1, 1400 at 0.02 for tol 1e-4); for
    very small reg use exact OT instead.

    Shapes: cost (n, m) -> plan (n, m), same dtype and device.
    """
    if reg <= 0:
        raise ValueError(f"reg must be positive, got {reg}")
    if cost.dim() != 2 or cost.numel() == 0:
        raise ValueError(f"cost must be a non-empty (n, m) matrix, got shape {tuple(cost.shape)}")
    n, m = cost.shape
    log_a = -torch.log(torch.tensor(float(n), dtype=cost.dtype, device=cost.device))
    log_b = -torch.log(torch.tensor(float(m), dtype=cost.dtype, device=cost.device))
    scaled = cost / reg
    f = torch.zeros(n, dtype=cost.dtype, device=cost.device)
    g = torch.zeros(m, dtype=cost.dtype, device=cost.device)
    err = float("inf")
    for it in range(max_iter):
        f = log_a - torch.logsumexp(g[None, :] - scaled, dim=1)
        g = log_b - torch.logsumexp(f[:, None] - scaled, dim=0)
        if it % 10 == 9 or it == max_iter - 1:
            rows = torch.logsumexp(f[:, None] + g[None, :] - scaled, dim=1).exp()
            err = float((rows - 1.0 / n).abs().sum())
            if err < tol:
                break
    else:
        warnings.warn(
            f"sinkhorn_plan did not converge in {max_iter} iterations (row-marginal error "
            f"{err:.2e} > tol {tol:.0e}); increase max_iter or reg",
            RuntimeWarning,
            stacklevel=2,
        )
    # f, g are potentials scaled by 1/reg here, so the plan is exp(f + g - C/reg).
    return (f[:, None] + g[None, :] - scaled).exp()


@dataclass(frozen=True, kw_only=True)
class SinkhornCoupling(DenseCoupling):
    """Entropic minibatch OT: each x1 draws its partner x0 from its column of the Sinkhorn plan.

    j-th target:  index0[j] ~ Categorical(P[:, j] / sum_i P_ij),  P = :func:`sinkhorn_plan`.

    x1 stays in place (every target used once); sources are drawn **with replacement**, so one x0
    may serve two targets and another none. That is inherent to an entropic plan, which is not a
    permutation: its mass is spread over several partners per target. Use
    :class:`ExactOTCoupling` for a true permutation.

    Parameters
    ----------
    reg:
        Entropic regularisation, in the units of the squared-distance cost. Small values approach
        exact OT (and need more iterations), large values approach independent pairs.
    max_iter, tol:
        Passed to :func:`sinkhorn_plan`.
    """

    reg: float
    max_iter: int = 2000
    tol: float = 1e-4

    def __post_init__(self) -> None:
        if not self.reg > 0:
            raise ValueError(f"reg must be positive, got {self.reg}")

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The entropic plan (B, B) between the minibatches, float64."""
        return sinkhorn_plan(
            squared_distance_cost(x0, x1), reg=self.reg, max_iter=self.max_iter, tol=self.tol
        )

    def pair_indices(
        self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        columns = self.plan(x0, x1).T
        if generator is not None:
            columns = columns.to(generator.device)
        index0 = torch.multinomial(columns, 1, generator=generator).squeeze(1)
        return index0.to(x0.device)


@dataclass(frozen=True, kw_only=True)
class SchrodingerBridgeCoupling(DenseCoupling):
    """Static Schroedinger bridge between minibatches: Sinkhorn with reg = 2 sigma^2.

    The Brownian-bridge reference with diffusion sigma makes the static SB problem an entropic OT
    with squared-distance cost and regularisation 2 sigma^2 (Tong et al. 2024, SB-CFM). Pair it
    with a path whose noise is sigma sqrt(t (1 - t)). Sources are drawn with replacement, as in
    :class:`SinkhornCoupling`.
    """

    sigma: float
    max_iter: int = 2000
    tol: float = 1e-4

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")

    @property
    def sinkhorn(self) -> SinkhornCoupling:
        return SinkhornCoupling(reg=2.0 * self.sigma**2, max_iter=self.max_iter, tol=self.tol)

    def pair_indices(
        self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.sinkhorn.pair_indices(x0, x1, generator=generator)


def _labels(cond: Any, key: str | None, n: int) -> Tensor:
    """Group id (n,) of each sample from a discrete condition."""
    if cond is None:
        raise ValueError("ConditionalOTCoupling needs cond: the discrete label of each sample")
    if isinstance(cond, Mapping):
        if key is None:
            raise ValueError(
                f"cond is a dict with keys {sorted(cond)}; pass key=... to name the label entry"
            )
        if key not in cond:
            raise KeyError(f"cond has no entry {key!r}; keys are {sorted(cond)}")
        label = cond[key]
    else:
        label = cond
    if not isinstance(label, Tensor) or label.dim() == 0 or label.shape[0] != n:
        shape = tuple(label.shape) if isinstance(label, Tensor) else type(label).__name__
        raise ValueError(f"the condition label must be a tensor with {n} rows, got {shape}")
    _, inverse = torch.unique(label.reshape(n, -1), dim=0, return_inverse=True)
    return inverse


@dataclass(frozen=True, kw_only=True)
class ConditionalOTCoupling(DenseCoupling):
    """OT within each value of a discrete condition: never pairs across labels.

    Row i of x0 is taken to carry the label of row i of x1 (true when x0 is label-free noise, and
    when labelled sources are stacked in the same order as their targets). For every label value
    the ``base`` coupling pairs that label's rows only, so conditional generation keeps an
    OT-straightened path per condition instead of transporting between classes.

    Parameters
    ----------
    base:
        The coupling applied inside each group; exact OT by default (Sinkhorn / Schroedinger bridge
        work too).
    key:
        When ``cond`` is a dict, the entry holding the labels. Labels are (B,) or (B, k) tensors;
        rows with identical values form one group.
    """

    base: DenseCoupling | None = None
    key: str | None = None

    def pair_indices(
        self,
        x0: Tensor,
        x1: Tensor,
        *,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        base = self.base if self.base is not None else ExactOTCoupling()
        n = x0.shape[0]
        if labels is None:
            labels = torch.zeros(n, dtype=torch.long, device=x0.device)
        index0 = torch.empty(n, dtype=torch.long, device=x0.device)
        for group in torch.unique(labels):
            rows = (labels == group).nonzero(as_tuple=True)[0]
            local = base.pair_indices(x0[rows], x1[rows], generator=generator)
            index0[rows] = rows[local.to(rows.device)]
        return index0

    def _pair(
        self, x0: Tensor, x1: Tensor, cond: Any, generator: torch.Generator | None
    ) -> Tensor:
        """Read the labels from ``cond``, check its rows, then pair within each label."""
        labels = _labels(cond, self.key, x0.shape[0]).to(x0.device)
        _check_cond_rows(cond, x1.shape[0], "samples")
        return self.pair_indices(x0, x1, generator=generator, labels=labels)


@dataclass(frozen=True)
class PairedCoupling(IndependentCoupling):
    """Data that come paired (reactant -> product, frame t -> t+1): inputs returned unchanged.

    It exists so that every matcher takes a coupling; it checks that x0 and x1 match row for row
    and are finite. Works for dense and ragged batches alike; ``cond`` is passed on unread (it may
    hold one row per graph of a ragged batch).
    """

    needs_finite: ClassVar[bool] = True

    def _pair(
        self, x0: Tensor, x1: Tensor, cond: Any, generator: torch.Generator | None
    ) -> Tensor:
        return self.pair_indices(x0, x1, generator=generator)


# --------------------------------------------------------------------------- point clouds


def _check_cloud(x0: Tensor, x1: Tensor, batch: Tensor | None, weights: Tensor | None) -> None:
    _check_pair(x0, x1)
    if x0.dim() != 2 or x0.shape[1] < 2:
        raise ValueError(f"point clouds must be (N, D) with D >= 2, got shape {tuple(x0.shape)}")
    n = x0.shape[0]
    if batch is not None and (batch.dim() != 1 or batch.shape[0] != n or batch.is_floating_point()):
        raise ValueError(
            f"batch must be an integer tensor (N,) = ({n},), got {batch.dtype} {tuple(batch.shape)}"
        )
    if weights is not None:
        if weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
        if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
            raise ValueError("weights must be finite and non-negative")


def _weighted_center(x: Tensor, batch: Tensor, b: int, w: Tensor | None) -> Tensor:
    if w is None:
        return x - graphs.graph_mean(x, batch, b)[batch]
    w = w.to(x.dtype)[:, None]
    total = graphs.graph_sum(w, batch, b).clamp_min(torch.finfo(x.dtype).tiny)
    return x - (graphs.graph_sum(w * x, batch, b) / total)[batch]


def kabsch_rotation(
    x0: Tensor, x1: Tensor, batch: Tensor | None = None, weights: Tensor | None = None
) -> Tensor:
    """The proper rotation per graph that best maps the centred x0 onto the centred x1.

    R_g = argmin_{R in SO(D)} sum_{i in g} w_i || R p_i - q_i ||^2,  p, q centred per graph.
    With H = sum_i w_i p_i q_i^T = U S V^T (SVD), R = V diag(1, ..., 1, d) U^T where
    d = sign det(V U^T) (Kabsch 1976): the sign fix excludes reflections, so a mirror image is
    never matched. Graphs of one point (or degenerate, H = 0) get some rotation, all equally good.

    Shapes: x0, x1 (N, D), batch (N,), weights (N,) -> (B, D, D). Apply to row vectors as
    ``p @ R.transpose(-1, -2)``. Not meant for backpropagation (the SVD gradient is unstable for
    repeated singular values).
    """
    _check_cloud(x0, x1, batch, weights)
    if batch is None:
        batch = torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device)
    b = graphs.num_graphs(batch, x0.shape[0])
    p = _weighted_center(x0, batch, b, weights)
    q = _weighted_center(x1, batch, b, weights)
    w = None if weights is None else weights.to(x0.dtype)[:, None, None]
    outer = p[:, :, None] * q[:, None, :]
    h = graphs.graph_sum(outer if w is None else w * outer, batch, b)
    u, _, vh = torch.linalg.svd(h)
    v = vh.transpose(-1, -2)
    ut = u.transpose(-1, -2)
    d = torch.sign(torch.linalg.det(v @ ut))
    d = torch.where(d == 0, torch.ones_like(d), d)
    fix = torch.ones(b, x0.shape[1], dtype=x0.dtype, device=x0.device)
    fix[:, -1] = d
    return v @ torch.diag_embed(fix) @ ut


def kabsch_align(
    x0: Tensor,
    x1: Tensor,
    batch: Tensor | None = None,
    weights: Tensor | None = None,
    *,
    translate: bool = False,
) -> Tensor:
    """Rotate each graph of x0 onto the matching graph of x1 (proper rotations only).

    x0_aligned_i = R_g (x0_i - c0_g) + c_g,  R_g = :func:`kabsch_rotation`,
    where c0_g is the (weighted) centroid of x0's graph g and c_g = c0_g (rotation about its own
    centroid, the default: the distribution of centred noise is unchanged) or, with
    ``translate=True``, c_g = centroid of x1's graph g (the RMSD-optimal superposition).

    Shapes: x0, x1 (N, D), batch (N,) or None (one graph), weights (N,) -> (N, D).
    """
    rot = kabsch_rotation(x0, x1, batch, weights)
    if batch is None:
        batch = torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device)
    b = rot.shape[0]
    p = _weighted_center(x0, batch, b, weights)
    rotated = torch.einsum("nij,nj->ni", rot[batch], p)
    anchor = x1 if translate else x0
    return rotated + (anchor - _weighted_center(anchor, batch, b, weights))


def permutation_match(x0: Tensor, x1: Tensor, types: Tensor, batch: Tensor | None = None) -> Tensor:
    """Optimal permutation of x0's nodes within each graph and element type.

    Per graph g and type k, after centring both clouds per graph, the Hungarian method solves
    min_perm sum_{j in (g, k)} || x0_{perm(j)} - x1_j ||^2  (Klein et al. 2023, equivariant OT
    flow matching). Nodes never move across graphs or types.

    Shapes: x0, x1 (N, D), types (N,) integer, batch (N,) -> index (N,) int64 with
    ``x0[index]`` paired to ``x1``.
    """
    _check_cloud(x0, x1, batch, None)
    n = x0.shape[0]
    if not isinstance(types, Tensor) or types.shape != (n,) or types.is_floating_point():
        raise ValueError(
            f"atom types must be an integer tensor of shape ({n},), got "
            f"{types.dtype if isinstance(types, Tensor) else type(types).__name__} "
            f"{tuple(types.shape) if isinstance(types, Tensor) else ''}"
        )
    import scipy.optimize

    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=x0.device)
    p = graphs.center(x0, batch).detach().double().cpu().numpy()
    q = graphs.center(x1, batch).detach().double().cpu().numpy()
    _, group = torch.unique(
        torch.stack([batch, types.to(batch.device)], 1), dim=0, return_inverse=True
    )
    group_np = group.cpu().numpy()
    order = np.argsort(group_np, kind="stable")
    bounds = np.flatnonzero(np.diff(group_np[order])) + 1
    index = np.arange(n)
    for rows in np.split(order, bounds):
        if rows.size < 2:
            continue
        diff = p[rows][:, None, :] - q[rows][None, :, :]
        r, c = scipy.optimize.linear_sum_assignment(np.einsum("ijk,ijk->ij", diff, diff))
        index[rows[c]] = rows[r]
    return torch.as_tensor(index, dtype=torch.long, device=x0.device)


@dataclass(frozen=True, kw_only=True)
class KabschCoupling:
    """Per-graph alignment of noise to data on ragged point-cloud batches.

    For each graph: optionally permute x0's nodes within element types to their optimal partners
    (:func:`permutation_match`, after centring), then rotate x0 about its centroid by the proper
    rotation that best superposes it on x1 (:func:`kabsch_align`). Rotating an isotropic,
    centred Gaussian leaves its distribution unchanged, so this is a valid coupling that removes
    the rotational part of the transport (Klein et al. 2023; Song et al. 2023).

    Parameters
    ----------
    types_key:
        When set, ``cond`` must be a dict and ``cond[types_key]`` (N,) holds the element types
        used for permutation matching. ``atom_types=`` passed to the call takes precedence.
    """

    types_key: str | None = None

    def __call__(
        self,
        x0: Tensor,
        x1: Tensor,
        *,
        cond: Any = None,
        batch: Tensor | None = None,
        generator: torch.Generator | None = None,
        atom_types: Tensor | None = None,
    ) -> CouplingResult:
        _check_cloud(x0, x1, batch, None)
        if atom_types is None and self.types_key is not None:
            if not isinstance(cond, Mapping) or self.types_key not in cond:
                keys = sorted(cond) if isinstance(cond, Mapping) else type(cond).__name__
                raise ValueError(
                    f"KabschCoupling(types_key={self.types_key!r}) needs cond to be a dict with "
                    f"that entry, got {keys}"
                )
            atom_types = cond[self.types_key]
        if atom_types is None:
            index0 = torch.arange(x0.shape[0], device=x0.device)
        else:
            index0 = permutation_match(x0, x1, atom_types, batch)
        aligned = kabsch_align(x0[index0], x1, batch)
        return CouplingResult(x0=aligned, x1=x1, cond=cond, index0=index0)

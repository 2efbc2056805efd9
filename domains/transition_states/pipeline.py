"""Train, generate, rank, refine and evaluate: the TS generator's jobs, used by the CLI and demos.

Training is conditional flow matching on the linear (OT) path, x_t = (1 - t) x0 + t x1,
u_t = x1 - x0 (Lipman et al. 2023), from the source x0 (:mod:`.model`) to the reference TS x1,
with the source noise Kabsch-rotated onto the TS per reaction before pairing (TS-GEN's alignment of
the TS to the noise, Tuo et al. arXiv 2507.10530; rotating centred isotropic noise leaves its
distribution unchanged, so this is a valid coupling that removes rotational transport). The loss
(:class:`TSFlowLoss`) is the per-reaction mean squared error of the network's TS prediction (or of
its velocity), averaged over reactions, plus an optional loss on short interatomic distances; the
sciflow Trainer adds AdamW, EMA weights, checkpoints, exact resume and DDP under torchrun.

Generation integrates dx/dt = v(x, t | R, P) from a source draw to t = 1 with a few fixed steps
(Euler by default). Several samples per reaction are ranked by a documented rule (:func:`rank`):

* ``"medoid"`` (default, no calculator): the sample with the smallest mean Kabsch RMSD to the
  other samples of its reaction first -- the consensus geometry, robust to a stray sample (the
  median-of-samples practice of GoFlow);
* ``"fmax"`` (needs a calculator): the smallest largest atomic force first, since a saddle point
  is stationary.

:func:`refine` runs Sella (order 1; Hermes et al., J. Chem. Theory Comput. 18, 6974, 2022) on a
generated TS with an ASE calculator (GFN2-xTB via tblite by default) and, for comparison, from
the IDPP guess (highest-energy image of an IDPP path; Smidstrup et al., J. Chem. Phys. 140,
214106, 2014), and reports the optimiser steps saved.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from ase import Atoms
from torch import Tensor
from torch_geometric.utils import scatter

from sciflow.checkpoint import load_checkpoint, save_checkpoint
from sciflow.couplings import kabsch_align
from sciflow.graphs import center, full_edges, graph_mean
from sciflow.matcher import FlowMatcher
from sciflow.metrics import kabsch_rmsd
from sciflow.solvers import odeint
from sciflow.train import TrainConfig, Trainer, TrainResult

from .data import (
    Endpoints,
    TSInputError,
    collate,
    condition_of,
    prepare_endpoints,
    reaction_to_graph,
    stack_endpoints,
)
from .model import TSModelConfig, TSVelocity

__all__ = [
    "CHECKPOINT_KIND",
    "DEFAULT_CHECKPOINT",
    "EV_TO_KCAL",
    "TSTrainSettings",
    "TSFlowLoss",
    "train",
    "export_checkpoint",
    "TSGenerator",
    "GeneratedTS",
    "load_generator",
    "generate_ts",
    "rank",
    "RefinementResult",
    "refine",
    "idpp_guess",
    "CHEMICAL_ACCURACY_KCAL",
    "pair_rmsd",
    "single_point",
    "score",
    "ReactionScore",
    "EvaluationSummary",
    "Evaluation",
    "evaluate",
    "summarize",
]

CHECKPOINT_KIND = "sciflow.transition_states/1"
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "ts_egnn_small.pt"
EV_TO_KCAL = 23.060547830619
CHEMICAL_ACCURACY_KCAL = 1.58  # 1.58 kcal/mol = 0.0685 eV, TS-GEN's and React-OT's threshold
CalculatorFactory = Callable[[], Any]
RankRule = Literal["medoid", "fmax"]


# ----------------------------------------------------------------------------------- training


@dataclass(frozen=True, kw_only=True)
class TSTrainSettings:
    """How to train (keyword-only; see :class:`sciflow.train.TrainConfig` for the shared fields).

    batch_size : reactions per step, drawn without replacement (with, if the data is smaller).
    reverse : also train on every reaction run backwards (P -> R has the same TS), which doubles
        the data at no cost.
    distance_weight : weight of the auxiliary short-distance loss of :class:`TSFlowLoss`.
    """

    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    ema_decay: float = 0.995
    warmup_steps: int = 50
    schedule: Literal["constant", "cosine"] = "cosine"
    grad_clip: float | None = 1.0
    log_every: int = 50
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"
    progress: bool | None = None
    reverse: bool = True
    distance_weight: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    def train_config(self, out_dir: str | Path | None) -> TrainConfig:
        return TrainConfig(
            steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, ema_decay=self.ema_decay,
            warmup_steps=self.warmup_steps, schedule=self.schedule, grad_clip=self.grad_clip,
            log_every=self.log_every, checkpoint_every=self.checkpoint_every, out_dir=out_dir,
            seed=self.seed, device=self.device, progress=self.progress)


class TSFlowLoss:
    """``loss_fn(model, batch)`` for the Trainer: the flow-matching loss of a batch of reactions.

    x0 = m(R, P) + Rot_g sigma center(eps): the centred noise of each reaction g is rotated by the
    proper rotation Rot_g that best superposes it on the TS's offset from the source centre,
    x1 - m (``sciflow.couplings.kabsch_align``). With (x_t, t) from ``FlowMatcher`` on the linear
    path to x1 = TS and the network's output y (the TS x1hat for ``target="x1"``, the velocity v
    for ``target="velocity"``, then x1hat = x_t + (1 - t) v):

        L = mean_g mean_{i in g} |y_i - y*_i|^2 / 3      (y* = x1 or u_t = x1 - x0)
            + lambda mean_g mean_{(i,j) in g: d_ij(x1) < cutoff} (|x1hat_i - x1hat_j| - d_ij(x1))^2

    With ``target="x1"`` the first term is FlowMatcher's x1-prediction loss. The second, optional
    term (``distance_weight`` lambda) weights the short interatomic distances that set a TS's
    energy: a 0.1 A error spread over a molecule's bonds costs tens of kcal/mol, while the
    velocity loss weighs every coordinate alike. (Auxiliary distance losses on the predicted
    clean structure are common in structure generators, e.g. FrameFlow, Yim et al. 2023.)
    Shapes: batch.pos_ts, pos_r, pos_p (N, 3), batch.batch (N,).
    """

    def __init__(self, config: TSModelConfig, *, distance_weight: float = 0.0,
                 distance_cutoff: float = 2.0) -> None:
        if distance_weight < 0 or distance_cutoff <= 0:
            raise ValueError(f"need distance_weight >= 0 and distance_cutoff > 0, got "
                             f"{distance_weight}, {distance_cutoff}")
        self.config = config
        self.distance_weight = float(distance_weight)
        self.distance_cutoff = float(distance_cutoff)
        self.matcher = FlowMatcher(target=config.target)

    def source(self, model: TSVelocity, batch: Any, generator: torch.Generator | None = None
               ) -> Tensor:
        cond = condition_of(batch)
        mean = model.source_mean(cond)
        eps = torch.randn(cond.reactant.shape, generator=generator, dtype=cond.reactant.dtype,
                          device=cond.reactant.device)
        noise = self.config.source_scale * center(eps, batch.batch)
        return mean + kabsch_align(noise, batch.pos_ts - mean, batch.batch)

    def __call__(self, model: torch.nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        core: TSVelocity = getattr(model, "module", model)  # DDP wraps the model
        x1, ids, cond = batch.pos_ts, batch.batch, condition_of(batch)
        s = self.matcher.training_sample(x1, cond=cond, batch=ids, x0=self.source(core, batch))
        pred = model(s.path.x_t, s.t_model, cond=cond, batch=ids)
        goal = s.path.x1 if self.config.target == "x1" else s.path.u_t
        fm = graph_mean(((pred - goal) ** 2).mean(dim=-1), ids).mean()
        if self.distance_weight == 0.0:
            return fm, {"fm": float(fm.detach())}
        x1_hat = pred if self.config.target == "x1" else \
            s.path.x_t + (1.0 - s.t_model[ids])[:, None] * pred
        src, dst = full_edges(x1, ids)
        d_ref = (x1[src] - x1[dst]).norm(dim=-1)
        near = d_ref < self.distance_cutoff
        src, dst, d_ref = src[near], dst[near], d_ref[near]
        err = ((x1_hat[src] - x1_hat[dst]).norm(dim=-1) - d_ref) ** 2
        per_graph = scatter(err, ids[dst], dim=0, dim_size=s.t_model.shape[0], reduce="mean")
        dist = per_graph.mean()
        return fm + self.distance_weight * dist, {"fm": float(fm.detach()),
                                                  "dist": float(dist.detach())}


def _reversed(data: Any) -> Any:
    """The same reaction run backwards: reactant and product swap, the TS stays (one frame)."""
    rev = data.clone()
    rev.pos_r, rev.pos_p = data.pos_p.clone(), data.pos_r.clone()
    return rev


def _batch_fn(graphs: Sequence[Any], batch_size: int) -> Callable[[int, torch.Generator], Any]:
    n = len(graphs)

    def draw(step: int, generator: torch.Generator) -> Any:
        if batch_size <= n:
            index = torch.randperm(n, generator=generator)[:batch_size]
        else:
            index = torch.randint(n, (batch_size,), generator=generator)
        return collate([graphs[int(i)] for i in index])

    return draw


def train(reactions: Sequence[Any], *, config: TSModelConfig | None = None,
          settings: TSTrainSettings | None = None, out_dir: str | Path | None = None,
          resume: bool = False, meta: dict[str, Any] | None = None,
          ) -> tuple[Trainer, TrainResult]:
    """Train a TS generator on reactions (``sciflow.datasets.reactions.Reaction`` objects).

    Checkpoints, EMA weights and ``metrics.jsonl`` go to ``out_dir`` (``resume=True`` continues
    the run there). Under ``torchrun`` the Trainer runs DDP; each rank draws its own batches.
    Returns the trainer (``trainer.ema_model`` is the model to sample from) and the result.

    Example
    -------
    >>> from sciflow.datasets.reactions import read_reactions          # doctest: +SKIP
    >>> trainer, result = train(read_reactions("reactions.extxyz.gz"),  # doctest: +SKIP
    ...                         settings=TSTrainSettings(steps=2000), out_dir="runs/ts")
    """
    config = config or TSModelConfig()
    settings = settings or TSTrainSettings()
    reactions = list(reactions)
    if not reactions:
        raise ValueError("train() got no reactions")
    graphs = [reaction_to_graph(r, elements=config.elements) for r in reactions]
    if settings.reverse:
        graphs += [_reversed(g) for g in graphs]
    with torch.random.fork_rng(devices=[]):  # the same seed gives the same initial weights
        torch.manual_seed(settings.seed)
        model = TSVelocity(config)
    full_meta = {"kind": CHECKPOINT_KIND, "model": config.to_dict(),
                 "train": {**asdict(settings), "reactions": len(reactions)}, **(meta or {})}
    loss = TSFlowLoss(config, distance_weight=settings.distance_weight)
    trainer = Trainer(model, loss, settings.train_config(out_dir), meta=full_meta)
    result = trainer.fit(_batch_fn(graphs, settings.batch_size), resume=resume)
    return trainer, result


def export_checkpoint(path: str | Path, model: TSVelocity, *, step: int = 0,
                      meta: dict[str, Any] | None = None) -> Path:
    """Write a small inference checkpoint (weights of ``model`` only, config as JSON meta)."""
    full = {"kind": CHECKPOINT_KIND, "model": model.config.to_dict(), **(meta or {})}
    return save_checkpoint(path, model, meta=full, step=step)


# --------------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class GeneratedTS:
    """Generated TSs of one reaction, ranked (best first), in the user's reactant frame.

    ``scores`` are the rank scores of ``rule`` (lower is better; A for medoid, eV/A for fmax);
    ``seconds`` the generation time of this reaction's share of the batch; ``nfe`` the network
    evaluations of the solver.
    """

    best: Atoms
    samples: tuple[Atoms, ...]
    scores: tuple[float, ...]
    rule: str
    seconds: float
    nfe: int


class TSGenerator:
    """A trained TS velocity field with its settings, ready to generate.

    Parameters
    ----------
    model : a :class:`TSVelocity` (put in eval mode here).
    meta : the checkpoint's meta (``default_steps``, ``default_method``, data provenance).
    """

    def __init__(self, model: TSVelocity, *, meta: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.meta = dict(meta or {})
        self.default_steps = int(self.meta.get("default_steps", 8))
        self.default_method = str(self.meta.get("default_method", "euler"))

    @property
    def config(self) -> TSModelConfig:
        return self.model.config

    @property
    def elements(self) -> tuple[int, ...]:
        return self.model.config.elements

    @classmethod
    def load(cls, path: str | Path | None = None) -> TSGenerator:
        """Load an exported or Trainer checkpoint (the shipped one when ``path`` is None)."""
        path = DEFAULT_CHECKPOINT if path is None else Path(path)
        if not path.is_file():
            hint = (" (the shipped checkpoint is missing from this installation; reinstall sciflow "
                    "or pass --checkpoint)" if path == DEFAULT_CHECKPOINT else "")
            raise FileNotFoundError(f"TS checkpoint {str(path)!r} does not exist{hint}")
        ck = load_checkpoint(path)
        if ck.meta.get("kind") != CHECKPOINT_KIND or "model" not in ck.meta:
            raise TSInputError(f"{str(path)!r} is a sciflow checkpoint but not of a TS generator "
                               f"(meta kind {ck.meta.get('kind')!r}, expected {CHECKPOINT_KIND!r})")
        model = TSVelocity(TSModelConfig.from_dict(ck.meta["model"]))
        model.load_state_dict(ck.state_dict)
        return cls(model, meta=ck.meta)

    def prepare(self, reactant: Atoms, product: Atoms) -> Endpoints:
        """Check R and P against this model and put them in its frame (:mod:`.data`)."""
        return prepare_endpoints(reactant, product, elements=self.elements)

    @torch.no_grad()
    def sample(self, endpoints: Sequence[Endpoints], *, samples: int = 1, steps: int | None = None,
               method: str | None = None, seed: int = 0) -> tuple[list[np.ndarray], int]:
        """Raw samples in the model frame: per reaction an array (samples, N, 3); and the NFE.

        All reactions and samples are integrated as one ragged batch.
        """
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        steps = self.default_steps if steps is None else steps
        method = method or self.default_method
        if not endpoints:
            return [], 0
        dtype = next(self.model.parameters()).dtype
        cond, ids = stack_endpoints(endpoints, elements=self.elements, repeats=samples, dtype=dtype)
        gen = torch.Generator().manual_seed(seed)
        x0 = self.model.sample_source(cond, ids, generator=gen)
        sol = odeint(self.model.velocity, x0, method=method, steps=steps, cond=cond, batch=ids)
        x = sol.x.double().numpy()
        out, start = [], 0
        for ep in endpoints:
            n = len(ep.numbers)
            block = x[start:start + n * samples].reshape(samples, n, 3)
            out.append(block)
            start += n * samples
        return out, sol.nfe

    def generate_many(self, pairs: Sequence[tuple[Atoms, Atoms]], *, samples: int = 1,
                      steps: int | None = None, method: str | None = None, seed: int = 0,
                      rule: RankRule = "medoid", calculator: CalculatorFactory | None = None,
                      ) -> list[GeneratedTS]:
        """Generate TSs for many (reactant, product) pairs in one batch; see :meth:`generate`."""
        eps = [self.prepare(r, p) for r, p in pairs]
        t0 = time.perf_counter()
        raw, nfe = self.sample(eps, samples=samples, steps=steps, method=method, seed=seed)
        share = (time.perf_counter() - t0) / max(len(eps), 1)
        out = []
        for ep, block in zip(eps, raw):
            atoms = [Atoms(numbers=ep.numbers, positions=x + ep.origin) for x in block]
            order, scores = rank(atoms, rule=rule, calculator=calculator)
            ranked = tuple(atoms[k] for k in order)
            out.append(GeneratedTS(best=ranked[0], samples=ranked,
                                   scores=tuple(float(scores[k]) for k in order), rule=rule,
                                   seconds=share, nfe=nfe))
        return out

    def generate(self, reactant: Atoms, product: Atoms, *, samples: int = 1,
                 steps: int | None = None, method: str | None = None, seed: int = 0,
                 rule: RankRule = "medoid", calculator: CalculatorFactory | None = None,
                 ) -> GeneratedTS:
        """Generate the TS of one reaction from its reactant and product (one atom order).

        Returns the ranked samples in the reactant's coordinate frame (the generated TS sits on
        the user's reactant: same centroid, the orientation P was aligned to).
        """
        return self.generate_many([(reactant, product)], samples=samples, steps=steps,
                                  method=method, seed=seed, rule=rule, calculator=calculator)[0]


def load_generator(path: str | Path | None = None) -> TSGenerator:
    """:meth:`TSGenerator.load`: the shipped checkpoint by default."""
    return TSGenerator.load(path)


def generate_ts(reactant: Atoms, product: Atoms, *, samples: int = 1, steps: int | None = None,
                refine_with: CalculatorFactory | None = None, checkpoint: str | Path | None = None,
                seed: int = 0) -> Atoms:
    """Generate (and optionally Sella-refine) the TS of R -> P with the shipped model; one call.

    Example
    -------
    >>> from ase.io import read                                              # doctest: +SKIP
    >>> ts = generate_ts(read("r.xyz"), read("p.xyz"), samples=4)            # doctest: +SKIP
    """
    gen = load_generator(checkpoint)
    result = gen.generate(reactant, product, samples=samples, steps=steps, seed=seed)
    if refine_with is None:
        return result.best
    return refine(result.best, reactant=reactant, product=product, calculator=refine_with,
                  compare_idpp=False).atoms


# ---------------------------------------------------------------------------------- ranking


def _max_force(atoms: Atoms, calculator: CalculatorFactory) -> float:
    a = atoms.copy()
    a.calc = calculator()
    try:
        return float(np.linalg.norm(a.get_forces(), axis=1).max())
    except Exception:  # an SCF that fails on a distorted sample ranks that sample last
        return math.inf


def rank(samples: Sequence[Atoms], *, rule: RankRule = "medoid",
         calculator: CalculatorFactory | None = None) -> tuple[list[int], np.ndarray]:
    """Order samples of one reaction best first; returns (order, score per sample).

    medoid: score_k = mean_{l != k} RMSD(x_k, x_l) (Kabsch, no mirrors), 0 for one sample;
    fmax: score_k = max_i |F_i(x_k)| with ``calculator`` (inf when the calculation fails).
    Ties keep the sampling order.
    """
    n = len(samples)
    if n == 0:
        raise ValueError("rank() needs at least one sample")
    if rule == "medoid":
        if n == 1:
            scores = np.zeros(1)
        else:
            pos = torch.as_tensor(np.stack([s.get_positions() for s in samples]))
            m = pos.shape[1]
            i, j = torch.triu_indices(n, n, 1)
            batch = torch.arange(i.numel()).repeat_interleave(m)
            d = kabsch_rmsd(pos[i].reshape(-1, 3), pos[j].reshape(-1, 3), batch).numpy()
            full = np.zeros((n, n))
            full[i.numpy(), j.numpy()] = d
            full = full + full.T
            scores = full.sum(1) / (n - 1)
    elif rule == "fmax":
        if calculator is None:
            raise ValueError("rank(rule='fmax') needs a calculator factory, e.g. "
                             "sciflow.datasets.reactions.GFN2()")
        scores = np.array([_max_force(s, calculator) for s in samples])
    else:
        raise ValueError(f"rule must be 'medoid' or 'fmax', got {rule!r}")
    return sorted(range(n), key=lambda k: (scores[k], k)), scores


# ------------------------------------------------------------------------------- refinement


@dataclass(frozen=True)
class RefinementResult:
    """Sella saddle refinement of a generated TS, and (optionally) the same from the IDPP guess.

    ``steps`` are Sella optimiser steps (each one gradient); ``steps_saved`` = IDPP-start steps
    minus generated-start steps (None without the comparison). Energies in eV, ``fmax`` in eV/A.
    """

    atoms: Atoms
    converged: bool
    steps: int
    fmax: float
    energy: float
    start_energy: float
    seconds: float
    idpp_atoms: Atoms | None = None
    idpp_converged: bool | None = None
    idpp_steps: int | None = None
    idpp_seconds: float | None = None

    @property
    def steps_saved(self) -> int | None:
        return None if self.idpp_steps is None else self.idpp_steps - self.steps


def _sella(atoms: Atoms, calculator: CalculatorFactory, fmax: float, max_steps: int
           ) -> tuple[Atoms, bool, int, float]:
    from sella import Sella

    a = Atoms(numbers=atoms.numbers, positions=atoms.get_positions())
    a.calc = calculator()
    opt = Sella(a, order=1, internal=True, logfile=None, trajectory=None)
    try:
        converged, steps = bool(opt.run(fmax=fmax, steps=max_steps)), int(opt.nsteps)
    except RuntimeError:
        # Sella gives up when its internal-coordinate update does not converge (a distorted
        # start): a failed search, charged the whole step budget like any other that fails
        converged, steps = False, max_steps
    return a, converged, steps, float(np.linalg.norm(a.get_forces(), axis=1).max())


def idpp_guess(reactant: Atoms, product: Atoms, *, calculator: CalculatorFactory,
               images: int = 9) -> Atoms:
    """Highest-energy interior image of an IDPP path from R to P (P Kabsch-aligned onto R first).

    The classic TS guess and the start of the builder's CI-NEB (Smidstrup et al. 2014).
    """
    from ase.mep import NEB

    ep = prepare_endpoints(reactant, product, elements=sorted(set(int(z) for z in reactant.numbers)))
    ends = [Atoms(numbers=ep.numbers, positions=ep.reactant),
            Atoms(numbers=ep.numbers, positions=ep.product)]
    path = [ends[0]] + [ends[0].copy() for _ in range(images)] + [ends[1]]
    neb = NEB(path, method="improvedtangent")
    try:
        neb.interpolate("idpp")
    except Exception:  # IDPP can fail on degenerate geometries; the straight line remains
        neb.interpolate()
    best, best_e = None, -math.inf
    for img in path[1:-1]:
        a = img.copy()
        a.calc = calculator()
        try:
            e = float(a.get_potential_energy())
        except Exception:
            continue
        if e > best_e:
            best, best_e = a, e
    if best is None:
        raise RuntimeError("the calculator failed on every IDPP image")
    return Atoms(numbers=best.numbers, positions=best.get_positions() + ep.origin)


def refine(ts: Atoms, *, reactant: Atoms | None = None, product: Atoms | None = None,
           calculator: CalculatorFactory | None = None, fmax: float = 0.01, max_steps: int = 500,
           compare_idpp: bool = True) -> RefinementResult:
    """Sella (order 1, internal coordinates) from ``ts``; optionally also from the IDPP guess.

    ``calculator`` is a zero-argument factory of ASE calculators (default GFN2-xTB via tblite,
    ``sciflow.datasets.reactions.GFN2()``). ``compare_idpp`` needs ``reactant`` and ``product``.
    """
    if calculator is None:
        from sciflow.datasets.reactions import GFN2

        calculator = GFN2()
    if compare_idpp and (reactant is None or product is None):
        raise ValueError("refine(compare_idpp=True) needs reactant= and product= for the IDPP guess")
    start = ts.copy()
    start.calc = calculator()
    e0 = float(start.get_potential_energy())
    t0 = time.perf_counter()
    atoms, ok, steps, fm = _sella(ts, calculator, fmax, max_steps)
    seconds = time.perf_counter() - t0
    extra: dict[str, Any] = {}
    if compare_idpp:
        t1 = time.perf_counter()
        guess = idpp_guess(reactant, product, calculator=calculator)
        a2, ok2, steps2, _ = _sella(guess, calculator, fmax, max_steps)
        extra = dict(idpp_atoms=a2, idpp_converged=ok2, idpp_steps=steps2,
                     idpp_seconds=time.perf_counter() - t1)
    return RefinementResult(atoms=atoms, converged=ok, steps=steps, fmax=fm,
                            energy=float(atoms.get_potential_energy()), start_energy=e0,
                            seconds=seconds, **extra)


# ------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class ReactionScore:
    """One test reaction: RMSDs (A, Kabsch, no mirrors, uncapped) and energies (eV) of the TS.

    ``rmsd_tsgen`` is TS-GEN's variant (mirror images allowed, capped at 1 A), for comparison only.
    Energies are NaN when not computed or when the calculator failed on the geometry.
    """

    id: str
    family: str
    atoms: int
    rmsd: float
    rmsd_tsgen: float
    rmsd_midpoint: float
    energy_generated: float = math.nan
    energy_reference: float = math.nan

    @property
    def energy_error(self) -> float:
        """Signed E(generated) - E(reference), eV."""
        return self.energy_generated - self.energy_reference


@dataclass(frozen=True)
class EvaluationSummary:
    """Aggregates over the reactions of an evaluation (RMSD in A, energies in kcal/mol)."""

    reactions: int
    rmsd_mean: float
    rmsd_median: float
    rmsd_below_0_1: float
    rmsd_midpoint_median: float
    tsgen_rmsd_mean: float
    energies: int
    energy_failures: int
    abs_de_mean: float
    abs_de_median: float
    abs_de_below_1_58: float
    tsgen_signed_de_mean: float
    tsgen_signed_below_1_58: float


@dataclass(frozen=True)
class Evaluation:
    """Per-reaction scores, the summary, and the generation settings and timings."""

    rows: tuple[ReactionScore, ...]
    summary: EvaluationSummary
    samples: int
    steps: int
    method: str
    seconds_batched: float
    seconds_single: float | None

    def to_json(self) -> str:
        return json.dumps({"summary": asdict(self.summary), "rows": [asdict(r) for r in self.rows],
                           "samples": self.samples, "steps": self.steps, "method": self.method,
                           "seconds_batched": self.seconds_batched,
                           "seconds_single": self.seconds_single}, indent=1)


def pair_rmsd(x: np.ndarray, y: np.ndarray) -> float:
    return float(kabsch_rmsd(torch.as_tensor(x), torch.as_tensor(y))[0])


def single_point(atoms: Atoms, calculator: CalculatorFactory) -> float:
    a = Atoms(numbers=atoms.numbers, positions=atoms.get_positions())
    a.calc = calculator()
    try:
        return float(a.get_potential_energy())
    except Exception:  # SCF failure on a distorted geometry: counted as an energy failure
        return math.nan


def score(reaction: Any, generated: Atoms, *, calculator: CalculatorFactory | None = None
          ) -> ReactionScore:
    """Score one generated TS against a reaction's reference TS (see :class:`ReactionScore`)."""
    ref = reaction.transition_state.get_positions()
    x = generated.get_positions()
    ep = prepare_endpoints(reaction.reactant, reaction.product,
                           elements=sorted(set(int(z) for z in reaction.numbers)), min_distance=0.0)
    mid = 0.5 * (ep.reactant + ep.product)  # the (R+P)/2 baseline; RMSD ignores the frame
    rmsd = pair_rmsd(x, ref)
    tsgen = min(1.0, rmsd, pair_rmsd(-x, ref))
    e_gen = e_ref = math.nan
    if calculator is not None:
        e_gen = single_point(generated, calculator)
        e_ref = single_point(reaction.transition_state, calculator)
    return ReactionScore(id=reaction.id, family=reaction.family, atoms=len(reaction.numbers),
                         rmsd=rmsd, rmsd_tsgen=tsgen, rmsd_midpoint=pair_rmsd(mid, ref),
                         energy_generated=e_gen, energy_reference=e_ref)


def summarize(rows: Sequence[ReactionScore]) -> EvaluationSummary:
    """Mean / median / fractions over the rows (NaN energies are counted as failures)."""
    r = np.array([x.rmsd for x in rows])
    de = np.array([x.energy_error for x in rows]) * EV_TO_KCAL
    attempted = np.array([not math.isnan(x.energy_reference) for x in rows], dtype=bool)
    ok = attempted & np.isfinite(de)
    good = de[ok]
    nan = math.nan

    def stat(f: Callable[[np.ndarray], float], a: np.ndarray) -> float:
        return float(f(a)) if a.size else nan

    n_att = int(attempted.sum())
    return EvaluationSummary(
        reactions=len(rows), rmsd_mean=stat(np.mean, r), rmsd_median=stat(np.median, r),
        rmsd_below_0_1=stat(lambda a: np.mean(a < 0.1), r),
        rmsd_midpoint_median=stat(np.median, np.array([x.rmsd_midpoint for x in rows])),
        tsgen_rmsd_mean=stat(np.mean, np.array([x.rmsd_tsgen for x in rows])),
        energies=int(ok.sum()), energy_failures=n_att - int(ok.sum()),
        abs_de_mean=stat(np.mean, np.abs(good)), abs_de_median=stat(np.median, np.abs(good)),
        # failures count as misses in the fraction
        abs_de_below_1_58=float(np.sum(np.abs(good) < CHEMICAL_ACCURACY_KCAL) / n_att) if n_att else nan,
        tsgen_signed_de_mean=stat(np.mean, good),
        tsgen_signed_below_1_58=float(np.sum(good < CHEMICAL_ACCURACY_KCAL) / n_att) if n_att else nan,
    )


def evaluate(generator: TSGenerator, reactions: Sequence[Any], *, samples: int = 1,
             steps: int | None = None, method: str | None = None, seed: int = 0,
             calculator: CalculatorFactory | None = None, time_single: bool = True,
             ) -> Evaluation:
    """Generate the TS of every reaction (one batch) and score it against the reference.

    With ``calculator`` the generated and reference TSs get single-point energies. Timings:
    ``seconds_batched`` = wall time of the one batched call / reactions; ``seconds_single`` =
    mean wall time of one-reaction calls (``time_single``).
    """
    reactions = list(reactions)
    if not reactions:
        raise ValueError("evaluate() got no reactions")
    steps = generator.default_steps if steps is None else steps
    method = method or generator.default_method
    pairs = [(r.reactant, r.product) for r in reactions]
    t0 = time.perf_counter()
    results = generator.generate_many(pairs, samples=samples, steps=steps, method=method, seed=seed)
    batched = (time.perf_counter() - t0) / len(reactions)
    single = None
    if time_single:
        t1 = time.perf_counter()
        for pair in pairs:
            generator.generate_many([pair], samples=samples, steps=steps, method=method, seed=seed)
        single = (time.perf_counter() - t1) / len(reactions)
    rows = tuple(score(r, g.best, calculator=calculator) for r, g in zip(reactions, results))
    return Evaluation(rows=rows, summary=summarize(rows), samples=samples, steps=steps,
                      method=method, seconds_batched=batched, seconds_single=single)

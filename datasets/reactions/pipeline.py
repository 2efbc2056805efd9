"""Verify one candidate reaction: relax, path, saddle, frequencies and a connectivity check.

The chain (the working recipe recorded in the project's transition-state reference sheet):

1. relax the reactant (seed geometry) and a product built from it with a bond-graph force field
   (harmonic bonds of the product graph + soft repulsion), then check both bond graphs;
2. Kabsch-align P onto R, IDPP path (Smidstrup et al., J. Chem. Phys. 140, 214106, 2014),
   climbing-image NEB (Henkelman, Uberuaga, Jonsson, J. Chem. Phys. 113, 9901, 2000) with ASE's
   ODE12r optimiser (Makri, Ortner, Kermode, J. Chem. Phys. 150, 094109, 2019), k = 0.5 eV/A^2;
3. Sella saddle refinement of the highest image, order 1 (Hermes et al., J. Chem. Theory Comput.
   18, 6974, 2022);
4. finite-difference Hessian: exactly one imaginary mode above ``imag_threshold`` cm^-1 and none
   between ``noise_threshold`` and it (a spurious second mode triggers one Sella restart);
5. nudge both ways along the imaginary mode and minimise: the two ends must carry exactly the
   intended R and P bond graphs (atom-mapped; ``origin="intended"``). With ``accept_discovered``
   a saddle that joins two other closed-shell minima is kept as the reaction it really is
   (``origin="discovered"``, R = the end with the seed's graph when there is one). These minima
   become the stored R and P, so the triple is mutually consistent and the barrier is measured
   from the connected conformer;
6. every bond that forms or breaks between the two ends must be partial at the saddle:
   ``partial_min_ratio`` x its length where bonded <= d_TS <= ``partial_max_ratio`` (or
   ``partial_max_ratio_h`` for bonds to H) x the covalent-radius sum (but never below the bonded
   length + ``partial_min_stretch``, which matters for H-H), and at most
   ``partial_max_progress`` of the way from the bonded to the non-bonded end's distance (this
   removes loose "H between two atoms" saddles and bonds that do not change at the saddle).

Every failure is a :class:`Rejected` with a short machine-readable ``reason``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii
from scipy.optimize import minimize

from .align import kabsch_align
from .candidates import Candidate
from .molgraph import Graph, bond_graph, bond_orders, topological_distances

__all__ = [
    "PipelineSettings",
    "Rejected",
    "CandidateTimeout",
    "VerifiedPath",
    "verify_candidate",
    "harmonic_frequencies",
    "graph_force_field_positions",
]

CalculatorFactory = Callable[[], Calculator]


class Rejected(Exception):
    """A candidate failed a check; ``reason`` is a short key, ``detail`` says more."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CandidateTimeout(Rejected):
    """The candidate ran past its wall-time limit."""

    def __init__(self, stage: str, limit: float) -> None:
        super().__init__("timeout", f"over {limit:.0f} s during {stage}")


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Settings of the verification chain (lengths in A, energies in eV, forces in eV/A)."""

    relax_fmax: float = 0.02
    relax_steps: int = 600
    neb_images: int = 9
    neb_k: float = 0.5
    neb_fmax: float = 0.1
    neb_steps: int = 250
    saddle_fmax: float = 0.005
    saddle_steps: int = 400
    hessian_delta: float = 0.005
    imag_threshold: float = 50.0
    noise_threshold: float = 30.0
    nudge: float = 0.12
    partial_min_ratio: float = 1.05
    partial_max_ratio: float = 1.8
    partial_max_ratio_h: float = 1.65
    partial_max_progress: float = 0.95
    partial_min_stretch: float = 0.5
    bond_scale: float = 1.3
    product_embeddings: int = 2
    max_barrier_ev: float = 6.5
    time_limit: float = 300.0
    accept_discovered: bool = True

    def as_string(self) -> str:
        """``key=value;...`` for provenance records."""
        return ";".join(f"{k}={getattr(self, k)}" for k in self.__dataclass_fields__)


@dataclass(frozen=True)
class VerifiedPath:
    """A verified R / TS / P triple on one atom order, with energies (eV) and the saddle mode."""

    reactant: Atoms
    transition_state: Atoms
    product: Atoms
    energies: tuple[float, float, float]
    imaginary_frequency: float
    frequencies: np.ndarray
    neb_converged: bool
    stages: dict[str, float]
    r_graph: Graph
    p_graph: Graph
    origin: str


class _Clock:
    def __init__(self, limit: float) -> None:
        self.start = time.monotonic()
        self.limit = limit
        self.stage = "start"
        self.stages: dict[str, float] = {}
        self._t = self.start

    def check(self) -> None:
        if time.monotonic() - self.start > self.limit:
            raise CandidateTimeout(self.stage, self.limit)

    def enter(self, stage: str) -> None:
        now = time.monotonic()
        self.stages[self.stage] = self.stages.get(self.stage, 0.0) + now - self._t
        self._t = now
        self.stage = stage
        self.check()


def _energy(atoms: Atoms) -> float:
    return float(atoms.get_potential_energy())


def _relax(atoms: Atoms, clock: _Clock, s: PipelineSettings) -> bool:
    from ase.optimize import LBFGS

    opt = LBFGS(atoms, logfile=None)
    opt.attach(clock.check, interval=1)
    return bool(opt.run(fmax=s.relax_fmax, steps=s.relax_steps))


def graph_force_field_positions(numbers: np.ndarray, positions: np.ndarray, graph: Graph) -> np.ndarray:
    """Move atoms from ``positions`` toward a geometry that has the bond graph ``graph``.

    E = sum_bonds (d - r0)^2 + sum_{1-3} relu(1.55 r0_ij - d)^2 + sum_other relu(rmin - d)^2,
    r0 = sum of covalent radii, rmin = max(2.2 A, 1.9 r0). A cheap start for the product,
    kept close to the reactant so the path stays short. Shapes: (N, 3) -> (N, 3).
    """
    n = len(numbers)
    radii = covalent_radii[numbers]
    r0 = radii[:, None] + radii[None, :]
    hops = topological_distances(n, graph)
    iu = np.triu_indices(n, 1)
    h = hops[iu]
    r0p = r0[iu]
    is_bond = h == 1
    is_13 = h == 2
    floor = np.where(is_13, 1.55 * r0p, np.maximum(2.2, 1.9 * r0p))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        p = x.reshape(n, 3)
        diff = p[:, None, :] - p[None, :, :]
        d = np.linalg.norm(diff, axis=-1)[iu]
        g_d = np.zeros_like(d)
        e = 0.0
        db = d - r0p
        e += float(np.sum(np.where(is_bond, db**2, 0.0)))
        g_d += np.where(is_bond, 2 * db, 0.0)
        rep = np.where(~is_bond, np.maximum(floor - d, 0.0), 0.0)
        e += float(np.sum(rep**2))
        g_d -= 2 * rep
        unit = diff[iu] / np.maximum(d, 1e-9)[:, None]
        grad = np.zeros((n, 3))
        np.add.at(grad, iu[0], g_d[:, None] * unit)
        np.add.at(grad, iu[1], -g_d[:, None] * unit)
        return e, grad.ravel()

    res = minimize(fun, positions.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    return res.x.reshape(n, 3)


def harmonic_frequencies(atoms: Atoms, *, delta: float = 0.005, indices: np.ndarray | None = None,
                         project_rigid: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic frequencies (cm^-1, imaginary as negative) and Cartesian modes at a geometry.

    Central finite differences of the forces give the Hessian H over the moving atoms
    (``indices``, default all); the mass-weighted M^-1/2 H M^-1/2 is (for free molecules,
    ``project_rigid``) projected onto the complement of rigid translations and rotations (Eckart),
    diagonalised, and eigenvalues converted by nu = sqrt(lambda) / (2 pi c).
    Returns frequencies (3N - 6,) sorted ascending (3N - 5 for linear; 3 len(indices) without
    projection) and modes (K, N, 3) as unit un-mass-weighted displacement directions.
    """
    from ase import units

    pos0 = atoms.get_positions().copy()
    n_all = len(atoms)
    idx = np.arange(n_all) if indices is None else np.asarray(indices, dtype=int)
    n = len(idx)
    hess = np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        a, c = divmod(k, 3)
        cols = []
        for sign in (1.0, -1.0):
            p = pos0.copy()
            p[idx[a], c] += sign * delta
            atoms.set_positions(p)
            cols.append(atoms.get_forces()[idx].ravel())
        hess[k] = -(cols[0] - cols[1]) / (2 * delta)
    atoms.set_positions(pos0)
    hess = 0.5 * (hess + hess.T)
    masses = atoms.get_masses()[idx]
    m = np.repeat(masses, 3)
    mw = hess / np.sqrt(np.outer(m, m))
    conv = np.sqrt(units._e / units._amu) * 1e10 / (2 * np.pi * units._c * 100)  # sqrt(eV/A^2/amu) -> cm^-1
    if not project_rigid:
        lam, vec = np.linalg.eigh(mw)
        return _to_output(lam, vec, m, conv, idx, n_all)
    pos0 = pos0[idx]
    # rigid-body basis in mass-weighted coordinates
    com = (masses[:, None] * pos0).sum(0) / masses.sum()
    x = pos0 - com
    basis = []
    for c in range(3):
        v = np.zeros((n, 3))
        v[:, c] = 1.0
        basis.append((v * np.sqrt(masses)[:, None]).ravel())
    for c in range(3):
        axis = np.zeros(3)
        axis[c] = 1.0
        v = np.cross(axis, x)
        basis.append((v * np.sqrt(masses)[:, None]).ravel())
    b = np.array(basis).T
    u, sv, _ = np.linalg.svd(b, full_matrices=False)
    u = u[:, sv > 1e-6 * sv.max()]
    proj = np.eye(3 * n) - u @ u.T
    mwp = proj @ mw @ proj
    lam, vec = np.linalg.eigh(mwp)
    # drop the rigid-body null space: the eigenvectors most inside span(u)
    overlap = np.linalg.norm(u.T @ vec, axis=0)
    keep = np.argsort(overlap)[: 3 * n - u.shape[1]]
    keep = np.sort(keep)
    lam, vec = lam[keep], vec[:, keep]
    return _to_output(lam, vec, m, conv, idx, n_all)


def _to_output(lam, vec, m, conv, idx, n_all):
    freqs = np.sign(lam) * np.sqrt(np.abs(lam)) * conv
    sub = (vec / np.sqrt(m)[:, None]).T.reshape(len(lam), -1, 3)
    modes = np.zeros((len(lam), n_all, 3))
    modes[:, idx] = sub
    modes /= np.linalg.norm(modes.reshape(len(modes), -1), axis=1)[:, None, None]
    return freqs, modes


def _product_starts(cand: Candidate, r_pos: np.ndarray, s: PipelineSettings):
    """Product start geometries: the graph force field from R, then RDKit embeddings."""
    from .candidates import embed_graph

    numbers = np.asarray(cand.numbers)
    yield graph_force_field_positions(numbers, r_pos, cand.p_graph)
    for seed in range(s.product_embeddings):
        pos = embed_graph(cand.numbers, cand.p_graph, random_seed=seed)
        if pos is not None:
            yield pos


def _graph_diff(got: Graph, want: Graph) -> str:
    extra = ",".join(f"{i}-{j}" for i, j in sorted(got - want))
    missing = ",".join(f"{i}-{j}" for i, j in sorted(want - got))
    return f"extra bonds [{extra}], missing bonds [{missing}]"


def _count_imag(freqs: np.ndarray, s: PipelineSettings) -> tuple[int, int]:
    strong = int(np.sum(freqs < -s.imag_threshold))
    middle = int(np.sum((freqs < -s.noise_threshold) & (freqs >= -s.imag_threshold)))
    return strong, middle


def _saddle(atoms: Atoms, clock: _Clock, s: PipelineSettings) -> bool:
    from sella import Sella

    opt = Sella(atoms, order=1, internal=True, logfile=None, trajectory=None)
    opt.attach(clock.check, interval=1)
    return bool(opt.run(fmax=s.saddle_fmax, steps=s.saddle_steps))


def verify_candidate(cand: Candidate, calculator: CalculatorFactory, settings: PipelineSettings | None = None,
                     *, reactant_cache: dict[str, Atoms] | None = None) -> VerifiedPath:
    """Run the verification chain on one candidate; raise :class:`Rejected` on any failure."""
    from ase.mep import NEB
    from ase.mep.neb import NEBOptimizer

    s = settings or PipelineSettings()
    clock = _Clock(s.time_limit)
    numbers = np.asarray(cand.numbers)

    def fresh(pos: np.ndarray) -> Atoms:
        a = Atoms(numbers=numbers, positions=pos)
        a.calc = calculator()
        return a

    def graph(a: Atoms) -> Graph:
        return bond_graph(a, scale=s.bond_scale)

    # 1. endpoints
    clock.enter("relax_reactant")
    if reactant_cache is not None and cand.seed in reactant_cache:
        reactant = fresh(reactant_cache[cand.seed].get_positions())
    else:
        reactant = fresh(np.asarray(cand.positions))
        if not _relax(reactant, clock, s):
            raise Rejected("reactant_not_converged")
        if reactant_cache is not None:
            reactant_cache[cand.seed] = reactant.copy()
    if graph(reactant) != cand.r_graph:
        raise Rejected("reactant_graph_changed", _graph_diff(graph(reactant), cand.r_graph))
    clock.enter("relax_product")
    product = None
    tried = []
    for start in _product_starts(cand, reactant.get_positions(), s):
        trial = fresh(kabsch_align(start, reactant.get_positions()))
        if not _relax(trial, clock, s):
            tried.append("not converged")
            continue
        if graph(trial) == cand.p_graph:
            product = trial
            break
        tried.append(_graph_diff(graph(trial), cand.p_graph))
    if product is None:
        raise Rejected("product_graph_changed", "; ".join(tried))
    product.set_positions(kabsch_align(product.get_positions(), reactant.get_positions(),
                                       masses=None))

    # 2. path
    clock.enter("neb")
    images = [reactant.copy() for _ in range(s.neb_images + 1)] + [product.copy()]
    for img in images:
        img.calc = calculator()
    neb = NEB(images, k=s.neb_k, climb=True, method="improvedtangent")
    try:
        neb.interpolate("idpp")
    except Exception:  # IDPP can fail on degenerate geometries; a straight line still works
        neb.interpolate()
    opt = NEBOptimizer(neb, method="ODE", logfile=None)
    opt.attach(clock.check, interval=1)
    neb_ok = bool(opt.run(fmax=s.neb_fmax, steps=s.neb_steps))
    e_path = [_energy(img) for img in images[1:-1]]
    top = int(np.argmax(e_path)) + 1
    if e_path[top - 1] - _energy(reactant) > s.max_barrier_ev:
        raise Rejected("barrier_too_high", f"NEB top {e_path[top - 1] - _energy(reactant):.1f} eV")

    # 3-4. saddle + frequencies, one restart on a spurious second mode
    ts = fresh(images[top].get_positions())
    freqs = modes = None
    for attempt in range(2):
        clock.enter("saddle")
        if not _saddle(ts, clock, s):
            raise Rejected("saddle_not_converged")
        clock.enter("frequencies")
        freqs, modes = harmonic_frequencies(ts, delta=s.hessian_delta)
        strong, middle = _count_imag(freqs, s)
        if strong == 1 and middle == 0:
            break
        if strong == 0:
            raise Rejected("no_imaginary_mode", f"lowest {freqs[0]:.0f} cm-1")
        if attempt == 1:
            raise Rejected("extra_imaginary_modes", f"{strong} above {s.imag_threshold:.0f}, {middle} between")
        # push off the second mode and refine again
        ts.set_positions(ts.get_positions() + 0.1 * modes[1] / np.abs(modes[1]).max())
    assert freqs is not None and modes is not None

    # 5. connectivity: nudge both ways along the imaginary mode and minimise
    clock.enter("connectivity")
    mode = modes[0] / np.abs(modes[0]).max()
    ends = []
    for sign in (1.0, -1.0):
        end = fresh(ts.get_positions() + sign * s.nudge * mode)
        if not _relax(end, clock, s):
            raise Rejected("irc_end_not_converged")
        ends.append(end)
    g = [graph(e) for e in ends]
    seen = ["R" if x == cand.r_graph else "P" if x == cand.p_graph else "other" for x in g]
    if g[0] == g[1]:
        raise Rejected("ends_identical", f"both ends reached {seen[0]}")
    if {g[0], g[1]} == {cand.r_graph, cand.p_graph}:
        origin = "intended"
        flip = g[0] != cand.r_graph
    elif s.accept_discovered and all(bond_orders(numbers, x) is not None for x in g):
        # a verified saddle between two closed-shell minima other than the intended pair
        origin = "discovered"
        if g[1] == cand.r_graph:
            flip = True
        elif g[0] == cand.r_graph:
            flip = False
        else:
            flip = _energy(ends[1]) < _energy(ends[0])
    else:
        raise Rejected("wrong_connectivity", f"ends reached {seen[0]} and {seen[1]}")
    r_end, p_end = (ends[1], ends[0]) if flip else (ends[0], ends[1])
    r_graph, p_graph = graph(r_end), graph(p_end)

    # 6. every bond that breaks or forms is partial at the saddle
    clock.enter("checks")
    d_ts = ts.get_all_distances()
    d_r = r_end.get_all_distances()
    d_p = p_end.get_all_distances()
    radii = covalent_radii[numbers]
    changed = [(e, d_r, d_p) for e in sorted(r_graph - p_graph)] + [(e, d_p, d_r) for e in sorted(p_graph - r_graph)]
    for (i, j), bonded, apart in changed:
        is_h = numbers[i] == 1 or numbers[j] == 1
        hi = (s.partial_max_ratio_h if is_h else s.partial_max_ratio) * (radii[i] + radii[j])
        hi = max(hi, bonded[i, j] + s.partial_min_stretch)  # short bonds (H-H) stretch by absolute amounts
        lo = s.partial_min_ratio * bonded[i, j]
        progress = (d_ts[i, j] - bonded[i, j]) / max(apart[i, j] - bonded[i, j], 1e-6)
        if not (lo <= d_ts[i, j] <= hi and progress <= s.partial_max_progress):
            raise Rejected(
                "bond_not_partial",
                f"{origin} bond {i}-{j} at {d_ts[i, j]:.2f} A (bonded {bonded[i, j]:.2f}, apart "
                f"{apart[i, j]:.2f}); expected {lo:.2f}-{hi:.2f} and progress <= {s.partial_max_progress}",
            )
    e_r, e_ts, e_p = _energy(r_end), _energy(ts), _energy(p_end)
    if not (e_ts > e_r and e_ts > e_p):
        raise Rejected("saddle_below_end", f"E_TS-E_R={e_ts - e_r:.3f} eV, E_TS-E_P={e_ts - e_p:.3f} eV")
    clock.enter("done")

    ref = r_end.get_positions()
    ref = ref - ref.mean(0)
    out = []
    for a in (r_end, ts, p_end):
        pos = kabsch_align(a.get_positions(), ref) if a is not r_end else ref
        out.append(Atoms(numbers=numbers, positions=pos))
    return VerifiedPath(
        reactant=out[0], transition_state=out[1], product=out[2],
        energies=(e_r, e_ts, e_p), imaginary_frequency=float(-freqs[0]),
        frequencies=freqs, neb_converged=neb_ok, stages=dict(clock.stages),
        r_graph=r_graph, p_graph=p_graph, origin=origin,
    )

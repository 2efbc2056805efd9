"""Verify one candidate reaction: relax, path, saddle, frequencies and a connectivity check.

The chain (the working recipe recorded in the project's transition-state reference sheet):

1. relax the reactant (seed geometry) and a product built from it, then check both bond graphs.
   Bond edits and templates build the product with a bond-graph force field (harmonic bonds of
   the product graph + soft repulsion) or RDKit embeddings; conformational and inversion
   candidates rotate the relaxed reactant about the key bond (both senses for rotations other
   than 180 degrees) or mirror it (the whole molecule, then the centre alone) through the plane
   of the centre's neighbours, and the relaxed product must keep the bond graph with its key
   coordinate changed (:mod:`.conformers`);
2. TS guesses, when a provider is given (a callable ``(reactant, product) -> [Atoms, ...]``, e.g.
   a trained generator): each goes straight to step 4; the first one that passes every check
   wins (``route = "guess<k>"``). Otherwise, or when none verifies (``route = "neb"``): Kabsch-align P
   onto R, IDPP path (Smidstrup et al., J. Chem. Phys. 140, 214106, 2014; for rotations an
   interpolation in the key dihedral instead), climbing-image NEB (Henkelman, Uberuaga, Jonsson,
   J. Chem. Phys. 113, 9901, 2000) with ASE's ODE12r optimiser (Makri, Ortner, Kermode,
   J. Chem. Phys. 150, 094109, 2019), k = 0.5 eV/A^2, and its highest image. Inversions start
   instead from the planar centre (``route = "planar"``): the centre halfway to its mirror image,
   in its neighbours' plane, with the rest of the molecule relaxed around the fixed four atoms
   (a straight or IDPP path between a pyramid and its mirror image squashes the substituents);
3. (the route's start) ->
4. Sella saddle refinement, order 1 (Hermes et al., J. Chem. Theory Comput. 18, 6974, 2022);
5. finite-difference Hessian: exactly one imaginary mode above ``imag_threshold`` cm^-1 and none
   between ``noise_threshold`` and it (a spurious second mode triggers one Sella restart);
6. nudge both ways along the imaginary mode and minimise; the two minima must show the reaction
   (:mod:`.checks`: the intended R and P bond graphs, or two other closed-shell graphs as
   ``origin="discovered"`` with ``accept_discovered``; for conformational and inversion
   candidates one bond graph with the key coordinate changed). These minima become the stored R
   and P, so the triple is mutually consistent and the barrier is measured from the connected
   conformer;
7. every bond that forms or breaks is partial at the saddle (:func:`.checks.check_partial_bonds`:
   ``partial_min_ratio`` x its bonded length <= d_TS <= ``partial_max_ratio`` (or
   ``partial_max_ratio_h`` for bonds to H) x the covalent-radius sum, never below the bonded
   length + ``partial_min_stretch``, and at most ``partial_max_progress`` of the way to the
   non-bonded end's distance); the saddle lies above both ends and the barrier below
   ``max_barrier_ev`` (``conformer_max_barrier_ev`` for conformational and inversion kinds).

Every failure is a :class:`Rejected` with a short machine-readable ``reason``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii
from scipy.optimize import minimize

from .align import kabsch_align
from .candidates import Candidate
from .checks import (
    CONFORMER_KINDS,
    CandidateTimeout,
    Rejected,
    bond_edit_ends,
    check_partial_bonds,
    conformer_ends,
    key_coordinate_text,
)
from .hessian import harmonic_frequencies
from .molgraph import Graph, bond_graph, topological_distances

__all__ = [
    "PipelineSettings",
    "Rejected",
    "CandidateTimeout",
    "VerifiedPath",
    "GuessProvider",
    "verify_candidate",
    "harmonic_frequencies",
    "graph_force_field_positions",
]

CalculatorFactory = Callable[[], Calculator]
GuessProvider = Callable[[Atoms, Atoms], Sequence[Atoms]]
"""``(reactant, product) -> TS guesses``: relaxed R and P on one atom order in, guess geometries out."""


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Settings of the verification chain (lengths in A, energies in eV, forces in eV/A, angles in degrees)."""

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
    min_dihedral_change: float = 45.0
    key_partial_margin: float = 10.0
    pyramidal_end_min: float = 0.1
    conformer_max_barrier_ev: float = 3.0
    max_guesses: int = 4

    def as_string(self) -> str:
        """``key=value;...`` for provenance records."""
        return ";".join(f"{k}={getattr(self, k)}" for k in self.__dataclass_fields__)


@dataclass(frozen=True)
class VerifiedPath:
    """A verified R / TS / P triple on one atom order, with energies (eV) and the saddle mode.

    ``route`` says which start reached the saddle (``"neb"`` or ``"guess<k>"``), ``attempts``
    what happened to the guesses tried before it, ``guess_seconds`` the CPU seconds spent
    inside the guess provider; ``key_coordinate`` is the key dihedral or pyramidalisation of a
    conformational or inversion reaction (:func:`.checks.key_coordinate_text`).
    """

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
    kind: str = "bond_edit"
    key_coordinate: str = ""
    route: str = "neb"
    attempts: tuple[str, ...] = ()
    guess_seconds: float = 0.0


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


class _Chain:
    """One candidate's verification: shared state of the stages (calculator, clock, endpoints)."""

    def __init__(self, cand: Candidate, calculator: CalculatorFactory, s: PipelineSettings) -> None:
        self.cand = cand
        self.calculator = calculator
        self.s = s
        self.clock = _Clock(s.time_limit)
        self.numbers = np.asarray(cand.numbers)
        self.conformer = cand.kind in CONFORMER_KINDS
        self.r_value = self.p_value = 0.0

    def fresh(self, pos: np.ndarray) -> Atoms:
        a = Atoms(numbers=self.numbers, positions=pos)
        a.calc = self.calculator()
        return a

    def graph(self, a: Atoms) -> Graph:
        return bond_graph(a, scale=self.s.bond_scale)

    # 1. endpoints ---------------------------------------------------------------------------
    def endpoints(self, cache: dict[str, Atoms] | None) -> tuple[Atoms, Atoms]:
        cand, s, clock = self.cand, self.s, self.clock
        clock.enter("relax_reactant")
        cache_key = None if cand.kind == "template" else cand.seed  # templates start folded
        if cache is not None and cache_key in cache:
            reactant = self.fresh(cache[cache_key].get_positions())
        else:
            reactant = self.fresh(np.asarray(cand.positions))
            if not _relax(reactant, clock, s):
                raise Rejected("reactant_not_converged")
            if cache is not None and cache_key is not None:
                cache[cache_key] = reactant.copy()
        if self.graph(reactant) != cand.r_graph:
            raise Rejected("reactant_graph_changed", _graph_diff(self.graph(reactant), cand.r_graph))
        clock.enter("relax_product")
        product = None
        tried = []
        for start in self._product_starts(reactant.get_positions()):
            trial = self.fresh(kabsch_align(start, reactant.get_positions()))
            if not _relax(trial, clock, s):
                tried.append("not converged")
                continue
            if self.graph(trial) != cand.p_graph:
                tried.append(_graph_diff(self.graph(trial), cand.p_graph))
                continue
            if self.conformer and not self._key_changed(reactant.get_positions(), trial.get_positions()):
                tried.append("relaxed back to the reactant conformer")
                continue
            product = trial
            break
        if product is None:
            back = tried and all(t.startswith("relaxed back") for t in tried)
            raise Rejected("product_relaxed_back" if back else "product_graph_changed", "; ".join(tried))
        product.set_positions(kabsch_align(product.get_positions(), reactant.get_positions(), masses=None))
        if self.conformer:
            from .conformers import key_values

            self.r_value = key_values(cand.kind, cand.key, reactant.get_positions())
            self.p_value = key_values(cand.kind, cand.key, product.get_positions())
        return reactant, product

    def _product_starts(self, r_pos: np.ndarray):
        """Product starts: rotated / mirrored R, or the graph force field from R, then RDKit embeddings."""
        from .candidates import embed_graph
        from .conformers import invert_centre, mirror_through_plane, moving_side, rotate_about_bond

        cand = self.cand
        if cand.kind == "conformational":
            _, i, j, _ = cand.key
            side = moving_side(len(self.numbers), cand.r_graph, i, j)
            for angle in dict.fromkeys((cand.angle, -cand.angle if abs(cand.angle) < 180.0 else cand.angle)):
                yield rotate_about_bond(r_pos, i, j, side, angle)
            return
        if cand.kind == "inversion":
            # the mirror image of the whole molecule (the invertomer when nothing else is chiral), then
            # the centre alone mirrored through its neighbours' plane
            yield mirror_through_plane(r_pos, cand.key[1:])
            yield invert_centre(r_pos, cand.key[0], cand.key[1:])
            return
        yield graph_force_field_positions(self.numbers, r_pos, cand.p_graph)
        for seed in range(self.s.product_embeddings):
            pos = embed_graph(cand.numbers, cand.p_graph, random_seed=seed)
            if pos is not None:
                yield pos

    def _key_changed(self, r_pos: np.ndarray, p_pos: np.ndarray) -> bool:
        from .conformers import angle_difference, key_values

        a = key_values(self.cand.kind, self.cand.key, r_pos)
        b = key_values(self.cand.kind, self.cand.key, p_pos)
        if self.cand.kind == "conformational":
            return abs(angle_difference(a, b)) >= self.s.min_dihedral_change
        return a * b < 0 and min(abs(a), abs(b)) >= self.s.pyramidal_end_min

    # 2. the path route's start -----------------------------------------------------------------
    def planar_start(self, reactant: Atoms) -> np.ndarray:
        """Inversion: the centre moved into its neighbours' plane, the rest relaxed around it (fixed)."""
        from ase.constraints import FixAtoms

        from .conformers import invert_centre

        self.clock.enter("planar")
        c, nbrs = self.cand.key[0], self.cand.key[1:]
        pos = 0.5 * (reactant.get_positions() + invert_centre(reactant.get_positions(), c, nbrs))
        trial = self.fresh(pos)
        trial.set_constraint(FixAtoms(indices=[c, *nbrs]))
        _relax(trial, self.clock, self.s)  # a constrained start: not converging is fine
        trial.set_constraint()
        return trial.get_positions()

    def neb_top(self, reactant: Atoms, product: Atoms) -> tuple[np.ndarray, bool]:
        from ase.mep import NEB
        from ase.mep.neb import NEBOptimizer

        s, cand = self.s, self.cand
        self.clock.enter("neb")
        images = [reactant.copy() for _ in range(s.neb_images + 1)] + [product.copy()]
        for img in images:
            img.calc = self.calculator()
        neb = NEB(images, k=s.neb_k, climb=True, method="improvedtangent")
        if cand.kind == "conformational":
            from .conformers import moving_side, rotation_path

            side = moving_side(len(self.numbers), cand.r_graph, cand.key[1], cand.key[2])
            path = rotation_path(reactant.get_positions(), product.get_positions(), cand.key, side, s.neb_images)
            for img, pos in zip(images[1:-1], path):
                img.set_positions(pos)
        else:
            try:
                neb.interpolate("idpp")
            except Exception:  # IDPP can fail on degenerate geometries; a straight line still works
                neb.interpolate()
        opt = NEBOptimizer(neb, method="ODE", logfile=None)
        opt.attach(self.clock.check, interval=1)
        neb_ok = bool(opt.run(fmax=s.neb_fmax, steps=s.neb_steps))
        e_path = [_energy(img) for img in images[1:-1]]
        top = int(np.argmax(e_path)) + 1
        limit = s.conformer_max_barrier_ev if self.conformer else s.max_barrier_ev
        if e_path[top - 1] - _energy(reactant) > limit:
            raise Rejected("barrier_too_high", f"NEB top {e_path[top - 1] - _energy(reactant):.1f} eV")
        return images[top].get_positions(), neb_ok

    # 4-7. saddle, frequencies, ends, checks ------------------------------------------------------
    def refine(self, start: np.ndarray, neb_ok: bool) -> VerifiedPath:
        s, cand, clock = self.s, self.cand, self.clock
        ts = self.fresh(start)
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

        clock.enter("connectivity")
        mode = modes[0] / np.abs(modes[0]).max()
        # conformer saddles are often symmetric (a planar centre): a 0.01 A kick keeps the minimiser
        # from stalling on the symmetric stationary point
        kick = 0.01 * np.random.default_rng(0).normal(size=mode.shape) if self.conformer else 0.0
        ends = []
        for sign in (1.0, -1.0):
            end = self.fresh(ts.get_positions() + sign * s.nudge * mode + kick)
            if not _relax(end, clock, s):
                raise Rejected("irc_end_not_converged")
            ends.append(end)
        g = [self.graph(e) for e in ends]
        if self.conformer:
            origin, flip = conformer_ends(cand, g, [e.get_positions() for e in ends], ts.get_positions(),
                                          self.r_value, self.p_value, s)
        else:
            origin, flip = bond_edit_ends(cand, g, [_energy(e) for e in ends], self.numbers, s)
        r_end, p_end = (ends[1], ends[0]) if flip else (ends[0], ends[1])
        r_graph, p_graph = self.graph(r_end), self.graph(p_end)

        clock.enter("checks")
        check_partial_bonds(self.numbers, r_graph, p_graph, r_end.get_all_distances(), ts.get_all_distances(),
                            p_end.get_all_distances(), origin, s)
        e_r, e_ts, e_p = _energy(r_end), _energy(ts), _energy(p_end)
        if not (e_ts > e_r and e_ts > e_p):
            raise Rejected("saddle_below_end", f"E_TS-E_R={e_ts - e_r:.3f} eV, E_TS-E_P={e_ts - e_p:.3f} eV")
        limit = s.conformer_max_barrier_ev if self.conformer else s.max_barrier_ev
        if e_ts - e_r > limit:
            raise Rejected("barrier_too_high", f"saddle {e_ts - e_r:.1f} eV above the reactant (limit {limit})")
        clock.enter("done")

        ref = r_end.get_positions()
        ref = ref - ref.mean(0)
        out = []
        for a in (r_end, ts, p_end):
            pos = kabsch_align(a.get_positions(), ref) if a is not r_end else ref
            out.append(Atoms(numbers=self.numbers, positions=pos))
        kind = cand.kind if (origin == "intended" or self.conformer) else "bond_edit"
        return VerifiedPath(
            reactant=out[0], transition_state=out[1], product=out[2],
            energies=(e_r, e_ts, e_p), imaginary_frequency=float(-freqs[0]),
            frequencies=freqs, neb_converged=neb_ok, stages=dict(clock.stages),
            r_graph=r_graph, p_graph=p_graph, origin=origin, kind=kind,
            key_coordinate=key_coordinate_text(cand, *(a.get_positions() for a in out)),
        )


def _guess_starts(guesses: GuessProvider, reactant: Atoms, product: Atoms, numbers: np.ndarray,
                  limit: int) -> tuple[list[tuple[int, np.ndarray]], list[str], float]:
    """Call the provider on copies of R and P; keep the first ``limit`` guesses on the right atoms.

    Returns (index in the provider's list, start aligned on R) pairs, notes on what was dropped,
    and the CPU seconds of the call.
    """
    c0 = time.process_time()
    notes: list[str] = []
    try:
        raw = list(guesses(Atoms(numbers=numbers, positions=reactant.get_positions()),
                           Atoms(numbers=numbers, positions=product.get_positions())))
    except Exception as err:  # a provider that cannot handle this reaction: fall back, say why
        raw = []
        notes.append(f"provider failed: {type(err).__name__}: {str(err)[:80]}")
    starts = []
    for k, g in enumerate(raw[:limit]):
        pos = np.asarray(g.get_positions() if isinstance(g, Atoms) else g, dtype=float)
        if pos.shape != (len(numbers), 3) or (isinstance(g, Atoms) and not np.array_equal(g.numbers, numbers)):
            notes.append(f"guess{k}: wrong atoms or shape {pos.shape}")
            continue
        if not np.all(np.isfinite(pos)):
            notes.append(f"guess{k}: non-finite coordinates")
            continue
        starts.append((k, kabsch_align(pos, reactant.get_positions())))
    return starts, notes, time.process_time() - c0


def verify_candidate(cand: Candidate, calculator: CalculatorFactory, settings: PipelineSettings | None = None,
                     *, reactant_cache: dict[str, Atoms] | None = None,
                     guesses: GuessProvider | None = None) -> VerifiedPath:
    """Run the verification chain on one candidate; raise :class:`Rejected` on any failure.

    With ``guesses``, its TS guesses are refined and checked first (route ``guess<k>``); the
    IDPP / CI-NEB route runs only when none verifies. The rejection of a candidate that tried
    guesses carries ``info = {"route": "neb", "attempts": [...], "guess_cpu_seconds": ...}``.
    """
    s = settings or PipelineSettings()
    chain = _Chain(cand, calculator, s)
    reactant, product = chain.endpoints(reactant_cache)
    attempts: list[str] = []
    guess_cpu = 0.0
    if guesses is not None:
        chain.clock.enter("guess")
        starts, attempts, guess_cpu = _guess_starts(guesses, reactant, product, chain.numbers, s.max_guesses)
        for k, start in starts:
            try:
                path = chain.refine(start, neb_ok=False)
            except CandidateTimeout:
                raise
            except Rejected as err:
                attempts.append(f"guess{k}: {err.reason}")
                continue
            return dataclasses.replace(path, route=f"guess{k}", attempts=tuple(attempts), guess_seconds=guess_cpu)
    route = "planar" if cand.kind == "inversion" else "neb"
    try:
        if route == "planar":
            start, neb_ok = chain.planar_start(reactant), False
        else:
            start, neb_ok = chain.neb_top(reactant, product)
        path = chain.refine(start, neb_ok)
    except Rejected as err:
        if guesses is not None:
            err.info.update(route=route, attempts=attempts, guess_cpu_seconds=round(guess_cpu, 3))
        raise
    return dataclasses.replace(path, route=route, attempts=tuple(attempts), guess_seconds=guess_cpu)

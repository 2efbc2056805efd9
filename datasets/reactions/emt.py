"""The fast tier: adatom hops and exchanges on fcc(100) and fcc(111) surfaces with EMT.

ASE's effective-medium theory (Jacobsen, Stoltze, Norskov, Surf. Sci. 366, 394, 1996) covers
Al, Cu, Ag, Au, Ni, Pd, Pt; its surface saddles cost about a second each, which makes it a real
potential-energy surface for tests and end-to-end runs. Two processes per (surface, metal,
adatom):

* ``hop``: the adatom moves to the neighbouring hollow ((100): hollow -> hollow; (111): fcc ->
  hcp hollow);
* ``exchange``: the adatom sinks into the site of a surface atom, which pops out to the hollow
  on the far side (point reflection of the start hollow through that atom).

Verification: relax both ends (bottom two layers fixed), check the moving atoms stay at their
sites, climbing-image NEB to ``neb_fmax``, a Hessian over the free atoms with exactly one
imaginary mode above ``imag_threshold``, and a nudge-and-relax on both sides that must return the
two relaxed ends (every atom within ``match_tol``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from .pipeline import CandidateTimeout, Rejected, VerifiedPath, harmonic_frequencies

__all__ = ["EMT_METALS", "EMTSettings", "EMT_SETTINGS", "SurfaceCandidate", "emt_candidates"]

EMT_METALS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")


@dataclass(frozen=True, kw_only=True)
class EMTSettings:
    """Settings of the EMT surface chain (A, eV, eV/A, cm^-1, s)."""

    relax_fmax: float = 0.005
    relax_steps: int = 1000
    neb_images: int = 5
    neb_k: float = 0.5
    neb_fmax: float = 0.01
    neb_steps: int = 1000
    hessian_delta: float = 0.01
    imag_threshold: float = 10.0
    noise_threshold: float = 5.0
    nudge: float = 0.1
    site_tol: float = 0.6
    match_tol: float = 0.25
    time_limit: float = 120.0

    def as_string(self) -> str:
        return ";".join(f"{k}={getattr(self, k)}" for k in self.__dataclass_fields__)


EMT_SETTINGS = EMTSettings()


@dataclass(frozen=True)
class SurfaceCandidate:
    """An adatom process: initial and intended final geometry on one atom order.

    ``moving`` are the indices whose sites change (adatom, and the surface atom in an exchange).
    """

    id: str
    seed: str
    family: str
    initial: Atoms = field(repr=False)
    final: Atoms = field(repr=False)
    moving: tuple[int, ...]

    @property
    def dedup_key(self) -> str:
        return self.id

    def verify(self, calculator, settings: EMTSettings | None = None, **_: object) -> VerifiedPath:
        """Run the EMT chain (module docstring); raise :class:`Rejected` on any failure."""
        from ase.mep import NEB
        from ase.mep.neb import NEBOptimizer
        from ase.optimize import FIRE

        s = settings if isinstance(settings, EMTSettings) else EMT_SETTINGS
        t0 = time.monotonic()
        stages: dict[str, float] = {}

        def check(stage: str = "run") -> None:
            if time.monotonic() - t0 > s.time_limit:
                raise CandidateTimeout(stage, s.time_limit)

        fixed = self.initial.constraints

        def prepare(a: Atoms) -> Atoms:
            b = a.copy()
            b.set_constraint([c.copy() for c in fixed])
            b.calc = calculator()
            return b

        def relax(a: Atoms) -> None:
            opt = FIRE(a, logfile=None)
            opt.attach(check, interval=5)
            if not opt.run(fmax=s.relax_fmax, steps=s.relax_steps):
                raise Rejected("endpoint_not_converged")

        ini, fin = prepare(self.initial), prepare(self.final)
        relax(ini)
        relax(fin)
        for name, a, ref in (("initial", ini, self.initial), ("final", fin, self.final)):
            drift = np.linalg.norm((a.positions - ref.positions)[list(self.moving), :2], axis=1).max()
            if drift > s.site_tol:
                raise Rejected("endpoint_moved", f"{name} moving atom left its site by {drift:.2f} A")
        stages["relax"] = time.monotonic() - t0

        images = [ini] + [prepare(ini) for _ in range(s.neb_images)] + [fin]
        neb = NEB(images, k=s.neb_k, climb=True, method="improvedtangent")
        neb.interpolate("idpp")
        opt = NEBOptimizer(neb, method="ODE", logfile=None)
        opt.attach(check, interval=5)
        if not opt.run(fmax=s.neb_fmax, steps=s.neb_steps):
            raise Rejected("neb_not_converged")
        energies = [float(a.get_potential_energy()) for a in images]
        top = int(np.argmax(energies[1:-1])) + 1
        ts = prepare(images[top])
        stages["neb"] = time.monotonic() - t0 - stages["relax"]

        free = np.setdiff1d(np.arange(len(ts)), FixAtoms_indices(ts))
        freqs, modes = harmonic_frequencies(ts, delta=s.hessian_delta, indices=free, project_rigid=False)
        strong = int(np.sum(freqs < -s.imag_threshold))
        middle = int(np.sum((freqs < -s.noise_threshold) & (freqs >= -s.imag_threshold)))
        if strong != 1 or middle:
            raise Rejected("wrong_imaginary_count", f"{strong} above {s.imag_threshold} cm-1, {middle} between")
        check("frequencies")

        ends = []
        mode = modes[0] / np.abs(modes[0]).max()
        for sign in (1.0, -1.0):
            e = prepare(ts)
            e.positions = ts.positions + sign * s.nudge * mode
            relax(e)
            ends.append(e)

        def same(a: Atoms, b: Atoms) -> bool:
            return float(np.linalg.norm(a.positions - b.positions, axis=1).max()) < s.match_tol

        if same(ends[0], ini) and same(ends[1], fin):
            r_end, p_end = ends
        elif same(ends[1], ini) and same(ends[0], fin):
            p_end, r_end = ends
        else:
            raise Rejected("wrong_connectivity", "nudged relaxations did not return both ends")
        stages["checks"] = time.monotonic() - t0 - stages["relax"] - stages["neb"]
        e = (float(r_end.get_potential_energy()), float(ts.get_potential_energy()), float(p_end.get_potential_energy()))
        if not (e[1] > e[0] and e[1] > e[2]):
            raise Rejected("saddle_below_end")
        clean = [Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc) for a in (r_end, ts, p_end)]
        return VerifiedPath(
            reactant=clean[0], transition_state=clean[1], product=clean[2], energies=e,
            imaginary_frequency=float(-freqs[0]), frequencies=freqs, neb_converged=True, stages=stages,
            r_graph=frozenset(), p_graph=frozenset(), origin="intended",
        )


def FixAtoms_indices(atoms: Atoms) -> np.ndarray:  # noqa: N802 - names the ASE constraint
    from ase.constraints import FixAtoms

    out = [c.get_indices() for c in atoms.constraints if isinstance(c, FixAtoms)]
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def _slab(metal: str, facet: str) -> Atoms:
    from ase.build import fcc100, fcc111
    from ase.constraints import FixAtoms

    build = fcc100 if facet == "100" else fcc111
    slab = build(metal, size=(3, 3, 3), vacuum=8.0)
    slab.set_constraint(FixAtoms(mask=slab.get_tags() >= 2))  # tags count layers from the top
    return slab


def _with_adatom(slab: Atoms, adatom: str, site: str, height: float) -> Atoms:
    from ase.build import add_adsorbate

    a = slab.copy()
    a.set_constraint([c.copy() for c in slab.constraints])
    add_adsorbate(a, adatom, height, position=site, offset=(1, 1))
    return a


def emt_candidates(metals: tuple[str, ...] = EMT_METALS, adatoms: tuple[str, ...] | None = None,
                   facets: tuple[str, ...] = ("100", "111")) -> list[SurfaceCandidate]:
    """Hop and exchange candidates for every (facet, surface metal, adatom metal).

    ``adatoms`` defaults to ``metals``. Unknown metals raise ``ValueError``.
    """
    for m in tuple(metals) + tuple(adatoms or ()):
        if m not in EMT_METALS:
            raise ValueError(f"metal {m!r} is not covered by ASE's EMT; expected one of {EMT_METALS}")
    out = []
    for facet in facets:
        for metal in metals:
            slab = _slab(metal, facet)
            top = np.nonzero(slab.get_tags() == 1)[0]
            for ad in adatoms or metals:
                start_site, hop_site = ("hollow", "hollow") if facet == "100" else ("fcc", "hcp")
                height = 1.6 if facet == "100" else 1.9
                ini = _with_adatom(slab, ad, start_site, height)
                k = len(ini) - 1
                # hop: to the neighbouring hollow of the other kind / the next hollow along x
                fin = ini.copy()
                fin.set_constraint([c.copy() for c in ini.constraints])
                if facet == "100":
                    fin.positions[k, 0] += np.linalg.norm(slab.cell[0]) / 3
                else:
                    ref = _with_adatom(slab, ad, hop_site, height)
                    fin.positions[k] = ref.positions[k]
                fam = f"emt/{facet}/hop"
                out.append(SurfaceCandidate(id=f"emt/{metal}({facet})+{ad}/hop", seed=f"emt/{metal}({facet})",
                                            family=fam, initial=ini, final=fin, moving=(k,)))
                # exchange with the nearest top-layer atom
                d = np.linalg.norm(ini.positions[top, :2] - ini.positions[k, :2], axis=1)
                j = int(top[np.argmin(d)])
                fin = ini.copy()
                fin.set_constraint([c.copy() for c in ini.constraints])
                hollow = ini.positions[k].copy()
                surf = ini.positions[j].copy()
                fin.positions[k] = surf
                fin.positions[j, :2] = 2 * surf[:2] - hollow[:2]
                fin.positions[j, 2] = hollow[2]
                out.append(SurfaceCandidate(id=f"emt/{metal}({facet})+{ad}/exchange", seed=f"emt/{metal}({facet})",
                                            family=f"emt/{facet}/exchange", initial=ini, final=fin, moving=(k, j)))
    return out

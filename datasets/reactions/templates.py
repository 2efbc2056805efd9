"""Template candidates: targeted pericyclic, elimination, ring-opening and shift reactions.

Blind break/form enumeration (:func:`~.candidates.enumerate_candidates`) only joins atoms at
most four bonds and 4 A apart, and only as one connected edit, which misses most pericyclic
reactions ([3,3] and [1,5] shifts, 6-pi ring closures, retro-ene). Each :class:`Template` is a
SMARTS pattern with atom maps 1..k and the bonds (by map number) it breaks and forms; every match
in a seed's closed-shell graph (RDKit substructure search, aromatic bonds not matched by ``=``
or ``-``) that gives a closed-shell product becomes a candidate of kind ``template`` with
family ``tpl:<name>/<bond edit by element>``. Where bonds form, the reactant start is
re-embedded (RDKit distance geometry on a bounds matrix) with the forming pairs at ``fold`` A, so that the
relaxed reactant is the conformer the reaction starts from (s-cis diene, chair-like
1,5-diene, the H near its acceptor).

The templates (Woodward-Hoffmann classes; Houk's pericyclic benchmark set, J. Phys. Chem. 1995
and Guner et al., J. Phys. Chem. A 2003, covers the first seven):

==========================  ================================================================
name                        reaction
==========================  ================================================================
electrocyclic_4pi           butadiene -> cyclobutene (conrotatory closure)
electrocyclic_4pi_opening   cyclobutene -> butadiene
electrocyclic_6pi           hexatriene (or 1-oxa/aza) -> cyclohexadiene (disrotatory)
electrocyclic_6pi_opening   1,3-cyclohexadiene (2H-pyran, ...) -> hexatriene
sigmatropic_15H             [1,5]-H shift in a 1,3-diene (cyclopentadiene, Z-pentadiene)
sigmatropic_33              Cope, Claisen, aza- and thia-Cope ([3,3])
sigmatropic_23              [2,3] shift of allyl sulfoxides to sulfenates (Mislow-Evans)
retro_ene                   H-X-C-C-C=Y -> X=C + C=C-C-H (homoallyl alcohols, ester pyrolysis)
ene                         intramolecular ene / carbonyl-ene: ring closure with an H transfer
elimination_ei              syn elimination through a 5-ring: sulfoxides, phosphine oxides
elimination_hx              1,2-elimination of HF, HCl, H2O, H2S, NH3 (4-centre)
ring_opening_3              3-ring opening with a 1,2-H shift (epoxide -> carbonyl, ...)
retro_22                    4-ring cleavage into two double bonds (cyclobutane, oxetane, ...)
shift_12                    1,2-shift of a heavy group (isonitrile -> nitrile, ...)
==========================  ================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .candidates import Candidate, Seed, _make, _rdkit_mol, edit_family
from .molgraph import symmetry_classes, topological_distances

__all__ = ["Template", "TEMPLATES", "template_candidates", "fold_positions"]

_HEAVY = "#6,#7,#8,#16"


@dataclass(frozen=True, kw_only=True)
class Template:
    """A reaction template: SMARTS with atom maps, and the bonds (map-number pairs) it edits.

    ``ring_hops`` bounds the bond distance in R between the atoms of the first formed bond
    (used by ``ene`` to keep the tether that closes a 4- to 7-membered ring).
    """

    name: str
    smarts: str
    broken: tuple[tuple[int, int], ...] = ()
    formed: tuple[tuple[int, int], ...] = ()
    ring_hops: tuple[int, int] | None = None


TEMPLATES: tuple[Template, ...] = (
    Template(name="electrocyclic_4pi", smarts="[#6:1]=[#6:2]-[#6:3]=[#6:4]", formed=((1, 4),)),
    Template(name="electrocyclic_4pi_opening", smarts="[#6:1]1=[#6:2]-[#6:3]-[#6:4]-1", broken=((3, 4),)),
    Template(name="electrocyclic_6pi", smarts="[#6,#7,#8:1]=[#6:2]-[#6:3]=[#6:4]-[#6:5]=[#6,#7,#8:6]",
             formed=((1, 6),)),
    Template(name="electrocyclic_6pi_opening",
             smarts="[#6:1]1=[#6:2]-[#6:3]=[#6:4]-[#6,#7,#8:5]-[#6,#7,#8:6]-1", broken=((5, 6),)),
    Template(name="sigmatropic_15H", smarts="[H:1]-[#6:2]-[#6:3]=[#6:4]-[#6:5]=[#6,#7,#8:6]",
             broken=((1, 2),), formed=((1, 6),)),
    Template(name="sigmatropic_33",
             smarts=f"[{_HEAVY}:1]=[#6,#7:2]-[{_HEAVY}:3]-[{_HEAVY}:4]-[#6,#7:5]=[{_HEAVY}:6]",
             broken=((3, 4),), formed=((1, 6),)),
    Template(name="sigmatropic_23", smarts="[#6:1]=[#6:2]-[#6:3]-[#16:4]=[#8:5]", broken=((3, 4),),
             formed=((1, 5),)),
    Template(name="retro_ene", smarts=f"[H:1]-[{_HEAVY}:2]-[{_HEAVY}:3]-[{_HEAVY}:4]-[#6,#7:5]=[{_HEAVY}:6]",
             broken=((1, 2), (3, 4)), formed=((1, 6),)),
    Template(name="ene", smarts="[H:1]-[#6:2]-[#6:3]=[#6:4].[#6:5]=[#6,#8:6]", broken=((1, 2),),
             formed=((4, 5), (1, 6)), ring_hops=(3, 6)),
    Template(name="elimination_ei", smarts="[H:1]-[#6:2]-[#6:3]-[#16,#15:4]=[#8,#16:5]",
             broken=((1, 2), (3, 4)), formed=((1, 5),)),
    Template(name="elimination_hx", smarts="[H:1]-[#6:2]-[#6:3]-[F,Cl,#8,#16,#7:4]",
             broken=((1, 2), (3, 4)), formed=((1, 4),)),
    Template(name="ring_opening_3", smarts="[H:4]-[!#1:2]1-[!#1:1]-[!#1:3]-1", broken=((1, 3), (2, 4)),
             formed=((1, 4),)),
    Template(name="retro_22", smarts="[!#1:1]1-[!#1:2]-[!#1:3]-[!#1:4]-1", broken=((1, 2), (3, 4))),
    Template(name="shift_12", smarts="[!#1:3]-[!#1:1]~[!#1:2]", broken=((1, 3),), formed=((2, 3),)),
)
"""The built-in templates (see the module docstring)."""


def fold_positions(numbers: Sequence[int], graph, pairs: Sequence[tuple[int, int]], *,
                   fold: tuple[float, float] = (2.5, 3.1), random_seed: int = 0) -> np.ndarray | None:
    """An embedding (N, 3) of ``graph`` with every pair in ``pairs`` between ``fold`` A; None on failure.

    RDKit's distance-geometry bounds matrix of the molecule gets the pair bounds, is
    triangle-smoothed, and seeds a distance-geometry embedding with RDKit's basic-knowledge terms
    (planar sp2 centres, no experimental torsion preferences; atom order kept).
    """
    from rdkit.Chem import rdDistGeom
    from rdkit.DistanceGeometry import DoTriangleSmoothing

    mol = _rdkit_mol(numbers, graph)
    if mol is None:
        return None
    bounds = rdDistGeom.GetMoleculeBoundsMatrix(mol)
    lo, hi = fold
    for i, j in pairs:
        a, b = min(i, j), max(i, j)
        bounds[a][b] = min(bounds[a][b], hi)  # upper triangle: upper bounds
        bounds[b][a] = min(max(bounds[b][a], lo), bounds[a][b])  # lower triangle: lower bounds
    if not DoTriangleSmoothing(bounds):
        return None
    params = rdDistGeom.EmbedParameters()
    params.randomSeed = random_seed
    params.useExpTorsionAnglePrefs = False  # ETKDG's torsion preferences pull the pairs apart again
    params.useBasicKnowledge = True
    params.SetBoundsMat(bounds)
    try:
        if rdDistGeom.EmbedMolecule(mol, params) != 0:
            return None
    except Exception:  # RDKit refuses some bounds late; the seed geometry is used instead
        return None
    return mol.GetConformer().GetPositions()


def template_candidates(seed: Seed, *, templates: Sequence[Template] = TEMPLATES,
                        max_matches: int = 2000) -> list[Candidate]:
    """All closed-shell, symmetry-unique template edits of one seed (kind ``template``)."""
    from rdkit import Chem

    numbers = tuple(int(z) for z in seed.atoms.numbers)
    mol = _rdkit_mol(numbers, seed.graph)
    if mol is None:
        return []
    classes = symmetry_classes(numbers, seed.graph)
    hops = None
    out: list[Candidate] = []
    for tpl in templates:
        patt = Chem.MolFromSmarts(tpl.smarts)
        if patt is None:  # pragma: no cover - the built-in patterns parse
            raise ValueError(f"template {tpl.name!r}: SMARTS {tpl.smarts!r} does not parse")
        where = {a.GetAtomMapNum(): a.GetIdx() for a in patt.GetAtoms()}
        seen: set = set()
        edits = set()
        for match in mol.GetSubstructMatches(patt, uniquify=False, maxMatches=max_matches):
            atom = {m: match[k] for m, k in where.items()}
            broken = tuple(sorted(tuple(sorted((atom[a], atom[b]))) for a, b in tpl.broken))
            formed = tuple(sorted(tuple(sorted((atom[a], atom[b]))) for a, b in tpl.formed))
            if any(e in seed.graph for e in formed):
                continue
            if tpl.ring_hops is not None:
                if hops is None:
                    hops = topological_distances(len(numbers), seed.graph)
                a, b = tpl.formed[0]
                if not tpl.ring_hops[0] <= hops[atom[a], atom[b]] <= tpl.ring_hops[1]:
                    continue
            edits.add((broken, formed))
        for broken, formed in sorted(edits):
            cand = _make(seed, numbers, seed.graph, broken, formed, classes, seen, connected=False)
            if cand is None:
                continue
            positions = cand.positions
            if formed:
                folded = fold_positions(numbers, seed.graph, formed)
                if folded is not None:
                    positions = tuple(tuple(float(x) for x in row) for row in folded)
            out.append(dataclasses.replace(
                cand, id=f"{seed.name}|tpl:{tpl.name}{cand.id[len(seed.name) + 1:]}", kind="template",
                family=f"tpl:{tpl.name}/{edit_family(numbers, broken, formed)}", positions=positions))
    return out

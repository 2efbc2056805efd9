"""Seed molecules and candidate elementary reactions by bond-graph edits.

A candidate is an atom-mapped pair of bond graphs (R, P) over one seed molecule's atoms: up to
``max_break`` bonds of R are broken and up to ``max_form`` new bonds formed (the "break b, form f"
enumeration of graph-based reaction-network exploration, e.g. Zimmerman, J. Comput. Chem. 2013;
Grambow et al., Sci. Data 2020). Filters keep chemically sensible elementary steps:

* the product must admit a neutral closed-shell bond-order assignment (valences per element in
  :data:`~.molgraph.VALENCES`: H, F, Cl 1; O 2; N 3; C 4; S 2/4/6 and P 3/5 as in sulfoxides,
  sulfones and phosphine oxides);
* the changed bonds form one connected reaction centre, and every formed bond touches a broken
  bond's atom when any bond breaks;
* formed bonds join atoms at most ``max_form_hops`` bonds apart in R and closer than
  ``max_form_distance`` in the seed geometry;
* no triple bond or cumulated double bonds in rings smaller than 8;
* symmetry-equivalent edits (Weisfeiler-Lehman classes of R) are kept once.

Other candidate kinds share the :class:`Candidate` record: ``template`` (targeted pericyclic,
elimination, ring-opening and shift edits, :mod:`.templates`), ``conformational`` (a rotation
about one bond) and ``inversion`` (pyramidal inversion at N, P or S), both in :mod:`.conformers`.
:func:`interleave` orders all of them by their measured acceptance.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from .molgraph import (
    VALENCE,
    Graph,
    bond_graph,
    bond_orders,
    components,
    smallest_ring_with,
    symmetry_classes,
    topological_distances,
)
from .order import build_group, interleave
from .seedlists import DEFAULT_SMILES

__all__ = [
    "Seed",
    "Candidate",
    "SeedError",
    "seed_from_atoms",
    "seed_from_smiles",
    "g2_seeds",
    "smiles_seeds",
    "xyz_seeds",
    "enumerate_candidates",
    "interleave",
    "build_group",
    "mapped_smiles",
    "edit_family",
    "canonical_smiles",
    "unique_seeds",
    "product_seeds",
    "embed_graph",
    "DEFAULT_SMILES",
    "KINDS",
    "ELEMENTS",
    "parse_elements",
]

KINDS = ("bond_edit", "template", "conformational", "inversion")
"""Candidate kinds: bond-graph edits, template edits, bond rotations, pyramidal inversions."""

ELEMENTS = ("H", "C", "N", "O", "F", "P", "S", "Cl")
"""Elements the closed-shell valence rules cover (GFN2-xTB covers all of them)."""


class SeedError(ValueError):
    """A seed molecule that cannot be used (unknown element, radical, charge, no 3D embedding)."""


@dataclass(frozen=True)
class Seed:
    """A closed-shell seed molecule: name, geometry and its bond graph."""

    name: str
    atoms: Atoms = field(repr=False)
    graph: Graph = field(repr=False)
    smiles: str = ""


@dataclass(frozen=True)
class Candidate:
    """One atom-mapped candidate reaction R -> P on a seed's atoms.

    ``positions`` (N, 3) is the seed geometry (a reactant start); ``broken`` and ``formed`` are the
    edited bonds; ``family`` names the edit by elements (e.g. ``"b:C-H,C-O|f:H-O"``) or the
    template, rotation or inversion class. ``kind`` is one of :data:`KINDS`. Conformational and
    inversion candidates have ``r_graph == p_graph``, no edited bonds, and carry their key
    internal coordinate in ``key`` (dihedral atoms a-i-j-b rotated by ``angle`` degrees about
    i-j; or the inverted centre followed by its three neighbours) and a ``dedup_key`` (the
    bond-graph reaction key cannot tell them apart).
    """

    id: str
    seed: str
    numbers: tuple[int, ...]
    positions: tuple[tuple[float, float, float], ...] = field(repr=False)
    r_graph: Graph = field(repr=False)
    p_graph: Graph = field(repr=False)
    broken: tuple[tuple[int, int], ...]
    formed: tuple[tuple[int, int], ...]
    family: str
    smiles: str = ""
    kind: str = "bond_edit"
    key: tuple[int, ...] = ()
    angle: float = 0.0
    dedup_key: str | None = None

    def reactant_atoms(self) -> Atoms:
        return Atoms(numbers=list(self.numbers), positions=np.asarray(self.positions))




def seed_from_atoms(name: str, atoms: Atoms, *, smiles: str = "", allow_open_shell: bool = False) -> Seed:
    """Check a geometry and wrap it as a Seed.

    Raises
    ------
    SeedError
        For elements other than H, C, N, O, F, P, S, Cl, a graph with no closed-shell bond orders
        (radicals, zwitterions) unless ``allow_open_shell``, or fewer than 2 atoms.
    """
    numbers = [int(z) for z in atoms.numbers]
    unknown = sorted({z for z in numbers if z not in VALENCE})
    if unknown:
        raise SeedError(f"seed {name!r} has elements {unknown} (atomic numbers); expected {', '.join(ELEMENTS)} only")
    if len(numbers) < 2:
        raise SeedError(f"seed {name!r} has {len(numbers)} atom(s); a reaction needs at least 2")
    graph = bond_graph(atoms)
    if len(components(len(numbers), graph)) != 1:
        raise SeedError(f"seed {name!r} is not one connected molecule by covalent radii")
    if not allow_open_shell and bond_orders(numbers, graph) is None:
        raise SeedError(
            f"seed {name!r} ({atoms.get_chemical_formula()}) has no neutral closed-shell bond "
            "orders (radical or charged species); pass allow_open_shell=True to keep it"
        )
    clean = Atoms(numbers=numbers, positions=atoms.get_positions())
    return Seed(name=name, atoms=clean, graph=graph, smiles=smiles)


def seed_from_smiles(smiles: str, *, name: str | None = None, random_seed: int = 0xF00D,
                     allow_charged: bool = False, allow_radicals: bool = False) -> Seed:
    """Embed a SMILES string in 3D (RDKit ETKDG + MMFF) and wrap it as a Seed.

    Raises
    ------
    SeedError
        For unparsable SMILES, charged or radical species (unless allowed), or a failed embedding.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem, Descriptors

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise SeedError(f"smiles {smiles!r} could not be parsed by RDKit")
    if not allow_charged and any(a.GetFormalCharge() for a in mol.GetAtoms()):
        raise SeedError(f"smiles {smiles!r} has charged atoms; pass allow_charged=True to keep it")
    if not allow_radicals and Descriptors.NumRadicalElectrons(mol):
        raise SeedError(f"smiles {smiles!r} is a radical; pass allow_radicals=True to keep it")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = random_seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise SeedError(f"smiles {smiles!r} failed to embed in 3D")
    try:
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    except Exception:  # MMFF lacks parameters for a few species; ETKDG geometry is kept
        pass
    pos = mol.GetConformer().GetPositions()
    atoms = Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=pos)
    seed = seed_from_atoms(name or f"smiles/{smiles}", atoms, smiles=smiles,
                           allow_open_shell=allow_radicals or allow_charged)
    expected = frozenset(
        (min(b.GetBeginAtomIdx(), b.GetEndAtomIdx()), max(b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
        for b in mol.GetBonds()
    )
    if seed.graph != expected:
        raise SeedError(f"smiles {smiles!r}: embedded geometry does not reproduce its bond graph")
    return seed


def parse_elements(elements: str | Iterable[str]) -> tuple[str, ...]:
    """Element symbols from ``"HCNOFPSCl"``, ``"H,C,N,O"`` or a list, checked against :data:`ELEMENTS`.

    Raises
    ------
    ValueError
        For a symbol outside :data:`ELEMENTS` (named in the message) or an empty selection.
    """
    import re

    text = elements if isinstance(elements, str) else " ".join(elements)
    symbols = re.findall(r"[A-Z][a-z]?", text)
    leftover = re.sub(r"[A-Z][a-z]?|[\s,]", "", text)
    bad = [x for x in symbols if x not in ELEMENTS] + ([leftover] if leftover else [])
    if bad or not symbols:
        raise ValueError(f"elements={text!r}: expected symbols from {' '.join(ELEMENTS)} (e.g. 'HCNOFPSCl'), "
                         f"got {'unknown ' + ', '.join(bad) if bad else 'none'}")
    return tuple(dict.fromkeys(symbols))


def g2_seeds(*, max_atoms: int = 12, elements: str | Iterable[str] = "CHNO") -> tuple[list[Seed], dict[str, str]]:
    """Closed-shell molecules of ASE's g2 collection with at most ``max_atoms`` atoms of ``elements``.

    ``elements`` as in :func:`parse_elements` (default C, H, N, O). Returns the seeds and a dict
    name -> reason for every g2 entry left out.
    """
    from ase.collections import g2
    from ase.data import atomic_numbers

    symbols = parse_elements(elements)
    allowed = {atomic_numbers[e] for e in symbols}
    seeds, skipped = [], {}
    for name in g2.names:
        atoms = g2[name]
        if len(atoms) > max_atoms:
            skipped[name] = f"{len(atoms)} atoms > max_atoms={max_atoms}"
            continue
        if not set(atoms.numbers) <= allowed:
            skipped[name] = f"elements {atoms.get_chemical_formula()} outside {''.join(symbols)}"
            continue
        if abs(atoms.get_initial_magnetic_moments()).sum() > 0:
            skipped[name] = "open shell (initial magnetic moments)"
            continue
        try:
            seeds.append(seed_from_atoms(f"g2/{name}", atoms))
        except SeedError as err:
            skipped[name] = str(err)
    return seeds, skipped


def smiles_seeds(smiles: Iterable[str], **kwargs) -> tuple[list[Seed], dict[str, str]]:
    """Seeds from SMILES strings; returns the seeds and a dict smiles -> reason for those skipped."""
    seeds, skipped = [], {}
    for s in smiles:
        try:
            seeds.append(seed_from_smiles(s, **kwargs))
        except SeedError as err:
            skipped[s] = str(err)
    return seeds, skipped


def xyz_seeds(paths: Iterable[str]) -> tuple[list[Seed], dict[str, str]]:
    """Seeds from xyz/extxyz files (every frame a molecule); returns seeds and skip reasons."""
    import ase.io

    seeds, skipped = [], {}
    for path in paths:
        try:
            frames = ase.io.read(path, ":")
        except Exception as err:  # unreadable file: skip with the parser's message
            skipped[str(path)] = f"could not read: {err}"
            continue
        for k, atoms in enumerate(frames):
            name = f"xyz/{path}#{k}"
            try:
                seeds.append(seed_from_atoms(name, atoms))
            except SeedError as err:
                skipped[name] = str(err)
    return seeds, skipped


def canonical_smiles(seed: Seed) -> str:
    """Canonical SMILES of a seed's closed-shell graph (no atom maps, hydrogens implicit); '' if none."""
    from rdkit import Chem

    mol = _rdkit_mol(seed.atoms.numbers, seed.graph)
    if mol is None:
        return ""
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)
    return Chem.MolToSmiles(Chem.RemoveHs(mol))


def unique_seeds(seeds: Iterable[Seed]) -> tuple[list[Seed], dict[str, str]]:
    """Keep the first seed of every molecule (by canonical SMILES); returns seeds and skip reasons."""
    kept, skipped, seen = [], {}, {}
    for seed in seeds:
        key = canonical_smiles(seed) or seed.name
        if key in seen:
            skipped[seed.name] = f"same molecule as {seen[key]}"
            continue
        seen[key] = seed.name
        kept.append(seed)
    return kept, skipped


def product_seeds(reactions: Iterable, *, max_atoms: int = 12) -> tuple[list[Seed], dict[str, str]]:
    """New seeds from the products of verified reactions (reaction-network expansion).

    Each product that is one closed-shell molecule of at most ``max_atoms`` atoms becomes a seed
    named ``net/<canonical SMILES>`` with the product's relaxed geometry (the first reaction
    that made it, so names and atom orders are stable while a store grows).
    """
    seeds, skipped, seen = [], {}, set()
    for rxn in reactions:
        atoms = rxn.product
        if len(atoms) > max_atoms:
            continue
        try:
            seed = seed_from_atoms(f"product of {rxn.id}", atoms)
        except SeedError as err:
            skipped[rxn.id] = str(err)
            continue
        can = canonical_smiles(seed)
        if not can or can in seen:
            continue
        seen.add(can)
        seeds.append(Seed(name=f"net/{can}", atoms=seed.atoms, graph=seed.graph, smiles=can))
    return seeds, skipped


def _bad_small_ring(n: int, graph: Graph, orders: dict[tuple[int, int], int]) -> bool:
    multi = [0] * n
    for (i, j), b in orders.items():
        if b >= 2:
            multi[i] += 1
            multi[j] += 1
    for (i, j), b in orders.items():
        if b == 3 or (b == 2 and (multi[i] > 1 or multi[j] > 1)):
            ring = smallest_ring_with(n, graph, (i, j))
            if ring is not None and ring < 8:
                return True
    return False


def _symbol_pair(numbers: Sequence[int], e: tuple[int, int]) -> str:
    from ase.data import chemical_symbols

    a, b = sorted((chemical_symbols[numbers[e[0]]], chemical_symbols[numbers[e[1]]]))
    return f"{a}-{b}"


def edit_family(numbers: Sequence[int], broken: Iterable[tuple[int, int]],
                formed: Iterable[tuple[int, int]]) -> str:
    """Element-level name of a bond edit, e.g. ``"b:C-H|f:H-O"`` (break C-H, form H-O)."""
    return ("b:" + ",".join(sorted(_symbol_pair(numbers, e) for e in broken))
            + "|f:" + ",".join(sorted(_symbol_pair(numbers, e) for e in formed)))


def _rdkit_mol(numbers: Sequence[int], graph: Graph):
    """Sanitised RDKit molecule (explicit H, atom map = index + 1) of a closed-shell graph, or None."""
    from rdkit import Chem

    orders = bond_orders(numbers, graph)
    if orders is None:
        return None
    kinds = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    mol = Chem.RWMol()
    for k, z in enumerate(numbers):
        atom = Chem.Atom(int(z))
        atom.SetAtomMapNum(k + 1)
        atom.SetNoImplicit(True)
        mol.AddAtom(atom)
    for (i, j), b in orders.items():
        mol.AddBond(i, j, kinds[b])
    try:
        Chem.SanitizeMol(mol)
    except Exception:
        return None
    return mol


def mapped_smiles(numbers: Sequence[int], graph: Graph) -> str:
    """Atom-mapped SMILES (map number = index + 1) of a closed-shell graph, '' if RDKit refuses."""
    from rdkit import Chem

    mol = _rdkit_mol(numbers, graph)
    return "" if mol is None else Chem.MolToSmiles(mol)


def embed_graph(numbers: Sequence[int], graph: Graph, *, random_seed: int = 0) -> np.ndarray | None:
    """3D coordinates (N, 3) for a closed-shell bond graph by RDKit ETKDG, atom order kept; None on failure."""
    from rdkit.Chem import AllChem

    mol = _rdkit_mol(numbers, graph)
    if mol is None:
        return None
    params = AllChem.ETKDGv3()
    params.randomSeed = random_seed
    try:
        if AllChem.EmbedMolecule(mol, params) != 0:
            return None
    except Exception:
        return None
    return mol.GetConformer().GetPositions()


def enumerate_candidates(seed: Seed, *, max_break: int = 2, max_form: int = 2,
                         max_form_hops: int = 4, max_form_distance: float = 4.0) -> list[Candidate]:
    """All filtered, symmetry-unique break/form edits of one seed (see the module docstring)."""
    numbers = tuple(int(z) for z in seed.atoms.numbers)
    n = len(numbers)
    graph = seed.graph
    pos = seed.atoms.get_positions()
    hops = topological_distances(n, graph)
    dist = np.linalg.norm(pos[:, None] - pos[None, :], axis=-1)
    classes = symmetry_classes(numbers, graph)
    bonds = sorted(graph)
    formable = [
        (i, j) for i in range(n) for j in range(i + 1, n)
        if 2 <= hops[i, j] <= max_form_hops and dist[i, j] <= max_form_distance
    ]
    seen: set = set()
    out: list[Candidate] = []
    for nb in range(max_break + 1):
        for broken in itertools.combinations(bonds, nb):
            centre = {a for e in broken for a in e}
            pool = [e for e in formable if not centre or (e[0] in centre or e[1] in centre)]
            for nf in range(max_form + 1):
                if nb + nf == 0:
                    continue
                for formed in itertools.combinations(pool, nf):
                    cand = _make(seed, numbers, graph, broken, formed, classes, seen)
                    if cand is not None:
                        out.append(cand)
    return out


def _make(seed: Seed, numbers: tuple[int, ...], graph: Graph, broken, formed, classes, seen, *,
          connected: bool = True):
    n = len(numbers)
    changed = list(broken) + list(formed)
    atoms_c = sorted({a for e in changed for a in e})
    index = {a: k for k, a in enumerate(atoms_c)}
    centre = frozenset((index[i], index[j]) for i, j in changed)
    if connected and len(components(len(atoms_c), centre)) != 1:
        return None
    p_graph = (graph - frozenset(broken)) | frozenset(formed)
    orders = bond_orders(numbers, p_graph)
    if orders is None or _bad_small_ring(n, p_graph, orders):
        return None
    # symmetry key: the edit in R's classes, plus the refined colours of the marked product
    marked = [c * 1000 + (1 if a in index else 0) for a, c in enumerate(classes)]
    pcls = symmetry_classes(marked, p_graph)
    key = (
        tuple(sorted(tuple(sorted((classes[i], classes[j]))) for i, j in broken)),
        tuple(sorted(tuple(sorted((classes[i], classes[j]))) for i, j in formed)),
        tuple(sorted(pcls[a] for a in atoms_c)),
        tuple(sorted(pcls)),
    )
    if key in seen:
        return None
    seen.add(key)
    fam = edit_family(numbers, broken, formed)
    tag = "-" + "-".join(f"{i}.{j}" for i, j in broken) if broken else ""
    tag += "+" + "+".join(f"{i}.{j}" for i, j in formed) if formed else ""
    r_smi, p_smi = mapped_smiles(numbers, graph), mapped_smiles(numbers, p_graph)
    return Candidate(
        id=f"{seed.name}|{tag}",
        seed=seed.name,
        numbers=numbers,
        positions=tuple(tuple(float(x) for x in row) for row in seed.atoms.get_positions()),
        r_graph=graph,
        p_graph=p_graph,
        broken=tuple(broken),
        formed=tuple(formed),
        family=fam,
        smiles=f"{r_smi}>>{p_smi}" if r_smi and p_smi else "",
    )

"""The Reaction record and its extxyz format (three frames per reaction).

File format (extended XYZ, optionally gzip-compressed, readable by ``ase.io.read``): every
reaction is three consecutive frames in the order reactant, transition state, product, all with
one atom order. Each frame's comment line carries these ``atoms.info`` keys:

==================  =======================================================================
key                 meaning
==================  =======================================================================
``reaction_id``     unique id of the reaction (same on the three frames)
``frame``           ``reactant``, ``transition_state`` or ``product``
``energy_ev``       total energy of this frame (eV) from ``method``
``e_reactant_ev``   reactant energy (eV); ``e_ts_ev`` and ``e_product_ev`` likewise
``barrier_ev``      forward barrier E_TS - E_R (eV)
``imag_freq_cm1``   magnitude of the TS's imaginary frequency (cm^-1)
``smiles``          atom-mapped reaction SMILES ``R>>P`` (map number = atom index + 1), or ''
``family``          bond edits by element, e.g. ``b:C-H|f:H-O`` (break C-H, form O-H); for the
                    other kinds ``tpl:<template>/<edit>``, ``rot:<class>:<bond>`` or
                    ``inv:<centre>(<neighbours>)``
``formula``         chemical formula (Hill order)
``method``          electronic-structure method, e.g. ``GFN2-xTB``
``software``        ``package=version`` pairs joined by ``;``
``settings``        verification settings ``key=value`` joined by ``;``
``origin``          ``intended`` (the enumerated R -> P) or ``discovered`` (the saddle joined
                    another pair of closed-shell minima; both are verified the same way)
``source``          the seed / candidate the reaction came from
``kind``            ``bond_edit``, ``template``, ``conformational`` or ``inversion`` ('' in
                    files written before the kinds existed: bond edits)
``key_coordinate``  conformational: ``dihedral:a-i-j-b:R/TS/P`` (degrees); inversion:
                    ``pyramidalization:c-n1-n2-n3:R/TS/P`` (signed height of c over the
                    plane of its neighbours, A); '' for the other kinds
==================  =======================================================================

Text keys with an empty value are left out of the comment line (read back as '').
Positions are in Angstrom. For molecules the TS and P frames are Kabsch-aligned onto the centred
reactant; periodic systems (the EMT surface tier) keep their cell (``Lattice``) and ``pbc``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = ["Reaction", "ReactionFormatError", "write_reactions", "read_reactions", "reactions_to_text",
           "reactions_from_text", "FRAMES"]

FRAMES = ("reactant", "transition_state", "product")
_META = ("smiles", "family", "method", "software", "settings", "origin", "source", "kind", "key_coordinate")


class ReactionFormatError(ValueError):
    """A file or record that does not follow the three-frame reaction format."""


@dataclass(frozen=True)
class Reaction:
    """An elementary reaction: R, TS, P on one atom order, energies and provenance.

    Energies are total energies in eV; ``imaginary_frequency`` is the magnitude (cm^-1) of the
    TS's single imaginary mode (0.0 where not computed, e.g. Transition1x's climbing images).
    """

    id: str
    reactant: Atoms = field(repr=False)
    transition_state: Atoms = field(repr=False)
    product: Atoms = field(repr=False)
    energies: tuple[float, float, float]
    imaginary_frequency: float = 0.0
    smiles: str = ""
    family: str = ""
    method: str = ""
    software: str = ""
    settings: str = ""
    origin: str = ""
    source: str = ""
    kind: str = ""
    key_coordinate: str = ""

    def __post_init__(self) -> None:
        frames = (self.reactant, self.transition_state, self.product)
        n = [len(a) for a in frames]
        if len(set(n)) != 1:
            raise ReactionFormatError(
                f"reaction {self.id!r}: reactant, transition state and product have {n} atoms; "
                "R, P and TS must share one atom order"
            )
        z = self.reactant.numbers
        for name, a in zip(FRAMES[1:], frames[1:]):
            if not np.array_equal(a.numbers, z):
                raise ReactionFormatError(
                    f"reaction {self.id!r}: {name} atomic numbers differ from the reactant's; "
                    "R, P and TS must share one atom order"
                )
        if len(self.energies) != 3:
            raise ReactionFormatError(f"reaction {self.id!r}: energies must be (E_R, E_TS, E_P), got {self.energies}")

    @property
    def numbers(self) -> np.ndarray:
        return self.reactant.numbers

    @property
    def formula(self) -> str:
        return self.reactant.get_chemical_formula(mode="hill")

    @property
    def barrier(self) -> float:
        """Forward barrier E_TS - E_R (eV)."""
        return self.energies[1] - self.energies[0]

    @property
    def reverse_barrier(self) -> float:
        """Reverse barrier E_TS - E_P (eV)."""
        return self.energies[1] - self.energies[2]

    def frames(self) -> list[Atoms]:
        """The three frames with their ``info`` keys set (see the module docstring)."""
        out = []
        for name, atoms, energy in zip(FRAMES, (self.reactant, self.transition_state, self.product), self.energies):
            a = Atoms(numbers=atoms.numbers, positions=atoms.get_positions(), cell=atoms.cell, pbc=atoms.pbc)
            a.info.update(
                reaction_id=self.id, frame=name, energy_ev=float(energy),
                e_reactant_ev=float(self.energies[0]), e_ts_ev=float(self.energies[1]),
                e_product_ev=float(self.energies[2]), barrier_ev=float(self.barrier),
                imag_freq_cm1=float(self.imaginary_frequency), formula=self.formula,
            )
            for key in _META:
                if getattr(self, key):  # ASE's extxyz reader misparses an empty value (key= key2=...)
                    a.info[key] = getattr(self, key)
            out.append(a)
        return out

    @classmethod
    def from_frames(cls, frames: list[Atoms]) -> Reaction:
        """Rebuild a Reaction from its three frames (reactant, transition_state, product)."""
        if len(frames) != 3:
            raise ReactionFormatError(f"a reaction needs 3 frames, got {len(frames)}")
        names = [f.info.get("frame") for f in frames]
        if tuple(names) != FRAMES:
            raise ReactionFormatError(f"frames must be ordered {FRAMES}, got {tuple(names)}")
        ids = {str(f.info.get("reaction_id")) for f in frames}
        if len(ids) != 1:
            raise ReactionFormatError(f"three frames of one reaction carry different reaction_id values {sorted(ids)}")
        info = frames[1].info
        clean = [Atoms(numbers=f.numbers, positions=f.get_positions(), cell=f.cell, pbc=f.pbc) for f in frames]
        return cls(
            id=ids.pop(), reactant=clean[0], transition_state=clean[1], product=clean[2],
            energies=tuple(float(f.info["energy_ev"]) for f in frames),  # type: ignore[arg-type]
            imaginary_frequency=float(info.get("imag_freq_cm1", 0.0)),
            **_meta(info),
        )


def _meta(info: dict) -> dict[str, str]:
    """The text keys of a frame. Files written while empty values were still written out
    (``key_coordinate= pbc=...``) read ``key_coordinate`` as the next key: such values are ''."""
    out = {k: _text(info.get(k, "")) for k in _META}
    if out["key_coordinate"] and not out["key_coordinate"].startswith(("dihedral:", "pyramidalization:")):
        out["key_coordinate"] = ""
    return out


def _text(v: object) -> str:
    # extxyz parses bare words like "T" or numbers; metadata is always text
    if isinstance(v, (bool, np.bool_)):
        return "T" if v else "F"
    return "" if v is None else str(v)


def reactions_to_text(reactions: Iterable[Reaction]) -> str:
    """extxyz text of reactions (three frames each)."""
    import ase.io

    buf = io.StringIO()
    frames = [f for r in reactions for f in r.frames()]
    ase.io.write(buf, frames, format="extxyz")
    return buf.getvalue()


def reactions_from_text(text: str) -> list[Reaction]:
    """Parse extxyz text written by :func:`reactions_to_text`."""
    import ase.io

    if not text.strip():
        return []
    frames = ase.io.read(io.StringIO(text), index=":", format="extxyz")
    return _group(frames)


def _group(frames: list[Atoms]) -> list[Reaction]:
    if len(frames) % 3:
        raise ReactionFormatError(f"{len(frames)} frames is not a multiple of 3 (R, TS, P per reaction)")
    return [Reaction.from_frames(frames[k : k + 3]) for k in range(0, len(frames), 3)]


def write_reactions(path: str | Path, reactions: Iterable[Reaction]) -> None:
    """Write reactions to ``path`` (``.extxyz`` or ``.extxyz.gz``), three frames each."""
    path = Path(path)
    text = reactions_to_text(reactions)
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)


def read_reactions(path: str | Path) -> list[Reaction]:
    """Read reactions from an extxyz file (gzip allowed, including multi-member gzip)."""
    return list(iter_reactions(path))


def iter_reactions(path: str | Path) -> Iterator[Reaction]:
    """Stream reactions from an extxyz(.gz) file one at a time."""
    import gzip

    import ase.io

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"reaction file {str(path)!r} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        buf: list[Atoms] = []
        for atoms in ase.io.iread(fh, index=":", format="extxyz"):
            buf.append(atoms)
            if len(buf) == 3:
                yield Reaction.from_frames(buf)
                buf = []
        if buf:
            raise ReactionFormatError(f"{path}: trailing {len(buf)} frame(s) do not make a reaction")

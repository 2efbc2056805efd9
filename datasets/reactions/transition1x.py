"""Streaming reader of Transition1x (Schreiner et al., Sci. Data 9, 779, 2022).

The published HDF5 file (~6.6 GB, wB97x/6-31G(d) on C/H/N/O reactions; users supply it), and every
public loader of it (the official ``Dataloader``, OpenQDC), is laid out as::

    data/<formula>/<rxn>/                      every reaction
        positions            (frames, atoms, 3)  A   every NEB image that was computed
        atomic_numbers       (atoms,)
        wB97x_6-31G(d).energy  (frames,)         eV
        wB97x_6-31G(d).forces  (frames, atoms, 3) eV/A
        reactant/ product/ transition_state/     the same datasets, one frame each
    train/<formula>/<rxn>/   val/...   test/...  the official split (the same groups again)

An older layout with the split inside ``data`` (``data/<split>/<formula>/<rxn>``) is read too.

Nothing is read until asked for: iterating opens the file once and yields one reaction at a time,
so memory stays at one reaction. The transition state is the climbing image of a DFT CI-NEB
(not frequency-checked), so ``Reaction.imaginary_frequency`` is 0.0. Reactions can be selected
by the official split or by a list of ids (``"<formula>/<rxn>"`` or bare ``"<rxn>"``), e.g.
React-OT's random 9,000 / 1,073 split. A selection that finds no reaction is an error, never an
empty iterator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .reaction import Reaction

__all__ = ["Transition1xReader", "ATOM_REFERENCE_ENERGIES_EV", "ENERGY_KEY", "FORCES_KEY", "SPLITS"]

ENERGY_KEY = "wB97x_6-31G(d).energy"
FORCES_KEY = "wB97x_6-31G(d).forces"
SPLITS = ("train", "val", "test")
ATOM_REFERENCE_ENERGIES_EV = {1: -13.6222, 6: -1029.4131, 7: -1484.8710, 8: -2041.8396, 9: -2712.8213}
"""Isolated-atom wB97x/6-31G(d) energies (eV) by atomic number, for atomisation energies."""

_FRAME_GROUPS = ("reactant", "transition_state", "product")


def _layout(fh, path: Path) -> str:
    """``"published"`` (splits as top-level groups beside ``data``) or ``"nested"``
    (``data/<split>/...``); ValueError for anything else."""
    if any(s in fh for s in SPLITS):
        return "published"
    if "data" in fh and any(s in fh["data"] for s in SPLITS):
        return "nested"
    if "data" in fh:
        return "published"  # data/<formula>/<rxn> without split groups: select by ids
    raise ValueError(f"{path} has neither 'data' nor 'train'/'val'/'test' groups (top level: "
                     f"{sorted(fh)}); expected the Transition1x layout data/<formula>/<rxn> with "
                     "train/, val/, test/ beside it")


def _split_group(fh, split: str, layout: str) -> str | None:
    """Where a split's formulas live in this file, or None if the file lacks the split."""
    if split == "data":
        return "data"
    path = split if layout == "published" else f"data/{split}"
    return path if path in fh else None


class Transition1xReader:
    """Stream reactions (and NEB frames) from a Transition1x HDF5 file.

    Parameters
    ----------
    path
        The HDF5 file.
    split
        ``"train"``, ``"val"``, ``"test"``, a sequence of them, or None for all three.
    ids
        Optional reaction ids to keep (``"<formula>/<rxn>"`` or ``"<rxn>"``); the order of
        iteration follows ``ids``. Unknown ids raise ``KeyError`` naming them.

    Examples
    --------
    >>> reader = Transition1xReader("transition1x.h5", split="test")   # doctest: +SKIP
    >>> for rxn in reader: print(rxn.id, rxn.barrier)                   # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, split: str | Sequence[str] | None = "train",
                 ids: Iterable[str] | None = None) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"Transition1x file {str(self.path)!r} does not exist")
        splits = SPLITS if split is None else (split,) if isinstance(split, str) else tuple(split)
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"split must be one of {SPLITS} (or None for all), got {bad}")
        self.splits = splits
        entries: list[tuple[str, str, str]] = []  # (group path, formula, rxn)
        with h5py.File(self.path, "r") as fh:
            self.layout = _layout(fh, self.path)
            for s in (("data",) if split is None and self.layout == "published" and "data" in fh
                      else splits):
                group = _split_group(fh, s, self.layout)
                if group is None:
                    continue
                for formula, by_rxn in fh[group].items():
                    for rxn in by_rxn:
                        entries.append((group, formula, rxn))
        if not entries:
            raise ValueError(f"{self.path}: no reaction in split(s) {list(splits)} "
                             f"({self.layout} layout); the file's top-level groups are "
                             f"{self._top_level()}")
        if ids is not None:
            by_full = {f"{f}/{r}": (s, f, r) for s, f, r in entries}
            by_rxn: dict[str, list[tuple[str, str, str]]] = {}
            for e in entries:
                by_rxn.setdefault(e[2], []).append(e)
            chosen, missing = [], []
            for rid in ids:
                if rid in by_full:
                    chosen.append(by_full[rid])
                elif len(by_rxn.get(rid, [])) == 1:
                    chosen.append(by_rxn[rid][0])
                elif rid in by_rxn:
                    raise KeyError(f"reaction id {rid!r} is ambiguous ({len(by_rxn[rid])} formulas); use '<formula>/{rid}'")
                else:
                    missing.append(rid)
            if missing:
                raise KeyError(f"{len(missing)} reaction id(s) not found in splits {splits}: {missing[:5]}")
            entries = chosen
        self._entries = entries

    def _top_level(self) -> list[str]:
        import h5py

        with h5py.File(self.path, "r") as fh:
            return sorted(fh)

    @classmethod
    def from_id_file(cls, path: str | Path, ids_file: str | Path, *,
                     split: str | Sequence[str] | None = None) -> Transition1xReader:
        """Reader over the reaction ids listed in ``ids_file`` (one a line, or a JSON list).

        Use it for splits other than the official one, e.g. React-OT's 9,000 / 1,073 random split.
        """
        import json

        text = Path(ids_file).read_text()
        if text.lstrip().startswith("["):
            ids = [str(x) for x in json.loads(text)]
        else:
            ids = [line.split("#", 1)[0].strip() for line in text.splitlines()]
            ids = [x for x in ids if x]
        return cls(path, split=split, ids=ids)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def ids(self) -> list[str]:
        """Reaction ids ``"<formula>/<rxn>"`` in iteration order."""
        return [f"{f}/{r}" for _, f, r in self._entries]

    def __iter__(self) -> Iterator[Reaction]:
        import h5py

        with h5py.File(self.path, "r") as fh:
            for s, f, r in self._entries:
                yield self._reaction(fh[s][f][r], s, f, r)

    def __getitem__(self, index: int) -> Reaction:
        import h5py

        s, f, r = self._entries[index]
        with h5py.File(self.path, "r") as fh:
            return self._reaction(fh[s][f][r], s, f, r)

    def iter_frames(self) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Stream every computed NEB frame, one reaction at a time.

        Yields ``(id, atomic_numbers (N,), positions (F, N, 3), energies (F,), forces (F, N, 3))``.
        """
        import h5py

        with h5py.File(self.path, "r") as fh:
            for s, f, r in self._entries:
                g = fh[s][f][r]
                yield (f"{f}/{r}", np.asarray(g["atomic_numbers"]), np.asarray(g["positions"]),
                       np.asarray(g[ENERGY_KEY]), np.asarray(g[FORCES_KEY]))

    @staticmethod
    def _reaction(group, split: str, formula: str, rxn: str) -> Reaction:
        numbers = np.asarray(group["atomic_numbers"])
        frames, energies = [], []
        for name in _FRAME_GROUPS:
            if name not in group:
                raise ValueError(f"Transition1x reaction {formula}/{rxn} has no '{name}' subgroup")
            sub = group[name]
            pos = np.asarray(sub["positions"]).reshape(-1, len(numbers), 3)[0]
            frames.append(Atoms(numbers=numbers, positions=pos))
            energies.append(float(np.asarray(sub[ENERGY_KEY]).reshape(-1)[0]))
        return Reaction(
            id=f"{formula}/{rxn}", reactant=frames[0], transition_state=frames[1], product=frames[2],
            energies=tuple(energies), imaginary_frequency=0.0,  # type: ignore[arg-type]
            method="wB97x/6-31G(d)", origin="transition1x", source=f"Transition1x:{split}/{formula}/{rxn}",
        )

"""Reading what a user points the TS generator at: structure files, reaction stores, splits.

- :func:`read_endpoint`: one structure in any format ASE reads (the last frame of a trajectory);
- :func:`snapshot_reactions`: the reactions of a ``.extxyz(.gz)`` file or of a reaction store
  that a running ``sciflow ts build-dataset`` may still be appending to (read from a copy);
- :func:`load_reactions`: ``--data`` / ``--transition1x`` / ``--split`` as the commands take them;
- :func:`select_reactions`: reactions by id.

Every failure names the file and is a :class:`~.data.TSInputError` (an unreadable file, an empty
selection) or a ``FileNotFoundError`` (a missing one).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ase import Atoms

from .data import TSInputError

__all__ = ["read_endpoint", "snapshot_reactions", "select_reactions", "load_reactions",
           "shipped_data"]


def read_endpoint(path: str | Path, name: str) -> Atoms:
    """Read one structure with ASE (any format it reads; the last frame of a trajectory)."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} file {str(path)!r} does not exist (or is not a file)")
    try:
        atoms = ase.io.read(path)
    except Exception as err:  # ASE raises many types for unreadable files
        raise TSInputError(f"could not read {name} file {str(path)!r} with ASE: "
                           f"{type(err).__name__}: {err}") from err
    if isinstance(atoms, list):
        if not atoms:
            raise TSInputError(f"{name} file {str(path)!r} holds no structure")
        atoms = atoms[-1]
    return atoms


def snapshot_reactions(path: str | Path) -> list[Any]:
    """Read the reactions of a file or of a store directory that may still be growing.

    A store directory (``reactions.extxyz.gz`` + ``records.jsonl``, appended to by a running
    ``sciflow ts build-dataset``) is copied first, records before reactions (the builder writes a
    reaction before its record), and read from the copy, so the live store is never modified.
    """
    from sciflow.datasets.reactions import ReactionStore, read_reactions

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"reaction data {str(path)!r} does not exist")
    if path.is_file():
        return read_reactions(path)
    with tempfile.TemporaryDirectory(prefix="sciflow-ts-") as tmp:
        for name in (ReactionStore.RECORDS, ReactionStore.REACTIONS):
            if not (path / name).exists():
                raise FileNotFoundError(f"{str(path)!r} is not a reaction store: it lacks {name}")
            shutil.copyfile(path / name, Path(tmp) / name)
        return list(ReactionStore(tmp).reactions())


def select_reactions(reactions: Sequence[Any], ids: Iterable[str]) -> list[Any]:
    """The reactions whose ids are in ``ids``, in the order of ``ids``; unknown ids raise."""
    by_id = {r.id: r for r in reactions}
    ids = list(ids)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"{len(missing)} reaction id(s) are not in the data, e.g. {missing[:3]}")
    return [by_id[i] for i in ids]


def shipped_data() -> Path:
    """The reaction store shipped with sciflow (``sciflow/datasets/reactions/data``)."""
    from sciflow.datasets import reactions as rx

    return Path(rx.__file__).parent / "data"


def _read_split(path: Path) -> dict[str, list[str]]:
    from sciflow.datasets.reactions import read_split

    if not Path(path).is_file():
        raise FileNotFoundError(f"--split {str(path)!r} does not exist (or is not a file)")
    try:
        return read_split(path)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError) as err:
        raise TSInputError(f"--split {str(path)!r} is not a split JSON file (train/val/test id "
                           f"lists, as `sciflow ts build-dataset --finalize` writes): {err}") from err


def load_reactions(data: str | Path | None = None, *, transition1x: str | Path | None = None,
                   split: str | Path | None = None, subset: str = "train") -> list[Any]:
    """Reactions from ``data`` (store directory or file; the shipped store when neither it nor
    ``transition1x`` is given) and/or a Transition1x HDF5 file, cut to ``split[subset]``."""
    reactions: list[Any] = []
    if data is None and transition1x is None:
        data = shipped_data()
    if data is not None:
        reactions += snapshot_reactions(data)
    if transition1x is not None:
        from sciflow.datasets.reactions import Transition1xReader

        reactions += list(Transition1xReader(transition1x, split=subset))
    if not reactions:
        raise TSInputError("no reactions: --data holds none (pass a reaction store or an "
                           ".extxyz(.gz) file) and no --transition1x FILE.h5 was given")
    if split is not None:
        ids = _read_split(Path(split))[subset]
        known = {r.id for r in reactions}
        reactions = select_reactions(reactions, [i for i in ids if i in known])
        if not reactions:
            raise TSInputError(f"--split {str(split)!r} has no {subset!r} reactions in the data "
                               "(its ids belong to another data set?)")
    return reactions

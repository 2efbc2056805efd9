"""Reading what a user points the TS generator at: structure files, reaction stores, splits.

- :func:`read_endpoint`: one structure in any format ASE reads (the last frame of a trajectory);
- :func:`snapshot_reactions`: the reactions of a ``.extxyz(.gz)`` file or of a reaction store
  that a running ``sciflow ts build-dataset`` may still be appending to (read from a copy);
- :func:`load_reactions`: ``--data`` / ``--transition1x`` / ``--split`` / ``--ids`` as the commands
  take them; :func:`held_out`: the reactions a checkpoint has not seen (``ts evaluate``'s default);
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

from .config import SUBSETS
from .data import TSInputError

__all__ = ["read_endpoint", "snapshot_reactions", "select_reactions", "load_reactions",
           "shipped_data", "read_ids", "held_out", "SUBSETS", "read_search_inputs"]


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


def read_ids(path: str | Path) -> list[str]:
    """Reaction ids from a file: one a line (``#`` starts a comment) or a JSON list, the
    React-OT style of naming a split's reactions."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--ids {str(path)!r} does not exist (or is not a file)")
    text = path.read_text()
    if text.lstrip().startswith("["):
        try:
            ids = [str(x) for x in json.loads(text)]
        except json.JSONDecodeError as err:
            raise TSInputError(f"--ids {str(path)!r} starts like a JSON list but is not one: "
                               f"{err}") from err
    else:
        ids = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        ids = [x for x in ids if x]
    if not ids:
        raise TSInputError(f"--ids {str(path)!r} lists no reaction id (one a line, or a JSON list)")
    return ids


def _select_known(reactions: Sequence[Any], ids: Sequence[str], what: str) -> list[Any]:
    """The reactions named in ``ids`` (a Transition1x id may be given as ``<rxn>`` or
    ``<formula>/<rxn>``), in that order; none found is an error, some missing a note."""
    by_id = {r.id: r for r in reactions}
    by_tail = {r.id.rsplit("/", 1)[-1]: r for r in reactions}
    chosen = [by_id.get(i) or by_tail.get(i) for i in ids]
    found = [r for r in chosen if r is not None]
    if not found:
        raise TSInputError(f"{what} names {len(ids)} reaction(s), none of them in the data (e.g. "
                           f"{list(ids)[:3]}); do its ids belong to another data set?")
    return found


def load_reactions(data: str | Path | None = None, *, transition1x: str | Path | None = None,
                   split: str | Path | None = None, subset: str = "train",
                   ids: str | Path | None = None) -> list[Any]:
    """Reactions from ``data`` (store directory or file; the shipped store when neither it nor
    ``transition1x`` is given) and/or a Transition1x HDF5 file, cut to what is asked.

    The cut: ``ids`` (a file of reaction ids, :func:`read_ids`) if given; else ``split[subset]``
    (a split JSON file); else, for Transition1x, its official ``subset`` group (``train``,
    ``val`` or ``test``; ``subset="all"`` reads all three). Data from ``data`` without ``ids``
    or ``split`` is returned whole (:func:`held_out` picks the reactions a model has not seen).
    """
    reactions: list[Any] = []
    if data is None and transition1x is None:
        data = shipped_data()
    if data is not None:
        reactions += snapshot_reactions(data)
    if transition1x is not None:
        from sciflow.datasets.reactions import Transition1xReader

        official = split is None and ids is None and subset in ("train", "val", "test")
        try:
            reactions += list(Transition1xReader(transition1x, split=subset if official else None))
        except (ValueError, KeyError, OSError) as err:
            raise TSInputError(f"--transition1x {str(transition1x)!r}: {err}") from err
    if not reactions:
        raise TSInputError("no reactions: --data holds none (pass a reaction store or an "
                           ".extxyz(.gz) file) and no --transition1x FILE.h5 was given")
    if ids is not None:
        return _select_known(reactions, read_ids(ids), f"--ids {str(ids)!r}")
    if split is not None:
        if subset not in ("train", "val", "test"):
            raise TSInputError(f"--subset {subset!r} with --split: choose train, val or test")
        reactions = _select_known(reactions, _read_split(Path(split))[subset],
                                  f"--split {str(split)!r} ({subset})")
    return reactions


def held_out(meta: dict[str, Any], reactions: Sequence[Any], subset: str = "test"
             ) -> tuple[list[Any], str]:
    """The reactions of ``reactions`` that a model's checkpoint ``meta`` puts in ``subset``,
    and a sentence saying which set that is.

    A checkpoint records its splits (``meta["splits"][name]`` with train/val/test id lists, as
    the benchmark writes) and/or its training ids (``meta["train"]["ids"]``, as
    :func:`.training.train` writes). ``test`` / ``val`` / ``train``: the recorded lists (``test``
    without a recorded test list: every reaction not trained on); ``unseen``: every reaction
    outside the recorded train and val parts (reactions added to a store after training
    included); ``all``: everything, training reactions included. Raises TSInputError when the
    checkpoint records nothing to tell held-out reactions apart (pass ``--split`` or ``--ids``,
    or ``--subset all``).
    """
    if subset not in SUBSETS:
        raise TSInputError(f"--subset {subset!r}: choose from {list(SUBSETS)}")
    n = len(reactions)
    if subset == "all":
        return list(reactions), (f"all {n} reactions of the data, training reactions included "
                                 "(scores of seen reactions overstate accuracy)")
    splits = dict(meta.get("splits") or {})
    lists = {part: {i for s in splits.values() for i in s.get(part, ())}
             for part in ("train", "val", "test")}
    lists["train"] |= set((meta.get("train") or {}).get("ids") or ())
    seen = lists["train"] | lists["val"]
    if not seen and not lists["test"]:
        raise TSInputError(
            "this checkpoint records no split and no training ids, so held-out reactions cannot "
            "be told from training ones; pass --split FILE (or --ids FILE) naming the held-out "
            "reactions, or --subset all to score every reaction (training ones included)")
    names = "/".join(sorted(splits)) or "training"
    if subset == "test" and not lists["test"]:
        subset = "unseen"
    if subset == "unseen":
        chosen = [r for r in reactions if r.id not in seen]
        text = (f"the {len(chosen)} of {n} reactions outside the checkpoint's recorded train and "
                f"val parts ({names}): never seen in training or model selection")
    else:
        chosen = [r for r in reactions if r.id in lists[subset]]
        text = (f"the {len(chosen)} reactions of the checkpoint's recorded {names} split's "
                f"{subset} part" + ("" if subset == "train" else
                                    " (held out from training)"))
    if not chosen:
        raise TSInputError(f"no reaction of the data is in the checkpoint's {subset} set; "
                           "pass --data with the reactions it was split on, --split FILE, or "
                           "--subset all")
    return chosen, text


def read_search_inputs(path: str | Path) -> list[tuple[str, Atoms, Atoms, Atoms | None]]:
    """The reactions of a multi-reaction structure file for ``ts search``: (id, R, P, reference
    TS or None) each.

    Frames that carry ``frame=reactant|transition_state|product`` in their ``info`` (the reaction
    format of :mod:`sciflow.datasets.reactions`, or R/P pairs without a TS) are grouped by
    consecutive ``reaction_id``; frames without it are read as consecutive (R, P) pairs with ids
    from ``reaction_id`` or ``rxn<k>``.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--reactions file {str(path)!r} does not exist (or is not a file)")
    try:
        frames = ase.io.read(path, index=":")
    except Exception as err:  # ASE raises many types for unreadable files
        raise TSInputError(f"could not read --reactions {str(path)!r} with ASE: "
                           f"{type(err).__name__}: {err}") from err
    if not frames:
        raise TSInputError(f"--reactions {str(path)!r} holds no structure")
    out: list[tuple[str, Atoms, Atoms, Atoms | None]] = []
    if all("frame" in a.info for a in frames):
        groups: list[tuple[str, dict[str, Atoms]]] = []
        for k, a in enumerate(frames):
            rid = str(a.info.get("reaction_id", f"rxn{k}"))
            if not groups or groups[-1][0] != rid or a.info["frame"] in groups[-1][1]:
                groups.append((rid, {}))
            groups[-1][1][str(a.info["frame"])] = a
        for rid, g in groups:
            if "reactant" not in g or "product" not in g:
                raise TSInputError(f"--reactions {str(path)!r}: reaction {rid!r} lacks a "
                                   f"{'reactant' if 'reactant' not in g else 'product'} frame")
            out.append((rid, g["reactant"], g["product"], g.get("transition_state")))
        return out
    if len(frames) % 2:
        raise TSInputError(f"--reactions {str(path)!r} holds {len(frames)} frames: give (reactant, "
                           "product) pairs, or frames marked frame=reactant / product in their "
                           "info (the reaction format of sciflow ts build-dataset)")
    for k in range(0, len(frames), 2):
        rid = str(frames[k].info.get("reaction_id", f"rxn{k // 2}"))
        out.append((rid, frames[k], frames[k + 1], None))
    return out

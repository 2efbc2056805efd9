"""Fixed train / val / test splits of a reaction set, written as JSON id lists.

Three kinds:

* ``random``: each reaction goes to a side by a seeded hash of its id (so a reaction keeps its side
  when the dataset grows; side sizes follow ``fractions`` up to sampling noise);
* ``family``: whole reaction families (the bond-edit label, e.g. ``b:C-H|f:H-O``) go to one side
  only, so test families are never seen in training;
* ``composition``: whole chemical formulas go to one side only (no test stoichiometry in training).

For grouped splits, each group goes to a side by a seeded hash of its name, the same rule as a
reaction in the random split: a family (formula) keeps its side as the data grow, and new families
fall where their hash says. Side sizes follow ``fractions`` up to the noise of the group sizes; a
held-out side that no group reached gets the smallest train group, so both exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .reaction import Reaction

__all__ = ["make_splits", "write_splits", "read_split", "SPLIT_KINDS"]

SPLIT_KINDS = ("random", "family", "composition")


def make_splits(reactions: Iterable[Reaction], *, kind: str = "random",
                fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[str]]:
    """Split reaction ids into ``{"train": [...], "val": [...], "test": [...]}`` (see module doc)."""
    if kind not in SPLIT_KINDS:
        raise ValueError(f"kind must be one of {SPLIT_KINDS}, got {kind!r}")
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    items = [(r.id, r.family if kind == "family" else r.formula) for r in reactions]
    ids = [i for i, _ in items]
    if len(set(ids)) != len(ids):
        raise ValueError("reaction ids must be unique to split them")
    if kind == "random":
        out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for rid in ids:
            u = _unit(seed, rid)
            out["test" if u < fr[2] else "val" if u < fr[2] + fr[1] else "train"].append(rid)
        return {k: sorted(v) for k, v in out.items()}
    groups: dict[str, list[str]] = {}
    for rid, g in items:
        groups.setdefault(g, []).append(rid)
    out = {"train": [], "val": [], "test": []}
    side_of = {}
    for g in groups:
        u = _unit(seed, g)
        side_of[g] = "test" if u < fr[2] else "val" if u < fr[2] + fr[1] else "train"
    for side in ("test", "val"):
        train_groups = [g for g in groups if side_of[g] == "train"]
        if fr[2 if side == "test" else 1] > 0 and side not in side_of.values() and len(train_groups) > 1:
            side_of[min(train_groups, key=lambda k: (len(groups[k]), k))] = side
    for g, members in groups.items():
        out[side_of[g]].extend(members)
    return {k: sorted(v) for k, v in out.items()}


def _unit(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key): the same reaction lands on the same side as data grow."""
    import hashlib

    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def write_splits(reactions: Sequence[Reaction], directory: str | Path, *, seed: int = 0,
                 fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> list[Path]:
    """Write ``split_<kind>.json`` for every kind into ``directory``; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in SPLIT_KINDS:
        split = make_splits(reactions, kind=kind, fractions=fractions, seed=seed)
        path = directory / f"split_{kind}.json"
        doc = {"kind": kind, "seed": seed, "fractions": list(fractions), **split}
        path.write_text(json.dumps(doc, indent=0) + "\n")
        paths.append(path)
    return paths


def read_split(path: str | Path) -> dict[str, list[str]]:
    """Read a split file written by :func:`write_splits`: ``{"train", "val", "test"}`` id lists."""
    doc = json.loads(Path(path).read_text())
    missing = [k for k in ("train", "val", "test") if k not in doc]
    if missing:
        raise ValueError(f"split file {path} lacks {missing}; expected train/val/test id lists")
    return {k: list(doc[k]) for k in ("train", "val", "test")}

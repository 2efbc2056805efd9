"""Splits stay stable as the data grow: no reaction changes side when reactions are added."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sciflow.datasets.reactions.splits import make_splits


def _reactions(n: int):
    """Reaction i keeps its family and formula however many there are; past 600 the families
    already seen grow and new ones (fam40..fam89, formulas C30..C69) appear."""
    def fam(i: int) -> str:
        return f"fam{i % 40}" if i < 600 or i % 2 else f"fam{40 + i % 50}"

    def formula(i: int) -> str:
        return f"C{i % 30}" if i < 600 or i % 2 else f"C{30 + i % 40}"

    return [SimpleNamespace(id=f"r{i:05d}", family=fam(i), formula=formula(i)) for i in range(n)]


@pytest.mark.parametrize("kind", ["random", "family", "composition"])
def test_no_reaction_changes_side_as_data_grow(kind: str) -> None:
    small = make_splits(_reactions(600), kind=kind)
    big = make_splits(_reactions(3000), kind=kind)  # grown families and new ones
    side = {rid: name for name, ids in big.items() for rid in ids}
    for name, ids in small.items():
        assert all(side[rid] == name for rid in ids), f"{kind}: reactions left {name}"
    n = sum(len(v) for v in big.values())
    assert 0.02 < len(big["test"]) / n < 0.25 and 0.02 < len(big["val"]) / n < 0.25


@pytest.mark.parametrize("kind", ["family", "composition"])
def test_groups_never_straddle_sides(kind: str) -> None:
    rx = _reactions(2000)
    out = make_splits(rx, kind=kind)
    key = (lambda r: r.family) if kind == "family" else (lambda r: r.formula)
    side = {rid: name for name, ids in out.items() for rid in ids}
    groups: dict[str, set[str]] = {}
    for r in rx:
        groups.setdefault(key(r), set()).add(side[r.id])
    assert all(len(s) == 1 for s in groups.values())
    assert out["test"] and out["val"]

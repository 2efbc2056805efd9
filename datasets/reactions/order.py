"""Build order: candidate groups tried by measured acceptance, round-robin over seeds.

A candidate's group (:func:`build_group`) is its kind with its sub-type: ``bond_edit:<b>/<f>``
(bonds broken / formed), ``template:<name>``, ``conformational:<class>`` or
``inversion:<element>``. :func:`interleave` puts the groups in order of acceptance (verified /
computed candidates, duplicates not counted) and, within a group, goes round-robin over seeds
with each seed's candidates in the order of a hash of their id, so a partial build samples every
seed and group evenly.

Acceptance comes from :func:`measured_acceptance`, which reads the records of a store (the
build measures itself as it grows), shrunk toward :data:`ACCEPTANCE` for groups with few
records. :data:`ACCEPTANCE` holds the rates measured on small GFN2-xTB runs (the command and
counts are next to each entry); groups measured nowhere get :data:`UNMEASURED`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .candidates import Candidate

__all__ = ["build_group", "record_group", "measured_acceptance", "interleave", "ACCEPTANCE", "UNMEASURED"]

# accepted / computed (duplicates left out) per group, GFN2-xTB, default PipelineSettings
ACCEPTANCE: dict[str, float] = {
    # the shipped store's records, 4,714 candidates (a9642d1 + background build, 2026-12):
    "bond_edit:1/0": 4 / 9,
    "bond_edit:0/1": 35 / 79,
    "bond_edit:1/1": 688 / 1753,
    "bond_edit:2/1": 366 / 2075,
    "bond_edit:1/2": 14 / 178,
}
"""Measured acceptance by group (see the comments in the source for where each rate comes from)."""

UNMEASURED = 0.05
"""The rate assumed for a group with no measurement (below every measured group but 2/2 edits)."""


def build_group(c: Candidate) -> str:
    """``bond_edit:<b>/<f>``, ``template:<name>``, ``conformational:<class>`` or ``inversion:<element>``."""
    kind = getattr(c, "kind", "bond_edit")
    if kind == "bond_edit":
        return f"bond_edit:{len(c.broken)}/{len(c.formed)}"
    if kind == "template":  # family "tpl:<name>/<edit>"
        return "template:" + c.family.split("/", 1)[0].removeprefix("tpl:")
    if kind == "conformational":  # family "rot:<class>:<bond>"
        return "conformational:" + c.family.split(":")[1]
    if kind == "inversion":  # family "inv:<element>(<neighbours>)"
        return "inversion:" + c.family.removeprefix("inv:").split("(")[0]
    return kind


def record_group(record: Mapping) -> str | None:
    """The group of a store record; records written before groups existed are bond edits read from
    their id (``<seed>|-i.j+k.l``, ``~...`` for discovered reactions). None for other records."""
    if "group" in record:
        return str(record["group"])
    if record.get("kind", "bond_edit") != "bond_edit" or "|" not in record.get("id", ""):
        return None
    tag = record["id"].rsplit("|", 1)[1].split("~", 1)[0]
    if tag.startswith(("tpl:", "rot:", "inv:", "emt")) or not tag or tag[0] not in "-+":
        return None
    return f"bond_edit:{tag.count('-')}/{tag.count('+')}"


def measured_acceptance(records: Iterable[Mapping], *, prior: Mapping[str, float] = ACCEPTANCE,
                        weight: float = 20.0) -> dict[str, float]:
    """Acceptance per group from store records, shrunk toward ``prior``.

    rate_g = (accepted_g + weight * prior_g) / (computed_g + weight), with computed = finished
    minus duplicates (which cost nothing) and prior_g = ``prior`` or :data:`UNMEASURED`.
    Returns every group in ``prior`` or in the records.
    """
    done: Counter = Counter()
    good: Counter = Counter()
    for r in records:
        g = record_group(r)
        if g is None or r.get("reason") == "duplicate":
            continue
        done[g] += 1
        good[g] += r.get("status") == "accepted"
    out = dict(prior)
    for g in done:
        p = prior.get(g, UNMEASURED)
        out[g] = (good[g] + weight * p) / (done[g] + weight)
    return out


def interleave(candidates: Iterable[Candidate], acceptance: Mapping[str, float] | None = None) -> list[Candidate]:
    """Deterministic build order: groups by ``acceptance`` (default :data:`ACCEPTANCE`), highest first;
    ties by group name; round-robin over seeds within a group (see the module docstring)."""
    rates = ACCEPTANCE if acceptance is None else acceptance
    groups: dict[tuple[str, str], list[Candidate]] = {}
    for c in candidates:
        groups.setdefault((build_group(c), c.seed), []).append(c)
    for g in groups.values():
        g.sort(key=lambda c: hashlib.sha1(c.id.encode()).hexdigest())
    names = sorted({g for g, _ in groups}, key=lambda g: (-rates.get(g, UNMEASURED), g))
    out: list[Candidate] = []
    for name in names:
        lists = [groups[k] for k in sorted(groups) if k[0] == name]
        for row in itertools.zip_longest(*lists):
            out.extend(c for c in row if c is not None)
    return out

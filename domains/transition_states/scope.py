"""What a TS generator has seen, and the check that refuses what it has not.

A checkpoint records its :class:`Scope` in ``meta["scope"]`` (written by :func:`.training.train`
from the training reactions): the elements, the reaction kinds, the charges and spin
multiplicities, the range of molecule sizes and the electronic-structure methods of its data.
:func:`check_scope` holds a user's reactant and product against it before any tensor exists:

- an element outside ``elements`` is a :class:`~.data.TSInputError` (checked by :mod:`.data`);
- a charge or multiplicity the model was not trained for is a TSInputError: the network has no
  charge or spin input, so it would silently return the TS of the neutral singlet;
- a reaction kind outside ``kinds`` is a TSInputError. The kind of a user's R -> P is read from
  its bond graphs (:func:`reaction_kind`): different graphs are a bond edit (``bond_edit`` or
  ``template`` data count), equal graphs a conformational change or an inversion;
- a molecule larger than ``max_atoms`` gets an :class:`OutOfScopeWarning` (the network is defined
  at any size but has not learned to carry a reaction centre across larger molecules).

A checkpoint written before scopes existed has none: only its elements are checked.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ase import Atoms
from ase.data import chemical_symbols

from sciflow.errors import SciflowWarning

from .data import TSInputError

__all__ = ["Scope", "OutOfScopeWarning", "BOND_EDIT_KINDS", "CONFORMER_KINDS", "scope_of",
           "reaction_kind", "check_scope", "check_charge", "charge_of"]

BOND_EDIT_KINDS = ("bond_edit", "template")
"""Kinds whose R and P bond graphs differ (bonds break or form)."""
CONFORMER_KINDS = ("conformational", "inversion")
"""Kinds whose R and P share the bond graph (a rotation, a pyramidal inversion)."""


class OutOfScopeWarning(SciflowWarning):
    """The input lies outside what the model was trained on in a way that is not refused (size);
    a :class:`sciflow.errors.SciflowWarning`, which the CLI prints."""


def _symbols(numbers: Iterable[int]) -> str:
    return " ".join(chemical_symbols[int(z)] for z in numbers)


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What a model was trained on.

    elements : atomic numbers present in the training reactions, ascending.
    kinds : reaction kinds present (``bond_edit``, ``template``, ``conformational``,
        ``inversion``; a reaction stored without a kind is read from its bond graphs).
    kind_counts : training reactions per kind.
    charges, multiplicities : total charges and spin multiplicities 2S + 1 of the data.
    min_atoms, max_atoms : the smallest and largest training molecule.
    methods : electronic-structure methods of the reference TSs (e.g. ``GFN2-xTB``).
    reactions : number of training reactions.
    """

    elements: tuple[int, ...]
    kinds: tuple[str, ...]
    kind_counts: Mapping[str, int]
    charges: tuple[int, ...] = (0,)
    multiplicities: tuple[int, ...] = (1,)
    min_atoms: int
    max_atoms: int
    methods: tuple[str, ...] = ()
    reactions: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (checkpoint meta); :meth:`from_dict` inverts it."""
        return {"elements": list(self.elements), "element_symbols": _symbols(self.elements),
                "kinds": list(self.kinds), "kind_counts": dict(self.kind_counts),
                "charges": list(self.charges), "multiplicities": list(self.multiplicities),
                "min_atoms": self.min_atoms, "max_atoms": self.max_atoms,
                "methods": list(self.methods), "reactions": self.reactions}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scope:
        return cls(elements=tuple(int(z) for z in d["elements"]), kinds=tuple(d["kinds"]),
                   kind_counts=dict(d.get("kind_counts", {})),
                   charges=tuple(int(c) for c in d.get("charges", (0,))),
                   multiplicities=tuple(int(m) for m in d.get("multiplicities", (1,))),
                   min_atoms=int(d["min_atoms"]), max_atoms=int(d["max_atoms"]),
                   methods=tuple(d.get("methods", ())), reactions=int(d.get("reactions", 0)))

    def describe(self) -> str:
        """One sentence: elements, kinds, charge/spin, sizes, methods."""
        kinds = ", ".join(f"{k} ({self.kind_counts.get(k, 0)})" for k in self.kinds)
        methods = f" at {', '.join(self.methods)}" if self.methods else ""
        return (f"{self.reactions} reactions of elements {_symbols(self.elements)}; kinds {kinds}; "
                f"charge {'/'.join(map(str, self.charges))}, multiplicity "
                f"{'/'.join(map(str, self.multiplicities))}; {self.min_atoms}-{self.max_atoms} "
                f"atoms{methods}")


def _kind(reaction: Any) -> str:
    """A stored reaction's kind; one stored without a kind (older shipped files, Transition1x)
    is read from its geometry (:func:`reaction_kind`)."""
    return getattr(reaction, "kind", "") or reaction_kind(reaction.reactant, reaction.product)


def scope_of(reactions: Sequence[Any]) -> Scope:
    """The :class:`Scope` of training reactions (``sciflow.datasets.reactions.Reaction``).

    The charge and multiplicity of a reaction are read from its reactant's ``info`` (``charge``,
    ``multiplicity``), 0 and 1 when absent (every shipped and Transition1x reaction is neutral
    and closed-shell).
    """
    if not reactions:
        raise TSInputError("scope_of() got no reactions")
    kinds = Counter(_kind(r) for r in reactions)
    sizes = [len(r.numbers) for r in reactions]
    return Scope(elements=tuple(sorted({int(z) for r in reactions for z in r.numbers})),
                 kinds=tuple(sorted(kinds)), kind_counts=dict(sorted(kinds.items())),
                 charges=tuple(sorted({charge_of(r.reactant)[0] for r in reactions})),
                 multiplicities=tuple(sorted({charge_of(r.reactant)[1] for r in reactions})),
                 min_atoms=min(sizes), max_atoms=max(sizes),
                 methods=tuple(sorted({getattr(r, "method", "") for r in reactions} - {""})),
                 reactions=len(reactions))


def charge_of(atoms: Atoms) -> tuple[int, int]:
    """(charge, multiplicity) an Atoms object declares: ``info["charge"]`` (or the sum of its
    initial charges) and ``info["multiplicity"]`` (or ``info["spin"]`` as 2S + 1 = spin + 1);
    (0, 1) when it declares nothing."""
    info = atoms.info
    if "charge" in info:
        charge = info["charge"]
    else:
        charge = round(float(atoms.get_initial_charges().sum())) if len(atoms) else 0
    if "multiplicity" in info:
        mult = info["multiplicity"]
    elif "spin" in info:
        mult = int(info["spin"]) + 1
    else:
        mult = 1
    return int(charge), int(mult)


def check_charge(numbers: Sequence[int], charge: int, multiplicity: int) -> None:
    """Refuse a charge / multiplicity pair the molecule cannot have (electron-count parity)."""
    for name, value in (("charge", charge), ("multiplicity", multiplicity)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TSInputError(f"{name}={value!r}: expected an integer")
    if multiplicity < 1:
        raise TSInputError(f"multiplicity={multiplicity}: expected 2S + 1 >= 1 (1 singlet, "
                           "2 doublet, 3 triplet)")
    electrons = int(sum(int(z) for z in numbers)) - charge
    if electrons < 0:
        raise TSInputError(f"charge={charge} removes more electrons than the molecule has "
                           f"({electrons + charge})")
    if (electrons + multiplicity - 1) % 2:
        raise TSInputError(
            f"charge {charge} and multiplicity {multiplicity} do not fit this molecule: it has "
            f"{electrons} electrons, so the multiplicity must be "
            f"{'odd (1, 3, ...)' if electrons % 2 == 0 else 'even (2, 4, ...)'}")


def reaction_kind(reactant: Atoms, product: Atoms) -> str:
    """``"bond_edit"`` when R and P have different bond graphs (covalent-radius rule of the
    reaction builder), ``"conformational"`` when they share one (a rotation or an inversion)."""
    from sciflow.datasets.reactions.molgraph import bond_graph

    return "bond_edit" if bond_graph(reactant) != bond_graph(product) else "conformational"


def check_scope(scope: Scope | None, reactant: Atoms, product: Atoms, *, charge: int = 0,
                multiplicity: int = 1) -> None:
    """Refuse R -> P outside ``scope`` (see the module docstring); warn above its size range.

    Elements are checked by :func:`.data.check_endpoints` against the model's elements; this
    adds charge, multiplicity, reaction kind and size. ``scope=None`` (a checkpoint without a
    recorded scope): only the charge/multiplicity parity is checked, and a charged or open-shell
    request is refused, since no TS checkpoint has a charge input.
    """
    check_charge(reactant.numbers, charge, multiplicity)
    charges = scope.charges if scope is not None else (0,)
    mults = scope.multiplicities if scope is not None else (1,)
    if charge not in charges or multiplicity not in mults:
        raise TSInputError(
            f"charge {charge:+d}, multiplicity {multiplicity}: this model was trained on charge "
            f"{'/'.join(map(str, charges))}, multiplicity {'/'.join(map(str, mults))} only and "
            "has no charge or spin input, so it would return a neutral closed-shell TS. Use "
            "`sciflow ts search --charge/--multiplicity` (it falls back to IDPP/CI-NEB with xTB "
            "at that charge) or train a model on such data")
    if scope is None:
        return
    kind = reaction_kind(reactant, product)
    allowed = BOND_EDIT_KINDS if kind == "bond_edit" else CONFORMER_KINDS
    if not set(allowed) & set(scope.kinds):
        what = ("bonds break or form between R and P" if kind == "bond_edit" else
                "R and P have the same bond graph (a rotation about a bond or an inversion)")
        raise TSInputError(
            f"{what}, but this model has seen only {', '.join(scope.kinds)} reactions "
            f"({scope.describe()}); it cannot generate this kind of TS. Use `sciflow ts search` "
            "(it falls back to IDPP/CI-NEB) or a model trained on such reactions")
    if len(reactant) > scope.max_atoms:
        warnings.warn(OutOfScopeWarning(
            f"{len(reactant)} atoms: this model was trained on molecules of {scope.min_atoms}-"
            f"{scope.max_atoms} atoms; larger ones are often no better than the (R+P)/2 "
            "midpoint, and check the generated TS (or refine it: --refine)"), stacklevel=3)

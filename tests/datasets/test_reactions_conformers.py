"""Conformational and inversion candidates: key coordinates, geometric operations, end checks."""

from __future__ import annotations

import numpy as np
import pytest

from sciflow.datasets.reactions import PipelineSettings, Rejected
from sciflow.datasets.reactions.candidates import seed_from_smiles
from sciflow.datasets.reactions.checks import conformer_ends, key_coordinate_text
from sciflow.datasets.reactions.conformers import (
    angle_difference,
    conformer_candidates,
    dihedral,
    invert_centre,
    mirror_through_plane,
    moving_side,
    pyramidalization,
    rotate_about_bond,
    rotation_path,
)
from sciflow.datasets.reactions.molgraph import bond_graph


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _by_family(smiles: str) -> dict:
    seed = seed_from_smiles(smiles)
    return seed, {c.family: c for c in conformer_candidates(seed)}


def _turn(seed, c, angle):
    """The seed's positions, the moving side of the candidate's key bond, and the positions with
    that side turned by ``angle`` degrees about the bond."""
    pos = seed.atoms.get_positions()
    side = moving_side(len(pos), seed.graph, c.key[1], c.key[2])
    return pos, side, rotate_about_bond(pos, c.key[1], c.key[2], side, angle)


def _distances(x):
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_dihedral_values_invariance_and_mirror_sign():
    pos = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.5], [np.cos(1.0), np.sin(1.0), 1.5]])
    assert dihedral(pos, 0, 1, 2, 3) == pytest.approx(np.degrees(1.0))
    rng = np.random.default_rng(0)
    moved = pos @ _rotation(rng).T + rng.normal(size=3)
    assert dihedral(moved, 0, 1, 2, 3) == pytest.approx(np.degrees(1.0))
    assert dihedral(pos * np.array([1, -1, 1]), 0, 1, 2, 3) == pytest.approx(-np.degrees(1.0))
    assert angle_difference(170.0, -170.0) == pytest.approx(-20.0)
    assert angle_difference(-170.0, 170.0) == pytest.approx(20.0)


def test_rotation_about_a_bond_changes_only_the_key_dihedral():
    seed, cands = _by_family("CC(N)=O")
    c = cands["rot:partial:C-N"]
    _, i, j, _ = c.key
    pos, side, new = _turn(seed, c, 180.0)
    assert j in side and i not in side
    turned = angle_difference(dihedral(new, *c.key), dihedral(pos, *c.key))
    assert abs(turned) == pytest.approx(180.0, abs=1e-6)
    # distances inside each side and across the axis atoms are kept: same bonds, same bond lengths
    d0, d1 = _distances(pos), _distances(new)
    keep = [k for k in range(len(pos)) if k not in side]
    np.testing.assert_allclose(d1[np.ix_(side, side)], d0[np.ix_(side, side)], atol=1e-9)
    np.testing.assert_allclose(d1[np.ix_(keep, keep)], d0[np.ix_(keep, keep)], atol=1e-9)
    from ase import Atoms

    assert bond_graph(Atoms(numbers=seed.atoms.numbers, positions=new)) == seed.graph


def test_ring_bonds_have_no_moving_side():
    seed = seed_from_smiles("C1CCC1")
    i, j = sorted(seed.graph)[0]
    assert moving_side(len(seed.atoms), seed.graph, i, j) is None


@pytest.mark.parametrize("op", ["centre", "mirror"])
def test_inversion_flips_the_sign_of_the_pyramid(op):
    seed, cands = _by_family("CN(C)C")
    c = cands["inv:N(CCC)"]
    pos = seed.atoms.get_positions()
    h = pyramidalization(pos, c.key[0], c.key[1:])
    new = invert_centre(pos, c.key[0], c.key[1:]) if op == "centre" else mirror_through_plane(pos, c.key[1:])
    assert pyramidalization(new, c.key[0], c.key[1:]) == pytest.approx(-h)
    if op == "mirror":  # a reflection keeps every distance
        np.testing.assert_allclose(_distances(new), _distances(pos), atol=1e-9)


@pytest.mark.parametrize("smiles, family", [
    ("CC(=O)NC", "rot:partial:C-N"),       # amide
    ("CC(=O)OC", "rot:partial:C-O"),       # ester
    ("OC=C", "rot:partial:C-O"),           # enol
    ("C=CC=C", "rot:conjugated:C-C"),      # s-cis / s-trans diene
    ("C=CC=O", "rot:conjugated:C-C"),      # enone
    ("CC=NC", "rot:double:C=N"),           # imine (C=C rotations are left out: diradical saddles)
    ("CN=NC", "rot:double:N=N"),           # azo
    ("CCCC", "rot:single:C-C"),            # butane gauche / anti
    ("CN(C)C", "inv:N(CCC)"),              # amine
    ("CP(C)C", "inv:P(CCC)"),              # phosphine
    ("CS(C)=O", "inv:S(CCO)"),             # sulfoxide
])
def test_candidate_classes(smiles, family):
    seed, cands = _by_family(smiles)
    assert family in cands
    c = cands[family]
    assert c.r_graph == c.p_graph == seed.graph and not c.broken and not c.formed
    assert c.dedup_key and c.smiles.split(">>")[0] == c.smiles.split(">>")[1]
    if c.kind == "conformational":
        a, i, j, b = c.key
        assert {(min(a, i), max(a, i)), (min(i, j), max(i, j)), (min(j, b), max(j, b))} <= seed.graph
        assert c.angle == (120.0 if family.startswith("rot:single") else 180.0)
    else:
        assert c.kind == "inversion" and all((min(c.key[0], k), max(c.key[0], k)) in seed.graph for k in c.key[1:])


def test_trivial_and_planar_cases_are_left_out():
    _, cands = _by_family("CC")        # a methyl rotation is a relabelling of its H atoms
    assert cands == {}
    _, cands = _by_family("C=C")       # so is the 180 degree turn of =CH2
    assert cands == {}
    _, cands = _by_family("CC=CC")     # a twisted C=C is a diradical: no rotation about it
    assert not any(f.startswith("rot:double") for f in cands)
    _, cands = _by_family("CC(N)=O")   # the amide N is planar: rotation, no inversion
    assert not any(f.startswith("inv:") for f in cands)
    _, cands = _by_family("C#CC")      # a rotation about an axis through a linear group has no dihedral
    assert cands == {}


def test_symmetric_bonds_and_centres_are_offered_once():
    seed = seed_from_smiles("CCOCC")   # the two C-O bonds are equivalent
    rot = [c for c in conformer_candidates(seed) if c.family == "rot:single:C-O"]
    assert len(rot) == 1
    ids = [c.id for c in conformer_candidates(seed_from_smiles("NCCN"))]
    assert len(ids) == len(set(ids))


def test_rotation_path_interpolates_the_dihedral_without_collapse():
    seed, cands = _by_family("C=CC=O")
    c = cands["rot:conjugated:C-C"]
    pos, side, p = _turn(seed, c, 180.0)
    rng = np.random.default_rng(1)
    p = p @ _rotation(rng).T + 2.0  # P in another frame: the path aligns it first
    images = rotation_path(pos, p, c.key, side, 7)
    r0 = dihedral(pos, *c.key)
    steps = [abs(angle_difference(dihedral(x, *c.key), r0)) for x in images]
    assert np.all(np.diff(steps) > 0) and steps[0] == pytest.approx(180 / 8, abs=1.0)
    d0 = _distances(pos)
    for x in images:  # bonded atoms stay bonded, nobody comes closer than 0.9 A
        d = _distances(x)
        for a, b in seed.graph:
            assert d[a, b] == pytest.approx(d0[a, b], abs=0.05)
        assert d[np.triu_indices(len(x), 1)].min() > 0.9


def test_conformer_end_checks():
    s = PipelineSettings()
    seed, cands = _by_family("CC(=O)OC")
    c = cands["rot:partial:C-O"]
    r, _, p = _turn(seed, c, 180.0)
    *_, ts = _turn(seed, c, 90.0)
    rv, pv = dihedral(r, *c.key), dihedral(p, *c.key)
    g = [seed.graph, seed.graph]
    assert conformer_ends(c, g, [r, p], ts, rv, pv, s) == ("intended", False)
    assert conformer_ends(c, g, [p, r], ts, rv, pv, s) == ("intended", True)
    with pytest.raises(Rejected, match="key_unchanged"):
        conformer_ends(c, g, [r, r], ts, rv, pv, s)
    with pytest.raises(Rejected, match="key_not_partial"):
        conformer_ends(c, g, [r, p], r, rv, pv, s)
    with pytest.raises(Rejected, match="wrong_connectivity"):
        conformer_ends(c, [seed.graph, seed.graph - {sorted(seed.graph)[0]}], [r, p], ts, rv, pv, s)
    # two conformers other than the relaxed R and P: discovered, or refused with --intended-only
    *_, q = _turn(seed, c, 60.0)
    other = conformer_ends(c, g, [q, p], ts, rv + 120.0, pv + 120.0, s)
    assert other[0] == "discovered"
    with pytest.raises(Rejected, match="wrong_connectivity"):
        conformer_ends(c, g, [q, p], ts, rv + 120.0, pv + 120.0, PipelineSettings(accept_discovered=False))
    text = key_coordinate_text(c, r, ts, p)
    assert text.startswith("dihedral:" + "-".join(map(str, c.key)) + ":")
    assert [float(x) for x in text.split(":")[2].split("/")] == pytest.approx([rv, dihedral(ts, *c.key), pv], abs=0.06)


def test_inversion_end_checks():
    s = PipelineSettings()
    seed, cands = _by_family("CP(C)C")
    c = cands["inv:P(CCC)"]
    r = seed.atoms.get_positions()
    p = mirror_through_plane(r, c.key[1:])
    ts = 0.5 * (r + invert_centre(r, c.key[0], c.key[1:]))
    key = lambda x: pyramidalization(x, c.key[0], c.key[1:])  # noqa: E731
    g = [seed.graph, seed.graph]
    assert conformer_ends(c, g, [p, r], ts, key(r), key(p), s) == ("intended", True)
    with pytest.raises(Rejected, match="key_unchanged"):
        conformer_ends(c, g, [r, r], ts, key(r), key(p), s)
    with pytest.raises(Rejected, match="key_not_partial"):
        conformer_ends(c, g, [r, p], r, key(r), key(p), s)
    assert key_coordinate_text(c, r, ts, p).startswith("pyramidalization:")


def test_kabsch_fit_on_a_subset_moves_everything_rigidly():
    from sciflow.datasets.reactions.align import kabsch_align

    rng = np.random.default_rng(4)
    y = rng.normal(size=(8, 3))
    rot = _rotation(rng)
    x = y @ rot.T + 1.5
    x[5:] += rng.normal(size=(3, 3))  # the atoms left out of the fit moved on their own
    out = kabsch_align(x, y, fit=[0, 1, 2, 3, 4])
    np.testing.assert_allclose(out[:5], y[:5], atol=1e-9)
    np.testing.assert_allclose(_distances(out), _distances(x), atol=1e-9)  # one rigid motion for all atoms

"""Shared fixtures of the TS tests: tiny synthetic reactions, a tiny config, the shipped model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from ase import Atoms

from sciflow.datasets.reactions import Reaction
from sciflow.domains.transition_states import Config, load
from sciflow.domains.transition_states.data import _kabsch_onto


def _molecule(rng: np.random.Generator, symbols: str = "CNNHH") -> np.ndarray:
    pos: list[np.ndarray] = []
    while len(pos) < len(symbols):
        x = rng.normal(scale=1.2, size=3)
        if all(np.linalg.norm(x - p) > 1.1 for p in pos):
            pos.append(x)
    return np.array(pos)


def _graph(pos: np.ndarray) -> frozenset:
    from sciflow.datasets.reactions.molgraph import bond_graph

    return bond_graph(Atoms("CNNHH", positions=pos))


def synthetic_reaction(seed: int, *, ts_at_midpoint: bool = False) -> Reaction:
    """A 5-atom C/N/H reaction (22 electrons: a closed-shell singlet is possible): one H moves; the TS is near (R+P)/2 (P aligned onto R)."""
    rng = np.random.default_rng(seed)
    r = _molecule(rng)
    p = r.copy()
    while True:  # an H move that changes the bond graph: a bond edit, the shipped model's kind
        p[3] = r[3] + rng.normal(scale=0.6, size=3)
        if _graph(r) != _graph(p):
            break
    p = _kabsch_onto(p, r)  # stored reactions hold P aligned onto R, as the builder writes them
    ts = 0.5 * (r + p) + (0 if ts_at_midpoint else rng.normal(scale=0.05, size=r.shape))
    atoms = [Atoms("CNNHH", positions=x) for x in (r, ts, p)]
    return Reaction(id=f"syn{seed}", reactant=atoms[0], transition_state=atoms[1], product=atoms[2],
                    energies=(0.0, 1.0, 0.5), family="syn")


@pytest.fixture(scope="session")
def make_reaction() -> Callable[..., Reaction]:
    return synthetic_reaction


@pytest.fixture
def tiny() -> Config:
    """A network small enough to train in a second; no checkpoints, no progress bar."""
    return Config(hidden=16, layers=2, vector_channels=2, num_rbf=8, time_dim=8,
                  batch_size=4).replace(train={"steps": 20, "lr": 3e-3, "warmup_steps": 0,
                                               "log_every": 10, "checkpoint_every": 0,
                                               "progress": False})


@pytest.fixture(scope="session")
def shipped():
    return load()


@pytest.fixture(scope="session")
def shipped_test(shipped):
    """The first 4 reactions of the shipped checkpoint's held-out test split."""
    from sciflow.domains.transition_states.demo import shipped_test_reactions

    return shipped_test_reactions(shipped)[:4]

"""Ranking several samples: the medoid puts outliers (and diverged samples) last; fmax by force."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT

from sciflow.domains.transition_states import rank
from sciflow.errors import InputError


def _around(base: Atoms, scales, seed: int) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    return [Atoms(base.numbers, positions=base.get_positions() + rng.normal(scale=s, size=(5, 3)))
            for s in scales]


def test_medoid_rank_puts_the_outlier_last(make_reaction):
    samples = _around(make_reaction(0).transition_state, (0.02, 0.8, 0.02, 0.02, 0.02), 0)
    order, scores = rank(samples)
    assert order[-1] == 1 and scores[1] == max(scores)
    order, scores = rank(samples[:1])
    assert order == [0] and scores.tolist() == [0.0]


def test_a_diverged_sample_scores_inf_and_never_moves_the_medoid(make_reaction):
    samples = _around(make_reaction(0).transition_state, (0.02, 0.03, 0.02), 1)
    clean_order, clean_scores = rank(samples)
    bad = samples[1].copy()
    pos = bad.get_positions()
    pos[2] = np.nan
    bad.set_positions(pos)
    order, scores = rank(samples + [bad])
    assert order[-1] == 3 and math.isinf(scores[3])
    assert order[:3] == clean_order and np.allclose(scores[:3], clean_scores)


def test_fmax_rank_orders_by_largest_force_and_needs_a_calculator(make_reaction):
    samples = _around(make_reaction(0).transition_state, (0.2, 0.0, 0.1), 1)
    order, scores = rank(samples, rule="fmax", calculator=EMT)
    assert [scores[k] for k in order] == sorted(scores)
    with pytest.raises(InputError, match="needs a calculator factory"):
        rank(samples, rule="fmax")
    with pytest.raises(InputError, match="rule must be 'medoid' or 'fmax'"):
        rank(samples, rule="energy")

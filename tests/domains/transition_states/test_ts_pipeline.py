"""Train / generate / rank / refine / evaluate, on small synthetic reactions and the shipped model."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.emt import EMT

from sciflow.datasets.reactions import Reaction
from sciflow.domains.transition_states import (
    DEFAULT_CHECKPOINT,
    TSGenerator,
    TSInputError,
    TSModelConfig,
    TSTrainSettings,
    TSVelocity,
    evaluate,
    export_checkpoint,
    load_generator,
    rank,
    refine,
    train,
)
from sciflow.domains.transition_states.data import _kabsch_onto
from sciflow.domains.transition_states.demo import shipped_test_reactions
from sciflow.domains.transition_states.pipeline import pair_rmsd
from sciflow.testing import random_orthogonal
from sciflow.train import save_checkpoint

TINY = TSModelConfig(hidden=16, layers=2, vector_channels=2, num_rbf=8, time_dim=8)


def _molecule(rng: np.random.Generator, symbols: str = "CNOHH") -> np.ndarray:
    pos: list[np.ndarray] = []
    while len(pos) < len(symbols):
        x = rng.normal(scale=1.2, size=3)
        if all(np.linalg.norm(x - p) > 1.1 for p in pos):
            pos.append(x)
    return np.array(pos)


def _reaction(seed: int, *, ts_at_midpoint: bool = False) -> Reaction:
    rng = np.random.default_rng(seed)
    r = _molecule(rng)
    p = r.copy()
    p[3] += rng.normal(scale=0.6, size=3)
    p = _kabsch_onto(p, r)  # stored reactions hold P aligned onto R, as the builder writes them
    ts = 0.5 * (r + p) + (0 if ts_at_midpoint else rng.normal(scale=0.05, size=r.shape))
    atoms = [Atoms("CNOHH", positions=x) for x in (r, ts, p)]
    return Reaction(id=f"syn{seed}", reactant=atoms[0], transition_state=atoms[1], product=atoms[2],
                    energies=(0.0, 1.0, 0.5), family="syn")


def _settings(steps: int) -> TSTrainSettings:
    return TSTrainSettings(steps=steps, batch_size=4, lr=3e-3, warmup_steps=0, log_every=10,
                           checkpoint_every=0, progress=False)


def test_training_lowers_the_loss_and_exported_checkpoint_reproduces_samples(tmp_path):
    data = [_reaction(s) for s in range(6)]
    trainer, result = train(data, config=TINY, settings=_settings(80))
    losses = [loss for _, loss in result.loss_history]
    assert losses[-1] < losses[0]
    path = export_checkpoint(tmp_path / "ts.pt", trainer.ema_model, step=result.step,
                             meta={"default_steps": 3})
    loaded = TSGenerator.load(path)
    assert loaded.default_steps == 3 and loaded.config == TINY
    direct = TSGenerator(trainer.ema_model, meta={"default_steps": 3})
    pairs = [(r.reactant, r.product) for r in data[:3]]
    a = loaded.generate_many(pairs, samples=2, seed=5)
    b = direct.generate_many(pairs, samples=2, seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.best.get_positions(), y.best.get_positions())


def test_resumed_training_matches_an_uninterrupted_run(tmp_path):
    data = [_reaction(s) for s in range(4)]
    # a constant learning rate: the cosine schedule depends on the total number of steps
    settings = TSTrainSettings(steps=12, batch_size=3, warmup_steps=0, log_every=4,
                               checkpoint_every=6, progress=False, schedule="constant")
    straight, _ = train(data, config=TINY, settings=settings, out_dir=tmp_path / "a")
    half = TSTrainSettings(**{**settings.__dict__, "steps": 6})
    train(data, config=TINY, settings=half, out_dir=tmp_path / "b")
    resumed, result = train(data, config=TINY, settings=settings, out_dir=tmp_path / "b",
                            resume=True)
    assert result.start_step == 6 and result.step == 12
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_generated_ts_follows_rigid_motions_of_the_input():
    torch.manual_seed(0)
    gen = TSGenerator(TSVelocity(TSModelConfig(hidden=16, layers=2, source_scale=1e-9)),
                      meta={"default_steps": 4})
    rxn = _reaction(1)
    ts = gen.generate(rxn.reactant, rxn.product).best.get_positions()
    g = torch.Generator().manual_seed(2)
    for proper in (True, False):
        q1, q2 = random_orthogonal(2, proper=proper, generator=g).numpy()
        r = Atoms(rxn.reactant.numbers, positions=rxn.reactant.get_positions() @ q1.T + [1, 2, 3])
        # the product may come in any orientation and position: it is aligned onto the reactant
        p = Atoms(rxn.product.numbers, positions=rxn.product.get_positions() @ q2.T - [4, 0, 1])
        moved = gen.generate(r, p).best.get_positions()
        if proper:
            expected = ts @ q1.T + [1, 2, 3]
            np.testing.assert_allclose(moved, expected, atol=1e-4)
        else:
            # a mirrored reactant with a mirrored product gives the mirrored TS up to alignment
            assert pair_rmsd(moved, ts @ q1.T) < 1e-4


def test_generate_rejects_elements_outside_the_model():
    gen = TSGenerator(TSVelocity(TINY))
    r = Atoms("CSi", positions=[[0, 0, 0], [1.8, 0, 0]])
    with pytest.raises(TSInputError, match=r"Si are outside the model's training set \(H, C, N, O\)"):
        gen.generate(r, r.copy())


def test_medoid_rank_puts_the_outlier_last():
    base = _reaction(0).transition_state
    rng = np.random.default_rng(0)
    samples = [Atoms(base.numbers, positions=base.get_positions() + rng.normal(scale=0.02, size=(5, 3)))
               for _ in range(4)]
    samples.insert(1, Atoms(base.numbers, positions=base.get_positions() + rng.normal(scale=0.8, size=(5, 3))))
    order, scores = rank(samples)
    assert order[-1] == 1 and scores[1] == max(scores)
    order, scores = rank(samples[:1])
    assert order == [0] and scores.tolist() == [0.0]


def test_fmax_rank_orders_by_largest_force_and_needs_a_calculator():
    base = _reaction(0).transition_state
    rng = np.random.default_rng(1)
    samples = [Atoms(base.numbers, positions=base.get_positions() + rng.normal(scale=s, size=(5, 3)))
               for s in (0.2, 0.0, 0.1)]
    order, scores = rank(samples, rule="fmax", calculator=EMT)
    assert [scores[k] for k in order] == sorted(scores)
    with pytest.raises(ValueError, match="needs a calculator factory"):
        rank(samples, rule="fmax")
    with pytest.raises(ValueError, match="rule must be 'medoid' or 'fmax'"):
        rank(samples, rule="energy")


def test_evaluate_scores_against_the_reference():
    data = [_reaction(s, ts_at_midpoint=True) for s in range(3)]
    gen = TSGenerator(TSVelocity(TINY), meta={"default_steps": 2})
    ev = evaluate(gen, data, samples=2, calculator=EMT)
    assert len(ev.rows) == 3 and ev.steps == 2 and ev.seconds_single > 0
    for row in ev.rows:
        assert row.rmsd_midpoint < 1e-6  # the reference TS is the exact midpoint here
        assert row.rmsd_tsgen <= min(row.rmsd, 1.0) + 1e-12
        assert math.isfinite(row.energy_generated) and math.isfinite(row.energy_reference)
    rmsd = np.array([r.rmsd for r in ev.rows])
    assert ev.summary.rmsd_median == pytest.approx(np.median(rmsd))
    assert ev.summary.rmsd_below_0_1 == pytest.approx(np.mean(rmsd < 0.1))
    de = np.abs([r.energy_error for r in ev.rows]) * 23.060547830619
    assert ev.summary.abs_de_mean == pytest.approx(de.mean())
    assert ev.summary.energies == 3 and ev.summary.energy_failures == 0


def test_missing_and_foreign_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="TS checkpoint .*absent.pt' does not exist"):
        TSGenerator.load(tmp_path / "absent.pt")
    other = save_checkpoint(tmp_path / "other.pt", torch.nn.Linear(2, 2), meta={"kind": "toy"})
    with pytest.raises(TSInputError, match="not of a TS generator"):
        TSGenerator.load(other)


def test_shipped_checkpoint_generates_for_its_held_out_reactions():
    assert DEFAULT_CHECKPOINT.is_file() and DEFAULT_CHECKPOINT.stat().st_size < 5e6
    gen = load_generator()
    assert gen.elements == (1, 6, 7, 8)
    split = gen.meta["splits"]["random"]
    train_ids, val_ids, test_ids = (set(split[k]) for k in ("train", "val", "test"))
    assert train_ids and test_ids and not (train_ids & test_ids) and not (train_ids & val_ids)
    test = shipped_test_reactions(gen)[:4]
    results = gen.generate_many([(r.reactant, r.product) for r in test], samples=2)
    for rxn, res in zip(test, results):
        x = res.best.get_positions()
        assert x.shape == (len(rxn.numbers), 3) and np.isfinite(x).all()
        assert pair_rmsd(x, rxn.transition_state.get_positions()) < 1.0


def test_refine_counts_sella_steps_against_the_idpp_start():
    gen = load_generator()
    rxn = shipped_test_reactions(gen)[0]
    ts = gen.generate(rxn.reactant, rxn.product).best
    res = refine(ts, reactant=rxn.reactant, product=rxn.product, calculator=EMT, max_steps=3)
    assert 1 <= res.steps <= 3 and 1 <= res.idpp_steps <= 3
    assert res.steps_saved == res.idpp_steps - res.steps
    assert math.isfinite(res.energy) and res.fmax >= 0
    assert res.converged or res.steps == 3
    # Sella moved the structure from the generated start
    assert pair_rmsd(res.atoms.get_positions(), ts.get_positions()) > 0
    with pytest.raises(ValueError, match="needs reactant= and product="):
        refine(ts, calculator=EMT)


def test_a_sella_failure_is_a_failed_refinement_not_a_crash(monkeypatch):
    import sella

    def give_up(self, *args, **kwargs):
        raise RuntimeError("Geometry update ODE is taking too long to converge!")

    monkeypatch.setattr(sella.Sella, "run", give_up)
    gen = load_generator()
    rxn = shipped_test_reactions(gen)[0]
    res = refine(rxn.transition_state, reactant=rxn.reactant, product=rxn.product, calculator=EMT,
                 max_steps=7)
    assert not res.converged and res.steps == 7  # charged the whole budget
    assert not res.idpp_converged and res.idpp_steps == 7
    assert math.isfinite(res.energy)

"""The pipeline end to end at toy size: train, save/load bit-exactly, score, reference forecasts."""

import math

import pytest
import torch

from sciflow.domains.feature_forecasting import pipeline as P

TINY = P.VFMConfig(compressor="pca", context=2, horizon=2, train_clips=12, ae_steps=15, steps=6, head_steps=8,
                   width=16, depth=1, heads=2, samples=3, sample_steps=2, latent_dim=4,
                   prediction="x1", residual=True)


@pytest.fixture(scope="module")
def trained():
    ext = P.build_extractor(TINY)
    data = P.make_sprite_training_set(TINY, ext)
    ev = P.make_sprite_eval_set(TINY, ext, clips=4, seed=123)
    system, report = P.train_system(TINY, data)
    return ext, data, ev, system, report


def test_training_builds_a_working_system(trained):
    _, data, ev, system, report = trained
    assert data.features.shape[:2] == (12, 4) and ev.branches.shape[:3] == (4, 9, 2)
    assert report.forecaster.step == 6 and report.parameters > 0
    assert 0 <= report.reconstruction < 1
    scores, fc = P.evaluate_system(system, ev)
    assert fc.latents.shape == (4, 3, 2, 4, 8, 8) and fc.features.shape[3] == data.features.shape[2]
    assert scores.samples == 3
    for name, value in scores.__dict__.items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    assert scores.min_of_k <= scores.mean_of_k


def test_save_and_load_reproduce_forecasts_bit_exactly(trained, tmp_path):
    _, _, ev, system, _ = trained
    path = system.save(tmp_path / "vfm.pt")
    again = P.load_system(path)
    assert again.cfg == system.cfg
    a = system.forecast(ev.context, seed=5)
    b = again.forecast(ev.context, seed=5)
    assert torch.equal(a.features, b.features)


def test_scores_of_the_truth_and_of_an_exact_sampler(trained):
    _, _, ev, system, _ = trained
    truth = P.score_forecast(ev.future[:, None], ev, system.heads, system.heads.norm)
    assert truth.mse_of_mean == 0.0 and truth.min_of_k == 0.0
    assert truth.sharpness == pytest.approx(1.0)
    oracle = P.score_forecast(P.oracle_forecast(ev, 64, seed=1), ev, system.heads,
                              system.heads.norm)
    # exact branches drawn with the known probabilities: TV at the K-sample floor
    assert abs(oracle.tv_first - oracle.tv_first_floor) < 0.1
    assert oracle.sharpness == pytest.approx(1.0, abs=0.2)
    copy = P.score_forecast(P.copy_last_forecast(ev), ev, system.heads, system.heads.norm)
    assert copy.samples == 1 and copy.mse_of_mean > 0


def test_regression_system_is_deterministic(trained):
    _, data, ev, _, _ = trained
    cfg = TINY.replace(objective="regression")
    system, _ = P.train_system(cfg, data, heads=trained[3].heads)
    a = system.forecast(ev.context, seed=0)
    b = system.forecast(ev.context, seed=1)
    assert a.features.shape[1] == 1 and torch.equal(a.features, b.features)


@pytest.mark.parametrize("kwargs, word", [
    ({"compressor": "jpeg"}, "compressor"),
    ({"objective": "diffusion"}, "objective"),
    ({"context": 5}, "context"),
    ({"min_context": 3, "context": 2}, "min_context"),
    ({"frame_size": 30}, "frame_size"),
    ({"data": "imagenet"}, "data"),
    ({"steps": 0}, "steps"),
])
def test_bad_configurations_are_refused_by_name(kwargs, word):
    with pytest.raises(ValueError, match=word):
        P.VFMConfig(**kwargs)

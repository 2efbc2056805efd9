"""The domain end to end at toy size: train, sample, evaluate, save/load bit-exactly, reference
forecasts, seeds across processes, exact resume, files and names of sciflow 0.1."""

import copy
import math
import subprocess
import sys

import pytest
import torch

from sciflow.checkpoint import load_checkpoint, save_checkpoint
from sciflow.domains import feature_forecasting as FF
from sciflow.domains.feature_forecasting import (
    KIND,
    Config,
    Model,
    build_extractor,
    copy_last_forecast,
    evaluate,
    forecaster_schedule,
    load,
    make_sprite_eval_set,
    make_sprite_training_set,
    oracle_forecast,
    sample,
    score_forecast,
    train,
)
from sciflow.errors import NonFiniteError

# tiny models lose to copying the last frame; the warning has its own test
pytestmark = pytest.mark.filterwarnings(
    "ignore::sciflow.domains.feature_forecasting.evaluation.BaselineWarning")

TINY = Config(compressor="pca", context=2, horizon=2, train_clips=12, ae_steps=15, head_steps=8,
              width=16, depth=1, heads=2, samples=3, sample_steps=2, latent_dim=4,
              train=forecaster_schedule(6, progress=False))


@pytest.fixture(scope="module")
def trained():
    ext = build_extractor(TINY)
    data = make_sprite_training_set(TINY, ext)
    ev = make_sprite_eval_set(TINY, ext, clips=4, seed=123)
    model, report = train(data, TINY, return_result=True)
    return ext, data, ev, model, report


def test_training_builds_a_working_model(trained):
    _, data, ev, model, report = trained
    assert isinstance(model, Model) and model.config == TINY
    assert data.features.shape[:2] == (12, 4) and ev.branches.shape[:3] == (4, 9, 2)
    assert report.forecaster.step == 6 and report.parameters > 0
    assert 0 <= report.reconstruction < 1
    result = evaluate(model, ev)
    fc, scores = result.forecast, result.scores
    assert fc.latents.shape == (4, 3, 2, 4, 8, 8) and fc.features.shape[3] == data.features.shape[2]
    assert scores.samples == 3
    for name, value in result.to_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    assert scores.min_of_k <= scores.mean_of_k


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun", "rk4", "dopri5"])
def test_every_solver_gives_finite_forecasts(trained, solver):
    _, _, ev, model, _ = trained
    fc = sample(model, ev.context, samples=2, solver=solver, sample_steps=2, seed=1)
    assert fc.features.shape[:3] == (4, 2, 2) and bool(torch.isfinite(fc.features).all())
    again = sample(model, ev.context, samples=2, solver=solver, sample_steps=2, seed=1)
    assert torch.equal(fc.latents, again.latents)


def test_a_forecaster_that_diverges_is_stopped_with_the_frame_named(trained):
    _, _, ev, model, _ = trained
    broken = copy.deepcopy(model)
    with torch.no_grad():
        for p in broken.forecaster.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"forecast frame t\+1"):
        sample(broken, ev.context)


def test_save_and_load_reproduce_forecasts_bit_exactly(trained, tmp_path):
    _, _, ev, model, _ = trained
    path = model.save(tmp_path / "vfm.pt")
    assert load_checkpoint(path).kind == KIND
    again = load(path)
    assert again.config == model.config and again.cfg is again.config
    a = sample(model, ev.context, seed=5)
    b = again.forecast(ev.context, seed=5)
    assert torch.equal(a.features, b.features)


def test_files_of_sciflow_0_1_load(trained, tmp_path):
    """The old VFMSystem.save: untagged, the flat VFMConfig under meta["vfm"]."""
    _, _, ev, model, _ = trained
    flat = {k: v for k, v in model.config.to_dict().items() if k != "train"}
    flat["checkpoint"] = flat.pop("extractor_weights")
    flat.update(steps=6, lr=1e-3, seed=0)
    old = save_checkpoint(tmp_path / "old.pt", model, meta={
        "vfm": flat, "feature_dim": model.feature_dim,
        "heads": {"outputs": list(model.heads.outputs), "patch_size": model.heads.patch_size,
                  "num_classes": model.heads.num_classes}})
    again = load(old)
    assert again.config.compressor == "pca" and again.config.train.steps == 6
    assert torch.equal(sample(again, ev.context, seed=2).features,
                       sample(model, ev.context, seed=2).features)


def test_names_of_sciflow_0_1_are_aliases(trained):
    _, data, ev, model, _ = trained
    cfg = FF.VFMConfig(compressor="pca", context=2, horizon=2, train_clips=12, ae_steps=15,
                       steps=6, head_steps=8, width=16, depth=1, heads=2, samples=3,
                       sample_steps=2, latent_dim=4, lr=1e-3, seed=0)
    assert isinstance(cfg, Config) and cfg.replace(train={"progress": False}) == TINY
    assert FF.VFMSystem is Model and FF.load_system is load
    system, report = FF.train_system(TINY, data, compressor=model.compressor, heads=model.heads)
    scores, fc = FF.evaluate_system(system, ev, steps=2, seed=5)
    assert scores == evaluate(system, ev, sample_steps=2, seed=5).scores
    for name in ("make_sprite_training_set", "score_forecast", "oracle_forecast", "rollout",
                 "train_forecaster", "fit_decoder_heads", "bikes_split", "evaluate_video"):
        assert callable(getattr(FF, name)), name


def test_scores_of_the_truth_and_of_an_exact_sampler(trained):
    _, _, ev, model, _ = trained
    truth = score_forecast(ev.future[:, None], ev, model.heads, model.heads.norm)
    assert truth.mse_of_mean == 0.0 and truth.min_of_k == 0.0
    assert truth.sharpness == pytest.approx(1.0)
    oracle = score_forecast(oracle_forecast(ev, 64, seed=1), ev, model.heads, model.heads.norm)
    # exact branches drawn with the known probabilities: TV at the K-sample floor
    assert abs(oracle.tv_first - oracle.tv_first_floor) < 0.1
    assert oracle.sharpness == pytest.approx(1.0, abs=0.2)
    copy = score_forecast(copy_last_forecast(ev), ev, model.heads, model.heads.norm)
    assert copy.samples == 1 and copy.mse_of_mean > 0


def test_regression_model_is_deterministic(trained):
    _, data, ev, model, _ = trained
    reg = train(data, TINY.replace(objective="regression"), compressor=model.compressor,
                heads=model.heads)
    a = sample(reg, ev.context, seed=0)
    b = sample(reg, ev.context, seed=1)
    assert a.features.shape[1] == 1 and torch.equal(a.features, b.features)


_SEEDED_RUN = (
    "import hashlib, torch\n"
    "torch.set_num_threads(1)  # bit-identity holds per thread count (reductions split by threads)\n"
    "from sciflow.domains.feature_forecasting import Config, forecaster_schedule, train\n"
    "torch.randn(11)  # unrelated draws before training must not matter\n"
    "cfg = Config(context=2, horizon=1, train_clips=6, ae_steps=3, head_steps=2, width=16,\n"
    "             depth=1, heads=2, latent_dim=4,\n"
    "             train=forecaster_schedule(3, seed=4, progress=False))\n"
    "h = hashlib.sha256()\n"
    "for k, v in sorted(train(config=cfg).state_dict().items()):\n"
    "    h.update(k.encode()); h.update(v.contiguous().numpy().tobytes())\n"
    "print(h.hexdigest())\n")


def test_same_seed_same_weights_in_two_processes():
    """seed= fixes everything from the VAE's, forecaster's and heads' initialisation on: this
    process (whatever its random state) and a fresh one train bit-identical models."""
    import contextlib
    import io

    torch.randn(5)
    here = io.StringIO()
    with contextlib.redirect_stdout(here):
        exec(_SEEDED_RUN, {})
    there = subprocess.run([sys.executable, "-c", _SEEDED_RUN], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert here.getvalue().strip() == there and len(there) == 64


def test_resume_continues_bit_exactly(trained, tmp_path):
    _, data, _, model, _ = trained
    cfg = TINY.replace(train=forecaster_schedule(8, checkpoint_every=4, progress=False,
                                                 out_dir=str(tmp_path)))
    full = train(data, cfg, compressor=model.compressor, heads=model.heads)
    (tmp_path / "checkpoints" / "step_00000008.pt").unlink()  # as if killed after step 4
    resumed, report = train(data, cfg, compressor=model.compressor, heads=model.heads,
                            resume=True, return_result=True)
    assert report.forecaster.start_step == 4
    for (k, a), b in zip(full.forecaster.state_dict().items(),
                         resumed.forecaster.state_dict().values()):
        assert torch.equal(a, b), k

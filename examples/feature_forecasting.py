"""Forecast a video's future in feature space (VFMF-style), step by step.

Sprite videos whose sprite turns straight / left / right at random (known probabilities) ->
per-patch features of a fixed filter bank -> a channel-wise VAE latent per token -> a space-time
transformer trained by flow matching to generate the next latent -> K autoregressive samples,
decoded back to features and on to segmentation maps; scored against every exact future branch.
Then the same model forecasts "your own video": a long clip saved as a (T, H, W, 3) uint8 .npy
file, read the way `sciflow vfm forecast --data clip.npy` reads it, with the provenance record
the command writes beside its tensors.

    python examples/feature_forecasting.py             (a few minutes on two cores)
    SCIFLOW_EXAMPLE_QUICK=1 python examples/feature_forecasting.py     (under a minute)

Outputs in $SCIFLOW_EXAMPLE_OUT (default sciflow-out/examples/feature_forecasting).
"""

import os
from pathlib import Path

import numpy as np

from sciflow.datasets.sprites import make_sprite_clips
from sciflow.domains.feature_forecasting import (
    Config,
    VideoSource,
    build_extractor,
    evaluate,
    figures,
    fit_compressor,
    forecaster_schedule,
    load,
    make_sprite_eval_set,
    make_sprite_training_set,
    sample,
    train,
    video_clips,
)
from sciflow.domains.feature_forecasting.metrics import reconstruction_error
from sciflow.domains.feature_forecasting.provenance import forecast_record
from sciflow.outputs import dumps_json

quick = os.environ.get("SCIFLOW_EXAMPLE_QUICK") == "1"
out = Path(os.environ.get("SCIFLOW_EXAMPLE_OUT", "sciflow-out/examples/feature_forecasting"))
out.mkdir(parents=True, exist_ok=True)

# 1. data: training clips and test clips whose every possible future is rendered exactly
cfg = Config(context=2, min_context=2, horizon=3, latent_dim=8, prediction="x1", residual=True,
             train_clips=120 if quick else 1000, ae_steps=300 if quick else 1000,
             head_steps=60 if quick else 600, width=16 if quick else 48,
             depth=1 if quick else 3, heads=4, samples=4 if quick else 8,
             sample_steps=4 if quick else 10,
             train=forecaster_schedule(60 if quick else 1500, lr=2e-3))
extractor = build_extractor(cfg)  # offline default: a fixed filter bank, not a foundation model
clips = make_sprite_training_set(cfg, extractor)
test = make_sprite_eval_set(cfg, extractor, clips=6 if quick else 48)
print(f"features {tuple(clips.features.shape)}; {test.branches.shape[1]} future branches per "
      "test clip")

# 2. compress each token to k channels: channel-wise VAE against PCA of the same size
vae = fit_compressor("vae", clips.features, cfg.latent_dim, steps=cfg.ae_steps, seed=cfg.seed)
pca = fit_compressor("pca", clips.features, cfg.latent_dim)
held_out = test.future.flatten(0, 1)
print(f"reconstruction NMSE at k={cfg.latent_dim}: VAE {reconstruction_error(vae, held_out):.3f}, "
      f"PCA {reconstruction_error(pca, held_out):.3f}")

# 3. train the flow-matching forecaster in the VAE latent (heads for decoding come along)
model, report = train(clips, cfg, compressor=vae, return_result=True)
path = model.save(out / "model.pt")
print(f"trained {report.forecaster.step} updates in {report.seconds['forecaster']:.0f} s, "
      f"final loss {report.forecaster.final_loss:.3f}; saved {path}")

# 4. reload the way lab code would: K rollouts per clip (any sciflow solver), then score them
model = load(path)
rollouts = sample(model, test.context, solver="midpoint", sample_steps=cfg.sample_steps // 2)
print(f"midpoint rollouts: latents {tuple(rollouts.latents.shape)}")
result = evaluate(model, test)
print({k: round(v, 3) for k, v in result.to_dict().items() if isinstance(v, float)})
(out / "scores.json").write_text(dumps_json(result.to_dict()))
labels = model.heads.decode(result.forecast.features).segmentation
figure = figures.plot_sprite_forecasts(out / "forecasts.png", test.frames, test.segmentation,
                                       {"flow": labels}, context=cfg.context)
print(f"saved scores and {figure}")

# 5. your own video: frames as a (T, H, W, 3) uint8 array on disk (here a long, unseen sprite clip;
#    a recording converted with imageio / PyAV looks the same), read through the command's path:
#    every 3rd window of context + horizon frames, each frame cropped and resized to the model's
video = make_sprite_clips(1, 120, config=cfg.sprites(), seed=20_000).frames[0]
np.save(out / "my_video.npy", (video.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
clips = video_clips(VideoSource(path=str(out / "my_video.npy"), stride=3), model.config, extractor)
on_file = evaluate(model, clips)  # warns (BaselineWarning) if copying the last frame does better
print(f"{clips.features.shape[0]} clips of my_video.npy: MSE of the K-sample mean "
      f"{on_file.scores.mse_of_mean:.3f} vs {on_file.copy_last_mse:.3f} for copying the last frame")
record = forecast_record(model, on_file, clips.provenance, output="(not written)", warnings=[])
(out / "my_video_forecast.json").write_text(dumps_json(record))
print(f"provenance: input sha256 {record['input']['sha256'][:12]}..., checkpoint digest "
      f"{record['model']['digest'][:12]}...; the same from the command line:\n"
      f"  sciflow vfm forecast --checkpoint {path} --data {out / 'my_video.npy'} --stride 3 "
      f"-o {out / 'my_video_forecast.pt'}")

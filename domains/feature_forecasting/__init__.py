"""Feature forecasting (VFMF-style): forecast a video's future in a vision model's feature space.

    frames --extractor--> token features --compressor--> per-token latents (VAE / PCA / raw)
    latents --forecaster (space-time transformer; flow matching or regression)--> K rollouts
    rollouts --compressor.decode--> features --heads--> segmentation, depth, RGB
    scores: feature MSE of the mean / mean-of-K / min-of-K, mIoU, depth, sharpness, and the
    branch-distribution TV against the exactly known futures of the sprite videos

>>> from sciflow.domains.feature_forecasting import Config, evaluate, load, sample, train
>>> from sciflow.domains.feature_forecasting import build_extractor, make_sprite_eval_set
>>> model = train(config=Config(compressor="pca").replace(train={"steps": 200}))  # doctest: +SKIP
>>> test = make_sprite_eval_set(model.config, build_extractor(model.config))      # doctest: +SKIP
>>> fc = sample(model, test.context, samples=8)     # K = 8 rollouts       # doctest: +SKIP
>>> evaluate(model, test).to_dict()["min_of_k"]                            # doctest: +SKIP
>>> model.save("vfm.pt"); load("vfm.pt")                                  # doctest: +SKIP

A user's own video (a .npy / .npz array, THWC or TCHW, uint8 or float 0-1, or an .mp4):

>>> from sciflow.domains.feature_forecasting import VideoSource, video_clips, video_config
>>> source = VideoSource(path="clip.npy", stop=400, stride=2)                 # doctest: +SKIP
>>> model = train(config=video_config(source, frame_size=32))              # doctest: +SKIP
>>> held_out = VideoSource(path="clip.npy", start=400)                      # doctest: +SKIP
>>> test = video_clips(held_out, model.config, build_extractor(model.config))  # doctest: +SKIP
>>> evaluate(model, test).to_dict()["copy_last_mse"]                        # doctest: +SKIP

Modules (the domain shape of ``domains/README.md``): :mod:`.config` (Config), :mod:`.data`
(sprite and video clips, input checks), :mod:`.video` (a user's video file: VideoSource, frame
range, size, clips with provenance), :mod:`.extractors` and :mod:`.dinov2` (features),
:mod:`.autoencoder` (compressors), :mod:`.model` (the forecaster network, Model, load),
:mod:`.heads` (decoders), :mod:`.training`, :mod:`.sampling` (rollouts through sciflow.solvers),
:mod:`.evaluation`, :mod:`.baselines`, :mod:`.metrics`, :mod:`.figures`, :mod:`.cli`
(``sciflow feature-forecasting``, alias ``vfm``; handlers in :mod:`.commands`),
:mod:`.provenance` (the JSON records beside every output), :mod:`.demo`. Data:
:mod:`sciflow.datasets.sprites` and :mod:`sciflow.datasets.video`. Public names load on first use,
so ``sciflow --help`` imports no torch.

Names of sciflow 0.1, kept as aliases: ``VFMConfig`` (builds a Config from the old flat fields
``steps``/``lr``/``seed``/``checkpoint``), ``VFMSystem`` = Model, ``load_system`` = load,
``train_system(cfg, data)`` -> (model, report), ``evaluate_system(system, data)`` -> (scores,
forecast), ``evaluate_video(system, windows)`` -> (score dict, forecast); ``Model.cfg`` =
``Model.config`` and ``Model.forecast(context, steps=...)`` = sample; the old
``pipeline`` module's functions are exported here.
"""

from sciflow.plugins import lazy_exports, public_names

_EXPORTS = {
    ".config": ("Config", "forecaster_schedule", "VFMConfig"),
    ".model": (
        "KIND", "Model", "load", "ForecasterSpec", "LatentForecaster", "VFMSystem", "load_system",
    ),
    ".training": ("train", "TrainReport", "train_forecaster", "fit_decoder_heads", "train_system"),
    ".sampling": ("sample", "rollout", "Forecast"),
    ".evaluation": (
        "evaluate", "Evaluation", "BaselineWarning", "VideoScores", "score_forecast",
        "evaluate_system", "evaluate_video",
    ),
    ".baselines": ("copy_last", "copy_last_forecast", "oracle_forecast"),
    ".data": (
        "TrainSet", "EvalSet", "build_extractor", "make_sprite_training_set",
        "make_video_training_set", "make_sprite_eval_set", "bikes_split", "bikes_clips",
    ),
    ".video": ("VideoSource", "video_config", "video_clips", "read_source"),
    ".provenance": ("forecast_record", "train_record"),
    ".autoencoder": ("ChannelVAE", "Compressor", "PCACompressor", "RawFeatures", "fit_compressor"),
    ".extractors": ("FeatureExtractor", "FilterBankExtractor", "make_extractor"),
    ".dinov2": ("DINOv2Extractor",),
    ".heads": ("DecoderHeads",),
    ".metrics": ("ForecastScores",),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = public_names(_EXPORTS)

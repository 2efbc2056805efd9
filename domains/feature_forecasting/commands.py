"""The handlers of ``sciflow feature-forecasting`` (alias ``vfm``): check every argument, claim
every output, then work.

``train`` writes OUT/model.pt and OUT/train.json (:func:`~.provenance.train_record`);
``forecast`` writes OUTPUT.pt (rollout tensors and their provenance), OUTPUT.json
(:func:`~.provenance.forecast_record`) and OUTPUT.png (the figure, unless ``--no-plot``). A
:class:`~.evaluation.BaselineWarning` is printed as ``sciflow feature-forecasting: warning: ...``
and recorded in the JSON. This module imports no torch: what a handler needs is imported when
it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sciflow.errors import InputError, OutputError
from sciflow.outputs import claim_output

from .video import VideoSource

__all__ = ["train", "forecast", "FORECAST_KIND", "CONFIG_FLAGS", "VIDEO_FLAGS", "video_source"]

#: the kind tag of the rollout files `forecast` writes (sciflow.checkpoint.load_tensors reads them)
FORECAST_KIND = "feature_forecasting/forecast"

#: Config fields set from flags of the same name (``--latent-dim`` -> latent_dim)
CONFIG_FLAGS = ("frame_size", "frame_width", "context", "horizon", "train_clips", "extractor",
                "extractor_weights", "feature_patch", "compressor", "latent_dim", "kl_weight",
                "ae_steps", "objective", "patch_size", "width", "depth", "heads", "batch_size",
                "min_context", "prediction", "head_steps", "solver", "sample_steps", "samples")

#: VideoSource fields set from flags of the same name; they apply to --data PATH only
VIDEO_FLAGS = ("layout", "key", "start", "stop", "every", "stride", "fit")

_PREFIX = "sciflow feature-forecasting"


@contextlib.contextmanager
def _no_empty_folder_left(folder: Path) -> Iterator[None]:
    """Remove ``folder`` again if this command created it and fails before writing into it
    (claiming an output creates its folder)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for p in missing:  # innermost first
            with contextlib.suppress(OSError):
                p.rmdir()  # only if empty
        raise


def video_source(args: argparse.Namespace, defaults: VideoSource | None = None
                 ) -> VideoSource | None:
    """The VideoSource ``--data PATH`` and the video flags name (None for sprites / bikes, where
    a video flag is an InputError); unset flags take ``defaults``' values (the model's
    training video: its ``every`` and ``fit``), then VideoSource's."""
    given = {f: getattr(args, f) for f in VIDEO_FLAGS if getattr(args, f, None) is not None}
    if args.data in (None, "sprites", "bikes"):
        if given:
            flags = ", ".join("--" + f for f in given)
            raise InputError(f"{flags} choose frames of a video file; they need --data PATH "
                             f"(got --data {args.data or 'unset'})")
        return None
    inherited = {} if defaults is None else {"every": defaults.every, "fit": defaults.fit}
    return VideoSource(path=str(args.data), **{**inherited, **given})


def _check_video_file(source: VideoSource) -> None:
    if not Path(source.path).is_file():
        raise FileNotFoundError(f"--data {source.path!r}: no such file; give sprites, bikes or "
                                "the path of a video (.npy, .npz, .mp4, ...)")


def _warn_line(message: str) -> None:
    print(f"{_PREFIX}: warning: {message}", file=sys.stderr, flush=True)


def train(args: argparse.Namespace) -> int:
    """``train``: fit compressor, forecaster and heads on sprites, bikes or a user's video."""
    with _no_empty_folder_left(Path(args.out)):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    source = video_source(args)
    if source is not None:
        _check_video_file(source)
    out = Path(args.out)
    inputs = [args.extractor_weights, source.path if source else None]
    replace = args.overwrite or args.resume
    with claim_output(out / "model.pt", inputs=inputs, overwrite=replace,
                      name="--out") as model_out, \
            claim_output(out / "train.json", inputs=inputs, overwrite=replace,
                         name="--out") as summary_out:
        from sciflow.checkpoint import load_checkpoint
        from sciflow.cli_args import set_threads, train_config
        from sciflow.outputs import dumps_json

        from .config import Config, forecaster_schedule
        from .provenance import train_record
        from .training import train as fit
        from .video import video_config

        set_threads(args)
        fields = {name: getattr(args, name) for name in CONFIG_FLAGS}
        fields["residual"] = args.prediction == "x1" and not args.no_residual
        if source is not None:
            base = video_config(source, **fields)
        else:
            base = Config(data=args.data or "sprites", **fields)
        run = forecaster_schedule(args.steps, lr=base.train.lr) if args.steps else base.train
        if args.progress is not None:
            run = dataclasses.replace(run, progress=args.progress)
        config = base.replace(train=train_config(args, run))
        if source is not None:
            h, w = config.frame_shape
            print(f"training on {source.name}: frames {source.start} to "
                  f"{'the end' if source.stop is None else source.stop - 1}, every "
                  f"{source.every}, a clip every {source.stride} frames, {source.fit} to "
                  f"{h}x{w} pixels", file=sys.stderr, flush=True)
        model, report = fit(None, config, resume=args.resume, return_result=True)
        model_out.write(lambda tmp: model.save(tmp))
        digest = load_checkpoint(model_out.path).digest
        record = train_record(model, report, checkpoint=str(model_out.path), digest=digest)
        summary_out.write(lambda tmp: tmp.write_text(dumps_json(record)))
    shown = {k: record[k] for k in ("reconstruction_nmse", "final_loss", "parameters", "seconds")}
    print(dumps_json({**shown, "clips": (model.trained_on or {}).get("clips")}).strip())
    data = f" --data {source.path}" if source is not None else ""
    print(f"saved {model_out.path}; next: {_PREFIX} forecast --checkpoint {model_out.path}"
          f"{data} -o {out / 'forecast.pt'}")
    return 0


def forecast(args: argparse.Namespace) -> int:
    """``forecast``: K rollouts of held-out clips (sprites, bikes or a user's video), scored
    against their true futures and the copy-last-frame baseline."""
    with _no_empty_folder_left(Path(args.output).parent):
        return _claim_forecast(args)


def _claim_forecast(args: argparse.Namespace) -> int:
    if not args.checkpoint:
        raise InputError(f"--checkpoint FILE is required: the model.pt written by `{_PREFIX} "
                         "train`")
    if args.data not in (None, "sprites", "bikes"):
        video_source(args)  # the flags' own checks, before any output is claimed
        _check_video_file(VideoSource(path=str(args.data)))
    inputs = [args.checkpoint] + ([args.data] if args.data not in (None, "sprites", "bikes")
                                  else [])
    output = Path(args.output)
    claims = {"forecast": claim_output(output, inputs=inputs, suffixes=(".pt",),
                                       overwrite=args.overwrite)}
    try:
        siblings = {"record": ".json", **({"figure": ".png"} if args.plot else {})}
        for what, suffix in siblings.items():
            claims[what] = claim_output(output.with_suffix(suffix), inputs=inputs,
                                        overwrite=args.overwrite)
        return _forecast(args, claims)
    finally:
        for claim in claims.values():
            claim.release()


def _clips(args: argparse.Namespace, model: Any, extractor: Any, samples: int) -> Any:
    """The clips to forecast: the model's own kind by default, or what ``--data`` names."""
    from sciflow.resources import check_memory

    from .data import bikes_clips, eval_set_bytes, make_sprite_eval_set
    from .evaluation import evaluation_bytes
    from .video import video_clips

    cfg = model.config
    kind = args.data or ("sprites" if cfg.data == "sprites" else cfg.data)
    if kind == "video":
        raise InputError(f"this model was trained on {cfg.video.path!r}; name the video to "
                         "forecast with --data PATH (frames it was trained on score better "
                         "than new footage would)")
    if kind == "bikes":
        return bikes_clips(cfg, extractor, part="test")
    if kind == "sprites":
        if cfg.data != "sprites":
            raise InputError(f"--data sprites: this model reads {cfg.frame_shape[0]}x"
                             f"{cfg.frame_shape[1]} frames of {cfg.data}, not sprite videos; "
                             "give --data PATH of a video")
        clips = args.clips or 32
        check_memory(eval_set_bytes(cfg, int(extractor.dim), clips), f"{clips} test clips "
                     "with every future branch", name="--clips")
        check_memory(evaluation_bytes(model, clips, samples=samples, horizon=cfg.horizon),
                     f"{clips} clips x {samples} samples x {cfg.horizon} frames",
                     name="--samples")
        return make_sprite_eval_set(cfg, extractor, clips=clips, seed=args.data_seed,
                                    progress=args.progress)
    source = video_source(args, defaults=cfg.video)
    return video_clips(source, cfg, extractor, clips=args.clips, progress=args.progress)


def _forecast(args: argparse.Namespace, claims: dict[str, Any]) -> int:
    import warnings

    from sciflow.checkpoint import save_tensors
    from sciflow.cli_args import set_threads
    from sciflow.outputs import dumps_json

    from .data import build_extractor
    from .evaluation import BaselineWarning, evaluate
    from .model import load
    from .provenance import forecast_record

    set_threads(args)
    model = load(args.checkpoint, device=args.device or "cpu")
    cfg = model.config
    if cfg.extractor_weights is not None:
        for claim in claims.values():
            if claim.path == Path(cfg.extractor_weights).resolve():
                raise OutputError(f"{str(claim.path)!r} is the model's DINOv2 weights file; "
                                  "choose another --output")
    samples = args.samples if args.samples is not None else cfg.samples
    extractor = build_extractor(cfg)
    data = _clips(args, model, extractor, samples)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BaselineWarning)
        result = evaluate(model, data, samples=args.samples, sample_steps=args.sample_steps,
                          solver=args.solver, seed=args.seed, progress=args.progress)
    said = []
    for w in caught:
        if issubclass(w.category, BaselineWarning):
            said.append(str(w.message))
            _warn_line(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    fc = result.forecast
    record = forecast_record(model, result, data.provenance,
                             output=str(claims["forecast"].path), warnings=said)
    claims["forecast"].write(lambda tmp: save_tensors(
        tmp, {"latents": fc.latents, "features": fc.features, "provenance": record},
        kind=FORECAST_KIND))
    claims["record"].write(lambda tmp: tmp.write_text(dumps_json(record)))
    written = [claims["forecast"].path, claims["record"].path]
    if "figure" in claims:
        written.append(claims["figure"].write(lambda tmp: _figure(tmp, model, data, result)))
    _summary(record)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _summary(record: dict[str, Any]) -> None:
    s, base, inp, smp = record["scores"], record["baseline"], record["input"] or {}, \
        record["sampling"]
    where = inp.get("path", inp.get("kind", "?"))
    frames = (f" (file frames {inp['first_frame']} to {inp['last_frame']}, every "
              f"{inp['selection']['every']}, a clip every {inp['selection']['stride']})"
              if "first_frame" in inp else "")
    print(f"forecast {inp.get('clips', '?')} clips of {where}{frames}: K={smp['samples']}, "
          f"{smp['solver']} x {smp['sample_steps']} steps, seed {smp['seed']}; MSE of mean "
          f"{s['mse_of_mean']:.4f}, min-of-K {s['min_of_k']:.4f}, copy-last-frame "
          f"{base['baseline']:.4f}" + (" (worse than copy-last)" if base["worse_than_baseline"]
                                       else ""))


def _figure(path: Path, model: Any, data: Any, result: Any) -> Path:
    from . import figures
    from .data import EvalSet

    cfg, fc = model.config, result.forecast
    name = cfg.objective
    if isinstance(data, EvalSet):
        labels = model.heads.decode(fc.features).segmentation
        return figures.plot_sprite_forecasts(path, data.frames, data.segmentation,
                                             {name: labels}, context=cfg.context)
    rgb = model.heads.decode(fc.features[0]).rgb
    truth = model.heads.decode(data.features[0, cfg.context:][None]).rgb[0]
    inp = data.provenance or {}
    first = (inp.get("clip_starts") or {}).get("first", 0)
    every = (inp.get("selection") or {}).get("every", 1)
    where = Path(inp["path"]).name if "path" in inp else inp.get("kind", "video")
    last = first + every * (cfg.context + cfg.horizon - 1)
    title = (f"{where}, clip 0 (file frames {first} to {last}): true frames, the RGB head's decoding of the true future and of "
             f"{min(3, rgb.shape[0])} of K={rgb.shape[0]} {name} forecasts")
    return figures.plot_video_forecast(path, data.frames[0], {name: rgb}, context=cfg.context,
                                       title=title, reference=truth)

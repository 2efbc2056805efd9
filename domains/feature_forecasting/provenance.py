"""What every output of the domain says about where it came from, as JSON next to its tensors.

``forecast`` writes OUTPUT.pt (the rollout tensors) and OUTPUT.json, the :func:`forecast_record`;
the same record is kept inside OUTPUT.pt under ``"provenance"``. ``train`` writes OUT/train.json
(:func:`train_record`). Every record holds

    sciflow   :func:`sciflow.provenance.provenance`: sciflow, torch and Python versions, the
              command, host and UTC time, the checkpoint and its digest, seed, sampler, steps
    model     the checkpoint's path and sha256 digest (sciflow.checkpoint), objective,
              compressor, extractor, frame shape, context, and what it was trained on
    sampling  seed, sampler (ODE solver), sample_steps per frame, samples K, horizon
    input     the clips forecast: for a video file its absolute path, sha256, layout and dtype
              read, the frame range and the file frame number that starts each clip
    scores    the measured numbers; ``meaning`` says what each is, in which units
    baseline  the same clips forecast by repeating the last context frame, and whether the
              model did worse (then ``warnings`` holds the BaselineWarning's text)

All of it is strict JSON (:func:`sciflow.outputs.dumps_json`: NaN and inf become null).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCORE_MEANINGS", "TENSOR_MEANINGS", "forecast_record", "train_record",
           "sciflow_header"]

_UNITS = ("in standardised feature units (per-channel z-scores of the model's training "
          "features), averaged over forecast frames, tokens and channels")

#: what each number in ``scores`` means
SCORE_MEANINGS: dict[str, str] = {
    "samples": "K, forecasts drawn per clip (1 for regression, which is deterministic)",
    "mse_of_mean": f"squared error of the mean of the K forecasts against the true future, {_UNITS}"
                   "; lower is better; what the copy-last baseline is compared on",
    "mean_of_k": "squared error of one forecast, averaged over the K (a typical sample)",
    "min_of_k": "squared error of the best of the K forecasts (does any sample come close?)",
    "spread": "variance across the K forecasts, averaged over entries (0: deterministic)",
    "copy_last_mse": "squared error of repeating the last context frame (the trivial baseline) "
                     "on the same clips, same units",
    "sharpness": "spatial gradient energy of forecast over true features (1: as sharp as the "
                 "data; < 1: blurred towards the mean)",
    "miou": "mean IoU of the decoded segmentation over all samples (sprites)",
    "miou_best": "mean IoU of each clip's min-of-K sample",
    "absrel": "depth AbsRel mean(|d_hat - d| / d) of the decoded depth over all samples",
    "absrel_best": "depth AbsRel of each clip's min-of-K sample",
    "delta1": "fraction of pixels with max(d_hat / d, d / d_hat) < 1.25",
    "tv_first": "total variation between each clip's K-sample histogram over the exact "
                "one-step futures and their known probabilities, averaged over clips (0 best)",
    "tv_joint": "the same over whole-horizon futures",
    "tv_first_pooled": "total variation of the one-step histogram pooled over all clips",
    "tv_first_floor": "tv_first of a perfect sampler with the same K (the best reachable)",
    "tv_joint_floor": "tv_joint of a perfect sampler with the same K",
    "branch_hist_first": "fraction of samples nearest each one-step future branch",
}

#: what each tensor in OUTPUT.pt holds
TENSOR_MEANINGS: dict[str, str] = {
    "latents": "(B clips, K samples, H frames, k channels, h, w) forecast latents",
    "features": "(B, K, H, D channels, h, w) forecast features, decoded from the latents, in "
                "the extractor's units",
    "rgb": "(B, K, H, 3, frame H, frame W) the RGB head's decoding of the features, in [0, 1] "
           "(video inputs)",
    "provenance": "this record",
}


def sciflow_header(wrote: str, **settings: Any) -> dict[str, Any]:
    """The core's provenance record (:func:`sciflow.provenance.provenance`: versions, command,
    host, time; ``settings`` such as checkpoint, digest, seed, sampler) plus domain and writer."""
    import json

    from sciflow.provenance import provenance

    # through JSON text: the record's torch version is a str subclass that torch.load's weights-only
    # reader refuses inside OUTPUT.pt
    return json.loads(json.dumps(provenance(domain="feature_forecasting", wrote=wrote,
                                            **settings)))


def _model_entry(model: Any) -> dict[str, Any]:
    cfg = model.config
    ck = model.checkpoint or {}
    return {"checkpoint": ck.get("path"), "digest": ck.get("digest"),
            "objective": cfg.objective, "compressor": cfg.compressor,
            "latent_dim": model.compressor.latent_dim, "extractor": cfg.extractor,
            "frame_shape": list(cfg.frame_shape), "context_frames": cfg.context,
            "trained_on": model.trained_on}


def forecast_record(model: Any, result: Any, input_provenance: dict[str, Any] | None, *,
                    output: str, warnings: list[str]) -> dict[str, Any]:
    """The provenance of a forecast: see the module docstring. ``model`` a loaded
    :class:`~.model.Model`; ``result`` its :class:`~.evaluation.Evaluation` on the clips of
    ``input_provenance``; ``output`` the tensors file; ``warnings`` what was warned."""
    scores = result.to_dict()
    ck, smp = model.checkpoint or {}, result.sampling
    return {
        "sciflow": sciflow_header("sciflow feature-forecasting forecast",
                                  checkpoint=ck.get("path"), digest=ck.get("digest"),
                                  seed=smp.get("seed"), sampler=smp.get("solver"),
                                  sample_steps=smp.get("sample_steps"),
                                  samples=smp.get("samples")),
        "model": _model_entry(model),
        "sampling": {**result.sampling, "sampler": result.sampling.get("solver"),
                     "objective": model.config.objective},
        "input": input_provenance,
        "scores": scores,
        "meaning": {k: SCORE_MEANINGS[k] for k in scores if k in SCORE_MEANINGS},
        "baseline": {"name": "copy the last context frame", "metric": "mse_of_mean",
                     "model": scores["mse_of_mean"], "baseline": result.copy_last_mse,
                     "worse_than_baseline": result.worse_than_copy_last},
        "warnings": list(warnings),
        "tensors": {"file": output, **TENSOR_MEANINGS},
    }


def train_record(model: Any, report: Any, *, checkpoint: str, digest: str | None
                 ) -> dict[str, Any]:
    """The provenance and summary of a training run (OUT/train.json)."""
    return {
        "sciflow": sciflow_header("sciflow feature-forecasting train", checkpoint=checkpoint,
                                  digest=digest, seed=model.config.seed),
        "checkpoint": checkpoint, "digest": digest, "seed": model.config.seed,
        "trained_on": model.trained_on, "config": model.config.to_dict(),
        "reconstruction_nmse": report.reconstruction,
        "final_loss": report.forecaster.final_loss, "parameters": report.parameters,
        "seconds": report.seconds,
        "meaning": {"reconstruction_nmse": "compressor error on the training features, "
                                           "normalised (1 = predicting each channel's mean)",
                    "final_loss": "the forecaster's last training loss (flow matching or MSE)"},
    }

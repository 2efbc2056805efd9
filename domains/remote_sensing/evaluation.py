"""Scoring a model against per-pixel baselines on series with a known truth.

:func:`evaluate_task` scores one task for the model (when given) and for the baselines of
:mod:`.baselines` on the pixels the task asks for (observed clear pixels are kept for every
method); :func:`evaluate` wraps it in a frozen :class:`Evaluation` with ``to_dict()``. Metrics
are :mod:`.metrics`' (PSNR / SSIM / RMSE / MAE / SAM / CRPS, or the SitsSCD change scores).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciflow.errors import InputError, WorseThanBaselineWarning
from sciflow.progress import progress as progress_bar

from .baselines import BASELINES, CentroidClassifier, Climatology, linear_interpolation, persistence
from .config import SAMPLE_STEPS, SAMPLES, SOLVER
from .data import SeriesBatch, Standardizer
from .metrics import ChangeScores, ImageScores, change_scores, image_scores
from .model import Model
from .sampling import Prediction, predict_series
from .tasks import TaskOptions, check_task, make_task
from .uncertainty import UncertaintyScores, uncertainty_scores

__all__ = ["Reference", "fit_reference", "evaluate_task", "evaluate", "Evaluation",
           "WorseThanBaselineWarning", "REFERENCE", "baseline_check"]


@dataclass(frozen=True)
class Reference:
    """What the reference baselines learn from the training set: a monthly climatology and a
    per-(month, class) centroid classifier (None without labels)."""

    climatology: Climatology
    classifier: CentroidClassifier | None


def fit_reference(train: SeriesBatch, n_classes: int) -> Reference:
    """Fit the climatology and the centroid classifier on training series with a truth."""
    if train.truth is None:
        raise InputError("the reference baselines need training series with a truth")
    clim = Climatology.fit(train.truth, train.doy)
    clf = None
    if n_classes and train.labels is not None:
        clf = CentroidClassifier.fit(train.truth, train.labels, train.doy, n_classes)
    return Reference(clim, clf)


#: relative RMSE margin within which a model counts as level with its baseline (float noise)
RMSE_TOLERANCE = 1e-3

#: the trivial baseline each image task must beat
REFERENCE = {"reconstruction": "linear interpolation", "cloud_removal": "linear interpolation",
             "forecasting": "persistence"}


def baseline_check(task: str, scores: dict[str, ImageScores | ChangeScores]) -> str | None:
    """A warning line when the model's RMSE is above its task's :data:`REFERENCE` baseline's
    by more than :data:`RMSE_TOLERANCE` (None when it is not, or either is missing); also
    issued as a
    :class:`WorseThanBaselineWarning`."""
    ref = REFERENCE.get(task)
    model, base = scores.get("model"), scores.get(ref) if ref else None
    if not isinstance(model, ImageScores) or not isinstance(base, ImageScores):
        return None
    if not model.rmse > base.rmse * (1 + RMSE_TOLERANCE):
        return None
    text = (f"the model scores worse than {ref} on {task}: RMSE {model.rmse:.5f} against "
            f"{base.rmse:.5f} (PSNR {model.psnr:.2f} against {base.psnr:.2f} dB); train longer "
            "or on data closer to these cubes, or use the baseline")
    warnings.warn(text, WorseThanBaselineWarning, stacklevel=3)
    return text


def _predict(model: Model, series: SeriesBatch, task: str, options: TaskOptions, *,
             samples: int, steps: int, solver: str, seed: int, batch_size: int,
             progress: bool | None = False) -> list[Prediction]:
    starts = range(0, series.shape[0], batch_size)
    bar = progress_bar(total=len(starts), desc=f"rs evaluate {task}", unit="batch",
                       enabled=progress)
    out = []
    for i in starts:
        out.append(predict_series(model, series.index(slice(i, i + batch_size)), task,
                                  options=options, samples=samples, steps=steps, solver=solver,
                                  seed=seed + i))
        bar.update(1)
    bar.close()
    return out


def evaluate_task(model: Model | None, series: SeriesBatch, task: str, *,
                  options: TaskOptions | None = None, reference: Reference | None = None,
                  samples: int = SAMPLES, steps: int = SAMPLE_STEPS, solver: str = SOLVER,
                  seed: int = 0, batch_size: int = 16,
                  include_baselines: bool = True, known: Tensor | None = None,
                  predictions: list[Prediction] | None = None, check_baseline: bool = True,
                  progress: bool | None = False) -> dict[str, ImageScores | ChangeScores]:
    """Scores of the model (when given) and of the baselines for one task on series with a truth.

    Image tasks: :class:`ImageScores` on the task's target pixels (those where ``known``
    (B, T, H, W) is true, when given: a self-supervised truth, :mod:`.holdout`), for "model"
    and each baseline (last / closest observation, linear interpolation for gap filling and
    cloud removal; persistence and climatology for forecasting). Change detection:
    :class:`ChangeScores` for "model" and "centroid on linear interpolation". ``predictions``:
    the model's, when already sampled (:func:`evaluate` reuses them). A model worse than its
    task's trivial baseline (:data:`REFERENCE`) raises a :class:`WorseThanBaselineWarning`
    (unless ``check_baseline`` is False). ``progress``: report progress over the batches.
    """
    task = check_task(task)
    if series.truth is None:
        raise InputError("evaluation needs series with a truth (clear_reflectance)")
    if task == "change_detection" and series.labels is None:
        raise InputError("change detection is scored against 'landcover': these series have none")
    options = options if options is not None else TaskOptions()
    results: dict[str, ImageScores | ChangeScores] = {}
    n_cls = len(model.config.classes) if model is not None else (
        reference.classifier.centroids.shape[1] if reference and reference.classifier else 0)
    if model is not None:
        preds = predictions if predictions is not None else _predict(
            model, series, task, options, samples=samples, steps=steps, solver=solver,
            seed=seed, batch_size=batch_size, progress=progress)
        given = torch.cat([p.given for p in preds])
        target = torch.cat([p.target for p in preds])
        if known is not None:
            target = target & known
        if task == "change_detection":
            labels = torch.cat([p.labels for p in preds])
            results["model"] = change_scores(labels, series.labels, n_cls)
        else:
            mean = torch.cat([p.reflectance for p in preds])
            ens = torch.cat([p.samples for p in preds], dim=1)
            results["model"] = image_scores(mean, series.truth, target,
                                            samples=ens if samples > 1 else None)
    else:
        probe = make_task(series, task, standardizer=Standardizer(
            (0.0,) * series.shape[2], (1.0,) * series.shape[2], (0.0, 0.0), (1.0, 1.0)),
            n_classes=0, use_sar_channels=False,
            options=TaskOptions(drop_dates=0, horizon=options.horizon, use_sar=False),
            prior=False)
        given, target = probe.given, probe.target
        if task == "forecasting":
            target = target.clone()
            target[:, : series.shape[1] - options.horizon] = False
        if known is not None:
            target = target & known
    if not include_baselines:
        return results
    obs = series.reflectance
    if task == "change_detection":
        if reference is None or reference.classifier is None:
            return results
        filled = linear_interpolation(obs, given, series.days)
        pred = reference.classifier.predict(filled, series.doy)
        results["centroid on linear interpolation"] = change_scores(pred, series.labels, n_cls)
        return results
    candidates: dict[str, Tensor] = {}
    if task == "forecasting":
        candidates["persistence"] = persistence(obs, given)
        if reference is not None:
            candidates["climatology"] = reference.climatology.predict(series.doy, obs.shape)
    else:
        for name, fn in BASELINES.items():
            candidates[name] = fn(obs, given, series.days)
    for name, pred in candidates.items():
        pasted = torch.where(given[:, :, None], obs, pred)
        results[name] = image_scores(pasted, series.truth, target)
    if check_baseline:
        baseline_check(task, results)
    return results


@dataclass(frozen=True)
class Evaluation:
    """The scores of one task: ``scores[method]`` for "model" and each baseline;
    ``uncertainty``: how honest the model's ``reflectance_std`` is on the scored pixels
    (:class:`~.uncertainty.UncertaintyScores`; None for change detection or without a model);
    ``warnings``: lines to print with the scores (e.g. a model worse than its baseline)."""

    task: str
    scores: dict[str, ImageScores | ChangeScores]
    uncertainty: UncertaintyScores | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"task", "scores": {method: {metric: value}}, "uncertainty", "warnings"}``
        (strict JSON via dumps_json)."""
        return {"task": self.task,
                "scores": {k: dataclasses.asdict(v) for k, v in self.scores.items()},
                "uncertainty": None if self.uncertainty is None
                else dataclasses.asdict(self.uncertainty),
                "warnings": list(self.warnings)}


def evaluate(model: Model | None, series: SeriesBatch, task: str = "cloud_removal", *,
             known: Tensor | None = None, **options: Any) -> Evaluation:
    """:func:`evaluate_task` as a frozen :class:`Evaluation`, with the uncertainty scores of
    the model's ``reflectance_std`` (``options``: evaluate_task's keywords)."""
    task = check_task(task)
    preds, unc = None, None
    if model is not None:
        opts = options.get("options") or TaskOptions()
        preds = _predict(model, series, task, opts, samples=options.get("samples", SAMPLES),
                         steps=options.get("steps", SAMPLE_STEPS),
                         solver=options.get("solver", SOLVER), seed=options.get("seed", 0),
                         batch_size=options.get("batch_size", 16),
                         progress=options.get("progress", False))
    scores = evaluate_task(model, series, task, known=known, predictions=preds,
                           check_baseline=False, **options)
    line = baseline_check(task, scores)
    lines = () if line is None else (line,)
    if preds is not None and task != "change_detection":
        target = torch.cat([p.target for p in preds])
        if known is not None:
            target = target & known
        if bool(target.any()):
            unc = uncertainty_scores(torch.cat([p.reflectance for p in preds]),
                                     torch.cat([p.reflectance_std for p in preds]),
                                     series.truth, target)
    return Evaluation(task=task, scores=scores, uncertainty=unc, warnings=lines)

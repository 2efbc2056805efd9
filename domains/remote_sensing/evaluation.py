"""Scoring a model against per-pixel baselines on series with a known truth.

:func:`evaluate_task` scores one task for the model (when given) and for the baselines of
:mod:`.baselines` on the pixels the task asks for (observed clear pixels are kept for every
method); :func:`evaluate` wraps it in a frozen :class:`Evaluation` with ``to_dict()``. Metrics
are :mod:`.metrics`' (PSNR / SSIM / RMSE / MAE / SAM / CRPS, or the SitsSCD change scores).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciflow.errors import InputError

from .baselines import BASELINES, CentroidClassifier, Climatology, linear_interpolation, persistence
from .config import SAMPLE_STEPS, SAMPLES, SOLVER
from .data import SeriesBatch, Standardizer
from .metrics import ChangeScores, ImageScores, change_scores, image_scores
from .model import Model
from .sampling import predict_series
from .tasks import TaskOptions, check_task, make_task

__all__ = ["Reference", "fit_reference", "evaluate_task", "evaluate", "Evaluation"]


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


def evaluate_task(model: Model | None, series: SeriesBatch, task: str, *,
                  options: TaskOptions | None = None, reference: Reference | None = None,
                  samples: int = SAMPLES, steps: int = SAMPLE_STEPS, solver: str = SOLVER,
                  seed: int = 0, batch_size: int = 16,
                  include_baselines: bool = True
                  ) -> dict[str, ImageScores | ChangeScores]:
    """Scores of the model (when given) and of the baselines for one task on series with a truth.

    Image tasks: :class:`ImageScores` on the task's target pixels, for "model" and each
    baseline (last / closest observation, linear interpolation for gap filling and cloud
    removal; persistence and climatology for forecasting). Change detection:
    :class:`ChangeScores` for "model" and "centroid on linear interpolation".
    """
    task = check_task(task)
    if series.truth is None:
        raise InputError("evaluation needs series with a truth (clear_reflectance)")
    if task == "change_detection" and series.labels is None:
        raise InputError("change detection is scored against 'landcover': these series have none")
    options = options if options is not None else TaskOptions()
    results: dict[str, ImageScores | ChangeScores] = {}
    b = series.shape[0]
    n_cls = len(model.config.classes) if model is not None else (
        reference.classifier.centroids.shape[1] if reference and reference.classifier else 0)
    if model is not None:
        preds = [predict_series(model, series.index(slice(i, i + batch_size)), task,
                                options=options, samples=samples, steps=steps, solver=solver,
                                seed=seed + i)
                 for i in range(0, b, batch_size)]
        given = torch.cat([p.given for p in preds])
        target = torch.cat([p.target for p in preds])
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
    return results


@dataclass(frozen=True)
class Evaluation:
    """The scores of one task: ``scores[method]`` for "model" and each baseline."""

    task: str
    scores: dict[str, ImageScores | ChangeScores]

    def to_dict(self) -> dict[str, Any]:
        """``{"task": ..., "scores": {method: {metric: value}}}`` (JSON via dumps_json)."""
        return {"task": self.task,
                "scores": {k: dataclasses.asdict(v) for k, v in self.scores.items()}}


def evaluate(model: Model | None, series: SeriesBatch, task: str = "cloud_removal",
             **options: Any) -> Evaluation:
    """:func:`evaluate_task` as a frozen :class:`Evaluation` (``options``: its keywords)."""
    return Evaluation(task=check_task(task), scores=evaluate_task(model, series, task, **options))

"""Scoring forecasts: against every exact future branch (sprites) or the realised future (video).

:func:`evaluate` forecasts every test clip from its context with :func:`~.sampling.sample` and
scores it (:func:`score_forecast`, the scores of :mod:`.metrics`): feature errors of the K
samples, decoded segmentation and depth, sharpness, and the branch distribution's total
variation from the known probabilities. On real video windows (no branches) it reports the
feature errors.

Both kinds are read against the trivial forecast, repeating the last context frame
(``copy_last_mse``, the feature MSE of :func:`~.baselines.copy_last_forecast`): when the MSE of
the K-sample mean is higher than that on the evaluated clips, :func:`evaluate` warns with a
:class:`BaselineWarning` (and the command line says so and records it in its JSON).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from sciflow.errors import InputError, WorseThanBaselineWarning
from sciflow.resources import check_memory

from . import metrics as M
from .autoencoder import FeatureStandardizer
from .baselines import copy_last
from .data import EvalSet, TrainSet
from .heads import DecoderHeads
from .model import Model
from .sampling import Forecast, forecast_bytes, sample

__all__ = ["BaselineWarning", "VideoScores", "Evaluation", "score_forecast", "evaluate",
           "evaluation_bytes", "evaluate_system", "evaluate_video"]


class BaselineWarning(WorseThanBaselineWarning):
    """A forecaster scored worse than repeating the last context frame on the clips evaluated
    (a :class:`sciflow.errors.WorseThanBaselineWarning`, printed by the command line)."""


@dataclass(frozen=True)
class VideoScores:
    """Feature errors of forecasts of real video windows in the heads' standardised units, and
    the MSE of repeating the last context frame."""

    samples: int
    mse_of_mean: float
    mean_of_k: float
    min_of_k: float
    spread: float
    copy_last_mse: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured (``scores``), the forecasts it scored, the feature MSE of
    repeating the last context frame on the same clips (``copy_last_mse``, NaN when not
    measured) and the sampling settings used (``sampling``: samples, horizon, solver,
    sample_steps, seed)."""

    scores: M.ForecastScores | VideoScores
    forecast: Forecast
    copy_last_mse: float = float("nan")
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def worse_than_copy_last(self) -> bool:
        """True when the MSE of the K-sample mean exceeds the copy-last-frame forecast's."""
        return bool(self.scores.mse_of_mean > self.copy_last_mse)

    def to_dict(self) -> dict[str, object]:
        """The scores as a JSON-able dict (with ``copy_last_mse``)."""
        return {**self.scores.to_dict(), "copy_last_mse": self.copy_last_mse}


def score_forecast(sample_features: Tensor, data: EvalSet, heads: DecoderHeads,
                   norm: FeatureStandardizer) -> M.ForecastScores:
    """All scores of forecasts (B, K, H, D, h, w) (raw feature units) on an evaluation set.

    Feature errors, sharpness and branch assignment use the standardised features ``norm``; the
    decoded maps come from ``heads``.
    """
    b, k, h = sample_features.shape[:3]
    if (b, h) != tuple(data.future.shape[:2]):
        raise InputError(f"forecasts cover {b} clips x {h} frames but the evaluation set has "
                         f"{tuple(data.future.shape[:2])}")
    s, truth, branches = norm(sample_features), norm(data.future), norm(data.branches)
    err = M.sample_errors(s, truth)
    sharp = M.sharpness(s, truth[:, None].expand_as(s))
    dec = heads.decode(sample_features)
    rows = torch.arange(b)
    seg_true = data.segmentation[:, None].expand(b, k, *data.segmentation.shape[1:])
    dep_true = data.depth[:, None].expand(b, k, *data.depth.shape[1:])
    miou = M.mean_iou(dec.segmentation, seg_true, data.num_classes)
    miou_best = M.mean_iou(dec.segmentation[rows, err.best], data.segmentation, data.num_classes)
    absrel, delta1 = M.depth_errors(dec.depth, dep_true)
    absrel_best, _ = M.depth_errors(dec.depth[rows, err.best], data.depth)
    # one-step branches: distinct first frames, one representative branch per group
    n_first = int(data.first.max()) + 1
    reps = torch.stack([torch.nonzero(data.first == g)[0, 0] for g in range(n_first)])
    first_assign = M.nearest_branch(s[:, :, 0], branches[:, reps, 0])
    p_first = torch.zeros(n_first, dtype=torch.float64).index_add_(0, data.first, data.probs)
    joint = M.nearest_branch(s, branches)
    return M.ForecastScores(
        samples=k, mse_of_mean=err.mse_of_mean, mean_of_k=err.mean_of_k, min_of_k=err.min_of_k,
        spread=err.spread, sharpness=sharp, miou=miou, miou_best=miou_best, absrel=absrel,
        absrel_best=absrel_best, delta1=delta1,
        tv_first=M.per_forecast_tv(p_first, first_assign),
        tv_joint=M.per_forecast_tv(data.probs, joint),
        tv_first_pooled=M.total_variation(p_first, M.branch_histogram(first_assign, n_first)),
        tv_first_floor=M.tv_sampling_floor(p_first, k),
        tv_joint_floor=M.tv_sampling_floor(data.probs, k),
        branch_hist_first=tuple(float(v) for v in M.branch_histogram(first_assign, n_first)))


def evaluation_bytes(model: Model, clips: int, *, samples: int, horizon: int) -> float:
    """Rough peak bytes of forecasting and scoring ``clips`` clips: :func:`~.sampling.
    forecast_bytes` plus the decoded maps (labels, depth, RGB) and standardised copies."""
    cfg = model.config
    h, w = cfg.grid
    pixels = h * w * cfg.feature_patch ** 2
    rows = float(clips) * samples * horizon
    return (forecast_bytes(model, clips, samples=samples, horizon=horizon)
            + rows * (24 * pixels + 8 * model.feature_dim * h * w))


def evaluate(model: Model, data: EvalSet | TrainSet, *, samples: int | None = None,
             sample_steps: int | None = None, solver: str | None = None, seed: int = 0,
             norm: FeatureStandardizer | None = None, progress: bool | None = False,
             warn: bool = True) -> Evaluation:
    """Forecast every clip of ``data`` from its context and score it.

    ``data``: an :class:`~.data.EvalSet` (sprites: every score of :func:`score_forecast`) or
    real-video windows, a :class:`~.data.TrainSet` whose first ``config.context`` frames are the
    context (:class:`VideoScores`). Feature scores use ``norm`` (default: the heads'
    standardisation, fit on the training data). Sampling settings default to the model's.
    Warns with :class:`BaselineWarning` (unless ``warn=False``) when the forecasts' MSE of the
    mean is worse than repeating the last context frame.
    """
    cfg = model.config
    norm = norm if norm is not None else model.heads.norm
    k = cfg.samples if samples is None else samples
    if isinstance(data, EvalSet):
        context, future = data.context, data.future
    elif isinstance(data, TrainSet):
        c = cfg.context
        if data.features.shape[1] <= c:
            raise InputError(f"video windows of {data.features.shape[1]} frames leave nothing to "
                             f"forecast after a context of {c}")
        context, future = data.features[:, :c], data.features[:, c:]
    else:
        raise InputError(f"data must be an EvalSet or TrainSet, got {type(data).__name__}")
    if isinstance(k, int) and not isinstance(k, bool) and k >= 1:
        check_memory(evaluation_bytes(model, context.shape[0], samples=k,
                                      horizon=future.shape[1]),
                     f"{context.shape[0]} clips x {k} samples x {future.shape[1]} frames",
                     name="samples")
    fc = sample(model, context, horizon=future.shape[1], samples=samples,
                sample_steps=sample_steps, solver=solver, seed=seed, progress=progress)
    base = M.sample_errors(norm(copy_last(context, future.shape[1])), norm(future)).mse_of_mean
    settings = {"samples": int(fc.features.shape[1]), "horizon": int(future.shape[1]),
                "solver": cfg.solver if solver is None else solver,
                "sample_steps": cfg.sample_steps if sample_steps is None else sample_steps,
                "seed": seed}
    if isinstance(data, EvalSet):
        scores: M.ForecastScores | VideoScores = score_forecast(fc.features, data, model.heads,
                                                                norm)
    else:
        err = M.sample_errors(norm(fc.features), norm(future))
        scores = VideoScores(samples=fc.features.shape[1], mse_of_mean=err.mse_of_mean,
                             mean_of_k=err.mean_of_k, min_of_k=err.min_of_k, spread=err.spread,
                             copy_last_mse=base)
    result = Evaluation(scores=scores, forecast=fc, copy_last_mse=base, sampling=settings)
    if warn and result.worse_than_copy_last:
        warnings.warn(BaselineWarning(
            f"the {cfg.objective} forecasts score worse than repeating the last context frame on "
            f"these {context.shape[0]} clips: MSE of the K-sample mean {scores.mse_of_mean:.4g} "
            f"vs {base:.4g} (standardised feature units); the model has not learned these "
            "dynamics: train longer or on footage closer to this"), stacklevel=2)
    return result


def evaluate_system(system: Model, data: EvalSet, *, samples: int | None = None,
                    steps: int | None = None, seed: int = 0,
                    norm: FeatureStandardizer | None = None) -> tuple[M.ForecastScores, Forecast]:
    """The old form of :func:`evaluate` (sciflow 0.1): returns (scores, forecast)."""
    result = evaluate(system, data, samples=samples, sample_steps=steps, seed=seed, norm=norm)
    return result.scores, result.forecast  # type: ignore[return-value]


def evaluate_video(system: Model, windows: TrainSet, *, samples: int | None = None,
                   seed: int = 0) -> tuple[dict[str, float], Forecast]:
    """The old video form of :func:`evaluate` (sciflow 0.1): returns (score dict, forecast)."""
    result = evaluate(system, windows, samples=samples, seed=seed)
    scores = result.to_dict()
    scores.pop("samples")
    return scores, result.forecast  # type: ignore[return-value]

"""An honest ``reflectance_std``: the ensemble spread calibrated on held-out cubes.

Why the raw spread is too small. The network predicts the clean state x1 from x_t and the
condition (``FlowMatcher(target="x1")``), and the last Euler step returns its prediction at
t = 1 - 1/steps, so the members differ only as much as that prediction depends on x_t. It
starts as the linear interpolation of the observations, whatever x_t is (the correction head
is zero at initialisation), and training teaches the x_t-dependence only slowly: where t is
near 1, the one place it matters, a small model uses a fraction of it. A lightly trained model
returns nearly identical members (spread ~0.0003 against errors ~0.01); the benchmark's
models a few times too small a spread. More sampling steps do not change this (the members
follow the same under-dispersed field), so the spread is calibrated after the fact.

The calibration. Per task and band, on held-out cubes (:mod:`.holdout`: a truth, or
self-supervised from the cube's own clear pixels),

    sigma^2 = (a s)^2 + (b0 + b1 g / 30 d)^2,

s the raw ensemble spread of a filled value and g its time to the nearest observation given
for that pixel (days; the gap a gap filler bridges, or the lead time of a forecast), with
a, b0, b1 >= 0 fitted by maximum Gaussian likelihood of the errors of the ensemble mean. The
spread keeps ordering the errors (its term), the gap carries what the spread misses, and the
fit makes the mean std match the error. :func:`fit_calibration` fits it,
:meth:`Calibration.apply` / :func:`calibrated_std` use it, checkpoints store it
(``Model.calibration``; ``sciflow rs calibrate``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from sciflow.errors import InputError, SciflowWarning

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Calibration", "UncalibratedSpreadWarning", "fit_calibration", "gap_days",
           "calibrated_std", "uncertainty_note", "CALIBRATED_TASKS"]

CALIBRATED_TASKS: tuple[str, ...] = ("reconstruction", "cloud_removal", "forecasting")
GAP_SCALE = 30.0  # days: g enters as g / 30 d
NO_OBSERVATION = 365.0  # days: the gap of a pixel with nothing given on any date


class UncalibratedSpreadWarning(SciflowWarning):
    """``reflectance_std`` is the raw ensemble spread of an uncalibrated model (too small)."""


def gap_days(given: Tensor, days: Tensor) -> Tensor:
    """Days from each date to the nearest date with a given value of that pixel, (B, T, H, W)
    from given (B, T, H, W) and days (B, T); 0 where given, 365 where the pixel has none."""
    b, t = given.shape[:2]
    idx = torch.arange(t, device=given.device).reshape(1, t, 1, 1).expand_as(given)
    prev = torch.where(given, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    nxt = torch.flip(torch.flip(torch.where(given, idx, torch.full_like(idx, t)), [1])
                     .cummin(dim=1).values, [1])
    d = days.to(torch.float64)[:, :, None, None].expand(given.shape)
    far = torch.full_like(d, math.inf)
    before = torch.where(prev >= 0, d - torch.gather(d, 1, prev.clamp(0, t - 1)), far)
    after = torch.where(nxt < t, torch.gather(d, 1, nxt.clamp(0, t - 1)) - d, far)
    gap = torch.minimum(before, after)
    return torch.where(torch.isfinite(gap), gap, torch.full_like(gap, NO_OBSERVATION)).float()


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """sigma^2 = (a s)^2 + (b0 + b1 g / 30 d)^2 per task and band (module docstring).

    bands: the band names, in the model's order. params: task -> one (a, b0, b1) per band
    (b0, b1 in reflectance units). fitted_on: what the fit saw (cubes, source of the answer,
    values per task). skill: task -> (spread-skill ratio before, after) on the fit data.
    """

    bands: tuple[str, ...]
    params: dict[str, tuple[tuple[float, float, float], ...]]
    fitted_on: str
    skill: dict[str, tuple[float, float]]

    def __post_init__(self) -> None:
        for task, rows in self.params.items():
            if task not in CALIBRATED_TASKS:
                raise InputError(f"calibration for unknown task {task!r}; known: "
                                 f"{list(CALIBRATED_TASKS)}")
            if len(rows) != len(self.bands) or not all(
                    len(r) == 3 and all(math.isfinite(v) and v >= 0 for v in r) for r in rows):
                raise InputError(f"calibration of {task}: expected one (a, b0, b1) >= 0 per "
                                 f"band {list(self.bands)}, got {rows}")

    def apply(self, task: str, spread: Tensor, gap: Tensor) -> Tensor:
        """Calibrated std (B, T, C, H, W) from the raw spread (B, T, C, H, W) and gap (B, T, H, W)."""
        if task not in self.params:
            raise InputError(f"this calibration covers {sorted(self.params)}, not {task!r}")
        p = torch.tensor(self.params[task], dtype=spread.dtype, device=spread.device)
        a, b0, b1 = (p[:, k].reshape(1, 1, -1, 1, 1) for k in range(3))
        floor = b0 + b1 * (gap[:, :, None].to(spread.dtype) / GAP_SCALE)
        return torch.sqrt((a * spread) ** 2 + floor ** 2)

    def to_dict(self) -> dict[str, Any]:
        return {"bands": list(self.bands),
                "params": {k: [list(r) for r in v] for k, v in self.params.items()},
                "fitted_on": self.fitted_on,
                "skill": {k: list(v) for k, v in self.skill.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(bands=tuple(d["bands"]),
                   params={k: tuple(tuple(float(x) for x in r) for r in v)
                           for k, v in d["params"].items()},
                   fitted_on=str(d["fitted_on"]),
                   skill={k: (float(v[0]), float(v[1])) for k, v in d["skill"].items()})


def _fit_band(spread: Tensor, gap: Tensor, err: Tensor, iters: int = 200) -> tuple[float, ...]:
    """(a, b0, b1) maximising the Gaussian likelihood of ``err`` (1-D, one band)."""
    s, g, e = spread.double(), gap.double() / GAP_SCALE, err.double()
    rms = float(e.pow(2).mean().sqrt()) or 1e-6
    # log-parameters, started from a scale that matches the spread to the error
    scale = rms / max(float(s.pow(2).mean().sqrt()), 1e-9)
    theta = torch.tensor([math.log(max(scale, 1e-6)), math.log(rms / 2), math.log(rms / 4)],
                         dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=iters, line_search_fn="strong_wolfe")

    def nll() -> Tensor:
        opt.zero_grad()
        a, b0, b1 = theta.exp()
        var = (a * s) ** 2 + (b0 + b1 * g) ** 2 + 1e-12
        loss = 0.5 * (var.log() + e * e / var).mean()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(nll)
    return tuple(float(v) for v in theta.detach().exp())


def fit_calibration(model: Model, series: Any, *, tasks: tuple[str, ...] = CALIBRATED_TASKS,
                    samples: int = 4, steps: int = 8, solver: str = "euler", seed: int = 0,
                    drop_dates: int = 2, horizon: int = 3, batch_size: int = 8,
                    max_values: int = 400_000, progress: bool | None = False) -> Calibration:
    """Fit :class:`Calibration` for ``tasks`` on held-out ``series`` (a SeriesBatch, or a list
    of them when cubes differ in size; with a truth, or self-supervised from their clear
    pixels, see :mod:`.holdout`), sampling as the model will be used (``samples``, ``steps``,
    ``solver``). At most ``max_values`` values per task and band enter the fit (an even
    subsample); the spread-skill ratios in ``skill`` are over all of them. ``progress``:
    report progress over the sampled batches (:func:`sciflow.progress.progress`)."""
    from .data import SeriesBatch
    from .holdout import make_holdout
    from .sampling import predict_series
    from .tasks import TaskOptions

    if not tasks:
        raise InputError("tasks: name at least one task to calibrate")
    for task in tasks:
        if task not in CALIBRATED_TASKS:
            raise InputError(f"tasks: {task!r} cannot be calibrated; choose from "
                             f"{list(CALIBRATED_TASKS)}")
    parts = [series] if isinstance(series, SeriesBatch) else list(series)
    if not parts or not all(isinstance(p, SeriesBatch) for p in parts):
        raise InputError("series: expected a SeriesBatch or a list of them")
    from sciflow.progress import progress as progress_bar

    batches = sum(-(-p.shape[0] // batch_size) for p in parts) * len(tasks)
    bar = progress_bar(total=batches, desc="rs calibrate", unit="batch", enabled=progress)
    bands = model.config.bands
    n_bands = len(bands)
    params: dict[str, tuple[tuple[float, float, float], ...]] = {}
    skill: dict[str, tuple[float, float]] = {}
    counts, sources = [], set()
    for k, task in enumerate(tasks):
        values: list[list[tuple[Tensor, Tensor, Tensor]]] = [[] for _ in range(n_bands)]
        for j, part in enumerate(parts):
            hold = make_holdout(part, task, drop_dates=drop_dates,
                                generator=torch.Generator().manual_seed(seed + 1000 * k + j))
            sources.add(hold.source)
            for i in range(0, hold.series.shape[0], batch_size):
                rows = slice(i, i + batch_size)
                pred = predict_series(model, hold.series.index(rows), task,
                                      options=TaskOptions(drop_dates=0, horizon=horizon),
                                      samples=samples, steps=steps, solver=solver,
                                      seed=seed + 1000 * j + i, calibrate=False)
                bar.update(1)
                mask = pred.target & hold.known[rows]
                gap = gap_days(pred.given, hold.series.days[rows])[mask]
                err = pred.reflectance - hold.truth[rows]
                for c in range(n_bands):
                    values[c].append((pred.spread[:, :, c][mask], gap, err[:, :, c][mask]))
        total = sum(v[0].numel() for v in values[0])
        if total == 0:
            raise InputError(f"calibrating {task}: no held-out value to fit on (no clear pixel "
                             "under another date's cloud, or nothing to forecast); use more or "
                             "cloudier cubes")
        rows_, std_raw, std_cal, sq_err = [], 0.0, 0.0, 0.0
        for c in range(n_bands):
            s_c, g_c, e_c = (torch.cat([v[m] for v in values[c]]) for m in range(3))
            pick = (torch.linspace(0, s_c.numel() - 1, max_values).long()
                    if s_c.numel() > max_values else slice(None))
            a, b0, b1 = _fit_band(s_c[pick], g_c[pick], e_c[pick])
            rows_.append((a, b0, b1))
            sigma = torch.sqrt((a * s_c) ** 2 + (b0 + b1 * g_c / GAP_SCALE) ** 2)
            std_raw += float(s_c.double().sum())
            std_cal += float(sigma.double().sum())
            sq_err += float(e_c.double().pow(2).sum())
        rmse = math.sqrt(sq_err / (total * n_bands))
        params[task] = tuple(rows_)
        skill[task] = (std_raw / (total * n_bands) / rmse, std_cal / (total * n_bands) / rmse)
        counts.append(f"{task} {total * n_bands}")
    bar.close()
    sizes = sorted({f"{p.shape[1]} dates x {p.shape[3]}x{p.shape[4]} px" for p in parts})
    answers = " and ".join(sorted("clear_reflectance" if s == "truth" else "their own clear "
                                  "pixels" for s in sources))
    fitted_on = (f"{sum(p.shape[0] for p in parts)} held-out series ({', '.join(sizes)}), "
                 f"answers from {answers}; {samples} members, {steps} {solver} steps; values: "
                 f"{', '.join(counts)}")
    return Calibration(bands=bands, params=params, fitted_on=fitted_on, skill=skill)


def calibrated_std(model: Model, task: str, spread: Tensor, given: Tensor, days: Tensor,
                   *, warn: bool = True) -> Tensor:
    """The model's calibrated std for ``task`` when it has a calibration for it; else the raw
    ``spread``, with an :class:`UncalibratedSpreadWarning` (``warn``)."""
    cal = model.calibration
    if cal is not None and task in cal.params:
        return cal.apply(task, spread, gap_days(given, days))
    if warn and task in CALIBRATED_TASKS:
        warnings.warn("reflectance_std is the raw ensemble spread of an uncalibrated model, "
                      "typically several times smaller than its errors; calibrate it on "
                      "held-out cubes: sciflow rs calibrate (or fit_calibration)",
                      UncalibratedSpreadWarning, stacklevel=4)
    return spread


def uncertainty_note(model: Model, samples: int, task: str | None = None) -> str:
    """What ``reflectance_std`` means for outputs of ``model`` (written into their attributes)."""
    cal = model.calibration
    if cal is not None and (task is None or task in cal.params):
        return ("reflectance_std: calibrated standard deviation of the error, "
                "sigma^2 = (a s)^2 + (b0 + b1 g / 30 d)^2 with s the spread of "
                f"{samples} ensemble members and g the days to the nearest given observation "
                f"(fitted on {cal.fitted_on})")
    return (f"reflectance_std: raw spread (std) of {samples} ensemble members; not calibrated, "
            "typically several times smaller than the error (sciflow rs calibrate)")

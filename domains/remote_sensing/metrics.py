"""Image, ensemble and change-detection metrics for image series.

Image metrics compare a prediction with the cloud-free truth on the pixels a task asks for
(``mask``, (B, T, H, W)); each is computed per series (over its masked pixels and all bands) and
averaged over the series. Reflectance is on a 0-1 scale (``data_range`` = 1).

* PSNR = 10 log10(R^2 / MSE) (dB).
* SSIM (Wang et al. 2004): Gaussian window (sigma 1.5, 11 px), C1 = (0.01 R)^2,
  C2 = (0.03 R)^2, per band and date on whole frames (reflect padding), the SSIM map averaged
  over the masked pixels. Pass the prediction with the given pixels pasted in (a composite).
* RMSE, MAE over masked values.
* SAM: the spectral angle arccos(<p, y> / (|p| |y|)) in degrees, mean over masked pixels.
* CRPS of an ensemble X_1..X_S (Gneiting & Raftery 2007, the empirical form):
  CRPS = mean_s |X_s - y| - 1 / (2 S^2) sum_{s, s'} |X_s - X_s'|; equals MAE for S = 1.

Change detection (SitsSCD definitions, Vincent et al. 2024), in percent, over (B, T, H, W) label
series: mIoU, the class-mean IoU of the per-date maps (classes present in truth or prediction);
BC, the IoU of the "changed" class of the binary change maps between consecutive dates;
SC, the class-mean IoU restricted to pixel-dates whose true label changed; SCS = (BC + SC) / 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ImageScores",
    "ChangeScores",
    "psnr",
    "ssim",
    "rmse",
    "mae",
    "sam",
    "crps_ensemble",
    "image_scores",
    "change_scores",
]


@dataclass(frozen=True)
class ImageScores:
    """PSNR (dB), SSIM, RMSE, MAE, SAM (degrees), CRPS (None for a single prediction)."""

    psnr: float
    ssim: float
    rmse: float
    mae: float
    sam: float
    crps: float | None = None


@dataclass(frozen=True)
class ChangeScores:
    """mIoU, BC, SC, SCS and overall accuracy, in percent."""

    miou: float
    bc: float
    sc: float
    scs: float
    accuracy: float


def _check(pred: Tensor, true: Tensor, mask: Tensor) -> Tensor:
    if pred.shape != true.shape or pred.dim() != 5:
        raise ValueError(f"pred and true must both be (B, T, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(true.shape)}")
    if mask.shape != true.shape[:2] + true.shape[3:]:
        raise ValueError(f"mask must be (B, T, H, W) = {tuple(true.shape[:2] + true.shape[3:])}, "
                         f"got {tuple(mask.shape)}")
    return mask.to(torch.bool)


def _per_series(err: Tensor, mask: Tensor) -> Tensor:
    """Mean of err (B, T, C, H, W) over the masked pixels of each series -> (B,); NaN if empty."""
    m = mask[:, :, None].expand_as(err).to(err.dtype)
    count = m.sum(dim=(1, 2, 3, 4))
    total = (err * m).sum(dim=(1, 2, 3, 4))
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def _nanmean(x: Tensor) -> float:
    ok = ~torch.isnan(x)
    if not bool(ok.any()):
        raise ValueError("the mask selects no pixel in any series: nothing to score")
    return float(x[ok].mean())


def psnr(pred: Tensor, true: Tensor, mask: Tensor, *, data_range: float = 1.0) -> float:
    """Mean over series of 10 log10(R^2 / MSE) on the masked pixels."""
    mask = _check(pred, true, mask)
    mse = _per_series((pred.double() - true.double()) ** 2, mask)
    return _nanmean(10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20)))


def rmse(pred: Tensor, true: Tensor, mask: Tensor) -> float:
    mask = _check(pred, true, mask)
    return _nanmean(_per_series((pred.double() - true.double()) ** 2, mask).sqrt())


def mae(pred: Tensor, true: Tensor, mask: Tensor) -> float:
    mask = _check(pred, true, mask)
    return _nanmean(_per_series((pred.double() - true.double()).abs(), mask))


def sam(pred: Tensor, true: Tensor, mask: Tensor) -> float:
    """Mean spectral angle (degrees) between predicted and true spectra on the masked pixels."""
    mask = _check(pred, true, mask)
    p, y = pred.double(), true.double()
    cos = (p * y).sum(2) / (p.norm(dim=2) * y.norm(dim=2)).clamp_min(1e-12)
    angle = torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))[:, :, None]
    return _nanmean(_per_series(angle, mask))


def _gaussian_window(size: int = 11, sigma: float = 1.5, *, dtype: torch.dtype) -> Tensor:
    """The 1-D normalised Gaussian (1, 1, 1, size); the 2-D window is its outer product."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).reshape(1, 1, 1, size)


def ssim(pred: Tensor, true: Tensor, mask: Tensor, *, data_range: float = 1.0) -> float:
    """Structural similarity, the SSIM map averaged over the masked pixels, then over series."""
    mask = _check(pred, true, mask)
    b, t, c, h, w = true.shape
    g = _gaussian_window(dtype=torch.float64).reshape(-1)
    pad = g.numel() // 2
    x = pred.double().reshape(-1, h, w)
    y = true.double().reshape(-1, h, w)
    mode = "reflect" if (h > pad and w > pad) else "replicate"

    def blur(z: Tensor) -> Tensor:  # separable Gaussian as sliding windows times the kernel
        z = F.pad(z[:, None], (pad, pad, pad, pad), mode=mode)[:, 0]
        z = (z.unfold(-1, g.numel(), 1) @ g).transpose(-1, -2).contiguous()
        return (z.unfold(-1, g.numel(), 1) @ g).transpose(-1, -2)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return _nanmean(_per_series(smap.reshape(b, t, c, h, w), mask))


def crps_ensemble(samples: Tensor, true: Tensor, mask: Tensor) -> float:
    """Empirical CRPS of an ensemble (S, B, T, C, H, W) on the masked pixels (see module doc)."""
    if samples.dim() != 6 or samples.shape[1:] != true.shape:
        raise ValueError(f"samples must be (S, B, T, C, H, W) with (B, ...) = {tuple(true.shape)}, "
                         f"got {tuple(samples.shape)}")
    mask = _check(samples[0], true, mask)
    s = samples.double()
    skill = (s - true.double()[None]).abs().mean(0)
    n = s.shape[0]
    spread = torch.zeros_like(skill)
    for i in range(n):  # sum_{s, s'} |X_s - X_s'| without an (S, S, ...) temporary
        spread = spread + (s - s[i : i + 1]).abs().sum(0)
    crps = skill - spread / (2 * n * n)
    return _nanmean(_per_series(crps, mask))


def image_scores(pred: Tensor, true: Tensor, mask: Tensor, *, samples: Tensor | None = None,
                 data_range: float = 1.0) -> ImageScores:
    """All image metrics at once (CRPS when an ensemble is given)."""
    return ImageScores(
        psnr=psnr(pred, true, mask, data_range=data_range),
        ssim=ssim(pred, true, mask, data_range=data_range),
        rmse=rmse(pred, true, mask),
        mae=mae(pred, true, mask),
        sam=sam(pred, true, mask),
        crps=None if samples is None else crps_ensemble(samples, true, mask),
    )


def _confusion(true: Tensor, pred: Tensor, k: int) -> Tensor:
    return torch.bincount(true.reshape(-1) * k + pred.reshape(-1), minlength=k * k).reshape(k, k)


def _miou(conf: Tensor) -> float:
    conf = conf.double()
    inter = conf.diagonal()
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    if not bool(present.any()):
        return math.nan
    return float((inter[present] / union[present]).mean() * 100)


def change_scores(pred: Tensor, true: Tensor, n_classes: int) -> ChangeScores:
    """SitsSCD scores of predicted label series (B, T, H, W) against the truth (see module doc).

    SC is NaN when no true change occurs (nothing to score); SCS is then NaN as well.
    """
    if pred.shape != true.shape or pred.dim() != 4:
        raise ValueError(f"pred and true must both be (B, T, H, W) label series, got "
                         f"{tuple(pred.shape)} and {tuple(true.shape)}")
    if pred.shape[1] < 2:
        raise ValueError("change detection needs at least 2 dates")
    pred, true = pred.long(), true.long()
    for name, lab in (("pred", pred), ("true", true)):
        if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= n_classes):
            raise ValueError(f"{name} labels must lie in [0, {n_classes - 1}], got "
                             f"[{int(lab.min())}, {int(lab.max())}]")
    conf = _confusion(true, pred, n_classes)
    true_change = true[:, 1:] != true[:, :-1]
    pred_change = pred[:, 1:] != pred[:, :-1]
    tp = float((true_change & pred_change).sum())
    fp_fn = float((true_change ^ pred_change).sum())
    bc = 100.0 * tp / (tp + fp_fn) if tp + fp_fn > 0 else math.nan
    if bool(true_change.any()):
        sc = _miou(_confusion(true[:, 1:][true_change], pred[:, 1:][true_change], n_classes))
    else:
        sc = math.nan
    return ChangeScores(miou=_miou(conf), bc=bc, sc=sc, scs=0.5 * (bc + sc),
                        accuracy=float(conf.diagonal().sum() / conf.sum().clamp_min(1) * 100))

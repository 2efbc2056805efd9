"""The synthetic "letters" populations of Meta Flow Matching, regenerated offline.

Atanackovic et al. (ICLR 2025, "Meta Flow Matching") turn each capital letter into a point cloud
and ask a flow to denoise it: every (letter, rotation) pair is one *population* whose source is a
blurred copy of its target. A model that sees the whole source population can tell which letter it
denoises; a model that sees one point at a time cannot. The held-out letters X (validation) and Y
(test) measure generalisation to populations never seen in training.

Recipe (the reference sheet's, written from the paper's description):

1. render the letter with a TrueType font at size 100 on a 200 x 200 grayscale canvas, flip it
   vertically, keep every pixel > 0 as a point (x = column, y = row);
2. min-max scale each axis to [-1, 1], multiply by 3, and restore the aspect ratio by shrinking the
   shorter axis;
3. target = points + N(0, noise^2), rotated by theta ~ U(0, 2 pi);
4. source = target + N(0, source_noise^2), row by row (source and target stay paired).

The font is DejaVu Sans, which ships with matplotlib (the paper's font is proprietary), so absolute
metric values differ from the paper's. Everything is drawn from one ``numpy`` generator seeded by
``seed``: the same seed gives bit-identical data.

Output is AnnData (``X`` the 2-D points; ``obs`` columns ``population``, ``role``, ``letter``,
``rotation``, ``split``), the format :mod:`sciflow.domains.single_cell` reads.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # anndata is an optional dependency (the "cells" extra)
    import anndata

__all__ = [
    "LettersConfig",
    "LetterPopulation",
    "font_path",
    "letter_points",
    "letter_populations",
    "letters_anndata",
    "TRAIN_LETTERS",
]

TRAIN_LETTERS: str = "".join(c for c in string.ascii_uppercase if c not in "XY")
"""The 24 training letters: A-Z without X and Y."""


def font_path() -> Path:
    """Path of DejaVu Sans inside the installed matplotlib (no download, no system fonts)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not path.is_file():
        raise FileNotFoundError(f"DejaVu Sans not found at {path}; is matplotlib installed intact?")
    return path


@lru_cache(maxsize=64)
def _rendered(char: str, font_size: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path()), font_size)
    canvas = Image.new("L", (2 * font_size, 2 * font_size), color=0)
    ImageDraw.Draw(canvas).text((0, 0), char, fill=255, font=font)
    img = np.flipud(np.asarray(canvas))
    rows, cols = np.nonzero(img > 0)
    pts = np.stack([cols, rows], axis=1).astype(np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = hi - lo
    pts = 3.0 * (2.0 * (pts - lo) / span - 1.0)
    ratio = span[0] / span[1]  # width / height
    if ratio < 1.0:
        pts[:, 0] *= ratio
    else:
        pts[:, 1] /= ratio
    pts.setflags(write=False)
    return pts


def letter_points(char: str, *, font_size: int = 100) -> np.ndarray:
    """The noiseless, unrotated point cloud of one capital letter, shape (n, 2), float64.

    One point per inked pixel of the letter rendered at ``font_size`` on a 2*font_size square
    canvas, scaled to [-3, 3] along its longer axis with the aspect ratio kept. Read-only (cached).
    """
    if not isinstance(char, str) or len(char) != 1 or char not in string.ascii_uppercase:
        raise ValueError(f"char must be one capital letter A-Z, got {char!r}")
    if not isinstance(font_size, int) or font_size < 8:
        raise ValueError(f"font_size must be an integer >= 8, got {font_size!r}")
    return _rendered(char, font_size)


@dataclass(frozen=True, kw_only=True)
class LettersConfig:
    """Settings of the letters task (defaults: the paper's).

    rotations: populations per letter (each a fresh random rotation). noise: std of the target's
    jitter; source_noise: std of the source's extra blur. train/val/test: the letters of each split.
    """

    seed: int = 0
    rotations: int = 10
    noise: float = 0.05
    source_noise: float = 0.5
    font_size: int = 100
    train: str = TRAIN_LETTERS
    val: str = "X"
    test: str = "Y"

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.rotations, int) or self.rotations < 1:
            raise ValueError(f"rotations must be an integer >= 1, got {self.rotations!r}")
        for name in ("noise", "source_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("train", "val", "test"):
            letters = getattr(self, name)
            if any(c not in string.ascii_uppercase for c in letters):
                raise ValueError(f"{name}={letters!r} must hold capital letters A-Z only")


@dataclass(frozen=True)
class LetterPopulation:
    """One population: a rotated, noisy letter (target) and its blurred copy (source), paired.

    source, target: (n, 2) float32 arrays with row i of source the blurred row i of target.
    """

    name: str
    split: str
    letter: str
    rotation: float
    source: np.ndarray
    target: np.ndarray


def letter_populations(config: LettersConfig | None = None) -> list[LetterPopulation]:
    """All populations of the task, in split order train, val, test, letter by letter.

    Population names are ``"<letter><k>"`` (``"A0"`` ... ``"Y9"``); a letter that appears in two
    splits gets the split as a prefix (``"val-X0"``).
    """
    cfg = config if config is not None else LettersConfig()
    rng = np.random.default_rng(cfg.seed)
    splits = (("train", cfg.train), ("val", cfg.val), ("test", cfg.test))
    counts: dict[str, int] = {}
    for _, letters in splits:
        for c in letters:
            counts[c] = counts.get(c, 0) + 1
    out: list[LetterPopulation] = []
    for split, letters in splits:
        for char in letters:
            base = letter_points(char, font_size=cfg.font_size)
            for k in range(cfg.rotations):
                theta = float(rng.uniform(0.0, 2.0 * np.pi))
                rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
                target = (base + cfg.noise * rng.standard_normal(base.shape)) @ rot.T
                source = target + cfg.source_noise * rng.standard_normal(target.shape)
                name = f"{char}{k}" if counts[char] == 1 else f"{split}-{char}{k}"
                out.append(LetterPopulation(name=name, split=split, letter=char, rotation=theta,
                                            source=source.astype(np.float32),
                                            target=target.astype(np.float32)))
    return out


def letters_anndata(
    config: LettersConfig | None = None, *, splits: Sequence[str] = ("train", "val", "test")
) -> anndata.AnnData:
    """The letters task as one AnnData: a row per point, source rows first within a population.

    ``X`` (n_obs, 2) float32 holds the points; ``obs`` has ``population`` (e.g. ``"A3"``),
    ``role`` (``"source"`` / ``"target"``), ``pair`` (the row's index inside its population, equal
    for a source point and its target), ``letter``, ``rotation`` (radians) and ``split``
    (``"train"``, ``"val"``, ``"test"``). ``uns["letters"]`` records the config.
    """
    import anndata
    import pandas as pd

    allowed = {"train", "val", "test"}
    if not splits or any(s not in allowed for s in splits):
        raise ValueError(f"splits must be a non-empty subset of {sorted(allowed)}, got {splits!r}")
    cfg = config if config is not None else LettersConfig()
    pops = [p for p in letter_populations(cfg) if p.split in splits]
    blocks, frames = [], []
    for p in pops:
        n = p.source.shape[0]
        blocks += [p.source, p.target]
        for role in ("source", "target"):
            frames.append(pd.DataFrame({
                "population": p.name, "role": role, "pair": np.arange(n), "letter": p.letter,
                "rotation": p.rotation, "split": p.split,
            }))
    obs = pd.concat(frames, ignore_index=True)
    for col in ("population", "role", "letter", "split"):
        obs[col] = obs[col].astype("category")
    obs.index = obs.index.astype(str)
    adata = anndata.AnnData(X=np.concatenate(blocks, axis=0), obs=obs)
    adata.var_names = ["x", "y"]
    adata.uns["letters"] = {
        "seed": cfg.seed, "rotations": cfg.rotations, "noise": cfg.noise,
        "source_noise": cfg.source_noise, "font": "DejaVu Sans", "font_size": cfg.font_size,
    }
    return adata

"""Cloud removal and gap filling of a Sentinel-2-like series with one conditional flow.

Generates synthetic series over a real Sentinel-2 scene (spyndex's template), trains the
spatio-temporal flow model, fills the cloudy pixels of a held-out cube (an ensemble gives the
uncertainty), compares with linear interpolation, and writes the result as netCDF plus a picture.

    python examples/remote_sensing.py                          (a few minutes on two cores)
    SCIFLOW_EXAMPLE_QUICK=1 python examples/remote_sensing.py  (under a minute; what tests run)
"""

import os
from pathlib import Path

import numpy as np
import torch

from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cube, generate_cubes
from sciflow.domains.remote_sensing import (
    CUBE_SUFFIXES,
    Config,
    evaluate,
    sample,
    series_from_cube,
    stack_series,
    train,
    write_cube,
)
from sciflow.outputs import claim_output

quick = os.environ.get("SCIFLOW_EXAMPLE_QUICK") == "1"
out = Path(os.environ.get("SCIFLOW_EXAMPLE_OUT", "sciflow-out/examples/remote_sensing"))
out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)

# 1. data: 32x32-pixel series of 10 dates; training and test windows come from disjoint parts
#    of the template scene
size, dates = (16, 6) if quick else (32, 10)
train_cubes = generate_cubes(SentinelSeriesSpec(size=size, n_dates=dates), 32 if quick else 256)
test = generate_cubes(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.7,
                                         region="test"), 4 if quick else 16, seed=1)

# 2. one model for all tasks: ACor condition injection + STM attention bias, SAR auxiliary;
#    the seed fixes everything from the network's initial weights on
config = Config(frames=dates, tile=size, dim=32 if quick else 64, depth=1 if quick else 3,
                batch_size=4 if quick else 8)
config = config.replace(train={"steps": 30 if quick else 1500, "out_dir": out / "run",
                               "progress": False, "seed": 0})
with claim_output(out / "run" / "model.pt", overwrite=True, name="model") as saved:
    model, result = train(train_cubes, config, resume=True, return_result=True)  # a rerun resumes
    saved.write(model.save)
loss = "(already trained)" if result.final_loss is None else f"{result.final_loss:.3f}"
print(f"trained {result.step} steps in {result.wall_time:.0f} s, loss {loss}")

# 3. score cloud removal on the held-out cubes against per-pixel baselines
scores = evaluate(model, stack_series([series_from_cube(c) for c in test]), "cloud_removal",
                  samples=2 if quick else 4, steps=4 if quick else 8)
for name, s in scores.scores.items():
    print(f"{name:22s} PSNR {s.psnr:5.2f} dB  SSIM {s.ssim:.3f}  SAM {s.sam:4.1f} deg")

# 4. fill one cube the way a lab would: cube in, cube out (with the ensemble spread); the output
#    is claimed first (never an input, replaced only when asked) and written aside, then moved
cube = generate_cube(SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.7,
                                        region="test"), seed=5)
with claim_output(out / "filled.nc", overwrite=True, suffixes=CUBE_SUFFIXES) as target:
    filled = sample(model, cube, "cloud_removal", samples=2 if quick else 4)
    write_cube(filled, target)

# 5. a picture: truth, cloudy observation, reconstruction, uncertainty on the cloudiest date
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

t = int(cube.cloud.mean(("y", "x")).values.argmax())


def rgb(a: np.ndarray) -> np.ndarray:
    return np.clip(np.stack([a[2], a[1], a[0]], -1) * 4.0, 0, 1)


fig, ax = plt.subplots(1, 4, figsize=(12, 3.3))
panels = [(rgb(cube.clear_reflectance.values[t]), "truth"),
          (rgb(cube.reflectance.values[t]), "observed (cloudy)"),
          (rgb(filled.reflectance.values[t]), "flow model (mean of ensemble)"),
          (filled.reflectance_std.values[t].mean(0), "ensemble spread")]
for a, (img, title) in zip(ax, panels):
    a.imshow(img)
    a.set_title(title)
    a.axis("off")
fig.tight_layout()
fig.savefig(out / "cloud_removal.png", dpi=100)
print(f"wrote {out / 'filled.nc'} and {out / 'cloud_removal.png'}")

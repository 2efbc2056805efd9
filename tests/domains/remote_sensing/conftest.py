"""Shared set-up of the remote-sensing tests."""

import pytest
import torch

from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
from sciflow.domains.remote_sensing import Config, series_from_cube, stack_series, train
from sciflow.domains.remote_sensing.tasks import TaskOptions, make_task

_TINY = Config(frames=4, tile=8, patch_size=4, dim=16, depth=1, heads=2, pixel_head=4,
               batch_size=2)
_DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5)


@pytest.fixture(scope="module")
def masked_problem():
    """A tiny trained model and a reconstruction batch with one date per series withheld from
    the condition: ``(model, series, batch, observed)``, ``observed`` the withheld date's clear
    pixels (the measurement of steering and FLAIR)."""
    model = train(generate_cubes(_DATA, 4, seed=0),
                  _TINY.replace(train={"steps": 4, "progress": False, "log_every": 2}))
    series = stack_series([series_from_cube(c) for c in generate_cubes(_DATA, 3, seed=7)])
    b, t = series.shape[:2]
    # per series the date with the most pixels both clear and cloudy (the larger of the two minima)
    clear = series.clear.float().sum((2, 3))
    both = torch.minimum(clear, series.clear[0, 0].numel() - clear)
    hide = torch.zeros(b, t, dtype=torch.bool)
    hide[torch.arange(b), both.argmax(1)] = True
    observed = series.clear & hide[:, :, None, None]
    assert bool(observed.flatten(1).any(1).all()), "every series needs observed pixels"
    batch = make_task(series, "reconstruction", standardizer=model.standardizer,
                      n_classes=len(_TINY.classes), use_sar_channels=bool(_TINY.sar),
                      options=TaskOptions(drop_dates=0, use_sar=False), hide_dates=hide,
                      prior=_TINY.prior)
    return model, series, batch, observed

"""Shared set-up of the remote-sensing tests: the tiny configuration and synthetic data they use,
builders of stacked series and of an untrained model, and a trained model with a masked date."""

import pytest
import torch

from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
from sciflow.domains.remote_sensing import (
    Config,
    Model,
    Standardizer,
    build_network,
    series_from_cube,
    stack_series,
    train,
)
from sciflow.domains.remote_sensing.tasks import TaskOptions, make_task

_TINY = Config(frames=4, tile=8, patch_size=4, dim=16, depth=1, heads=2, pixel_head=4,
               batch_size=2)
_DATA = SentinelSeriesSpec(size=8, n_dates=4, cloud_cover=0.5)


@pytest.fixture(scope="session")
def tiny() -> Config:
    """A network small enough to train in seconds: 4-date windows of 8 x 8 tiles (4 x 4
    patches), one block of width 16 with 2 heads, batches of 2."""
    return _TINY


@pytest.fixture(scope="session")
def tiny_data() -> SentinelSeriesSpec:
    """Synthetic series of 4 dates on 8 x 8 pixels, half of them cloudy."""
    return _DATA


@pytest.fixture(scope="session")
def tiny_series():
    """``tiny_series(n, seed=0, spec=tiny_data)``: ``n`` synthetic series stacked into one
    batch (the cubes of ``generate_cubes(spec, n, seed=seed)``)."""
    def make(n: int, seed: int = 0, spec: SentinelSeriesSpec = _DATA):
        return stack_series([series_from_cube(c) for c in generate_cubes(spec, n, seed=seed)])

    return make


@pytest.fixture(scope="session")
def untrained_model():
    """``untrained_model(series, **model_fields)``: the tiny network as initialised under torch
    seed 0 and never trained (it reproduces linear interpolation), with a standardiser fitted on
    ``series``; ``model_fields`` go to :class:`Model` (``checkpoint=``, ``digest=``)."""
    def make(series, **model_fields) -> Model:
        torch.manual_seed(0)
        return Model(build_network(_TINY).eval(), _TINY, Standardizer.fit(series), **model_fields)

    return make


@pytest.fixture(scope="module")
def masked_problem(tiny_series):
    """A tiny trained model and a reconstruction batch with one date per series withheld from
    the condition: ``(model, series, batch, observed)``, ``observed`` the withheld date's clear
    pixels (the measurement of steering and FLAIR)."""
    model = train(generate_cubes(_DATA, 4, seed=0),
                  _TINY.replace(train={"steps": 4, "progress": False, "log_every": 2}))
    series = tiny_series(3, seed=7)
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

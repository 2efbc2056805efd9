"""Shared helpers: the real ``sciflow`` entry point with this domain's group only (so these tests
do not depend on other domains importing cleanly), and tiny trained models on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
        ) -> Callable[..., tuple[int, str, str]]:
    """``cli("vfm", "train", ...) -> (exit status, stdout, stderr)`` through sciflow.cli.main;
    argparse's own refusals (SystemExit) count as their exit status."""
    import sciflow.cli
    import sciflow.demo
    from sciflow.domains.feature_forecasting.cli import DOMAIN

    for module in (sciflow.cli, sciflow.demo):
        monkeypatch.setattr(module, "domains", lambda: {DOMAIN.name: DOMAIN})

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = sciflow.cli.main([str(a) for a in argv])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


_TINY_TRAIN = ("--compressor", "pca", "--latent-dim", "4", "--train-clips", "6", "--steps", "3",
              "--head-steps", "2", "--width", "16", "--heads", "2", "--depth", "1", "--context",
              "2", "--horizon", "2", "--samples", "2", "--sample-steps", "2", "--no-progress")


@pytest.fixture
def tiny_train_args() -> tuple[str, ...]:
    """Flags of the smallest `train` run worth running (a few seconds)."""
    return _TINY_TRAIN


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder like ``sciflow vfm train`` with ``tiny_train_args`` writes (model.pt, checkpoints/)."""
    from sciflow.domains.feature_forecasting import Config, forecaster_schedule, train

    out = tmp_path_factory.mktemp("vfm_run")
    cfg = Config(compressor="pca", latent_dim=4, train_clips=6, head_steps=2, width=16, heads=2,
                 depth=1, context=2, horizon=2, samples=2, sample_steps=2,
                 train=forecaster_schedule(3, progress=False, out_dir=str(out)))
    train(config=cfg).save(out / "model.pt")
    return out

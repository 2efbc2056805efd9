"""Figures are written as PNG files and refuse inconsistent input."""

import numpy as np
import pytest
import torch

from sciflow.domains.single_cell import PopulationPair, plot_embeddings, plot_populations

PNG = b"\x89PNG"


def test_plot_populations_writes_png(tmp_path):
    pairs = [PopulationPair(population=f"p{i}", condition=None, source=torch.randn(50, 2),
                            target=torch.randn(50, 2)) for i in range(2)]
    path = plot_populations(pairs, {"MFM": [p.source * 0.5 for p in pairs]}, tmp_path / "a.png")
    assert path.read_bytes()[:4] == PNG


def test_plot_embeddings_writes_png_and_checks_lengths(tmp_path):
    z = np.random.default_rng(0).normal(size=(6, 4))
    labels = list("AABBXY")
    path = plot_embeddings(z, labels, tmp_path / "e.png", angles=np.linspace(0, 6, 6),
                           highlight=("X", "Y"))
    assert path.read_bytes()[:4] == PNG
    assert plot_embeddings(z, labels, tmp_path / "f.png").exists()
    with pytest.raises(ValueError, match="labels disagree"):
        plot_embeddings(z, labels[:5], tmp_path / "g.png")
    with pytest.raises(ValueError, match="angles"):
        plot_embeddings(z, labels, tmp_path / "h.png", angles=[0.0])

"""sciflow 0.1's single-cell names and files keep working on top of the current API."""

import pytest
import torch

from sciflow.checkpoint import save_checkpoint
from sciflow.domains.single_cell import (
    CellFlow,
    CellFlowSpec,
    CellPopulations,
    CellTrainConfig,
    Config,
    Model,
    PopulationPair,
    build_spec,
    evaluate,
    load,
    load_cell_flow,
    predict,
    sample,
    save_cell_flow,
    score,
    train_cell_flow,
)
from sciflow.errors import InputError

ARCH = dict(hidden=16, layers=2, time_dim=8, fourier=4, gnn_hidden=8, gnn_layers=2, knn=4)


def _cells(n_pop=3, n=24):
    g = torch.Generator().manual_seed(0)
    pairs = tuple(PopulationPair(population=f"p{i}", condition=None,
                                 source=torch.randn(n, 2, generator=g),
                                 target=torch.randn(n, 2, generator=g) + 1.0)
                  for i in range(n_pop))
    return CellPopulations(pairs=pairs, features=("u", "v"), rep="X",
                           keys={"population": "pop", "role": "role", "condition": None,
                                 "pair": None})


def test_former_functions_and_classes(tmp_path):
    cells = _cells()
    spec = build_spec(cells, "mfm", **ARCH)
    assert isinstance(spec, Config) and spec.dim == 2 and spec.model_type == "mfm"
    assert CellFlowSpec(method="mfm", dim=2, **ARCH) == spec
    with pytest.raises(InputError, match="needs the training population names"):
        CellFlowSpec(method="cgfm", dim=2)
    settings = CellTrainConfig(steps=2, populations_per_batch=2, cells_per_population=8, seed=4)
    flow = train_cell_flow(cells, spec, settings)
    assert CellFlow is Model and isinstance(flow, Model)
    assert flow.model is flow.net and flow.spec is flow.config
    assert flow.config.cells_per_population == 8 and flow.config.train.seed == 4
    path = save_cell_flow(tmp_path / "m.pt", flow)
    back = load_cell_flow(path)
    old = predict(back, cells.pairs, method="euler", steps=3)
    for a, b in zip(old, sample(back, cells, solver="euler", steps=3)):
        assert torch.equal(a, b)
    listed = evaluate(old, cells.pairs, max_cells=10)  # the former call: a list of scores
    assert listed == score(old, cells.pairs, max_cells=10)


def test_former_module_paths():
    from sciflow.domains.single_cell.data import predictions_to_anndata, read_populations
    from sciflow.domains.single_cell.model import CellFlowModel, CellFlowSpec, SkipMLP
    from sciflow.domains.single_cell.pipeline import (
        BASELINES,
        CellTrainConfig,
        load_cell_flow,
        scores_table,
        train_cell_flow,
    )
    from sciflow.domains.single_cell.plots import plot_embeddings, plot_populations

    assert all(callable(f) for f in (predictions_to_anndata, read_populations, CellFlowModel,
                                     CellFlowSpec, SkipMLP, CellTrainConfig, load_cell_flow,
                                     scores_table, train_cell_flow, plot_embeddings,
                                     plot_populations))
    assert BASELINES == ("base", "shift", "ideal-shift")


def test_a_file_written_by_sciflow_0_1_loads(tmp_path):
    """sciflow 0.1 saved meta={"cells": {"spec": {...}, ...}} with no kind tag."""
    cells = _cells()
    flow = train_cell_flow(cells, build_spec(cells, "fm", **ARCH),
                           CellTrainConfig(steps=1, cells_per_population=8))
    spec = {k: v for k, v in flow.config.network().items() if k != "model_type"}
    spec = {"method": "fm", **{k: list(v) if isinstance(v, tuple) else v
                               for k, v in spec.items()}}
    meta = {"cells": {"spec": spec, "features": ["u", "v"], "rep": "X", "keys": dict(cells.keys),
                      "embed_cells": 8, "mean_shift": {"": [1.0, 1.0]}}}
    path = save_checkpoint(tmp_path / "old.pt", flow.net, meta=meta)
    old = load(path)
    assert old.config.network() == flow.config.network() and old.embed_cells == 8
    for a, b in zip(sample(old, cells, solver="euler", steps=2),
                    sample(flow, cells, solver="euler", steps=2)):
        assert torch.equal(a, b)

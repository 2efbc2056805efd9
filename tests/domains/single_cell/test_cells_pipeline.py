"""Training (alternating blocks), prediction, baselines, checkpoints and a learning check."""

import copy
from dataclasses import replace

import pytest
import torch

from sciflow.domains.single_cell.data import CellDataError, CellPopulations, PopulationPair
from sciflow.domains.single_cell.metrics import mean_scores
from sciflow.domains.single_cell.pipeline import (
    CellTrainConfig,
    baseline_predictions,
    build_spec,
    evaluate,
    load_cell_flow,
    mean_training_shift,
    predict,
    save_cell_flow,
    train_cell_flow,
)

ARCH = dict(hidden=32, layers=2, time_dim=8, fourier=8, gnn_hidden=16, gnn_layers=2, knn=6)


def _scaled_populations(n_pop, n=48, seed=0, prefix="p", conditions=(None,)):
    """Population p: source ~ N(0, s_p^2 I), target = source / s_p (paired). One cell cannot
    tell s_p; the population can."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for i in range(n_pop):
        s = 0.5 + 1.5 * torch.rand((), generator=g)
        src = s * torch.randn(n, 2, generator=g)
        for c in conditions:
            tgt = src / s + (0.0 if c in (None, "a") else 1.0)
            pairs.append(PopulationPair(population=f"{prefix}{i}", condition=c, source=src,
                                        target=tgt, paired=True))
    return CellPopulations(pairs=tuple(pairs), features=("u", "v"), rep="X",
                           keys={"population": "pop", "role": "role", "condition": None,
                                 "pair": None})


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_alternating_training_updates_one_block_per_step():
    cells = _scaled_populations(4)
    spec = build_spec(cells, "mfm", **ARCH)
    cfg = dict(populations_per_batch=2, cells_per_population=16, ema_decay=0.0, seed=3)
    alt = dict(cfg, training="alternating")
    init = train_cell_flow(cells, spec, CellTrainConfig(steps=0, **alt)).model
    one = train_cell_flow(cells, spec, CellTrainConfig(steps=1, **alt)).model
    two = train_cell_flow(cells, spec, CellTrainConfig(steps=2, **alt)).model
    # step 0 trains the velocity network only, step 1 the encoder only
    assert _same(_params(one.encoder), _params(init.encoder))
    assert not _same(_params(one.velocity), _params(init.velocity))
    assert _same(_params(two.velocity), _params(one.velocity))
    assert not _same(_params(two.encoder), _params(one.encoder))
    joint = train_cell_flow(cells, spec, CellTrainConfig(steps=1, training="joint", **cfg)).model
    assert not _same(_params(joint.encoder), _params(init.encoder))
    assert not _same(_params(joint.velocity), _params(init.velocity))


def test_training_is_seeded():
    cells = _scaled_populations(3)
    spec = build_spec(cells, "fm", **ARCH)
    cfg = CellTrainConfig(steps=3, populations_per_batch=2, cells_per_population=16, seed=5)
    a = train_cell_flow(cells, spec, cfg).model
    b = train_cell_flow(cells, spec, cfg).model
    assert _same(_params(a), _params(b))


def test_predict_save_load_round_trip(tmp_path):
    cells = _scaled_populations(3, conditions=("a", "b"))
    flow = train_cell_flow(cells, build_spec(cells, "mfm", **ARCH),
                           CellTrainConfig(steps=2, populations_per_batch=2,
                                           cells_per_population=16, out_dir=tmp_path / "run"))
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    preds = predict(flow, cells.pairs, method="euler", steps=4)
    assert [p.shape for p in preds] == [p.source.shape for p in cells.pairs]
    path = save_cell_flow(tmp_path / "m.pt", flow)
    back = load_cell_flow(path)
    assert back.spec == flow.spec and back.features == ("u", "v")
    for x, y in zip(preds, predict(back, cells.pairs, method="euler", steps=4)):
        torch.testing.assert_close(x, y)
    # chunked integration gives the same cells as one batched solve
    for x, y in zip(preds, predict(flow, cells.pairs, method="euler", steps=4, max_rows=50)):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    # a trainer checkpoint also loads
    trainer_ck = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1]
    assert load_cell_flow(trainer_ck).spec == flow.spec


def test_baselines():
    cells = _scaled_populations(3, conditions=("a", "b"))
    shift = mean_training_shift(cells)
    assert set(shift) == {"a", "b"}
    base = baseline_predictions("base", cells.pairs)
    shifted = baseline_predictions("shift", cells.pairs, mean_shift=shift)
    ideal = baseline_predictions("ideal-shift", cells.pairs)
    for p, b, s, i in zip(cells.pairs, base, shifted, ideal):
        torch.testing.assert_close(b, p.source)
        torch.testing.assert_close(s - p.source, shift[p.condition].expand_as(s))
        torch.testing.assert_close(i.mean(0), p.target.mean(0))
    with pytest.raises(ValueError, match="needs mean_shift"):
        baseline_predictions("shift", cells.pairs)
    with pytest.raises(ValueError, match="baseline 'oracle'"):
        baseline_predictions("oracle", cells.pairs)


def test_bad_populations_are_rejected_by_name():
    cells = _scaled_populations(2, n=5)
    with pytest.raises(CellDataError, match=r"population 'p0' has 5 source cells, fewer than "
                                            r"knn \+ 1 = 7"):
        train_cell_flow(cells, build_spec(cells, "mfm", **ARCH), CellTrainConfig(steps=1))
    big = _scaled_populations(2)
    flow = train_cell_flow(big, build_spec(big, "fm", **ARCH),
                           CellTrainConfig(steps=1, cells_per_population=8))
    wrong = PopulationPair(population="q", condition=None, source=torch.randn(10, 3), target=None)
    with pytest.raises(CellDataError, match="has cells with 3 features but the model was trained "
                                            "on 2"):
        predict(flow, [wrong])
    nan = PopulationPair(population="q", condition=None,
                         source=torch.full((10, 2), float("nan")), target=None)
    with pytest.raises(CellDataError, match="NaN"):
        predict(flow, [nan])
    with pytest.raises(CellDataError, match="no target cells"):
        evaluate([wrong.source], [wrong])


def test_mfm_generalises_to_unseen_populations_where_fm_cannot():
    """Whitening populations of unknown scale needs the population: on held-out populations MFM
    must beat FM (which sees one cell at a time) in W2."""
    torch.manual_seed(0)
    train = _scaled_populations(24, n=64, seed=1)
    test = _scaled_populations(6, n=64, seed=2, prefix="q")
    cfg = CellTrainConfig(steps=300, populations_per_batch=8, cells_per_population=48, lr=3e-3,
                          training="joint", seed=0)
    w2 = {}
    for method in ("fm", "mfm"):
        flow = train_cell_flow(train, build_spec(train, method, **ARCH), cfg)
        preds = predict(flow, test.pairs, method="euler", steps=16)
        w2[method] = mean_scores(evaluate(preds, test.pairs)).w2
    base = mean_scores(evaluate(baseline_predictions("base", test.pairs), test.pairs)).w2
    assert w2["mfm"] < 0.8 * w2["fm"] < base


def test_predict_in_float64_matches_float32():
    cells = _scaled_populations(3)
    flow = train_cell_flow(cells, build_spec(cells, "mfm", **ARCH),
                           CellTrainConfig(steps=2, populations_per_batch=2,
                                           cells_per_population=16))
    p32 = predict(flow, cells.pairs, method="euler", steps=4)
    p64 = predict(replace(flow, model=copy.deepcopy(flow.model).double()), cells.pairs,
                  method="euler", steps=4)
    assert p64[0].dtype == torch.float64
    for a, b in zip(p32, p64):
        torch.testing.assert_close(a.double(), b, atol=1e-4, rtol=1e-4)

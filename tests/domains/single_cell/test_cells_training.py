"""Training (alternating blocks), sampling, baselines, checkpoints, seeds and a learning check."""

import copy
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from sciflow.checkpoint import CheckpointError, load_checkpoint
from sciflow.domains.single_cell import (
    KIND,
    CellDataError,
    CellPopulations,
    Config,
    PopulationPair,
    baseline_predictions,
    evaluate,
    load,
    mean_scores,
    mean_training_shift,
    sample,
    score,
    train,
)

ARCH = dict(hidden=32, layers=2, time_dim=8, fourier=8, gnn_hidden=16, gnn_layers=2, knn=6)


def _config(model_type, *, steps, **kw):
    run = {k: kw.pop(k) for k in ("seed", "lr", "ema_decay", "out_dir") if k in kw}
    return Config(model_type=model_type, **ARCH, **kw).replace(
        train={"steps": steps, "progress": False, **run})


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
    cfg = dict(populations_per_batch=2, cells_per_population=16, ema_decay=0.0, seed=3)
    alt = dict(cfg, training="alternating")
    init = train(cells, _config("mfm", steps=0, **alt)).net
    one = train(cells, _config("mfm", steps=1, **alt)).net
    two = train(cells, _config("mfm", steps=2, **alt)).net
    # step 0 trains the velocity network only, step 1 the encoder only
    assert _same(_params(one.encoder), _params(init.encoder))
    assert not _same(_params(one.velocity), _params(init.velocity))
    assert _same(_params(two.velocity), _params(one.velocity))
    assert not _same(_params(two.encoder), _params(one.encoder))
    joint = train(cells, _config("mfm", steps=1, training="joint", **cfg)).net
    assert not _same(_params(joint.encoder), _params(init.encoder))
    assert not _same(_params(joint.velocity), _params(init.velocity))


def test_training_is_seeded():
    cells = _scaled_populations(3)
    cfg = _config("fm", steps=3, populations_per_batch=2, cells_per_population=16, seed=5)
    a = train(cells, cfg).net
    torch.randn(11)  # draws between two runs must not matter
    b = train(cells, cfg).net
    assert _same(_params(a), _params(b))


_SEED_SCRIPT = """
import hashlib, torch
from sciflow.domains.single_cell import CellPopulations, Config, PopulationPair, train
torch.randn(5)  # unrelated draws before training must not matter
g = torch.Generator().manual_seed(0)
pairs = tuple(PopulationPair(population=f"p{i}", condition=None, source=torch.randn(20, 2,
              generator=g), target=torch.randn(20, 2, generator=g)) for i in range(3))
cells = CellPopulations(pairs=pairs, features=("u", "v"), rep="X", keys={})
config = Config(hidden=16, layers=2, time_dim=8, fourier=4, gnn_hidden=8, gnn_layers=2, knn=4,
                populations_per_batch=2, cells_per_population=8)
m = train(cells, config.replace(train={"steps": 3, "seed": 7, "progress": False}))
h = hashlib.sha256()
for k, v in sorted(m.net.state_dict().items()):
    h.update(k.encode() + v.numpy().tobytes())
print(h.hexdigest())
"""


def test_same_seed_same_weights_in_two_processes():
    """seed= fixes everything from model initialisation on: two processes, bit-identical."""
    runs = [subprocess.run([sys.executable, "-c", _SEED_SCRIPT], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1] for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 64


def test_sample_save_load_round_trip(tmp_path):
    cells = _scaled_populations(3, conditions=("a", "b"))
    flow = train(cells, _config("mfm", steps=2, populations_per_batch=2, cells_per_population=16,
                                out_dir=tmp_path / "run"))
    assert (tmp_path / "run" / "metrics.jsonl").exists() and flow.result.step == 2
    preds = sample(flow, cells, solver="euler", steps=4)
    assert [p.shape for p in preds] == [p.source.shape for p in cells.pairs]
    path = flow.save(tmp_path / "m.pt")
    assert load_checkpoint(path).kind == KIND == "single_cell"
    back = load(path)
    assert back.config.to_dict() == flow.config.to_dict() and back.features == ("u", "v")
    for x, y in zip(preds, sample(back, cells.pairs, solver="euler", steps=4)):
        torch.testing.assert_close(x, y)
    # chunked integration gives the same cells as one batched solve
    for x, y in zip(preds, sample(flow, cells, solver="euler", steps=4, max_rows=50)):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    # a trainer checkpoint also loads, with its kind tag
    trainer_ck = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1]
    assert load(trainer_ck).config.network() == flow.config.network()
    assert load_checkpoint(trainer_ck).kind == KIND
    # the Evaluation of the model and the baselines
    result = evaluate(flow, cells, baselines=("base", "shift", "ideal-shift"), solver="euler",
                      steps=4)
    assert list(result.scores) == ["MFM", "BASE", "SHIFT", "IDEAL-SHIFT"]
    assert len(result.rows()) == 4 * len(cells.pairs) and "| MFM |" in result.table()
    assert result.to_dict()["mean"]["MFM"]["w2"] == mean_scores(result.scores["MFM"]).w2


def test_resume_continues_and_refuses_another_model_size(tmp_path):
    cells = _scaled_populations(3)
    cfg = _config("fm", steps=2, populations_per_batch=2, cells_per_population=16,
                  out_dir=tmp_path / "run")
    train(cells, cfg)
    more = train(cells, cfg.replace(train={"steps": 3}), resume=True)
    assert more.result.start_step == 2 and more.result.step == 3
    with pytest.raises(CheckpointError, match=r"hidden: 32 there, 64 now"):
        train(cells, cfg.replace(hidden=64, train={"steps": 4}), resume=True)
    with pytest.raises(CheckpointError, match="model_type: 'fm' there, 'mfm' now"):
        train(cells, cfg.replace(model_type="mfm", train={"steps": 4}), resume=True)


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
    with pytest.raises(CellDataError, match=r"population 'p0' has 5 source cell\(s\), fewer than "
                                            r"the 7 cells this model needs \(knn \+ 1 = 7"):
        train(cells, _config("mfm", steps=1, cells_per_population=16))
    one = _scaled_populations(2, n=1)
    with pytest.raises(CellDataError, match=r"population 'p0' has 1 source cell\(s\), fewer "
                                            r"than the 2 .*MIN_CELLS"):
        train(one, _config("fm", steps=1))
    big = _scaled_populations(2)
    flow = train(big, _config("fm", steps=1, cells_per_population=8))
    wrong = PopulationPair(population="q", condition=None, source=torch.randn(10, 3), target=None)
    with pytest.raises(CellDataError, match="has cells with 3 features but the model was trained "
                                            "on 2"):
        sample(flow, [wrong])
    nan = PopulationPair(population="q", condition=None,
                         source=torch.full((10, 2), float("nan")), target=None)
    with pytest.raises(CellDataError, match="NaN"):
        sample(flow, [nan])
    with pytest.raises(CellDataError, match="no target cells"):
        score([wrong.source], [wrong])


def test_mfm_generalises_to_unseen_populations_where_fm_cannot():
    """Whitening populations of unknown scale needs the population: on held-out populations MFM
    must beat FM (which sees one cell at a time) in W2."""
    torch.manual_seed(0)
    train_cells = _scaled_populations(24, n=64, seed=1)
    test = _scaled_populations(6, n=64, seed=2, prefix="q")
    w2 = {}
    for model_type in ("fm", "mfm"):
        cfg = _config(model_type, steps=300, populations_per_batch=8, cells_per_population=48,
                      lr=3e-3, training="joint", seed=0)
        flow = train(train_cells, cfg)
        preds = sample(flow, test, solver="euler", steps=16)
        w2[model_type] = mean_scores(score(preds, test)).w2
    base = mean_scores(score(baseline_predictions("base", test.pairs), test)).w2
    assert w2["mfm"] < 0.8 * w2["fm"] < base


def test_predict_in_float64_matches_float32():
    cells = _scaled_populations(3)
    flow = train(cells, _config("mfm", steps=2, populations_per_batch=2,
                                cells_per_population=16))
    p32 = sample(flow, cells, solver="euler", steps=4)
    p64 = sample(replace(flow, net=copy.deepcopy(flow.net).double()), cells, solver="euler",
                 steps=4)
    assert p64[0].dtype == torch.float64
    for a, b in zip(p32, p64):
        torch.testing.assert_close(a.double(), b, atol=1e-4, rtol=1e-4)

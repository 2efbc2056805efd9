"""Training: the loss falls, saved models reproduce samples, resume is exact, seeds fix weights."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.domains.transition_states import (
    KIND,
    Model,
    TSTrainSettings,
    load,
    sample_many,
    train,
)
from sciflow.errors import InputError

_DIGEST = """
def weights_digest(synthetic_reaction):
    import hashlib
    from sciflow.domains.transition_states import Config, train
    cfg = Config(hidden=8, layers=1, vector_channels=2, num_rbf=4, time_dim=4, batch_size=2).replace(
        train={"steps": 3, "seed": 5, "progress": False, "warmup_steps": 0})
    model = train([synthetic_reaction(s) for s in range(3)], cfg)
    h = hashlib.sha256()
    for k, v in sorted(model.net.state_dict().items()):
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    return h.hexdigest()
"""


def test_training_lowers_the_loss_and_a_saved_model_reproduces_samples(tmp_path, tiny,
                                                                        make_reaction):
    data = [make_reaction(s) for s in range(6)]
    model, result = train(data, tiny.replace(train={"steps": 80}), return_result=True)
    losses = [loss for _, loss in result.loss_history]
    assert losses[-1] < losses[0]
    assert model.meta["train"]["reactions"] == 6 and model.meta["train"]["max_atoms"] == 5
    path = Model(net=model.net, config=model.config, meta={**model.meta, "default_steps": 3}).save(
        tmp_path / "ts.pt")
    loaded = load(path)
    assert loaded.default_steps == 3 and loaded.config == model.config
    pairs = [(r.reactant, r.product) for r in data[:3]]
    a = sample_many(loaded, pairs, samples=2, seed=5)
    b = sample_many(Model(model.net, meta={"default_steps": 3}), pairs, samples=2, seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.best.get_positions(), y.best.get_positions())


def test_trainer_checkpoints_carry_the_kind_tag(tmp_path, tiny, make_reaction):
    from sciflow.checkpoint import latest_checkpoint, load_checkpoint

    cfg = tiny.replace(train={"steps": 4, "checkpoint_every": 2, "out_dir": tmp_path / "run"})
    train([make_reaction(s) for s in range(3)], cfg)
    ck = load_checkpoint(latest_checkpoint(tmp_path / "run"), kind=KIND)
    assert ck.digest is not None and ck.meta["config"]["hidden"] == 16
    assert isinstance(load(latest_checkpoint(tmp_path / "run")), Model)  # EMA weights load too


def test_resumed_training_matches_an_uninterrupted_run(tmp_path, tiny, make_reaction):
    data = [make_reaction(s) for s in range(4)]
    # a constant learning rate: the cosine schedule depends on the total number of steps
    cfg = tiny.replace(batch_size=3, train={"steps": 12, "log_every": 4, "checkpoint_every": 6,
                                            "schedule": "constant"})
    straight = train(data, cfg.replace(train={"out_dir": tmp_path / "a"}))
    train(data, cfg.replace(train={"steps": 6, "out_dir": tmp_path / "b"}))
    resumed, result = train(data, cfg.replace(train={"out_dir": tmp_path / "b"}), resume=True,
                            return_result=True)
    assert result.start_step == 6 and result.step == 12
    for p, q in zip(straight.net.parameters(), resumed.net.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_resume_with_another_network_is_refused_before_loading(tmp_path, tiny, make_reaction):
    data = [make_reaction(s) for s in range(3)]
    cfg = tiny.replace(train={"steps": 2, "checkpoint_every": 2, "out_dir": tmp_path / "run"})
    train(data, cfg)
    with pytest.raises(InputError, match=r"another network: hidden=16 -> 24"):
        train(data, cfg.replace(hidden=24, train={"steps": 4}), resume=True)


@pytest.mark.slow  # a fresh interpreter imports torch, PyG, POT and ASE: ~10 s of CPU
def test_same_seed_same_weights_in_two_processes(make_reaction):
    """seed= fixes everything from the network's initialisation on: a fresh process and this one
    (whose random streams earlier tests have moved) give bit-identical weights."""
    script = (f"import sys, torch\ntorch.set_num_threads(1)\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "from conftest import synthetic_reaction\n" + _DIGEST +
              "torch.randn(11)\nprint(weights_digest(synthetic_reaction))\n")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1]
    namespace: dict = {}
    exec(_DIGEST, namespace)
    torch.rand(5)
    assert len(other) == 64 and namespace["weights_digest"](make_reaction) == other


def test_former_keywords_still_train(tmp_path, tiny, make_reaction):
    """train(reactions, config=TSModelConfig(...), settings=TSTrainSettings(...), out_dir=...)."""
    settings = TSTrainSettings(steps=3, batch_size=2, warmup_steps=0, progress=False,
                               checkpoint_every=0)
    model = train([make_reaction(s) for s in range(3)], config=tiny, settings=settings,
                  out_dir=tmp_path / "old")
    assert model.config.train.steps == 3 and model.config.hidden == 16
    assert (tmp_path / "old" / "metrics.jsonl").exists()


def test_weights_digest_differs_between_seeds(tiny, make_reaction):
    data = [make_reaction(s) for s in range(3)]

    def digest(seed: int) -> str:
        m = train(data, tiny.replace(train={"steps": 2, "seed": seed}))
        return hashlib.sha256(b"".join(v.numpy().tobytes() for v in m.net.state_dict().values())
                              ).hexdigest()

    assert digest(0) == digest(0) != digest(1)


def test_warm_start_copies_the_weights_and_widens_the_element_embedding(tiny, make_reaction):
    from sciflow.domains.transition_states.network import build_network
    from sciflow.domains.transition_states.training import warm_start

    data = [make_reaction(s) for s in range(2)]
    old = train(data, tiny.replace(elements=(1, 6, 7), train={"steps": 2}))
    wider = tiny.replace(elements=(1, 6, 7, 8, 16))
    net = build_network(wider)
    warm_start(net, old, wider)
    ours, theirs = net.state_dict(), old.net.state_dict()
    embed = next(k for k in ours if k.endswith("node_embed.weight"))
    assert torch.equal(ours[embed][:, :3], theirs[embed])  # H C N copied in their order
    assert not ours[embed][:, 3:].any()  # O and S: not seen by the old model, zero
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k != embed
               and not k.endswith("aggregation_mean"))
    model = train(data, wider.replace(train={"steps": 1}), init=old)
    assert model.meta["train"]["init"] == {"checkpoint": None, "digest": None}
    with pytest.raises(InputError, match="use its network sizes"):
        warm_start(build_network(wider.replace(hidden=24)), old, wider.replace(hidden=24))

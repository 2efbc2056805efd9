"""Few-step TS generators distilled without data (``distillation.distil``).

The student is the teacher's equivariant network with the jump's target time as an extra
invariant input; warm-started it is one Euler step of the teacher; the Model it returns samples
through the domain's ``sample`` with ``default_steps`` network evaluations; it saves and loads;
bad requests are named.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sciflow.checkpoint import CheckpointError
from sciflow.domains.transition_states import load, sample, train
from sciflow.domains.transition_states.data import stack_endpoints
from sciflow.domains.transition_states.distillation import (
    TSFlowMapNet,
    distil,
    load_distilled,
    save_distilled,
    with_jumps,
)
from sciflow.errors import InputError
from sciflow.flowmaps import warm_start


@pytest.fixture(scope="module")
def setup(make_reaction):
    from sciflow.domains.transition_states import Config

    tiny = Config(hidden=16, layers=2, vector_channels=2, num_rbf=8, time_dim=8,
                  batch_size=4).replace(train={"steps": 10, "lr": 3e-3, "warmup_steps": 0,
                                               "log_every": 5, "checkpoint_every": 0,
                                               "progress": False})
    reactions = [make_reaction(s) for s in range(6)]
    teacher = train(reactions, tiny)
    student = distil(teacher, reactions, jumps=1, steps=4, batch_size=3, warmup_steps=0)
    return teacher, student, reactions


def _inputs(teacher, reactions, seed=0):
    eps = [teacher.prepare(r.reactant, r.product) for r in reactions[:3]]
    cond, ids = stack_endpoints(eps, elements=teacher.elements)
    x = teacher.source.sample(cond.reactant, cond=cond, batch=ids,
                              generator=torch.Generator().manual_seed(seed))
    return x, cond, ids


def test_a_warm_started_student_is_one_euler_step_of_its_teacher(setup):
    teacher, _, reactions = setup
    net = TSFlowMapNet(teacher.config, jumps=1)
    done = warm_start(net, teacher.net)
    assert any(name.endswith("encoder.0.weight") for name in done.widened)
    x, cond, ids = _inputs(teacher, reactions)
    s = torch.zeros(3)
    with torch.no_grad():
        for t in (0.3, 1.0):
            got = net.two_time(x, s, torch.full((3,), t), cond=cond, batch=ids)
            torch.testing.assert_close(got, teacher.net(x, s, cond=cond, batch=ids))
    # once trained, the output depends on the target time
    _, student, _ = setup
    with torch.no_grad():
        a = student.net.two_time(x, s, torch.full((3,), 0.5), cond=cond, batch=ids)
        b = student.net.two_time(x, s, torch.full((3,), 1.0), cond=cond, batch=ids)
    assert not torch.equal(a, b)


def test_the_student_is_equivariant_under_rotations_and_translations(setup):
    teacher, student, reactions = setup
    x, cond, ids = _inputs(teacher, reactions)
    q = torch.as_tensor(Rotation.random(random_state=3).as_matrix(), dtype=x.dtype)
    shift = torch.tensor([0.7, -1.2, 2.0])
    moved = type(cond)(cond.features, cond.reactant @ q.T + shift, cond.product @ q.T + shift)
    s, t = torch.tensor([0.0, 0.2, 0.5]), torch.tensor([1.0, 0.6, 0.75])
    with torch.no_grad():
        out = student.net.two_time(x, s, t, cond=cond, batch=ids)
        out_moved = student.net.two_time(x @ q.T + shift, s, t, cond=moved, batch=ids)
    torch.testing.assert_close(out_moved, out @ q.T + shift, atol=1e-4, rtol=1e-4)


def test_the_distilled_model_samples_in_its_default_jumps(setup):
    teacher, student, reactions = setup
    assert student.default_steps == 1 and student.default_solver == "euler"
    assert student.meta["distillation"]["steps"] == 4
    r = reactions[0]
    one = sample(student, r.reactant, r.product, samples=2)
    assert one.nfe == 1 and len(one.samples) == 2
    assert np.isfinite(one.best.get_positions()).all()
    two = with_jumps(student, 2)
    assert two.default_steps == 2 and student.default_steps == 1
    assert sample(two, r.reactant, r.product).nfe == 2
    # other grids than the generator's own are refused by name
    with pytest.raises(InputError, match="sample_steps=1"):
        sample(student, r.reactant, r.product, sample_steps=3)
    with pytest.raises(InputError, match="with_jumps"):
        with_jumps(teacher, 2)


def test_save_and_load_keep_the_generator(setup, tmp_path):
    _, student, reactions = setup
    path = save_distilled(with_jumps(student, 2), tmp_path / "few.pt")
    back = load_distilled(path)
    assert back.default_steps == 2 and isinstance(back.net, TSFlowMapNet)
    r = reactions[1]
    a = sample(with_jumps(student, 2), r.reactant, r.product, seed=4).best.get_positions()
    b = sample(back, r.reactant, r.product, seed=4).best.get_positions()
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(CheckpointError):
        load(path)  # not a plain TS generator
    with pytest.raises(FileNotFoundError):
        load_distilled(tmp_path / "missing.pt")


def test_distil_refuses_bad_requests_by_name(setup):
    teacher, student, reactions = setup
    with pytest.raises(InputError, match="no reactions"):
        distil(teacher, [], steps=1)
    with pytest.raises(InputError, match="steps"):
        distil(teacher, reactions, steps=0)
    with pytest.raises(InputError, match="already a distilled"):
        distil(student, reactions, steps=1)
    with pytest.raises(InputError, match="TS Model"):
        distil(teacher.net, reactions, steps=1)

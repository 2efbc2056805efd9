"""SpaceTimeTransformer: the velocity contract, batch independence, frame-permutation
equivariance, context frames, what ACor / STM make the output depend on, and clear errors."""

from __future__ import annotations

import pytest
import torch

from sciflow.matcher import FlowMatcher
from sciflow.nn.spacetime import SpaceTimeCondition, SpaceTimeTransformer
from sciflow.solvers import odeint

B, T, C, H, W = 2, 4, 3, 8, 8


def make(dtype=torch.float32, *, perturb=True, **kw):
    """A small network; ``perturb`` moves it off its zero initialisation so every path
    carries signal."""
    torch.manual_seed(0)
    cfg = dict(
        frame_channels=2,
        aux_channels=2,
        frame_features=3,
        vector_dim=2,
        patch_size=4,
        dim=16,
        depth=2,
        heads=2,
        groups=4,
        pixel_head=4,
    )
    cfg.update(kw)
    net = SpaceTimeTransformer(C, **cfg).to(dtype)
    if perturb:
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return net


def condition(b=B, t=T, tc=0, dtype=torch.float32, seed=1, context=False):
    g = torch.Generator().manual_seed(seed)
    n = t + tc

    def r(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    return SpaceTimeCondition(
        frames=r(b, n, 2, H, W),
        aux=r(b, n, 2, H, W),
        frame_features=r(b, n, 3),
        vector=r(b, 2),
        times=torch.cumsum(torch.rand(b, n, generator=g, dtype=dtype) * 10, 1),
        context=r(b, tc, C, H, W) if context else None,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("acor, stm", [(False, False), (True, False), (False, True), (True, True)])
def test_shape_dtype_and_batch_independence(dtype, acor, stm):
    net = make(dtype, acor=acor, stm=stm)
    x = torch.randn(B, T, C, H, W, dtype=dtype)
    cond = condition(dtype=dtype)
    t = torch.tensor([0.2, 0.7], dtype=dtype)
    v = net(x, t, cond=cond)
    assert v.shape == x.shape and v.dtype == dtype
    # sample 0 alone gives the same output as inside the batch
    v0 = net(x[:1], t[:1], cond=cond.index(slice(0, 1)))
    torch.testing.assert_close(v0, v[:1])
    # changing sample 1 leaves sample 0 untouched
    x2 = x.clone()
    x2[1] += 1.0
    torch.testing.assert_close(net(x2, t, cond=cond)[0], v[0])


@pytest.mark.parametrize("stm", [False, True])
def test_frames_permute_with_their_times(stm):
    """Without ACor's temporal convolution the network sees frames only through their times:
    permuting frames (with times and conditions) permutes the output."""
    net = make(torch.float64, acor=False, stm=stm)
    x = torch.randn(B, T, C, H, W, dtype=torch.float64)
    cond = condition(dtype=torch.float64)
    perm = torch.tensor([2, 0, 3, 1])
    pc = SpaceTimeCondition(
        frames=cond.frames[:, perm],
        aux=cond.aux[:, perm],
        frame_features=cond.frame_features[:, perm],
        vector=cond.vector,
        times=cond.times[:, perm],
    )
    t = torch.tensor([0.3, 0.6], dtype=torch.float64)
    torch.testing.assert_close(net(x[:, perm], t, cond=pc), net(x, t, cond=cond)[:, perm])


def test_context_frames_condition_but_are_not_generated():
    net = make(torch.float64)
    x = torch.randn(B, T, C, H, W, dtype=torch.float64)
    cond = condition(tc=2, dtype=torch.float64, context=True)
    t = torch.full((B,), 0.5, dtype=torch.float64)
    v = net(x, t, cond=cond)
    assert v.shape == x.shape
    moved = SpaceTimeCondition(**{**cond.__dict__, "context": cond.context + 1.0})
    assert not torch.allclose(net(x, t, cond=moved), v)


@pytest.mark.parametrize(
    "acor, stm, reaches", [(False, False, False), (True, False, True), (False, True, True)]
)
def test_auxiliary_modality_acts_only_through_acor_or_stm(acor, stm, reaches):
    net = make(torch.float64, acor=acor, stm=stm)
    x = torch.randn(B, T, C, H, W, dtype=torch.float64)
    cond = condition(dtype=torch.float64)
    aux = cond.aux.clone().requires_grad_(True)
    c2 = SpaceTimeCondition(**{**cond.__dict__, "aux": aux})
    net(x, torch.full((B,), 0.4, dtype=torch.float64), cond=c2).square().sum().backward()
    grad = 0.0 if aux.grad is None else float(aux.grad.abs().max())
    assert (grad > 1e-8) == reaches


def test_fresh_network_is_zero_and_every_parameter_learns():
    net = make(perturb=False, frame_features=0, vector_dim=0, depth=1, acor=True, stm=True)
    x = torch.randn(B, T, C, H, W)
    cond = SpaceTimeCondition(frames=torch.randn(B, T, 2, H, W), aux=torch.randn(B, T, 2, H, W))
    assert net(x, torch.rand(B), cond=cond).abs().max() == 0  # adaLN-Zero / zero heads
    net = make(acor=True, stm=True)
    loss = net(x, torch.rand(B), cond=condition()).square().mean()
    loss.backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert not dead, f"parameters without gradient: {dead}"


def test_velocity_contract_with_matcher_and_solver():
    net = make(frame_channels=0, aux_channels=0, frame_features=0, vector_dim=0, pixel_head=0)
    x1 = torch.randn(B, T, C, H, W)
    loss = FlowMatcher().loss(net, x1)
    assert loss.dim() == 0 and torch.isfinite(loss)
    sol = odeint(net, torch.randn_like(x1), method="euler", steps=2)
    assert sol.x.shape == x1.shape and sol.nfe == 2
    torch.testing.assert_close(net(x1, 0.5), net(x1, torch.full((B,), 0.5)))


def test_bad_input_is_named():
    net = make()
    x = torch.randn(B, T, C, H, W)
    t = torch.rand(B)
    cond = condition()
    with pytest.raises(ValueError, match="channels"):
        net(torch.randn(B, T, C + 1, H, W), t, cond=cond)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        net(torch.randn(B, T, C, 6, 8), t, cond=SpaceTimeCondition())
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        net(torch.randn(B, C, H, W), t, cond=cond)
    with pytest.raises(ValueError, match="cond.frames"):
        net(x, t, cond=SpaceTimeCondition(**{**cond.__dict__, "frames": None}))
    with pytest.raises(ValueError, match="cond.times"):
        net(x, t, cond=SpaceTimeCondition(**{**cond.__dict__, "times": torch.zeros(B, T + 1)}))
    with pytest.raises(ValueError, match="cond.aux must have shape"):
        net(x, t, cond=SpaceTimeCondition(**{**cond.__dict__, "aux": torch.zeros(B, T, 3, H, W)}))
    with pytest.raises(TypeError, match="SpaceTimeCondition"):
        net(x, t, cond={"frames": cond.frames})
    with pytest.raises(ValueError, match="batch must be None"):
        net(x, t, cond=cond, batch=torch.zeros(B, dtype=torch.long))
    plain = make(frame_channels=0, aux_channels=0, frame_features=0, vector_dim=0)
    with pytest.raises(ValueError, match="built without"):
        plain(x, t, cond=SpaceTimeCondition(frames=cond.frames))
    with pytest.raises(ValueError, match="no condition to inject"):
        SpaceTimeTransformer(C, acor=True, dim=16, heads=2)
    with pytest.raises(ValueError, match="divisible"):
        SpaceTimeTransformer(C, dim=18, heads=4)
    with pytest.raises(ValueError, match="patch_size"):
        SpaceTimeTransformer(C, patch_size=0)

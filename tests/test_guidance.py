"""Classifier-free guidance: condition dropout per sample / per graph, and the guided field's
limits (scale 1 = conditional, 0 = unconditional) and linearity in the scale."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sciflow.guidance import CFGVelocity, drop_condition, null_condition

DTYPES = [torch.float32, torch.float64]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class ToyField(torch.nn.Module):
    """A non-linear conditional field; per-graph conditions reach nodes through ``batch``."""

    def __init__(self, dim: int, cond_dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        g = _gen(0)
        self.a = torch.nn.Parameter(torch.randn(dim, dim, generator=g, dtype=dtype))
        self.b = torch.nn.Parameter(torch.randn(cond_dim, dim, generator=g, dtype=dtype))
        self.calls: list[int] = []

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        *,
        cond: Any = None,
        batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.calls.append(x.shape[0])
        c = cond["c"] if isinstance(cond, dict) else cond
        if isinstance(cond, dict) and "scale" in cond:
            c = c * cond["scale"][:, None]
        per_row_t = t if batch is None else t[batch]
        per_row_c = c if batch is None or c.shape[0] == x.shape[0] else c[batch]
        return torch.tanh(x @ self.a + per_row_c @ self.b + per_row_t[:, None])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cfg_limits_and_linearity_in_the_scale(dtype: torch.dtype) -> None:
    g = _gen(1)
    model = ToyField(3, 2, dtype)
    x = torch.randn(7, 3, generator=g, dtype=dtype)
    t = torch.rand(7, generator=g, dtype=dtype)
    c = torch.randn(7, 2, generator=g, dtype=dtype)
    v_cond = model(x, t, cond=c)
    v_null = model(x, t, cond=torch.zeros_like(c))
    assert torch.equal(CFGVelocity(model, 1.0)(x, t, cond=c), v_cond)
    assert torch.equal(CFGVelocity(model, 0.0)(x, t, cond=c), v_null)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    for w in (0.5, 2.0, 3.5, -1.0):
        for batched in (True, False):
            guided = CFGVelocity(model, w, batched=batched)(x, t, cond=c)
            assert guided.dtype == dtype and guided.shape == x.shape
            assert torch.allclose(guided, v_null + w * (v_cond - v_null), atol=tol)
    # Batched: one model call on the doubled batch; unbatched: two calls.
    model.calls.clear()
    CFGVelocity(model, 2.0)(x, t, cond=c)
    assert model.calls == [14]
    model.calls.clear()
    CFGVelocity(model, 2.0, batched=False)(x, t, cond=c)
    assert model.calls == [7, 7]


def test_cfg_on_ragged_graph_batches_with_dict_conditions() -> None:
    g = _gen(2)
    model = ToyField(3, 2, torch.float64)
    sizes = torch.tensor([3, 5, 2])
    batch = torch.repeat_interleave(torch.arange(3), sizes)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    t = torch.rand(3, generator=g, dtype=torch.float64)  # per graph
    cond = {
        "c": torch.randn(3, 2, generator=g, dtype=torch.float64),
        "scale": torch.rand(3, dtype=torch.float64) + 1,
    }
    token = torch.tensor([0.5, -0.5], dtype=torch.float64)
    # Only "c" is dropped; "scale" describes the system and stays.
    guided = CFGVelocity(model, 2.5, null_cond={"c": token}, keys=["c"])
    v = guided(x, t, cond=cond, batch=batch)
    null = {"c": token.expand(3, 2), "scale": cond["scale"]}
    v_cond = model(x, t, cond=cond, batch=batch)
    v_null = model(x, t, cond=null, batch=batch)
    assert torch.allclose(v, v_null + 2.5 * (v_cond - v_null), atol=1e-13)
    unbatched = CFGVelocity(model, 2.5, null_cond={"c": token}, keys=["c"], batched=False)
    assert torch.allclose(unbatched(x, t, cond=cond, batch=batch), v, atol=1e-13)
    # Graphs stay independent inside the doubled batch.
    v_first = guided(x[:3], t[:1], cond={k: c[:1] for k, c in cond.items()}, batch=batch[:3])
    assert torch.allclose(v_first, v[:3], atol=1e-13)


def test_cfg_is_a_module_and_rejects_bad_use() -> None:
    model = ToyField(2, 2, torch.float32)
    guided = CFGVelocity(model, 2.0)
    assert any(p is model.a for p in guided.parameters())
    with pytest.raises(ValueError, match="needs cond"):
        guided(torch.randn(3, 2), torch.rand(3))
    with pytest.raises(ValueError, match="finite"):
        CFGVelocity(model, float("nan"))
    with pytest.raises(TypeError, match="callable"):
        CFGVelocity(3, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="explicit null"):
        CFGVelocity(model, 2.0)(torch.randn(3, 2), torch.rand(3), cond=torch.arange(3))


# ------------------------------------------------------------------ condition dropout


@pytest.mark.parametrize("dtype", DTYPES)
def test_drop_condition_probability_and_null(dtype: torch.dtype) -> None:
    cond = torch.randn(20000, 4, generator=_gen(3), dtype=dtype) + 5
    out = drop_condition(cond, 0.3, _gen(4))
    frac = float(out.dropped.double().mean())
    assert abs(frac - 0.3) < 0.02  # std ~ 0.003
    assert torch.equal(out.cond[out.dropped], torch.zeros_like(cond[out.dropped]))
    assert torch.equal(out.cond[~out.dropped], cond[~out.dropped])
    assert torch.equal(drop_condition(cond, 0.3, _gen(4)).dropped, out.dropped)  # reproducible
    assert not bool(drop_condition(cond, 0.0, _gen(5)).dropped.any())
    assert bool(drop_condition(cond, 1.0, _gen(5)).dropped.all())


def test_drop_condition_for_labels_dicts_and_learned_tokens() -> None:
    labels = torch.randint(0, 10, (64,), generator=_gen(6))
    out = drop_condition(labels, 0.5, _gen(7), null=10)
    assert torch.equal(out.cond, torch.where(out.dropped, torch.tensor(10), labels))
    with pytest.raises(ValueError, match="explicit null"):
        drop_condition(labels, 0.5)
    token = torch.nn.Parameter(torch.ones(3))
    cond = {"emb": torch.randn(64, 3), "label": labels}
    out = drop_condition(cond, 0.5, _gen(8), null={"emb": token, "label": -1})
    # One decision per sample, shared by all entries.
    assert torch.equal(out.cond["label"] == -1, out.dropped)
    assert torch.equal((out.cond["emb"] == 1).all(1), out.dropped)
    out.cond["emb"].sum().backward()
    assert float(token.grad.sum()) == pytest.approx(3 * int(out.dropped.sum()))
    kept = drop_condition(cond, 1.0, null={"label": -1}, keys=["label"])
    assert kept.cond["emb"] is cond["emb"] and bool((kept.cond["label"] == -1).all())


def test_drop_condition_per_graph_on_ragged_batches() -> None:
    g = _gen(9)
    sizes = torch.randint(1, 6, (200,), generator=g)
    batch = torch.repeat_interleave(torch.arange(200), sizes)
    n = int(sizes.sum())
    cond = {"graph": torch.randn(200, 2, generator=g), "node": torch.randn(n, 3, generator=g)}
    out = drop_condition(cond, 0.4, _gen(10), batch=batch)
    assert out.dropped.shape == (200,)
    node_dropped = out.dropped[batch]
    assert torch.equal((out.cond["graph"] == 0).all(1), out.dropped)
    assert torch.equal((out.cond["node"] == 0).all(1), node_dropped)
    assert torch.equal(out.cond["node"][~node_dropped], cond["node"][~node_dropped])


def test_drop_condition_rejects_bad_input() -> None:
    cond = torch.randn(8, 2)
    with pytest.raises(ValueError, match="probability"):
        drop_condition(cond, 1.5)
    with pytest.raises(ValueError, match="leading dimension"):
        drop_condition({"a": cond, "b": torch.randn(5, 2)}, 0.5)
    with pytest.raises(ValueError, match="broadcast"):
        drop_condition(cond, 0.5, null=torch.ones(3))
    with pytest.raises(TypeError, match="tensor entries"):
        drop_condition({"a": cond, "name": "water"}, 0.5)
    with pytest.raises(KeyError, match="missing"):
        drop_condition({"a": cond}, 0.5, keys=["missing"])
    with pytest.raises(ValueError, match="leading dimension"):
        drop_condition(cond, 0.5, batch=torch.zeros(3, dtype=torch.long))
    assert torch.equal(null_condition(cond, 2.0), torch.full_like(cond, 2.0))

"""Classifier-free guidance for conditional flow matching.

Training (Ho & Salimans 2022, "Classifier-free diffusion guidance"): one network learns both the
conditional field v(x, t | c) and the unconditional one v(x, t | null) by replacing the condition
with a null token for a random fraction p of the samples (:func:`drop_condition`).

Sampling: the guided field extrapolates from the unconditional towards the conditional one,

    v_w(x, t | c) = v(x, t | null) + w ( v(x, t | c) - v(x, t | null) ),

w = 1 the conditional field, w = 0 the unconditional one, w > 1 sharper conditioning
(:class:`CFGVelocity`; for flow matching see Zheng et al. 2023, "Guided flows for generative
modeling and decision making").

Conditions are a tensor with one row per sample, or a dict of such tensors. On ragged graph batches
(x (N, D), ``batch`` (N,)) the drop is decided once per graph; per-graph entries (B, *) and per-node
entries (N, *) of the condition are both handled, the latter through ``batch``.

The other ways to steer a trained flow live beside this module, each on the one time loop of
:mod:`sciflow.solvers`: gradient-free steering of the trajectory by a loss on the data estimate
(FlowChef) in :mod:`sciflow.steering`, and reward-driven particle search under an NFE budget
(best-of-N, sequential Monte Carlo, rollover budget forcing) in :mod:`sciflow.particles`. A
:class:`CFGVelocity` is an ordinary velocity field, so it can be steered or searched with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciflow import graphs
from sciflow.couplings import Cond
from sciflow.matcher import VelocityModel

__all__ = ["CFGVelocity", "Cond", "DroppedCondition", "Null", "drop_condition", "null_condition"]

Null = None | float | int | bool | Tensor | Mapping[str, Any]
"""The null condition: ``None`` (zeros; floating conditions only), a scalar fill value, a tensor
broadcastable to one row (a learned token: gradients flow into it), or a dict of these per entry."""


@dataclass(frozen=True)
class DroppedCondition:
    """What :func:`drop_condition` returns.

    Attributes
    ----------
    cond:
        The condition with the dropped samples' rows replaced by the null value.
    dropped:
        (B,) bool, True where the condition was dropped (per graph for ragged batches).
    """

    cond: Cond
    dropped: Tensor


def _null_value(value: Tensor, null: Any, name: str) -> Tensor:
    """A tensor shaped like ``value`` holding the null condition."""
    if null is None:
        if not value.is_floating_point():
            raise ValueError(
                f"{name} has dtype {value.dtype}; integer labels need an explicit null token "
                "(e.g. null=num_classes, an index the embedding reserves for 'no condition')"
            )
        return torch.zeros_like(value)
    if isinstance(null, (bool, int, float)):
        return torch.full_like(value, null)
    if isinstance(null, Tensor):
        try:
            return torch.broadcast_to(null.to(device=value.device, dtype=value.dtype), value.shape)
        except RuntimeError as err:
            raise ValueError(
                f"the null value for {name} has shape {tuple(null.shape)}, which does not "
                f"broadcast to the condition's shape {tuple(value.shape)}"
            ) from err
    raise TypeError(f"the null value for {name} must be None, a number or a tensor, got {null!r}")


def _check_keys(cond: Cond, keys: Sequence[str] | None) -> None:
    if keys is not None:
        if not isinstance(cond, Mapping):
            raise TypeError("keys= selects entries of a dict condition, but cond is a tensor")
        missing = [k for k in keys if k not in cond]
        if missing:
            raise KeyError(f"keys {missing} are not in cond (entries: {sorted(cond)})")


def _entries(cond: Cond, keys: Sequence[str] | None) -> list[tuple[str, Tensor]]:
    """The (name, tensor) entries of a condition that guidance replaces."""
    if isinstance(cond, Tensor):
        return [("cond", cond)]
    if not isinstance(cond, Mapping):
        raise TypeError(f"cond must be a tensor or a dict of tensors, got {type(cond).__name__}")
    _check_keys(cond, keys)
    chosen = list(cond) if keys is None else list(keys)
    out = []
    for k in chosen:
        if not isinstance(cond[k], Tensor):
            raise TypeError(
                f"cond[{k!r}] is a {type(cond[k]).__name__}; only tensor entries can be dropped "
                "(pass keys= to leave other entries alone)"
            )
        out.append((k, cond[k]))
    return out


def _null_for_entry(null: Null, key: str, cond: Cond) -> Any:
    if isinstance(null, Mapping):
        if not isinstance(cond, Mapping):
            raise TypeError("null is a dict but cond is a tensor; give one null value")
        return null.get(key)
    return null


def null_condition(cond: Cond, null: Null = None, *, keys: Sequence[str] | None = None) -> Cond:
    """The condition with every (selected) entry replaced by its null value.

    Shapes are preserved; ``keys`` (dict conditions only) limits the replacement to those entries,
    leaving e.g. atom types, which describe the system rather than the request, in place.
    """
    entries = _entries(cond, keys)
    if isinstance(cond, Tensor):
        return _null_value(cond, null, "cond")
    out = dict(cond)
    for k, value in entries:
        out[k] = _null_value(value, _null_for_entry(null, k, cond), f"cond[{k!r}]")
    return out


def drop_condition(
    cond: Cond,
    p: float,
    generator: torch.Generator | None = None,
    *,
    null: Null = None,
    batch: Tensor | None = None,
    keys: Sequence[str] | None = None,
) -> DroppedCondition:
    """Replace the condition by the null value for a random fraction ``p`` of the samples.

    Each sample (each graph when ``batch`` is given) is dropped independently with probability p;
    a dropped sample has all selected entries of its condition nulled together, so the network sees
    either the full condition or none of it.

    Parameters
    ----------
    cond:
        (B, *) tensor, or a dict of tensors whose rows are samples. With ``batch`` (N,), entries may
        be per graph (B, *) or per node (N, *); a per-node entry is dropped with its graph.
    p:
        Drop probability in [0, 1]; 0.1-0.2 is usual.
    generator:
        Random generator, for reproducible drops.
    null:
        See :data:`Null`; zeros by default.
    keys:
        For dict conditions, the entries to drop (default: all).

    Returns
    -------
    DroppedCondition
        The new condition and the (B,) bool mask of dropped samples/graphs.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    entries = _entries(cond, keys)
    if not entries:
        raise ValueError("cond has no entries to drop")
    device = entries[0][1].device
    if batch is not None:
        if batch.dim() != 1 or batch.is_floating_point():
            raise ValueError(f"batch must be an integer vector (N,), got {tuple(batch.shape)}")
        n_rows = batch.shape[0]
        b = graphs.num_graphs(batch, n_rows)
    else:
        b = entries[0][1].shape[0] if entries[0][1].dim() > 0 else 0
        n_rows = b
    for k, value in entries:
        if value.dim() == 0 or value.shape[0] not in (b, n_rows):
            expected = f"{b} (samples)" if batch is None else f"{b} (graphs) or {n_rows} (nodes)"
            raise ValueError(
                f"{k} has shape {tuple(value.shape)}; expected a leading dimension of {expected}"
            )
    gen_device = generator.device if generator is not None else device
    dropped = (torch.rand(b, generator=generator, device=gen_device) < p).to(device)
    node_dropped = graphs.expand_per_graph(dropped, batch)

    def apply(value: Tensor, null_value: Any, name: str) -> Tensor:
        # A per-node entry follows its graph; with N == B, per-node wins (batch may reorder rows).
        mask = node_dropped if batch is not None and value.shape[0] == n_rows else dropped
        mask = mask.view(-1, *([1] * (value.dim() - 1)))
        return torch.where(mask, _null_value(value, null_value, name), value)

    if isinstance(cond, Tensor):
        return DroppedCondition(cond=apply(cond, null, "cond"), dropped=dropped)
    out = dict(cond)
    for k, value in entries:
        out[k] = apply(value, _null_for_entry(null, k, cond), f"cond[{k!r}]")
    return DroppedCondition(cond=out, dropped=dropped)


def _twice(value: Any, other: Any) -> Any:
    """Stack a condition entry with its counterpart along the sample axis."""
    if isinstance(value, Tensor) and value.dim() > 0:
        return torch.cat([value, other])
    return value


class CFGVelocity(torch.nn.Module):
    """Classifier-free guided velocity field, with the usual contract ``(x, t, *, cond, batch)``.

    v_w = v(x, t | null) + w ( v(x, t | cond) - v(x, t | null) ).

    With ``batched=True`` (default) both fields come from one model call on the doubled batch
    [x; x] with conditions [cond; null] (ragged graph batches get ``batch`` of the copy shifted by
    the number of graphs). Use ``batched=False`` for models whose output for a sample depends on
    the rest of the batch (batch statistics) or when memory is short. Scales 1 and 0 call the model
    once and return exactly the conditional or the unconditional field.

    Parameters
    ----------
    model:
        A velocity model trained with condition dropout (:func:`drop_condition`).
    scale:
        The guidance weight w.
    null_cond:
        The null value the model was trained with (see :data:`Null`).
    keys:
        For dict conditions, the entries that were dropped in training.

    Example
    -------
    >>> guided = CFGVelocity(model, 2.0, null_cond=0.0)
    >>> v = guided(x, t, cond=labels)
    """

    def __init__(
        self,
        model: VelocityModel,
        scale: float,
        *,
        null_cond: Null = None,
        keys: Sequence[str] | None = None,
        batched: bool = True,
    ) -> None:
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable as model(x, t, *, cond, batch), got {model!r}")
        self.model = model
        self.scale = scale
        self.null_cond = null_cond
        self.keys = None if keys is None else tuple(keys)
        self.batched = batched

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"scale must be a finite number, got {value!r}")
        self._scale = float(value)

    def forward(
        self, x: Tensor, t: Tensor, *, cond: Cond | None = None, batch: Tensor | None = None
    ) -> Tensor:
        if cond is None:
            raise ValueError(
                "CFGVelocity needs cond: guidance contrasts the conditional and unconditional "
                "fields (call the model directly for unconditional sampling)"
            )
        null = null_condition(cond, self.null_cond, keys=self.keys)
        w = self._scale
        if w == 1.0:
            return self.model(x, t, cond=cond, batch=batch)
        if w == 0.0:
            return self.model(x, t, cond=null, batch=batch)
        if not self.batched:
            v_cond = self.model(x, t, cond=cond, batch=batch)
            v_null = self.model(x, t, cond=null, batch=batch)
        else:
            n = x.shape[0]
            x2 = torch.cat([x, x])
            t2 = torch.cat([t, t]) if isinstance(t, Tensor) and t.dim() > 0 else t
            if batch is None:
                batch2 = None
            else:
                shift = graphs.num_graphs(batch, n)
                batch2 = torch.cat([batch, batch + shift])
            if isinstance(cond, Tensor):
                cond2: Cond = _twice(cond, null)
            else:
                cond2 = {k: _twice(v, null[k]) for k, v in cond.items()}
            out = self.model(x2, t2, cond=cond2, batch=batch2)
            if out.shape[0] != 2 * n:
                raise ValueError(
                    f"the model returned {out.shape[0]} rows for a doubled batch of {2 * n}; "
                    "use batched=False"
                )
            v_cond, v_null = out[:n], out[n:]
        return v_null + w * (v_cond - v_null)

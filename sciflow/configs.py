"""The part every domain's ``Config`` shares: a frozen dataclass that holds the core
:class:`~sciflow.train.TrainConfig` as its field ``train``.

A domain writes ``@dataclass(frozen=True, kw_only=True) class Config(DomainConfig)`` with its own
fields and validation and gets, from here, one behaviour for all of them:

- ``config.replace(hidden=64, train={"steps": 500})``: a validated copy; a ``train`` dict changes
  fields of the TrainConfig, a TrainConfig replaces it;
- ``config.to_dict()``: plain JSON (tuples as lists, nested settings by their own ``to_dict``);
- ``Config.from_dict(d)``: its inverse; an unknown key is an :class:`~sciflow.errors.InputError`
  naming it, lists become tuples, and the class's ``_upgrade`` hook first rewrites what older
  files wrote.

This module imports no torch, so a command line can read a Config's defaults before torch loads.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from sciflow.errors import InputError

if TYPE_CHECKING:
    from sciflow.train import TrainConfig

__all__ = ["DomainConfig", "train_config_from_dict"]


def train_config_from_dict(d: dict[str, Any], *, base: TrainConfig | None = None) -> TrainConfig:
    """A :class:`~sciflow.train.TrainConfig` from its ``to_dict`` form (``betas`` back to a tuple).

    With ``base``, the fields of ``d`` change that TrainConfig; without it, ``d`` needs ``steps``.
    An unknown key is an :class:`~sciflow.errors.InputError` naming it.
    """
    from sciflow.train import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise InputError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return dataclasses.replace(base, **d) if base is not None else TrainConfig(**d)


class DomainConfig:
    """Mixin for a domain's frozen ``Config`` dataclass with a ``train: TrainConfig`` field.

    ``LABEL`` names the settings in errors (``"unknown remote-sensing settings ['x']"``).
    Subclasses may override ``_upgrade(d)`` to rewrite the keys of older files before
    :meth:`from_dict` checks them.
    """

    LABEL: ClassVar[str] = "config"
    train: TrainConfig

    def replace(self, **changes: Any) -> Any:
        """A copy with fields changed (validated again); ``train=dict(...)`` changes fields of
        the TrainConfig."""
        train = changes.pop("train", None)
        if isinstance(train, dict):
            train = dataclasses.replace(self.train, **train)
        if train is not None:
            changes["train"] = train
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: tuples as lists, nested settings (the TrainConfig) as dicts."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if hasattr(value, "to_dict"):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            d[f.name] = value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_dict` (after ``_upgrade`` rewrites older keys)."""
        d = cls._upgrade(dict(d))
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown {cls.LABEL} settings {unknown}; known: {sorted(known)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k != "train"}
        if isinstance(d.get("train"), dict):
            kw["train"] = train_config_from_dict(d["train"])
        elif d.get("train") is not None:
            kw["train"] = d["train"]
        return cls(**kw)

    @classmethod
    def _upgrade(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the keys older files wrote (none here); ``d`` is a copy the hook may change."""
        return d

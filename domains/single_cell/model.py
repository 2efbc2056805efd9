"""A trained population flow: the network, its Config and what applying it to new AnnData needs.

:class:`Model` bundles the velocity network (:class:`~.network.CellFlowModel`, EMA weights, eval
mode) with the :class:`~.config.Config` that built it (filled in for the training data), the
feature names and ``obs`` columns of the training data, the mean training shift per condition
(the SHIFT baseline) and how many source cells MFM embeds per population. :meth:`Model.save` writes
it as one checkpoint of kind :data:`KIND` (digest checked on load); :func:`load` reads it back,
and also reads the files of sciflow 0.1 (``meta["cells"]`` with a ``spec``, no kind tag) and the
Trainer's ``checkpoints/step_*.pt`` of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sciflow.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint, save_checkpoint
from sciflow.devices import resolve_device
from sciflow.train import TrainResult

from .config import MODEL_TYPES, Config
from .network import CellFlowModel, SkipMLP  # noqa: F401 - SkipMLP: sciflow 0.1 imported it here

__all__ = ["KIND", "Model", "build_network", "load", "saved_config", "CellFlowModel"]

KIND = "single_cell"
METHODS = MODEL_TYPES  # sciflow 0.1's name


def __getattr__(name: str) -> Any:
    """sciflow 0.1's ``CellFlowSpec`` (now :class:`~.config.Config`) stays importable here."""
    if name == "CellFlowSpec":
        from .legacy import CellFlowSpec

        return CellFlowSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_network(config: Config) -> CellFlowModel:
    """The velocity network of ``config`` (which must be filled in for the data: ``dim`` set)."""
    return CellFlowModel(config)


@dataclass(frozen=True)
class Model:
    """A trained flow and what it needs to be applied to new AnnData.

    net: the network (EMA weights after training, eval mode). config: the Config it was built
    from, with ``dim``, ``conditions`` and ``populations`` of the training data. features, rep,
    keys: the training data's feature names, representation (``"X"`` or an obsm key) and obs
    columns. mean_shift: the mean training shift per condition (key ``""`` without conditions).
    embed_cells: source cells per population MFM embeds when sampling (the training batch's
    cells_per_population; None: all). result: the training run (None for a loaded model).
    checkpoint: the file a loaded model came from (``path``, ``digest`` of its tensors,
    ``step``); None for a model trained in this process and not yet loaded.
    """

    net: CellFlowModel
    config: Config
    features: tuple[str, ...]
    rep: str
    keys: dict[str, str | None]
    mean_shift: dict[str, Tensor]
    embed_cells: int | None
    result: TrainResult | None = None
    checkpoint: dict[str, Any] | None = None

    @property
    def model(self) -> CellFlowModel:
        """The network (its name in sciflow 0.1's ``CellFlow``)."""
        return self.net

    @property
    def spec(self) -> Config:
        """The config (its name in sciflow 0.1's ``CellFlow``)."""
        return self.config

    @property
    def device(self) -> torch.device:
        return self.net.shift.device

    def meta(self) -> dict[str, Any]:
        """JSON metadata stored in checkpoints (rebuilds everything but the weights)."""
        return {"config": self.config.to_dict(), "data": {
            "features": list(self.features), "rep": self.rep, "keys": dict(self.keys),
            "embed_cells": self.embed_cells,
            "mean_shift": {k: v.tolist() for k, v in self.mean_shift.items()}}}

    def save(self, path: str | Path) -> Path:
        """Write the weights and metadata to one checkpoint (kind ``"single_cell"``, atomic)."""
        step = self.result.step if self.result is not None else 0
        return save_checkpoint(path, self.net, kind=KIND, meta=self.meta(), step=step)


def saved_config(ck: LoadedCheckpoint) -> tuple[Config, dict[str, Any]]:
    """The Config and the data description stored in a loaded checkpoint of this domain.

    Reads the current layout (``meta["config"]``, ``meta["data"]``) and sciflow 0.1's
    (``meta["cells"]`` with the network ``spec``; its TrainConfig, when the Trainer wrote the
    file, comes from the checkpoint's config). CheckpointError for anything else.
    """
    path = str(ck.path)
    if ck.kind not in (KIND, ""):
        raise CheckpointError(f"{path!r} holds a {ck.kind} checkpoint, not a {KIND} one; pass "
                              "a model written by `sciflow single-cell train`")
    meta = ck.meta
    try:
        if isinstance(meta.get("config"), dict) and isinstance(meta.get("data"), dict):
            return Config.from_dict(meta["config"]), dict(meta["data"])
        if isinstance(meta.get("cells"), dict):
            legacy = dict(meta["cells"])
            spec = dict(legacy.pop("spec"))
            if ck.config is not None:
                spec["train"] = ck.config
            return Config.from_dict(spec), legacy
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path!r} has single-cell metadata this version cannot read "
                              f"({type(err).__name__}: {err})") from err
    raise CheckpointError(f"{path!r} is not a single-cell checkpoint (no 'config' or 'cells' "
                          f"metadata; found {sorted(meta)})")


def load(path: str | Path, *, device: str = "cpu") -> Model:
    """Load a flow written by :meth:`Model.save`, by training (``checkpoints/step_*.pt``, EMA
    weights) or by sciflow 0.1's ``save_cell_flow``; on ``device`` (cpu, cuda, mps, auto)."""
    target = resolve_device(device)
    ck = load_checkpoint(path)
    config, data = saved_config(ck)
    net = build_network(config)
    try:
        net.load_state_dict(ck.state_dict)
        shift = {k: torch.tensor(v, dtype=torch.float32) for k, v in data["mean_shift"].items()}
        model = Model(net=net.to(target).eval(), config=config,
                      features=tuple(data["features"]), rep=data["rep"], keys=dict(data["keys"]),
                      mean_shift=shift, embed_cells=data["embed_cells"],
                      checkpoint={"path": str(path), "digest": ck.digest, "step": ck.step})
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{str(path)!r} does not fit the single-cell network its metadata "
                              f"describes ({type(err).__name__}: {str(err).splitlines()[0]})"
                              ) from err
    if len(model.features) != config.dim:
        raise CheckpointError(f"{str(path)!r} lists {len(model.features)} features for a network "
                              f"of dim {config.dim}")
    return model

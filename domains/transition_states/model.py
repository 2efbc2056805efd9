"""The trained TS generator: the network, its Config and its sampling defaults; save and load.

A :class:`Model` bundles the network (:class:`~.network.TSVelocity`, eval mode), the
:class:`~.config.Config` that built it and the checkpoint's ``meta`` (validated sampling defaults
``default_steps`` / ``default_solver``, data provenance, splits). :func:`load` reads a file
written by :meth:`Model.save`, by ``sciflow ts train`` (``OUT/ts_model.pt``) or a Trainer
checkpoint (EMA weights), with kind tag :data:`KIND`; files of the former layout (kind
``"sciflow.transition_states/1"`` in the meta, ``meta["model"]`` + ``meta["train"]``) load too.
The shipped checkpoint is :data:`DEFAULT_CHECKPOINT`.

Former names: ``TSGenerator`` is :class:`Model` (with ``.model``, ``.generate``,
``.generate_many`` and ``TSGenerator.load``), ``load_generator`` is :func:`load`,
``export_checkpoint(path, net, step=, meta=)`` writes a Model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms
from torch import nn

from sciflow.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from sciflow.devices import resolve_device
from sciflow.matcher import FlowMatcher
from sciflow.sources import GaussianSource

from .config import Config, TSModelConfig
from .data import Endpoints, prepare_endpoints
from .network import TSVelocity, build_model, build_network
from .scope import Scope, check_scope
from .sources import NoiseAlignment, make_source, midpoint

__all__ = ["KIND", "LEGACY_KINDS", "DEFAULT_CHECKPOINT", "Model", "TSGenerator", "load",
           "load_generator", "export_checkpoint", "build_matcher", "build_network", "build_model",
           "TSVelocity", "TSModelConfig"]

KIND = "transition_states"
LEGACY_KINDS = ("sciflow.transition_states/1",)
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "ts_egnn_small.pt"
_LEGACY_META = ("kind", "model", "config")


def build_matcher(config: Config) -> FlowMatcher:
    """Linear path, the config's source (:func:`.sources.make_source`), the noise-to-TS rotation
    (:class:`.sources.NoiseAlignment`) and the config's target (``"x1"`` or ``"velocity"``)."""
    align = NoiseAlignment(mean=midpoint if config.source == "midpoint" else None)
    return FlowMatcher(source=make_source(config), coupling=align, target=config.target)


@dataclass(frozen=True, eq=False)
class Model:
    """A trained TS generator: ``net`` (eval mode), its ``config`` and the checkpoint ``meta``.

    ``Model(net)`` takes the config from ``net.config``. ``default_steps`` / ``default_solver``
    (from the meta; 8 and ``"euler"`` when absent) are what :func:`.sampling.sample` uses unless
    told otherwise. ``checkpoint`` is ``{"path", "digest", "step"}`` of the file :func:`load`
    read (empty for a model made in memory); :attr:`scope` what the model was trained on.
    """

    net: TSVelocity
    config: Config | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.net, TSVelocity):
            raise TypeError(f"Model needs a TSVelocity network, got {type(self.net).__name__}")
        if self.config is None:
            object.__setattr__(self, "config", self.net.config)
        object.__setattr__(self, "meta", dict(self.meta))
        self.net.eval()

    # ------------------------------------------------------------------ what sampling needs
    @property
    def elements(self) -> tuple[int, ...]:
        return self.config.elements

    @property
    def default_steps(self) -> int:
        return int(self.meta.get("default_steps", 8))

    @property
    def default_solver(self) -> str:
        return str(self.meta.get("default_solver", self.meta.get("default_method", "euler")))

    default_method = default_solver  # former name

    @property
    def scope(self) -> Scope | None:
        """What the model was trained on (:class:`.scope.Scope`), None for checkpoints written
        before scopes were recorded."""
        d = self.meta.get("scope")
        return Scope.from_dict(d) if d else None

    @property
    def source(self) -> GaussianSource:
        """The source x0 is drawn from (:func:`.sources.make_source`)."""
        return make_source(self.config)

    @property
    def matcher(self) -> FlowMatcher:
        return build_matcher(self.config)

    @property
    def velocity(self) -> Any:
        """The velocity field v(x, t, *, cond, batch) the solvers integrate (core conversion)."""
        return self.matcher.velocity(self.net)

    @property
    def device(self) -> Any:
        return next(self.net.parameters()).device

    @property
    def model(self) -> TSVelocity:
        """Former name of :attr:`net`."""
        return self.net

    def prepare(self, reactant: Atoms, product: Atoms, *, charge: int = 0,
                multiplicity: int = 1) -> Endpoints:
        """Check R and P against this model (elements, :mod:`.data`; charge, multiplicity, kind
        and size, :func:`.scope.check_scope`) and put them in its frame."""
        ep = prepare_endpoints(reactant, product, elements=self.elements)
        check_scope(self.scope, reactant, product, charge=charge, multiplicity=multiplicity)
        return ep

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, *, step: int | None = None) -> Path:
        """Write an inference checkpoint (kind :data:`KIND`, digest checked on load)."""
        meta = {k: v for k, v in self.meta.items() if k not in _LEGACY_META}
        if step is None:
            step = int(meta.get("train", {}).get("steps", 0) or 0)
        return save_checkpoint(path, self.net, kind=KIND, step=step,
                               meta={**meta, "config": self.config.to_dict()})

    @classmethod
    def load(cls, path: str | Path | None = None, *, device: str = "cpu") -> Model:
        """Former ``TSGenerator.load``: :func:`load`."""
        return load(path, device=device)

    # ------------------------------------------------------------------ former methods
    def generate(self, reactant: Atoms, product: Atoms, **kwargs: Any) -> Any:
        """Former name of :func:`.sampling.sample` (``steps=``/``method=``/``rule=`` accepted)."""
        from .sampling import sample

        return sample(self, reactant, product, **_legacy_kwargs(kwargs))

    def generate_many(self, pairs: Sequence[tuple[Atoms, Atoms]], **kwargs: Any) -> list[Any]:
        """Former name of :func:`.sampling.sample_many`."""
        from .sampling import sample_many

        return sample_many(self, pairs, **_legacy_kwargs(kwargs))


TSGenerator = Model
"""Former name of :class:`Model`."""


def _legacy_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    renamed = {"steps": "sample_steps", "method": "solver", "rule": "rank"}
    return {renamed.get(k, k): v for k, v in kwargs.items()}


def _config_of(meta: Mapping[str, Any], path: Path) -> Config:
    try:
        if "config" in meta:
            return Config.from_dict(meta["config"])
        return Config.from_legacy(meta["model"], meta.get("train"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{str(path)!r} is a TS checkpoint whose settings cannot be read "
                              f"({type(err).__name__}: {err})") from err


def load(path: str | Path | None = None, *, device: str = "cpu") -> Model:
    """Load a TS generator (the shipped checkpoint when ``path`` is None) onto ``device``.

    Raises FileNotFoundError for a missing file and CheckpointError for a file that is unsafe,
    corrupted (digest), of another domain, or does not fit the network its settings describe.
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if not path.is_file():
        hint = (" (the shipped checkpoint is missing from this installation; reinstall sciflow "
                "or pass --checkpoint)" if path == DEFAULT_CHECKPOINT else "")
        raise FileNotFoundError(f"TS checkpoint {str(path)!r} does not exist{hint}")
    dev = resolve_device(device)
    ck = load_checkpoint(path)
    if ck.kind not in (KIND, *LEGACY_KINDS) or not ("config" in ck.meta or "model" in ck.meta):
        raise CheckpointError(f"{str(path)!r} holds a {ck.kind or 'untagged'} checkpoint, not a "
                              f"TS generator (kind {KIND!r}); pass a model written by "
                              "`sciflow ts train` or Model.save")
    config = _config_of(ck.meta, path)
    net = build_network(config)
    load_weights(net, ck.state_dict, path)
    if net.net.aggregation != config.aggregation:  # older files: the weights say which one
        config = config.replace(aggregation=net.net.aggregation)
    return Model(net=net.to(dev), config=config, meta=ck.meta,
                 checkpoint={"path": str(path.resolve()), "digest": ck.digest, "step": ck.step})


def load_generator(path: str | Path | None = None) -> Model:
    """Former name of :func:`load`."""
    return load(path)


def export_checkpoint(path: str | Path, model: nn.Module, *, step: int = 0,
                      meta: Mapping[str, Any] | None = None) -> Path:
    """Former helper: write ``model`` (a TSVelocity) as an inference checkpoint with ``meta``."""
    return Model(net=model, meta=meta or {}).save(path, step=step)

"""Domains register themselves: the ``sciflow.domains`` entry-point group.

A domain (one of sciflow's, or a lab's own package) declares in its ``pyproject.toml``::

    [project.entry-points."sciflow.domains"]
    my-domain = "my_lab.my_domain.cli:DOMAIN"

where ``DOMAIN`` is a :class:`Domain`: its command-line group name (the package name with ``-``
for ``_``), old names kept as aliases, a one-line summary, and where its CLI and demo section live
as ``"module:function"`` strings, imported only when used. ``sciflow --help`` reads the entry
points and the ``DOMAIN`` objects only, so the module holding ``DOMAIN`` must import no torch (and
its package ``__init__`` must be lazy, see :func:`lazy_exports`).

- ``cli``: ``configure(parser: argparse.ArgumentParser) -> None`` fills the group's parser (its
  description, sub-commands and their handlers ``func(args) -> int``).
- ``demo``: ``demo(out_dir: pathlib.Path) -> str`` runs the domain's section of ``sciflow demo``
  and returns its markdown.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "Domain", "DomainLoadError", "domains", "find_domain",
           "lazy_exports", "public_names"]

ENTRY_POINT_GROUP = "sciflow.domains"


class DomainLoadError(ImportError):
    """A registered domain could not be loaded (a missing optional package, a broken plugin)."""


@dataclass(frozen=True, kw_only=True)
class Domain:
    """What sciflow needs to know about a domain before importing it.

    name: the command-line group (``transition-states``); aliases: older or shorter names
    (``ts``); summary: one line for ``sciflow --help``; package: the import path of the domain
    (``sciflow.domains.transition_states``); cli / demo: ``"module:function"`` (see the module
    docstring); order: position in listings and in ``sciflow demo``; requires: import names of the
    optional packages the domain needs (reported, not fatal, when missing).
    """

    name: str
    summary: str
    package: str
    aliases: tuple[str, ...] = ()
    cli: str | None = None
    demo: str | None = None
    order: int = 100
    requires: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def missing(self) -> list[str]:
        """The optional packages in ``requires`` that are not installed here."""
        from importlib.util import find_spec

        return [m for m in self.requires if find_spec(m) is None]

    def load(self, what: str) -> Callable[..., Any]:
        """Import and return the ``cli`` or ``demo`` function."""
        target = getattr(self, what)
        if target is None:
            raise DomainLoadError(f"domain {self.name!r} has no {what}")
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise DomainLoadError(f"domain {self.name!r} needs the missing package "
                                  f"{err.name!r}") from err
        try:
            return getattr(module, attr)
        except AttributeError as err:
            raise DomainLoadError(f"domain {self.name!r}: {module_name} has no {attr!r}") from err


@lru_cache(maxsize=1)
def domains() -> dict[str, Domain]:
    """Every registered domain by name, in their ``order`` (read from the installed metadata)."""
    found: list[Domain] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        domain = obj() if callable(obj) and not isinstance(obj, Domain) else obj
        if not isinstance(domain, Domain):
            raise DomainLoadError(f"entry point {ep.name!r} = {ep.value!r} is a "
                                  f"{type(domain).__name__}, not a sciflow.plugins.Domain")
        found.append(domain)
    found.sort(key=lambda d: (d.order, d.name))
    return {d.name: d for d in found}


def find_domain(name: str) -> Domain:
    """The domain called ``name`` or one of its aliases; KeyError naming the choices."""
    for d in domains().values():
        if name in d.names() or name.replace("_", "-") in d.names():
            return d
    raise KeyError(f"no domain {name!r}; registered: "
                   + ", ".join("/".join(d.names()) for d in domains().values()))


def lazy_exports(package: str, exports: Mapping[str, str | Sequence[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load on first use.

    ``exports`` maps each submodule (``".training"``) to the public names it defines, or each
    public name to its submodule (``{"train": ".training"}``). Use in a domain's ``__init__.py``::

        _EXPORTS = {".config": ("Config",), ".training": ("train",)}
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
        __all__ = public_names(_EXPORTS)

    so ``import sciflow.domains.x.cli`` (what ``sciflow --help`` does) imports no torch.
    """
    where = _name_to_module(exports)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(where[name], package)
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__


def public_names(exports: Mapping[str, str | Sequence[str]]) -> list[str]:
    """The sorted public names of a :func:`lazy_exports` table (a package's ``__all__``)."""
    return sorted(_name_to_module(exports))


def _name_to_module(exports: Mapping[str, str | Sequence[str]]) -> dict[str, str]:
    where: dict[str, str] = {}
    for key, value in exports.items():
        if isinstance(value, str):
            where[key] = value
        else:
            for name in value:
                if name in where:
                    raise ValueError(f"{name!r} is exported from both {where[name]!r} and {key!r}")
                where[name] = key
    return where

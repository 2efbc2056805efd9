"""sciflow 0.1's name of :mod:`.figures` (``plot_populations``, ``plot_embeddings``)."""

from sciflow.plugins import lazy_exports

_EXPORTS = {"plot_populations": ".figures", "plot_embeddings": ".figures"}
__getattr__, __dir__ = lazy_exports(__package__, _EXPORTS)
__all__ = sorted(_EXPORTS)

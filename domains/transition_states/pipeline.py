"""Former module of the TS generator's jobs; its names now live in the modules of the domain shape.

``from sciflow.domains.transition_states.pipeline import X`` keeps working for every name it
held: training in :mod:`.training`, sampling in :mod:`.sampling`, ranking in :mod:`.ranking`,
refinement in :mod:`.refinement`, scores in :mod:`.metrics` and :mod:`.evaluation`, the model and
its checkpoints in :mod:`.model` (``CHECKPOINT_KIND`` is the former kind tag, still read).
"""

from __future__ import annotations

import importlib
from typing import Any

_MOVED = {
    "TSTrainSettings": ".config", "TSFlowLoss": ".training", "train": ".training",
    "DEFAULT_CHECKPOINT": ".model", "TSGenerator": ".model", "load_generator": ".model",
    "export_checkpoint": ".model", "GeneratedTS": ".sampling", "generate_ts": ".sampling",
    "rank": ".ranking", "RefinementResult": ".refinement", "refine": ".refinement",
    "idpp_guess": ".refinement", "EV_TO_KCAL": ".metrics", "CHEMICAL_ACCURACY_KCAL": ".metrics",
    "pair_rmsd": ".metrics", "single_point": ".metrics", "score": ".metrics",
    "ReactionScore": ".metrics", "EvaluationSummary": ".metrics", "summarize": ".metrics",
    "Evaluation": ".evaluation", "evaluate": ".evaluation",
}
CHECKPOINT_KIND = "sciflow.transition_states/1"
__all__ = sorted([*_MOVED, "CHECKPOINT_KIND"])


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

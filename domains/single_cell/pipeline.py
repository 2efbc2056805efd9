"""sciflow 0.1's module of training, prediction, baselines, evaluation and checkpoints.

Its contents now live in :mod:`.training`, :mod:`.sampling`, :mod:`.baselines`,
:mod:`.evaluation`, :mod:`.model` and (the former signatures) :mod:`.legacy`; this module keeps
``from sciflow.domains.single_cell.pipeline import train_cell_flow`` (and every other name it had)
working, loading each on first use.
"""

from sciflow.plugins import lazy_exports

_EXPORTS = {
    "BASELINES": ".baselines", "baseline_predictions": ".baselines",
    "mean_training_shift": ".baselines",
    "CellFlow": ".legacy", "CellTrainConfig": ".legacy", "build_spec": ".legacy",
    "train_cell_flow": ".legacy", "predict": ".legacy", "save_cell_flow": ".legacy",
    "load_cell_flow": ".legacy",
    "population_embeddings": ".sampling",
    "evaluate": ".evaluation", "scores_table": ".evaluation",
}
__getattr__, __dir__ = lazy_exports(__package__, _EXPORTS)
__all__ = sorted(_EXPORTS)

"""sciflow 0.1's module of training, sampling, steering, tiling and evaluation.

Its contents now live in :mod:`.training`, :mod:`.sampling`, :mod:`.steering`, :mod:`.cubes`
and :mod:`.evaluation`; this module keeps ``from sciflow.domains.remote_sensing.pipeline import
train_rs`` (and every other name it had) working, loading each on first use.
"""

from sciflow.plugins import lazy_exports

_EXPORTS = {
    "RSModel": ".model", "load_rs": ".model", "velocity_field": ".model",
    "TrainOptions": ".training", "train_rs": ".training",
    "Prediction": ".sampling", "predict_series": ".sampling", "sample_states": ".sampling",
    "Measurement": ".steering", "make_measurement": ".steering", "check_steer": ".steering",
    "apply_to_cube": ".cubes",
    "evaluate_task": ".evaluation", "fit_reference": ".evaluation", "Reference": ".evaluation",
}
__getattr__, __dir__ = lazy_exports(__package__, _EXPORTS)
__all__ = sorted(_EXPORTS)

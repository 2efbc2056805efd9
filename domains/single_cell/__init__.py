"""Meta Flow Matching for cell populations: AnnData in, population-conditioned flows, AnnData out.

A flow that acts on a whole population learns how a population of cells (the source, e.g. an
untreated sample) becomes its target population (e.g. the treated sample), conditioned on an
embedding of the source population itself (Atanackovic et al., ICLR 2025), so it generalises to
populations never seen in training.

- :mod:`.data`: populations, roles and conditions from AnnData ``obs`` columns; results back.
- :mod:`.model`: the velocity network for MFM (GCN population embedding), FM and CGFM.
- :mod:`.pipeline`: training (the sciflow Trainer, alternating updates), prediction, baselines
  (BASE, SHIFT, IDEAL-SHIFT), evaluation, checkpoints.
- :mod:`.metrics`: W1, W2, RBF-MMD, mean-L2 and the feature-correlation agreement.
- :mod:`.plots`, :mod:`.cli` (``sciflow cells``), :mod:`.demo` (``sciflow demo``).
"""

from sciflow.domains.single_cell.data import (
    CellDataError,
    CellPopulations,
    PopulationPair,
    predictions_to_anndata,
    read_populations,
)
from sciflow.domains.single_cell.metrics import PopulationScores, mean_scores, score_population
from sciflow.domains.single_cell.model import CellFlowModel, CellFlowSpec
from sciflow.domains.single_cell.pipeline import (
    CellFlow,
    CellTrainConfig,
    baseline_predictions,
    build_spec,
    evaluate,
    load_cell_flow,
    predict,
    save_cell_flow,
    train_cell_flow,
)

__all__ = [
    "CellDataError",
    "CellFlow",
    "CellFlowModel",
    "CellFlowSpec",
    "CellPopulations",
    "CellTrainConfig",
    "PopulationPair",
    "PopulationScores",
    "baseline_predictions",
    "build_spec",
    "evaluate",
    "load_cell_flow",
    "mean_scores",
    "predict",
    "predictions_to_anndata",
    "read_populations",
    "save_cell_flow",
    "score_population",
    "train_cell_flow",
]

"""Meta Flow Matching for cell populations: AnnData in, population-conditioned flows, AnnData out.

A flow that acts on a whole population learns how a population of cells (the source, e.g. an
untreated sample) becomes its target population (e.g. the treated sample), conditioned on an
embedding of the source population itself (Atanackovic et al., ICLR 2025), so it generalises to
populations never seen in training.

>>> from sciflow.domains.single_cell import (Config, evaluate, load, predict_anndata,
...                                          read_populations, sample, train)
>>> cells = read_populations("train.h5ad", population_key="sample",         # doctest: +SKIP
...                          condition_key="condition", control="control", rep="X_pca")
>>> model = train(cells, Config(model_type="mfm").replace(train={"steps": 2000}))
>>> predicted = sample(model, test_cells)             # one (n_i, D) tensor per population
>>> adata, _ = predict_anndata(model, test_cells)     # obs kept, X in gene space, provenance
>>> evaluate(model, test_cells, baselines=("shift",)).table()   # BASE always, spread
>>> model.save("mfm.pt"); load("mfm.pt")

Modules (the domain shape of ``domains/README.md``): :mod:`.config` (Config), :mod:`.populations`
(PopulationPair, CellPopulations, the minimum population size), :mod:`.columns` (obs columns:
a condition column with a control level or a role column, pooling), :mod:`.data` (AnnData ->
populations, input checks), :mod:`.origin` (what writing back needs of the input: obs, var, the
map back to genes through ``varm["PCs"]``), :mod:`.predictions` (predictions -> AnnData and back),
:mod:`.provenance` (``uns['sciflow']``), :mod:`.network` (the MFM / FM / CGFM velocity network),
:mod:`.model` (KIND, Model, load), :mod:`.training` (train), :mod:`.sampling` (sample,
population_embeddings), :mod:`.spread` (per-population bootstrap spread), :mod:`.baselines`
(BASE, SHIFT, IDEAL-SHIFT, the worse-than-BASE warning), :mod:`.metrics`, :mod:`.evaluation`
(score, evaluate, the spread-skill ratio), :mod:`.figures`, :mod:`.cli` and :mod:`.commands`
(``sciflow single-cell``, alias ``cells``), :mod:`.demo`. Public names load on first use, so
``sciflow --help`` imports neither torch nor anndata.

Names of sciflow 0.1, kept (:mod:`.legacy`): ``CellFlowSpec(method=...)`` -> a :class:`Config`
(``model_type=``), ``CellTrainConfig(...)`` -> the batch and run settings of a Config,
``build_spec``, ``train_cell_flow(cells, spec, cfg)`` -> :func:`train`, ``CellFlow`` =
:class:`Model` (``.model`` / ``.spec`` still read ``.net`` / ``.config``; the TrainResult is
``.result``), ``save_cell_flow`` -> :meth:`Model.save`, ``load_cell_flow`` = :func:`load`,
``predict(flow, pairs, method=)`` -> :func:`sample` (``solver=``), ``evaluate(predictions,
pairs)`` (= :func:`score`); the modules ``pipeline`` and ``plots`` re-export their old contents.
"""

from sciflow.plugins import lazy_exports, public_names

_EXPORTS = {
    ".config": ("Config", "MODEL_TYPES", "MIN_CELLS", "SPREAD_REPEATS"),
    ".model": ("KIND", "Model", "load", "build_network"),
    ".training": ("train",),
    ".sampling": ("sample", "population_embeddings"),
    ".evaluation": ("evaluate", "Evaluation", "score", "scores_table"),
    ".network": ("CellFlowModel",),
    ".baselines": (
        "BASELINES", "WorseThanBaselineWarning", "baseline_predictions", "mean_training_shift",
    ),
    ".populations": (
        "CellDataError", "CellPopulations", "PopulationPair", "check_population_sizes",
    ),
    ".data": ("read_populations", "read_h5ad", "filter_obs"),
    ".predictions": ("predictions_to_anndata", "predict_anndata", "read_predictions"),
    ".provenance": ("run_provenance",),
    ".spread": ("PopulationSpread", "population_spread"),
    ".columns": ("POOLED",),
    ".metrics": ("PopulationScores", "mean_scores", "score_population"),
    ".figures": ("plot_populations", "plot_embeddings", "plot_overlays"),
    ".legacy": (
        "CellFlow", "CellFlowSpec", "CellTrainConfig", "build_spec", "train_cell_flow",
        "save_cell_flow", "load_cell_flow", "predict",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = public_names(_EXPORTS)

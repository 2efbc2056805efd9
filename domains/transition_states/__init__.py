"""Transition-state generation: R + P geometries -> TS geometry by conditional flow matching.

A TS-GEN-style generator (Tuo et al., arXiv 2507.10530): an E(3)-equivariant graph network from
``sciflow.nn`` (EGNN, PaiNN or the e3nn network) is conditioned on the reactant and product of a
reaction and integrates a flow from a Gaussian around (R + P)/2 to the TS in a few deterministic
steps.

>>> from ase.io import read                                                   # doctest: +SKIP
>>> from sciflow.domains.transition_states import Config, load, refine, sample, search, train
>>> model = load()                                  # the shipped small checkpoint
>>> r, p = read("r.xyz"), read("p.xyz")
>>> result = sample(model, r, p, samples=4)          # ranked best first (medoid rule)
>>> result.best.write("ts.xyz")
>>> refined = refine(result.best, reactant=r, product=p)   # Sella + GFN2-xTB, steps saved vs IDPP
>>> found = search(r, p, samples=4)      # verified: Sella, one imaginary mode, quasi-IRC; CI-NEB fallback
>>> own = train(reactions, Config(hidden=64).replace(train={"steps": 2000, "out_dir": "runs/ts"}))

Modules (the domain shape of ``domains/README.md``): :mod:`.config` (Config), :mod:`.data`
(input checks, frames, batches), :mod:`.files` (structures, reaction stores, splits),
:mod:`.smiles` (mapped reaction SMILES), :mod:`.sources` (the midpoint source), :mod:`.network`
(the velocity network), :mod:`.model` (Model, load, KIND), :mod:`.training` (train),
:mod:`.sampling` (sample), :mod:`.ranking` (rank), :mod:`.refinement` (Sella refine),
:mod:`.metrics` and :mod:`.evaluation` (evaluate), :mod:`.searching` (search: verified TSs),
:mod:`.scope` (what a model has seen), :mod:`.calculators` (xTB at a charge and multiplicity),
:mod:`.provenance` (extxyz info keys), :mod:`.figures` (--plot), :mod:`.cli` (``sciflow
transition-states`` / ``sciflow ts``), :mod:`.commands` and :mod:`.search_command` (its handlers),
:mod:`.demo` (the ``sciflow demo`` section), :mod:`.distillation` (distil: one- and two-step
generators distilled from a model without data). Public names load on first use, so
``sciflow --help`` imports no torch.

Former names, kept as aliases: ``TSModelConfig`` = :class:`Config`; ``TSTrainSettings(**kw)``
builds a Config (pass it as ``train(..., settings=)``); ``TSGenerator`` = :class:`Model` (with
``.model``, ``.generate``, ``.generate_many``, ``TSGenerator.load``); ``load_generator`` =
:func:`load`; ``generate_ts`` (sample + optional refine in one call); ``TSGenerator.generate`` =
:func:`sample`; ``export_checkpoint`` = ``Model(net, meta=...).save``; ``build_model`` =
:func:`build_network` with overrides; the module ``pipeline`` re-exports the names it held.
"""

from sciflow.plugins import lazy_exports

_EXPORTS = {
    "Config": ".config",
    "DEFAULT_ELEMENTS": ".config",
    "NETWORKS": ".config",
    "SOURCES": ".config",
    "TSModelConfig": ".config",
    "TSTrainSettings": ".config",
    "Endpoints": ".data",
    "TSCondition": ".data",
    "TSInputError": ".data",
    "check_endpoints": ".data",
    "prepare_endpoints": ".data",
    "endpoints_from_smiles": ".smiles",
    "load_reactions": ".files",
    "read_endpoint": ".files",
    "select_reactions": ".files",
    "snapshot_reactions": ".files",
    "NoiseAlignment": ".sources",
    "make_source": ".sources",
    "midpoint": ".sources",
    "TSVelocity": ".network",
    "build_model": ".network",
    "build_network": ".network",
    "DEFAULT_CHECKPOINT": ".model",
    "KIND": ".model",
    "Model": ".model",
    "TSGenerator": ".model",
    "export_checkpoint": ".model",
    "load": ".model",
    "load_generator": ".model",
    "TSFlowLoss": ".training",
    "train": ".training",
    "GeneratedTS": ".sampling",
    "generate_ts": ".sampling",
    "sample": ".sampling",
    "sample_many": ".sampling",
    "rank": ".ranking",
    "RefinementResult": ".refinement",
    "idpp_guess": ".refinement",
    "refine": ".refinement",
    "CHEMICAL_ACCURACY_KCAL": ".metrics",
    "EV_TO_KCAL": ".metrics",
    "EvaluationSummary": ".metrics",
    "ReactionScore": ".metrics",
    "pair_rmsd": ".metrics",
    "score": ".metrics",
    "single_point": ".metrics",
    "summarize": ".metrics",
    "Evaluation": ".evaluation",
    "evaluate": ".evaluation",
    "BaselineWarning": ".evaluation",
    "spearman": ".metrics",
    "imaginary_modes": ".refinement",
    "held_out": ".files",
    "read_ids": ".files",
    "read_search_inputs": ".files",
    "Scope": ".scope",
    "OutOfScopeWarning": ".scope",
    "check_scope": ".scope",
    "scope_of": ".scope",
    "XTB": ".calculators",
    "SearchResult": ".searching",
    "candidate_from_endpoints": ".searching",
    "search": ".searching",
    "search_settings": ".searching",
    "TSFlowMapNet": ".distillation",
    "distil": ".distillation",
    "with_jumps": ".distillation",
    "save_distilled": ".distillation",
    "load_distilled": ".distillation",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

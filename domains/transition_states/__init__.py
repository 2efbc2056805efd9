"""Transition-state generation: R + P geometries -> TS geometry by conditional flow matching.

A TS-GEN-style generator (Tuo et al., arXiv 2507.10530): an E(3)-equivariant graph network from
``sciflow.nn`` (EGNN, PaiNN or the e3nn network) is conditioned on the reactant and product of a
reaction and integrates a flow from a simple source to the TS in a few deterministic steps.

>>> from ase.io import read                                                   # doctest: +SKIP
>>> from sciflow.domains.transition_states import load_generator, refine      # doctest: +SKIP
>>> gen = load_generator()                        # the shipped small checkpoint
>>> result = gen.generate(read("r.xyz"), read("p.xyz"), samples=4)
>>> result.best.write("ts.xyz")
>>> refined = refine(result.best, reactant=r, product=p)   # Sella + GFN2-xTB, steps saved vs IDPP

Modules: :mod:`.data` (input checks, SMILES, batches), :mod:`.model` (the velocity field),
:mod:`.pipeline` (train, generate, rank, refine, evaluate), :mod:`.cli` (``sciflow ts``),
:mod:`.demo` (the ``sciflow demo`` section).
"""

from .data import (
    DEFAULT_ELEMENTS,
    TSCondition,
    TSInputError,
    check_endpoints,
    endpoints_from_smiles,
    prepare_endpoints,
)
from .model import TSModelConfig, TSVelocity, build_model
from .pipeline import (
    DEFAULT_CHECKPOINT,
    Evaluation,
    GeneratedTS,
    RefinementResult,
    TSGenerator,
    TSTrainSettings,
    evaluate,
    export_checkpoint,
    generate_ts,
    idpp_guess,
    load_generator,
    rank,
    refine,
    train,
)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_ELEMENTS",
    "Evaluation",
    "GeneratedTS",
    "RefinementResult",
    "TSCondition",
    "TSGenerator",
    "TSInputError",
    "TSModelConfig",
    "TSTrainSettings",
    "TSVelocity",
    "build_model",
    "check_endpoints",
    "endpoints_from_smiles",
    "evaluate",
    "export_checkpoint",
    "generate_ts",
    "idpp_guess",
    "load_generator",
    "prepare_endpoints",
    "rank",
    "refine",
    "train",
]

"""Reaction datasets: verified transition states, their formats, Transition1x and PyG loaders.

>>> from sciflow.datasets.reactions import read_reactions, ReactionGraphDataset   # doctest: +SKIP
>>> ds = ReactionGraphDataset(read_reactions("reactions.extxyz.gz"))               # doctest: +SKIP

Modules: :mod:`.reaction` (Reaction, extxyz keys), :mod:`.molgraph` (bond graphs, valence rules
for H C N O F P S Cl), :mod:`.seedlists` (curated SMILES), :mod:`.candidates` (seeds, bond-graph
edits), :mod:`.templates` (pericyclic, elimination, ring-opening, shift templates),
:mod:`.conformers` (rotations and pyramidal inversions), :mod:`.order` (build order by measured
acceptance), :mod:`.pipeline` (the GFN2-xTB verification chain, optional TS guesses),
:mod:`.checks` (what a saddle's two minima must show), :mod:`.hessian`, :mod:`.emt` (EMT surface
tier), :mod:`.builder` (parallel, resumable builds), :mod:`.store`, :mod:`.transition1x`,
:mod:`.graph_dataset`, :mod:`.splits`, :mod:`.report`, :mod:`.cli`.
"""

from .builder import BuildSummary, build_dataset, make_executor
from .calculators import GFN2, EMTFactory
from .candidates import (
    DEFAULT_SMILES,
    ELEMENTS,
    KINDS,
    Candidate,
    Seed,
    SeedError,
    enumerate_candidates,
    g2_seeds,
    interleave,
    parse_elements,
    seed_from_atoms,
    seed_from_smiles,
    smiles_seeds,
    xyz_seeds,
)
from .conformers import conformer_candidates
from .emt import EMT_SETTINGS, EMTSettings, SurfaceCandidate, emt_candidates
from .order import measured_acceptance
from .pipeline import GuessProvider, PipelineSettings, Rejected, verify_candidate
from .reaction import Reaction, ReactionFormatError, iter_reactions, read_reactions, write_reactions
from .report import finalize_store, store_statistics
from .seedlists import HETERO_SMILES, LARGE_SMILES, SEED_SETS
from .splits import make_splits, read_split, write_splits
from .store import ReactionStore
from .templates import TEMPLATES, Template, template_candidates
from .transition1x import Transition1xReader


def __getattr__(name: str):
    # the PyG dataset imports torch; loaded on first use so builder worker processes stay light
    if name in ("ReactionGraphDataset", "reaction_to_data"):
        from . import graph_dataset

        return getattr(graph_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Reaction", "ReactionFormatError", "read_reactions", "write_reactions", "iter_reactions",
    "Seed", "SeedError", "Candidate", "seed_from_atoms", "seed_from_smiles", "g2_seeds", "smiles_seeds",
    "xyz_seeds", "enumerate_candidates", "interleave", "DEFAULT_SMILES", "HETERO_SMILES", "LARGE_SMILES",
    "SEED_SETS", "KINDS", "ELEMENTS", "parse_elements", "conformer_candidates", "template_candidates",
    "Template", "TEMPLATES", "measured_acceptance",
    "PipelineSettings", "Rejected", "verify_candidate", "GuessProvider", "GFN2", "EMTFactory",
    "EMTSettings", "EMT_SETTINGS", "SurfaceCandidate", "emt_candidates",
    "ReactionStore", "build_dataset", "make_executor", "BuildSummary",
    "Transition1xReader", "ReactionGraphDataset", "reaction_to_data",
    "make_splits", "write_splits", "read_split", "finalize_store", "store_statistics",
]

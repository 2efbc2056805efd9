"""Reaction datasets: verified transition states, their formats, Transition1x and PyG loaders.

>>> from sciflow.datasets.reactions import read_reactions, ReactionGraphDataset   # doctest: +SKIP
>>> ds = ReactionGraphDataset(read_reactions("reactions.extxyz.gz"))               # doctest: +SKIP

Modules: :mod:`.reaction` (Reaction, extxyz keys), :mod:`.candidates` (seeds, bond-graph edits),
:mod:`.pipeline` (the GFN2-xTB verification chain), :mod:`.emt` (EMT surface tier),
:mod:`.builder` (parallel, resumable builds), :mod:`.store`, :mod:`.transition1x`,
:mod:`.graph_dataset`, :mod:`.splits`, :mod:`.report`, :mod:`.cli`.
"""

from .builder import BuildSummary, build_dataset, make_executor
from .calculators import GFN2, EMTFactory
from .candidates import (
    DEFAULT_SMILES,
    Candidate,
    Seed,
    SeedError,
    enumerate_candidates,
    g2_seeds,
    interleave,
    seed_from_atoms,
    seed_from_smiles,
    smiles_seeds,
    xyz_seeds,
)
from .emt import EMT_SETTINGS, EMTSettings, SurfaceCandidate, emt_candidates
from .pipeline import PipelineSettings, Rejected, verify_candidate
from .reaction import Reaction, ReactionFormatError, iter_reactions, read_reactions, write_reactions
from .report import finalize_store, store_statistics
from .splits import make_splits, read_split, write_splits
from .store import ReactionStore
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
    "xyz_seeds", "enumerate_candidates", "interleave", "DEFAULT_SMILES",
    "PipelineSettings", "Rejected", "verify_candidate", "GFN2", "EMTFactory",
    "EMTSettings", "EMT_SETTINGS", "SurfaceCandidate", "emt_candidates",
    "ReactionStore", "build_dataset", "make_executor", "BuildSummary",
    "Transition1xReader", "ReactionGraphDataset", "reaction_to_data",
    "make_splits", "write_splits", "read_split", "finalize_store", "store_statistics",
]

"""Reactions as PyG graphs for training a TS generator.

Each reaction becomes one ``torch_geometric.data.Data`` with

==========  ===========  ========================================================================
field       shape        meaning
==========  ===========  ========================================================================
``z``       (N,)         atomic numbers (int64)
``x``       (N, E)       one-hot element over ``elements`` (float)
``pos_r``   (N, 3)       reactant, centred at its centroid
``pos_ts``  (N, 3)       transition state, Kabsch-aligned onto ``pos_r`` (proper rotations only)
``pos_p``   (N, 3)       product, Kabsch-aligned onto ``pos_r``
``pos``     (N, 3)       the target: a copy of ``pos_ts``
``energy``  (1, 3)       E_R, E_TS, E_P (eV)
``barrier`` (1,)         E_TS - E_R (eV)
==========  ===========  ========================================================================

Because the aligned TS and P are centred at the reactant's centroid as well (the Kabsch solution
matches centroids), every geometry of a reaction sits in one frame. This is the preprocessing of
TS-GEN / React-OT (Tuo et al., arXiv 2507.10530; Duan et al., Nat. Mach. Intell. 2025), except that
mirror images are not allowed. Batch with ``torch_geometric.loader.DataLoader``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .align import kabsch_align
from .reaction import Reaction

__all__ = ["ReactionGraphDataset", "reaction_to_data", "DEFAULT_ELEMENTS"]

DEFAULT_ELEMENTS: tuple[int, ...] = (1, 6, 7, 8, 9, 15, 16, 17)


def reaction_to_data(reaction: Reaction, *, elements: Sequence[int] = DEFAULT_ELEMENTS,
                     dtype: torch.dtype = torch.float32):
    """One reaction -> a PyG ``Data`` (fields in the module docstring).

    Raises
    ------
    ValueError
        If the reaction holds an element outside ``elements``.
    """
    from torch_geometric.data import Data

    z = np.asarray(reaction.numbers, dtype=np.int64)
    index = {int(e): k for k, e in enumerate(elements)}
    unknown = sorted({int(a) for a in z if int(a) not in index})
    if unknown:
        raise ValueError(
            f"reaction {reaction.id!r} has atomic numbers {unknown} outside elements={tuple(elements)}; "
            "pass elements=... covering them"
        )
    r = reaction.reactant.get_positions()
    r = r - r.mean(0)
    ts = kabsch_align(reaction.transition_state.get_positions(), r)
    p = kabsch_align(reaction.product.get_positions(), r)
    onehot = np.zeros((len(z), len(elements)))
    onehot[np.arange(len(z)), [index[int(a)] for a in z]] = 1.0

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype)

    return Data(
        z=torch.as_tensor(z), x=t(onehot), pos_r=t(r), pos_ts=t(ts), pos_p=t(p), pos=t(ts),
        energy=t(np.asarray(reaction.energies)).reshape(1, 3), barrier=t(np.asarray([reaction.barrier])),
        num_nodes=len(z), rxn_id=reaction.id,
    )


class ReactionGraphDataset(Dataset):
    """A map-style dataset of reactions as PyG graphs (see the module docstring).

    Parameters
    ----------
    reactions
        Reactions (from :func:`read_reactions`, a store, or :class:`Transition1xReader`).
    elements
        Atomic numbers of the one-hot encoding, in order (default H, C, N, O, F, P, S, Cl).
    dtype
        Floating dtype of positions and features.
    """

    def __init__(self, reactions: Iterable[Reaction], *, elements: Sequence[int] = DEFAULT_ELEMENTS,
                 dtype: torch.dtype = torch.float32) -> None:
        self.elements = tuple(int(e) for e in elements)
        self.dtype = dtype
        self._data = [reaction_to_data(r, elements=self.elements, dtype=dtype) for r in reactions]

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int):
        return self._data[index]

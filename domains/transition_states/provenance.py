"""Where a written TS came from: the keys every TS the domain writes carries in extxyz ``info``.

ASE writes ``atoms.info`` onto the comment line of an extended XYZ frame (``key=value``) and
reads it back, so the provenance travels with the geometry into any ASE-based workflow. Keys
(absent when they do not apply; never NaN):

======================  ===================================================================
key                     meaning
======================  ===================================================================
``sciflow``             the sciflow that wrote the file (with ``python``, ``torch``,
                        ``created`` (UTC), ``command`` and ``host``: the core's record,
                        :func:`sciflow.provenance.provenance`)
``wrote``               the command or function (``ts generate``, ``ts search``)
``checkpoint``          the checkpoint file the generator was loaded from
``checkpoint_sha256``   sha256 digest of its tensors (``sciflow.checkpoint``)
``model_network``       network, width x depth and source of the generator
``seed``                seed of the source draws
``solver``              ODE solver; ``sample_steps`` its steps; ``samples`` draws ranked
``rank_rule``           ``medoid`` or ``fmax``; ``rank_score`` the chosen sample's score (not
                        written for one sample: nothing was ranked); ``rank_score_meaning``
``uncertainty_A``       per-reaction uncertainty (A); ``uncertainty_kind`` and
                        ``uncertainty_meaning`` say how it was measured
``charge``              total charge; ``multiplicity`` 2S + 1
``energy_xtb_ev``       GFN2-xTB energy of the generated guess (eV), when a calculator ran
``refined``             True when Sella refined the guess; then ``refine_converged``,
                        ``refine_steps``, ``refine_fmax_ev_A``, ``refine_energy_ev``,
                        ``imaginary_modes`` (count below -50 cm^-1) and
                        ``imaginary_frequency_cm1`` (the lowest, as a negative number)
======================  ===================================================================

``ts search`` adds its own keys (:mod:`.searching`).
"""

from __future__ import annotations

import math
from typing import Any

from ase import Atoms

__all__ = ["RANK_MEANINGS", "model_info", "generation_info", "refinement_info", "evaluation_info",
           "with_info"]

RANK_MEANINGS = {
    "medoid": "mean Kabsch RMSD (A) of the chosen sample to the other samples; lower = the "
              "samples agree more",
    "fmax": "largest atomic force (eV/A) of the chosen sample under GFN2-xTB; lower = closer "
            "to a stationary point",
}


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None and non-finite floats (extxyz has no NaN; an absent key means 'not measured')."""
    return {k: v for k, v in d.items()
            if v is not None and not (isinstance(v, float) and not math.isfinite(v))}


def model_info(model: Any) -> dict[str, Any]:
    """The core's provenance record (sciflow, python, torch, time, command, host) with the
    checkpoint (path, sha256 digest) and network of ``model``."""
    from sciflow.provenance import provenance

    cfg = model.config
    ck = dict(getattr(model, "checkpoint", {}) or {})
    return _finite(provenance(checkpoint=ck.get("path", "(in memory)"), digest=ck.get("digest"),
                              model_network=f"{cfg.network} {cfg.hidden}x{cfg.layers} "
                                            f"{cfg.source}"))


def generation_info(model: Any, result: Any, *, seed: int, solver: str, sample_steps: int,
                    charge: int = 0, multiplicity: int = 1, wrote: str = "ts generate"
                    ) -> dict[str, Any]:
    """Provenance of one :class:`~.sampling.GeneratedTS` (see the module docstring)."""
    info = {**model_info(model), "wrote": wrote, "seed": int(seed), "solver": solver,
            "sample_steps": int(sample_steps), "samples": len(result.samples),
            "rank_rule": result.rule, "rank_score": result.rank_score,
            "charge": int(charge), "multiplicity": int(multiplicity)}
    if result.rank_score is not None:
        info["rank_score_meaning"] = RANK_MEANINGS[result.rule]
    if result.uncertainty is not None:
        from .sampling import UNCERTAINTY_MEANINGS

        info.update(uncertainty_A=result.uncertainty, uncertainty_kind=result.uncertainty_kind,
                    uncertainty_meaning=UNCERTAINTY_MEANINGS[result.uncertainty_kind])
    return _finite(info)


def refinement_info(ref: Any) -> dict[str, Any]:
    """Provenance of a :class:`~.refinement.RefinementResult`."""
    return _finite({"refined": True, "refine_converged": bool(ref.converged),
                    "refine_steps": int(ref.steps), "refine_fmax_ev_A": ref.fmax,
                    "refine_energy_ev": ref.energy, "energy_xtb_ev": ref.start_energy,
                    "imaginary_modes": ref.imaginary_modes,
                    "imaginary_frequency_cm1": ref.imaginary_frequency})


def evaluation_info(model: Any, evaluation: Any, *, seed: int) -> dict[str, Any]:
    """Provenance of an :class:`~.evaluation.Evaluation` (``ts evaluate``'s JSON)."""
    return {**model_info(model), "wrote": "ts evaluate", "seed": int(seed),
            "solver": evaluation.solver, "sample_steps": evaluation.steps,
            "samples": evaluation.samples}


def with_info(atoms: Atoms, info: dict[str, Any]) -> Atoms:
    """A copy of ``atoms`` (positions and numbers only) carrying ``info``."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.get_positions())
    out.info.update(_finite(info))
    return out

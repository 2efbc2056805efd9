"""``sciflow demo`` section: the shipped TS generator on the shipped held-out test reactions.

Loads the small checkpoint in ``checkpoints/``, generates the TS of every reaction of its random
split's test part (never seen in training) in one batch, and scores it against the verified
GFN2-xTB saddle: Kabsch RMSD (no mirrors, uncapped) and |E(gen) - E(ref)| from GFN2-xTB single
points, beside the (R+P)/2 baseline. Takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import prepare_endpoints
from .evaluation import Evaluation, evaluate
from .metrics import EV_TO_KCAL, score, summarize
from .model import Model, load

__all__ = ["demo", "shipped_test_reactions"]


def shipped_test_reactions(model: Model, subset: str = "test") -> list:
    """The reactions of the checkpoint's recorded random split ``subset``, from the shipped data.

    The shipped store only grows, but an installation may hold an older copy than the snapshot
    the checkpoint was trained on: ids it lacks are left out (none found is a TSInputError)."""
    from .data import TSInputError
    from .files import select_reactions, shipped_data, snapshot_reactions

    split = model.meta.get("splits", {}).get("random")
    if not split or subset not in split:
        raise TSInputError("the checkpoint records no random split; it was not trained by "
                           "benchmarks/ts_generation.py")
    reactions = snapshot_reactions(shipped_data())
    have = {r.id for r in reactions}
    ids = [i for i in split[subset] if i in have]
    if not ids:
        raise TSInputError(f"none of the checkpoint's {len(split[subset])} {subset} reactions is "
                           "in this installation's shipped data (an older copy?)")
    return select_reactions(reactions, ids)


def _calculator():
    try:
        import tblite.ase  # noqa: F401
    except ImportError:
        return None
    from sciflow.datasets.reactions import GFN2

    return GFN2()


def _row(name: str, ev_summary, seconds: str) -> str:
    s = ev_summary
    de = (f"{s.abs_de_mean:.2f} | {s.abs_de_median:.2f} | {s.abs_de_below_1_58:.0%}"
          if s.energies else "- | - | -")
    return (f"| {name} | {s.rmsd_mean:.3f} | {s.rmsd_median:.3f} | {s.rmsd_below_0_1:.0%} | "
            f"{de} | {seconds} |")


def demo(out_dir: Path) -> str:
    """Generate TSs for the shipped test reactions and return the evaluation as markdown."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small molecules: extra threads only add contention
    try:
        return _demo(Path(out_dir))
    finally:
        torch.set_num_threads(threads)


def _demo(out_dir: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase import Atoms

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = load()
    reactions = shipped_test_reactions(gen)
    calc = _calculator()
    one: Evaluation = evaluate(gen, reactions, samples=1, calculator=calc, uncertainty="none")
    many: Evaluation = evaluate(gen, reactions, samples=8, calculator=calc, time_single=False)
    mid_rows = []
    for r in reactions:
        ep = prepare_endpoints(r.reactant, r.product, elements=gen.elements, min_distance=0.0)
        mid = Atoms(numbers=ep.numbers, positions=0.5 * (ep.reactant + ep.product))
        mid_rows.append(score(r, mid, calculator=calc))
    mid = summarize(mid_rows)

    fig, ax = plt.subplots(figsize=(4.2, 4))
    a = np.array([x.rmsd_midpoint for x in one.rows])
    b = np.array([x.rmsd for x in one.rows])
    ax.scatter(a, b, s=14)
    top = max(a.max(), b.max()) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.set_xlabel("RMSD of (R+P)/2 to the TS (A)")
    ax.set_ylabel("RMSD of the generated TS (A)")
    ax.set_title("held-out reactions")
    fig.tight_layout()
    figure = out_dir / "ts_rmsd.png"
    fig.savefig(figure, dpi=110)
    plt.close(fig)

    trained = gen.meta.get("train", {})
    ms = lambda s: f"{s * 1e3:.1f} ms"  # noqa: E731
    lines = [
        "| TS guess | RMSD mean (A) | RMSD median (A) | RMSD < 0.1 A | abs dE mean (kcal/mol) | "
        "abs dE median | abs dE < 1.58 | time per reaction |",
        "|---|---|---|---|---|---|---|---|",
        _row(f"generated, 1 sample ({one.solver} x {one.steps})", one.summary,
             f"{ms(one.seconds_batched)} batched, {ms(one.seconds_single or 0)} single"),
        _row("generated, best of 8 (medoid rule)", many.summary, f"{ms(many.seconds_batched)} batched"),
        _row("(R+P)/2 baseline", mid, "-"),
    ]
    energy_note = ("Energies: GFN2-xTB single points (tblite) of the generated and the reference TS."
                   if calc is not None else "Energies skipped: tblite is not installed.")
    failures = one.summary.energy_failures
    return (
        "## Transition states: generation from reactant + product\n\n"
        f"Shipped checkpoint ({gen.config.network.upper()}, hidden {gen.config.hidden}, "
        f"{gen.config.layers} layers, {gen.config.source} source; trained on "
        f"{trained.get('reactions', '?')} reactions for {trained.get('steps', '?')} steps) on the "
        f"{len(reactions)} reactions of its random split's test part, never seen in training. "
        "RMSD: Kabsch, proper rotations only (no mirror images), not capped. "
        f"{energy_note} SCF failures on generated geometries: {failures}. "
        f"1 kcal/mol = {1 / EV_TO_KCAL:.4f} eV.\n\n"
        + "\n".join(lines)
        + f"\n\n![generated vs (R+P)/2 RMSD per reaction]({figure.name})\n"
    )

"""Transition states from reactant + product: train a small generator, evaluate it, use the shipped one.

Trains an EGNN flow (midpoint source, a few Euler steps) on the shipped GFN2-xTB reactions,
scores generated TSs on held-out reactions by Kabsch RMSD (and GFN2-xTB energy errors in the full
run) with a per-reaction uncertainty, then generates a TS with the shipped checkpoint (its
provenance in the extxyz info) and, in the full run, searches a verified saddle from it
(Sella, one imaginary mode, quasi-IRC; CI-NEB when no guess verifies).

    python examples/transition_states.py                            (a few minutes on 2 cores)
    SCIFLOW_EXAMPLE_QUICK=1 python examples/transition_states.py    (under a minute; what tests run)
"""

import os
from pathlib import Path

import ase.io
import torch

from sciflow.datasets.reactions import GFN2, make_splits
from sciflow.domains.transition_states import (
    Config,
    Model,
    evaluate,
    load,
    refine,
    sample,
    search,
    select_reactions,
    snapshot_reactions,
    train,
)
from sciflow.domains.transition_states.demo import shipped_test_reactions
from sciflow.domains.transition_states.files import shipped_data
from sciflow.domains.transition_states.provenance import generation_info, with_info

torch.set_num_threads(1)
quick = os.environ.get("SCIFLOW_EXAMPLE_QUICK") == "1"
out = Path(os.environ.get("SCIFLOW_EXAMPLE_OUT", "sciflow-out/examples/transition_states"))
out.mkdir(parents=True, exist_ok=True)

# 1. data: the shipped verified reactions (R, TS, P on one atom order), a random split
reactions = snapshot_reactions(shipped_data())
split = make_splits(reactions, kind="random", seed=0)
train_set = select_reactions(reactions, split["train"])
test_set = select_reactions(reactions, split["test"])
print(f"{len(reactions)} reactions: {len(train_set)} train, {len(test_set)} test")

# 2. train a small generator (checkpoints, EMA weights and metrics.jsonl land in `out`);
#    Config holds the network and contains the core TrainConfig (config.train)
config = Config(network="egnn", hidden=32 if quick else 96, layers=2 if quick else 4,
                source="midpoint", source_scale=0.2, batch_size=16).replace(
    train={"steps": 60 if quick else 4000, "lr": 1e-3, "progress": False,
           "checkpoint_every": 0 if quick else 1000, "out_dir": out / "run"})
mine, result = train(train_set, config, resume=True, return_result=True)
print(f"trained {result.step} steps in {result.wall_time:.0f} s, final loss {result.final_loss}")

# 3. evaluate on the held-out reactions: RMSD (Kabsch, no mirrors) and, in the full run, energies
mine = Model(mine.net, config=mine.config, meta={**mine.meta, "default_steps": 2})
ev = evaluate(mine, test_set, calculator=None if quick else GFN2())
s = ev.summary
print(f"own model:  median RMSD {s.rmsd_median:.3f} A (mean {s.rmsd_mean:.3f}); "
      f"(R+P)/2 baseline {s.rmsd_midpoint_median:.3f} A; "
      f"{ev.seconds_batched * 1e3:.1f} ms per reaction batched; uncertainty vs error: "
      f"Spearman {s.uncertainty_spearman:.2f} ({ev.uncertainty})")
if not quick:
    print(f"            median |dE| {s.abs_de_median:.1f} kcal/mol (GFN2-xTB)")
(out / "evaluation.json").write_text(ev.to_json())

# 4. the shipped checkpoint on one of its own held-out reactions: 8 samples, ranked by medoid
shipped = load()
rxn = shipped_test_reactions(shipped)[0]
generated = sample(shipped, rxn.reactant, rxn.product, samples=8, uncertainty="auto")
best = with_info(generated.best, generation_info(shipped, generated, seed=0, solver=shipped.default_solver,
                                                 sample_steps=shipped.default_steps,
                                                 wrote="examples/transition_states.py"))
ase.io.write(out / "ts.extxyz", best)  # model, digest, seed, steps, rank score in its info
ase.io.write(out / "ts_samples.xyz", list(generated.samples))
print(f"shipped model on {rxn.id}: medoid scores {[round(x, 3) for x in generated.scores]}, "
      f"uncertainty {generated.uncertainty:.3f} A; what it has seen: {shipped.scope.describe()}")

# 5. refine with Sella + GFN2-xTB and compare with starting from the IDPP guess (full run only)
if not quick:
    ref = refine(generated.best, reactant=rxn.reactant, product=rxn.product)
    print(f"Sella: {ref.steps} steps from the generated TS vs {ref.idpp_steps} from IDPP "
          f"(saved {ref.steps_saved}); converged {ref.converged}")
    ase.io.write(out / "ts_refined.xyz", ref.atoms)
    found = search(rxn.reactant, rxn.product, model=shipped, samples=4,
                   reference=rxn.transition_state, id=rxn.id)
    print(f"search: verified {found.verified} by {found.route} in {found.seconds:.1f} s, barrier "
          f"{found.barrier:.3f} eV, {found.imaginary_frequency:.0f}i cm^-1, "
          f"{found.rmsd_to_reference:.3f} A from the reference")
    ase.io.write(out / "ts_verified.extxyz", with_info(found.ts, found.info()))
print(f"wrote the TS, the ranked samples and the evaluation to {out}")

"""Low-precision arithmetic on two climate testbeds with the sciflow Python API.

Runs a Lorenz 1963 ensemble as one batch of precisions (float64 reference, float64 null runs
from perturbed starts, and k significand bits with round-to-nearest (RN) or stochastic rounding
(SR)), judges each by the Wasserstein test of Paxton et al. (J. Climate 2022) with a bootstrap
over (member, 10-time-unit block) units that says how sure each "like float64" is, then warms a
soil column for a year in float16 and bfloat16 where RN stagnates and SR does not. Saves a table
(CSV and markdown) and a figure.

    python examples/climate.py                          (a few minutes on one core)
    SCIFLOW_EXAMPLE_QUICK=1 python examples/climate.py   (under a minute; what the tests run)
"""

import csv
import os
from pathlib import Path

import torch

from sciflow.domains.climate import (
    Lorenz63,
    block_units,
    heat_sweep,
    lorenz_ensemble,
    paired_w1,
    resample_counts,
    sweep_arms,
)
from sciflow.precision import emulate_sweep, rounding_error_test

quick = os.environ.get("SCIFLOW_EXAMPLE_QUICK") == "1"
out = Path(os.environ.get("SCIFLOW_EXAMPLE_OUT", "sciflow-out/examples/climate"))
out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)

# 1. the precision arms: reference, 3 null runs, then sbits k x {RN, SR}; one batch dimension
bits = (6, 10, 14, 23) if quick else (4, 6, 8, 10, 12, 14, 16, 20, 23)
nulls = 3
arms = sweep_arms(bits, nulls=nulls)
print(f"{len(arms)} arms: {', '.join(a.name for a in arms[1 + nulls:])}")

# 2. Lorenz 1963: members start on the attractor (float64 spin-up); null runs get 1e-3 noise
members, steps = (4, 1000) if quick else (10, 10_000)
g = torch.Generator().manual_seed(0)
model = Lorenz63()
start = model.run(lorenz_ensemble(members, generator=g), steps=1, spinup=1000)[-1]  # (M, 3)
state = start.expand(len(arms), -1, -1).clone()  # (arms, M, 3)
state[1 : 1 + nulls] += 1e-3 * torch.randn(nulls, members, 3, generator=g, dtype=torch.float64)
with emulate_sweep(arms, generator=torch.Generator().manual_seed(1)):  # every op rounded per arm
    traj = model.run(state, steps=steps, every=10)  # (T, arms, M, 3)

# 3. the Wasserstein test per arm: W1 to the reference over the mean null W1, for x, and a
#    bootstrap: resample (member, block of 100 records = 10 time units) units 200 times, the same
#    draw for every arm, and count how often the arm stays within the null's range
x = traj[..., 0].transpose(0, 1).reshape(len(arms), -1)  # (arms, T * M), record-major
units = block_units(traj.shape[0], 100, members)  # (T * M,) unit of each sample
counts = resample_counts(units, 200, generator=torch.Generator().manual_seed(3))  # (200, units)
null_w1 = torch.stack([paired_w1(x[j], x[0], units, counts) for j in range(1, 1 + nulls)])
null_mean, null_limit = null_w1.mean(0), null_w1.max(0).values / null_w1.mean(0)  # (200,) each
print(f"bootstrap over {int(units.max()) + 1} units ({members} members x "
      f"{(int(units.max()) + 1) // members} block(s)); fewer than 8 are too few to judge the noise")
rows = []
for k in range(1 + nulls, len(arms)):
    test = rounding_error_test(x[k], x[0], [x[j] for j in range(1, 1 + nulls)])
    share = float((paired_w1(x[k], x[0], units, counts) / null_mean <= null_limit).double().mean())
    verdict = "yes" if share >= 0.95 else "no" if share <= 0.05 else "undecided"
    rows.append({"sbits": arms[k].fmt.sbits, "rounding": arms[k].rounding,
                 "w1": float(test.w1.mean()), "w1_over_null": test.ratio,
                 "like_float64_here": test.ratio <= test.limit,
                 "share_of_resamples_within": share, "verdict": verdict})

# 4. the soil column for a year: RN stagnates where the increments are below half an ulp
sweep, profiles = heat_sweep(bits=bits, years=1.0, nulls=nulls)
ratio = {(r.sbits, r.rounding): r.ratio for r in sweep.rows}
for row in rows:
    row["heat_w1_over_null"] = ratio[(row["sbits"], row["rounding"])]

# 5. a table (CSV and markdown) and a figure
with open(out / "lorenz_heat_rn_vs_sr.csv", "w", newline="") as fh:
    writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
lines = ["| sbits | rounding | Lorenz x: W1 (dimensionless) | W1 / null (dimensionless) | "
         "resamples within the null | like float64 | soil T: W1 / null (dimensionless) |",
         "|---|---|---|---|---|---|---|"]
lines += [f"| {r['sbits']} | {r['rounding']} | {r['w1']:.3g} | {r['w1_over_null']:.3g} | "
          f"{r['share_of_resamples_within']:.0%} | {r['verdict']} | {r['heat_w1_over_null']:.3g} |"
          for r in rows]
(out / "lorenz_heat_rn_vs_sr.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
for rounding, label in (("nearest", "RN"), ("stochastic", "SR")):
    warmest = float(profiles.profiles[f"float16-{label}"].max())
    verdict = sweep.verdict(rounding)  # the fewest sbits like float64, with its 90% interval
    print(f"soil column, {label}: fewest sbits like float64 {verdict.text()}"
          f"{' (' + verdict.reason + ')' if verdict.reason else ''}; float16 {label} warmed to "
          f"at most {warmest:.2f} K (float64: {float(profiles.profiles['float64'].max()):.2f} K)")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for rounding, style in (("nearest", "o-"), ("stochastic", "s--")):
    pts = [(r["sbits"], r["w1_over_null"]) for r in rows if r["rounding"] == rounding]
    left.plot(*zip(*pts), style, label=f"Lorenz x, {'RN' if rounding == 'nearest' else 'SR'}")
left.axhline(1.0, color="k", lw=0.8)
left.set(xlabel="significand bits", ylabel="W1 / null W1 (dimensionless)", yscale="log",
         title="Lorenz 1963, variable x")
left.legend()
depth = profiles.depths.numpy()
for name, temp in profiles.profiles.items():
    right.plot(temp.numpy(), depth, "--" if name.endswith("SR") else "-", label=name)
right.invert_yaxis()
right.set(xlabel="temperature (K)", ylabel="depth (m)", title="soil column after one year")
right.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "lorenz_heat_rn_vs_sr.png", dpi=100)
print(f"saved the table and the figure in {out}")

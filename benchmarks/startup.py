"""Cold-start cost of the command line against `python -c "import torch"`.

Each command runs in a fresh process, all of them interleaved round after round (so a busy moment
of the shared machine hits every row alike); the table gives the median wall time over the rounds
and its ratio to importing torch. Rows: `sciflow --help`, `sciflow GROUP --help` for every
registered group, and a one-reaction `sciflow transition-states generate` (the shipped model on a
shipped reaction), whose target is at most ~1.5x `import torch` plus the model's own work (the
work is timed in-process, imports excluded, and reported beside it).

Writes benchmarks/results/startup.md.   Run: python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup.md"
PY = sys.executable
SCIFLOW = str(Path(PY).with_name("sciflow")) if Path(PY).with_name("sciflow").exists() else "sciflow"

WORK = r"""
import sys, time
from ase.io import read
from sciflow.domains.transition_states import load, sample
r, p = read(sys.argv[1]), read(sys.argv[2])
model = load()
t0 = time.perf_counter()
sample(model, r, p, samples=1)
print(time.perf_counter() - t0)
"""


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return time.perf_counter() - t0


def _reaction(folder: Path) -> tuple[Path, Path]:
    """Reactant and product of one shipped reaction as xyz files."""
    from ase.io import write

    from sciflow.datasets.reactions import read_reactions

    store = Path(__file__).parents[1] / "datasets" / "reactions" / "data" / "reactions.extxyz.gz"
    rxn = next(iter(read_reactions(store)))
    r, p = folder / "r.xyz", folder / "p.xyz"
    write(r, rxn.reactant)
    write(p, rxn.product)
    return r, p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    from sciflow.plugins import domains

    env = dict(os.environ, OMP_NUM_THREADS="1", SCIFLOW_PROGRESS="0")
    tmp = Path(tempfile.mkdtemp(prefix="sciflow-startup-"))
    r, p = _reaction(tmp)
    rows: dict[str, list[str]] = {"python -c 'import torch'": [PY, "-c", "import torch"],
                                  "sciflow --help": [SCIFLOW, "--help"]}
    for d in domains().values():
        rows[f"sciflow {d.name} --help"] = [SCIFLOW, d.name, "--help"]
    out = tmp / "ts.xyz"
    generate = [SCIFLOW, "transition-states", "generate", "--reactant", str(r), "--product", str(p),
                "-o", str(out), "--overwrite"]
    rows["sciflow transition-states generate (1 reaction)"] = generate
    times: dict[str, list[float]] = {k: [] for k in rows}
    work: list[float] = []
    for _ in range(args.rounds):
        for name, cmd in rows.items():
            times[name].append(_wall(cmd, env))
        done = subprocess.run([PY, "-c", WORK, str(r), str(p)], check=True, capture_output=True,
                              text=True, env=env)
        work.append(float(done.stdout.strip().splitlines()[-1]))
    shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    torch_s = med["python -c 'import torch'"]
    work_s = statistics.median(work)
    lines = ["| command | median wall s | / import torch |", "|---|---|---|"]
    for name, s in med.items():
        lines.append(f"| `{name}` | {s:.3f} | {s / torch_s:.2f}x |")
    gen = med["sciflow transition-states generate (1 reaction)"]
    budget = 1.5 * torch_s + work_s
    verdict = "met" if gen <= budget else "not met"
    helps = [med[k] for k in med if k.endswith("--help")]
    text = "\n".join([
        "# Start-up: the command line against `import torch`",
        "",
        f"Command: `python benchmarks/startup.py --rounds {args.rounds}`, run "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work (load average "
        f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, one thread. "
        "Each row is a fresh process; rows interleaved over the rounds; median wall time.",
        "",
        *lines,
        "",
        f"- `--help` of the CLI and of every group: {min(helps):.2f}-{max(helps):.2f} s "
        f"(target: well under a second, no torch imported: "
        f"{'met' if max(helps) < 1.0 else 'not met'}).",
        f"- One-reaction generate: {gen:.2f} s against 1.5 x import torch ({1.5 * torch_s:.2f} s) + "
        f"the model's own work in-process ({work_s:.3f} s) = {budget:.2f} s: {verdict}.",
        "",
    ])
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Every domain's training step and sampling on one device, through the domains' public APIs.

For each domain: a short training run with ``config.train.device`` set (the Trainer moves the
network and every batch), then sampling with the trained model (which stays on that device), and
where the domain ships a checkpoint, ``load(..., device=...)`` and sampling with it. Wall seconds
and the device the weights ended on are recorded; a domain that fails is reported with its error
and the others still run. ``--quick`` uses tiny sizes (seconds on a CPU, for tests and CI).

Writes benchmarks/results/device.md (or ``--out``). Run through ``benchmarks/device_check.sh``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "device.md"


@dataclass(frozen=True)
class Row:
    domain: str
    work: str
    seconds: float
    device: str
    status: str


def _where(module: torch.nn.Module) -> str:
    p = next(module.parameters(), None)
    return str(p.device) if p is not None else "-"


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def toy(device: str, quick: bool) -> list[Row]:
    from sciflow.domains.toy import Config, sample, train

    steps, hidden, batch, n = (5, 16, 64, 100) if quick else (1000, 256, 1024, 100_000)
    cfg = Config(coupling="ot", hidden=hidden, layers=3, batch_size=batch).replace(
        train={"steps": steps, "device": device, "progress": False})
    model, t_train = _timed(lambda: train(cfg))
    _, t_sample = _timed(lambda: sample(model, n, solver="euler", steps=8))
    where = _where(model.net)
    return [Row("toy", f"train OT-CFM, MLP 3 x {hidden}, batch {batch}, {steps} steps", t_train,
                where, "ok"),
            Row("toy", f"sample {n} points, Euler 8 steps", t_sample, where, "ok")]


def transition_states(device: str, quick: bool) -> list[Row]:
    from sciflow.domains.transition_states import Config, load, load_reactions, sample, train

    reactions = load_reactions()[: 8 if quick else 256]
    hidden, layers, steps, batch = (16, 1, 2, 4) if quick else (128, 4, 300, 32)
    cfg = Config(hidden=hidden, layers=layers, batch_size=batch).replace(
        train={"steps": steps, "device": device, "progress": False})
    model, t_train = _timed(lambda: train(reactions, cfg))
    rows = [Row("transition_states", f"train EGNN {hidden} x {layers}, batch {batch}, {steps} "
                f"steps ({len(reactions)} reactions)", t_train, _where(model.net), "ok")]
    k, todo = (2, reactions[:1]) if quick else (8, reactions[:32])
    for name, m in (("trained", model), ("shipped, load(device=)", load(device=device))):
        _, t = _timed(lambda m=m: [sample(m, r.reactant, r.product, samples=k) for r in todo])
        rows.append(Row("transition_states", f"sample {len(todo)} reactions x {k} draws "
                        f"({name} model)", t, _where(m.net), "ok"))
    return rows


def single_cell(device: str, quick: bool) -> list[Row]:
    from sciflow.datasets.letters import LettersConfig, letters_anndata
    from sciflow.domains.single_cell import Config, read_populations, sample, train

    cells = read_populations(letters_anndata(LettersConfig(seed=0)), population_key="population",
                             pair_key="pair")
    train_cells = cells.select([p for p in cells.populations if p[0] not in "XY"])
    test = cells.select([p for p in cells.populations if p[0] == "Y"])
    hidden, steps, per = (16, 2, 32) if quick else (128, 300, 256)
    cfg = Config(hidden=hidden, layers=2 if quick else 4, knn=8 if quick else 20,
                 populations_per_batch=4 if quick else 10, cells_per_population=per,
                 training="joint", model_type="mfm").replace(
        train={"steps": steps, "device": device, "progress": False})
    model, t_train = _timed(lambda: train(train_cells, cfg))
    _, t_sample = _timed(lambda: sample(model, test, steps=4 if quick else 16))
    where = _where(model.net)
    return [Row("single_cell", f"train MFM {hidden} wide, {steps} steps", t_train, where, "ok"),
            Row("single_cell", f"sample {len(test.pairs)} held-out populations", t_sample, where,
                "ok")]


def remote_sensing(device: str, quick: bool) -> list[Row]:
    from sciflow.datasets.sentinel import SentinelSeriesSpec, generate_cubes
    from sciflow.domains.remote_sensing import Config, sample, stack_series, train
    from sciflow.domains.remote_sensing.data import series_from_cube

    size, dates, n, steps, dim = (8, 4, 4, 2, 8) if quick else (32, 8, 128, 300, 64)
    cubes = generate_cubes(SentinelSeriesSpec(size=size, n_dates=dates), n, seed=0)
    test = stack_series([series_from_cube(c) for c in generate_cubes(
        SentinelSeriesSpec(size=size, n_dates=dates, cloud_cover=0.7, region="test"),
        2 if quick else 16, seed=1)])
    cfg = Config(frames=dates, tile=size, dim=dim, depth=1 if quick else 2, heads=2 if quick else 4,
                 pixel_head=4 if quick else 8, batch_size=2 if quick else 16).replace(
        train={"steps": steps, "device": device, "progress": False})
    model, t_train = _timed(lambda: train(cubes, cfg))
    k = 2 if quick else 8
    _, t_sample = _timed(lambda: sample(model, test, "cloud_removal", samples=k, steps=6))
    where = _where(model.net)
    return [Row("remote_sensing", f"train {size}x{size}x{dates} series, dim {dim}, {steps} steps",
                t_train, where, "ok"),
            Row("remote_sensing", f"sample cloud removal, {k} draws", t_sample, where, "ok")]


def feature_forecasting(device: str, quick: bool) -> list[Row]:
    from sciflow.domains.feature_forecasting import (
        build_extractor,
        make_sprite_eval_set,
        make_sprite_training_set,
        sample,
        train,
    )
    from sciflow.domains.feature_forecasting.demo import DEMO_CONFIG

    steps = 2 if quick else 300
    cfg = DEMO_CONFIG.replace(train_clips=16 if quick else 400, ae_steps=steps,
                              head_steps=steps, width=16 if quick else 48)
    cfg = cfg.replace(train={"steps": steps, "device": device, "progress": False})
    ext = build_extractor(cfg)
    data = make_sprite_training_set(cfg, ext)
    ev = make_sprite_eval_set(cfg, ext, clips=2 if quick else 16)
    model, t_train = _timed(lambda: train(data, cfg))
    _, t_sample = _timed(lambda: sample(model, ev.context))
    where = _where(model.forecaster) if hasattr(model, "forecaster") else str(model.device)
    return [Row("feature_forecasting", f"train latent forecaster (+ VAE, heads), {steps} steps",
                t_train, where, "ok"),
            Row("feature_forecasting", f"sample {ev.context.shape[0]} clips", t_sample, where,
                "ok")]


def climate(device: str, quick: bool) -> list[Row]:
    from sciflow.domains.climate import train_flow
    from sciflow.train import TrainConfig

    steps = 5 if quick else 1000
    net, t_train = _timed(lambda: train_flow(TrainConfig(steps=steps, device=device,
                                                         progress=False)))
    return [Row("climate", f"train the 2-D flow sampler, {steps} steps", t_train,
                _where(net), "ok (no sample() with a device in this domain's API)")]


DOMAINS: dict[str, Callable[[str, bool], list[Row]]] = {
    "toy": toy, "transition_states": transition_states, "single_cell": single_cell,
    "remote_sensing": remote_sensing, "feature_forecasting": feature_forecasting,
    "climate": climate,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=os.environ.get("DEVICE", "cuda"))
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a CPU check)")
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from sciflow.devices import resolve_device

    device = str(resolve_device(args.device, name="--device"))
    rows: list[Row] = []
    t0 = time.perf_counter()
    for name in args.domains:
        try:
            rows += DOMAINS[name](device, args.quick)
        except Exception as err:  # one domain's failure is a row, not the end of the check
            last = traceback.extract_tb(err.__traceback__)[-1]
            rows.append(Row(name, "-", float("nan"), device, f"FAILED: {type(err).__name__}: "
                            f"{str(err).splitlines()[0][:160]} ({Path(last.filename).name}:"
                            f"{last.lineno})"))
        print(f"[device check] {name}: done, {time.perf_counter() - t0:.0f} s", flush=True)
    total = time.perf_counter() - t0
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()
    cmd = f"DEVICE={args.device} bash benchmarks/device_check.sh" + (" --quick" if args.quick
                                                                      else "")
    lines = ["# Device check: every domain's training step and sampling on one device", "",
             f"Command: `{cmd}`. Device: {device} ({gpu or platform.machine()}), torch "
             f"{torch.__version__}; {'tiny (--quick)' if args.quick else 'realistic'} sizes. "
             f"Total {total:.0f} s (target for the realistic sizes on one GPU: <= 300 s).", "",
             "| domain | work | wall s | weights on | status |", "|---|---|---|---|---|"]
    lines += [f"| {r.domain} | {r.work} | {r.seconds:.1f} | {r.device} | {r.status} |"
              for r in rows]
    failed = [r.domain for r in rows if r.status.startswith("FAILED")]
    lines += ["", f"Failed: {', '.join(sorted(set(failed)))}." if failed else "All ran.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()

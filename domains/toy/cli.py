"""``sciflow toy``: train a 2-D flow and sample it (the template of a domain's command line).

    sciflow toy train --coupling ot --steps 2000 --out runs/toy
    sciflow toy sample --checkpoint runs/toy/model.pt -n 1000 -o samples.csv

Every handler checks all its arguments and claims its output before any work
(:func:`sciflow.outputs.claim_output`), then imports torch and runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sciflow.cli_args import (
    add_device_argument,
    add_output_arguments,
    add_solver_arguments,
    add_train_arguments,
    positive_int,
    set_threads,
    train_config,
)
from sciflow.outputs import claim_output
from sciflow.plugins import Domain

__all__ = ["DOMAIN", "configure"]

DOMAIN = Domain(
    name="toy", order=10,
    summary="2-D toy flows: the core in miniature (train, sample)",
    package="sciflow.domains.toy", cli="sciflow.domains.toy.cli:configure",
    demo="sciflow.domains.toy.demo:demo",
)

DENSITIES = ("8gaussians", "checkerboard", "moons")  # sciflow.datasets.toy2d.TOY2D (tested)


def _train(args: argparse.Namespace) -> int:
    out = claim_output(Path(args.out) / "model.pt", overwrite=args.overwrite or args.resume,
                       name="--out")
    with out:
        set_threads(args)
        from sciflow.outputs import dumps_json

        from .config import Config
        from .evaluation import evaluate
        from .training import train

        base = Config(source=args.source, target=args.target, coupling=args.coupling,
                      hidden=args.hidden, layers=args.layers, batch_size=args.batch_size)
        config = base.replace(train=train_config(args, base.train))
        model, result = train(config, resume=args.resume, return_result=True)
        out.write(lambda tmp: model.save(tmp))
        print(dumps_json(evaluate(model), indent=None).strip())
        print(f"model: {out.path}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    with claim_output(args.output, inputs=[args.checkpoint], overwrite=args.overwrite,
                      suffixes=(".csv",)) as out:
        if not Path(args.checkpoint).is_file():
            raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
        import csv

        from .model import load
        from .sampling import sample

        x = sample(load(args.checkpoint, device=args.device or "cpu"), args.n, solver=args.solver,
                   steps=args.sample_steps, seed=args.seed)

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["x", "y"])
                w.writerows(x.tolist())

        out.write(write)
    print(f"wrote {len(x)} samples to {out.path}")
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    """Fill the ``sciflow toy`` group."""
    p.description = "Flow matching between 2-D densities: the core in miniature."
    sub = p.add_subparsers(dest="toy_command", metavar="<toy-command>")
    t = sub.add_parser(
        "train", help="train a 2-D flow and print its W2 per sampler",
        description="Train source -> target with an MLP velocity; writes OUT/model.pt and "
                    "OUT/checkpoints/. Example:\n"
                    "  sciflow toy train --coupling ot --steps 2000 --out runs/toy",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--source", default="8gaussians", choices=DENSITIES)
    t.add_argument("--target", default="moons", choices=DENSITIES)
    t.add_argument("--coupling", default="independent", choices=("independent", "ot"),
                   help="independent pairs (I-CFM) or exact minibatch OT (OT-CFM)")
    t.add_argument("--batch-size", type=positive_int, default=256)
    t.add_argument("--hidden", type=positive_int, default=64)
    t.add_argument("--layers", type=positive_int, default=3)
    add_train_arguments(t, out_default="sciflow-out/toy")
    t.add_argument("--overwrite", action="store_true", help="replace OUT/model.pt if it exists")
    t.set_defaults(func=_train)
    s = sub.add_parser("sample", help="draw samples from a trained toy flow into a CSV file",
                       description="Example:\n  sciflow toy sample --checkpoint runs/toy/model.pt "
                                   "-n 1000 -o samples.csv",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--checkpoint", required=True, help="a model.pt or checkpoint of toy train")
    s.add_argument("-n", type=positive_int, default=1000, help="number of samples")
    add_solver_arguments(s, solver="euler", steps=8)
    s.add_argument("--seed", type=int, default=0, help="seed of the source draws")
    add_device_argument(s)
    add_output_arguments(s, suffixes=(".csv",), default="samples.csv", what="the samples")
    s.set_defaults(func=_sample)

"""Worker of tests/test_train_ddp.py: one rank of a 2-process torchrun job (gloo, CPU).

Each rank trains on its half of a fixed batch; the test compares the result with one process
trained on the whole batch. Usage: ``torchrun --nproc_per_node 2 tests/_ddp_worker.py OUT_DIR``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from sciflow.checkpoint import write_state
from sciflow.train import TrainConfig, Trainer

SHARD, DIM, STEPS = 4, 3, 4


def make_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(DIM, 8), nn.Tanh(), nn.Linear(8, DIM)).double()


def full_batch(step: int) -> Tensor:
    """The union of both ranks' batches at ``step``: (2 * SHARD, DIM)."""
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(2 * SHARD, DIM, generator=g, dtype=torch.float64)


def loss_fn(model: nn.Module, x: Tensor) -> Tensor:
    return ((model(x) - x.flip(-1)) ** 2).mean()


def config(out: Path) -> TrainConfig:
    return TrainConfig(steps=STEPS, lr=1e-2, ema_decay=0.5, grad_clip=0.05, log_every=1,
                       out_dir=out, seed=11, progress=False)


def main(out: Path) -> None:
    rank = int(os.environ["RANK"])
    seeds: list[int] = []

    def shard(step: int, g: torch.Generator) -> Tensor:
        seeds.append(g.initial_seed())
        return full_batch(step)[rank * SHARD:(rank + 1) * SHARD]

    # rank 1 starts from other weights: DDP must broadcast rank 0's (and the EMA follow them)
    trainer = Trainer(make_net(seed=rank), loss_fn, config(out))
    trainer.fit(shard)
    write_state(out / f"rank{rank}.pt", {"model": trainer.model.state_dict(),
                                          "ema": trainer.ema_model.state_dict(),
                                          "seed": seeds[0], "world_size": trainer.world_size})


if __name__ == "__main__":
    main(Path(sys.argv[1]))

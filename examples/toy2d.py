"""Flow matching in two dimensions with the sciflow Python API.

Trains an exact-OT conditional flow from 8 gaussians to two moons, samples it with a few Euler
steps and with dopri5, scores the samples by W2, and saves the model and a picture.

    python examples/toy2d.py            (about 20 s on a laptop core)
    SCIFLOW_EXAMPLE_QUICK=1 python examples/toy2d.py   (a few seconds; what the tests run)
"""

import os
from pathlib import Path

import torch

from sciflow.checkpoint import load_checkpoint
from sciflow.couplings import ExactOTCoupling
from sciflow.datasets.toy2d import eight_gaussians, moons
from sciflow.matcher import FlowMatcher
from sciflow.metrics import wasserstein2
from sciflow.nn.mlp import MLPVelocity
from sciflow.solvers import odeint
from sciflow.train import TrainConfig, Trainer

quick = os.environ.get("SCIFLOW_EXAMPLE_QUICK") == "1"
out = Path(os.environ.get("SCIFLOW_EXAMPLE_OUT", "sciflow-out/examples/toy2d"))

# 1. data: a batch function draws fresh source and target samples each step
def batch_fn(step: int, generator: torch.Generator):
    return eight_gaussians(256, generator=generator), moons(256, generator=generator)


# 2. model and objective: an MLP velocity field, exact minibatch-OT pairs, linear path
model = MLPVelocity(dim=2, hidden=64, layers=3)
matcher = FlowMatcher(coupling=ExactOTCoupling())


def loss_fn(net, batch):
    x0, x1 = batch
    return matcher.loss(net, x1, x0=x0)


# 3. train (checkpoints, EMA and a metrics log land in `out`)
config = TrainConfig(steps=200 if quick else 2000, lr=3e-3, schedule="cosine", ema_decay=0.99,
                     out_dir=out, checkpoint_every=500)
trainer = Trainer(model, loss_fn, config)
result = trainer.fit(batch_fn)
print(f"trained {result.step} steps in {result.wall_time:.1f} s, final loss {result.final_loss:.3f}")

# 4. reload the EMA weights the way lab code would, then sample and evaluate
net = MLPVelocity(dim=2, hidden=64, layers=3)
net.load_state_dict(load_checkpoint(result.checkpoint).state_dict)
g = torch.Generator().manual_seed(1)
x0, reference = eight_gaussians(2000, generator=g), moons(2000, generator=g)
with torch.no_grad():
    for steps in (1, 4, 16):
        x = odeint(net, x0, method="euler", steps=steps).x
        print(f"Euler {steps:2d} steps: W2 = {wasserstein2(x, reference):.3f}")
    sol = odeint(net, x0, method="dopri5")
print(f"dopri5 ({sol.nfe} evaluations): W2 = {wasserstein2(sol.x, reference):.3f}")

# 5. save samples and a picture
torch.save(sol.x, out / "samples.pt")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.figure(figsize=(4, 4))
plt.scatter(*reference.T, s=1, c="k", label="target")
plt.scatter(*sol.x.T, s=1, c="tab:red", label="samples")
plt.legend(loc="upper right")
plt.savefig(out / "samples.png", dpi=100)
print(f"saved model, samples and picture in {out}")

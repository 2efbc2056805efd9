"""Few-step flow maps: one network X(x, s, t) that jumps between any two times of a flow.

    X(x, s, t) = x + (t - s) F(x, s, t)        X(x, s, s) = x,  dX/dt|_{t=s} = F(x, s, s) = v(x, s)

- :mod:`.map`: :class:`FlowMap` around a network F (:class:`TwoTimeMLP` for dense vectors,
  :class:`GraphFlowMapNet` for any equivariant graph velocity network), :func:`warm_start` from a
  trained velocity network (the student starts as one Euler step of its teacher), and
  :func:`sample_flow_map` with any number of deterministic jumps;
- :mod:`.ctm`: :class:`CTMLoss`, the Consistency Trajectory Model objective (teacher ODE targets
  from data points, soft consistency between jumps, flow matching on the diagonal), and
  :func:`solve_between`, the teacher's ODE between per-sample times;
- :mod:`.data_free`: :class:`DataFreeLoss`, distillation from source draws alone (the student
  follows the teacher's velocity at its own states);
- :mod:`.training`: :class:`FlowBatch` and :func:`fit_flow_map`, training through
  :class:`sciflow.train.Trainer`.

Example (dense)::

    fmap = FlowMap(TwoTimeMLP(dim=2, hidden=64, layers=3))
    warm_start(fmap.net, teacher)                             # teacher: an MLPVelocity(2, 64, 3)
    loss = DataFreeLoss(teacher=teacher)
    batches = lambda step, g: FlowBatch(source(256, generator=g))
    fmap = fit_flow_map(fmap, loss, batches, TrainConfig(steps=2000)).model
    x = sample_flow_map(fmap, source(1000), jumps=2).x        # 2 network evaluations

Graphs: ``FlowMap(GraphFlowMapNet(EGNN(..., graph_scalar_dim=G + 16)))`` with ``cond`` a
:class:`~sciflow.nn.GraphContext` and ``batch`` the graph index of every node row.
"""

# every submodule's public names, listed once (in its own __all__)
from sciflow.flowmaps import ctm, data_free, map, training
from sciflow.flowmaps.ctm import *  # noqa: F403
from sciflow.flowmaps.data_free import *  # noqa: F403
from sciflow.flowmaps.map import *  # noqa: F403
from sciflow.flowmaps.training import *  # noqa: F403

__all__ = [*map.__all__, *ctm.__all__, *data_free.__all__, *training.__all__]

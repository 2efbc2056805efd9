"""mlp builder and the dense MLPVelocity contract."""

import pytest
import torch
from torch import nn

from sciflow.nn.mlp import MLPVelocity, mlp


def test_mlp_layer_widths_and_final_activation():
    net = mlp([3, 8, 8, 2])
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 8), (8, 8), (8, 2)]
    assert not isinstance(net[-1], nn.SiLU)
    assert isinstance(mlp([3, 4], last_activation=True)[-1], nn.SiLU)
    with pytest.raises(ValueError, match="sizes"):
        mlp([3])


def test_mlp_velocity_shapes_and_scalar_time():
    model = MLPVelocity(2, 16, 2)
    x = torch.randn(5, 2)
    v = model(x, torch.full((5,), 0.3))
    assert v.shape == (5, 2)
    torch.testing.assert_close(model(x, 0.3), v)
    torch.testing.assert_close(model(x, torch.tensor(0.3)), v)


def test_mlp_velocity_depends_on_time_and_condition():
    torch.manual_seed(0)
    model = MLPVelocity(3, 16, 2, cond_dim=2)
    x, c = torch.randn(4, 3), torch.randn(4, 2)
    v = model(x, torch.zeros(4), cond=c)
    assert not torch.allclose(v, model(x, torch.ones(4), cond=c))
    assert not torch.allclose(v, model(x, torch.zeros(4), cond=c + 1))


def test_mlp_velocity_rows_are_independent():
    """Row i of the output depends only on row i of x, t and cond."""
    model = MLPVelocity(2, 16, 2, cond_dim=1)
    x, t, c = torch.randn(6, 2), torch.rand(6), torch.randn(6, 1)
    full = model(x, t, cond=c)
    for i in (0, 3):
        torch.testing.assert_close(
            model(x[i : i + 1], t[i : i + 1], cond=c[i : i + 1]), full[i : i + 1]
        )


def test_mlp_velocity_expands_per_group_time_with_batch():
    model = MLPVelocity(2, 8, 1)
    x, batch, t = torch.randn(5, 2), torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0.2, 0.7])
    torch.testing.assert_close(model(x, t, batch=batch), model(x, t[batch]))


def test_mlp_velocity_errors_name_the_argument():
    model = MLPVelocity(2, 8, 1, cond_dim=3)
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="cond_dim=3"):
        model(x, torch.rand(4))
    with pytest.raises(ValueError, match=r"cond must have shape \(4, 3\)"):
        model(x, torch.rand(4), cond=torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        model(torch.randn(4, 3), torch.rand(4), cond=torch.randn(4, 3))
    with pytest.raises(ValueError, match="one time per sample"):
        model(x, torch.rand(3), cond=torch.randn(4, 3))
    with pytest.raises(ValueError, match="cond_dim=0"):
        MLPVelocity(2, 8, 1)(x, torch.rand(4), cond=torch.randn(4, 3))

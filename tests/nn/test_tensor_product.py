"""EdgeTensorProduct computes exactly what e3nn's o3.TensorProduct computes, values and gradients."""

import pytest
import torch
from e3nn import o3

from sciflow.nn.tensor_product import EdgeTensorProduct, hidden_irreps
from sciflow.testing import default_dtype


@pytest.mark.parametrize("lmax", [1, 2])
def test_edge_tensor_product_matches_e3nn(lmax):
    with default_dtype(torch.float64):
        irreps, irreps_sh = hidden_irreps(5, 3, lmax), o3.Irreps.spherical_harmonics(lmax)
        ours = EdgeTensorProduct(irreps, irreps_sh, {ir for _, ir in irreps})
        reference = o3.TensorProduct(
            irreps,
            irreps_sh,
            ours.irreps_out,
            ours.instructions,
            shared_weights=False,
            internal_weights=False,
        )
    assert ours.weight_numel == reference.weight_numel
    assert {ir for _, ir in ours.irreps_out} <= {ir for _, ir in irreps}
    g = torch.Generator().manual_seed(0)
    e = 11
    x = torch.randn(e, irreps.dim, generator=g, dtype=torch.float64, requires_grad=True)
    vec = torch.randn(e, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(e, ours.weight_numel, generator=g, dtype=torch.float64, requires_grad=True)
    y = o3.spherical_harmonics(irreps_sh, vec, normalize=True, normalization="component")

    mine = torch.cat([p.transpose(1, 2).reshape(e, -1) for p in ours(x, y, w)], dim=-1)
    theirs = reference(x, y, w)
    torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
    probe = torch.randn_like(theirs)
    grads_mine = torch.autograd.grad((mine * probe).sum(), (x, vec, w), retain_graph=True)
    grads_theirs = torch.autograd.grad((theirs * probe).sum(), (x, vec, w))
    for a, b in zip(grads_mine, grads_theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_hidden_irreps_rejects_unsupported_lmax():
    assert str(hidden_irreps(4, 2, 1)) == "4x0e+2x1o"
    with pytest.raises(ValueError, match="lmax must be 1 or 2, got 3"):
        hidden_irreps(4, 2, 3)

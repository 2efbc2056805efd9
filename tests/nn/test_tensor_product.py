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
        targets = {ir for _, ir in irreps}
        ours = EdgeTensorProduct(irreps, irreps_sh, targets)
        # the paths written out from the rule (every l_in x l_sh -> l_out among the targets, in
        # that order, one "uvu" slot each), not read back from ours
        paths = [(i, j, mul, ir_out) for i, (mul, ir_in) in enumerate(irreps)
                 for j, (_, ir_sh) in enumerate(irreps_sh)
                 for ir_out in ir_in * ir_sh if ir_out in targets]
        irreps_out = o3.Irreps([(mul, ir_out) for _, _, mul, ir_out in paths])
        instructions = [(i, j, k, "uvu", True) for k, (i, j, _, _) in enumerate(paths)]
        reference = o3.TensorProduct(irreps, irreps_sh, irreps_out, instructions,
                                     shared_weights=False, internal_weights=False)
    assert ours.instructions == instructions and ours.irreps_out == irreps_out
    assert ours.weight_numel == reference.weight_numel
    assert {ir for _, ir in ours.irreps_out} <= targets
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

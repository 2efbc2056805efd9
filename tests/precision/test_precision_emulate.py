"""Whole-program emulation: every op's result is rounded once, views and integers untouched."""

import pytest
import torch

from sciflow.precision import (
    BFLOAT16,
    FLOAT16,
    FLOAT64,
    Emulate,
    Precision,
    RoundingError,
    StateRounding,
    emulate,
    emulate_sweep,
    round_module_,
    round_to,
    sbits,
)


def representable(t: torch.Tensor, fmt=FLOAT16) -> bool:  # noqa: ANN001
    return torch.equal(round_to(t.detach(), fmt), t.detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_op_is_rounded_once_like_rounding_by_hand(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(50, 50, generator=g, dtype=dtype) for _ in range(3))

    def r(t: torch.Tensor) -> torch.Tensor:
        return round_to(t, FLOAT16)

    by_hand = r(r(torch.exp(r(r(r(a @ b) * 0.01) + c))).sum(dim=1))
    with emulate(FLOAT16) as mode:
        got = torch.exp((a @ b) * 0.01 + c).sum(dim=1)
    assert torch.equal(got, by_hand)
    assert mode.op_counts["aten.mm.default"] == 1
    assert mode.elements_rounded > 0


def test_views_and_integer_results_are_not_rounded() -> None:
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    original = x.clone()
    with emulate(FLOAT16):
        v = x.view(101)[3:7].t()
        idx = torch.argmax(x)
    assert torch.equal(x, original)
    assert torch.equal(v, original[3:7])
    assert idx.dtype == torch.int64 and idx.item() == 100


def test_inplace_and_out_variants_are_rounded() -> None:
    a = torch.ones(4)
    out = torch.empty(4)
    with emulate(FLOAT16):
        a.add_(1e-4)
        torch.mul(torch.full((4,), 0.1), 3.0, out=out)
    assert torch.equal(a, torch.ones(4))  # 1 + 1e-4 rounds back to 1 in float16
    tenth = round_to(torch.tensor(0.1), FLOAT16)  # torch.full's value is an op result too
    assert representable(out) and out[0].item() == round_to(tenth * 3.0, FLOAT16).item()


def test_backward_inside_emulation_is_rounded() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x = torch.randn(32, 3)
    with emulate(BFLOAT16):
        loss = net(x).square().mean()
        loss.backward()
    assert representable(loss, BFLOAT16)
    assert all(representable(p.grad, BFLOAT16) for p in net.parameters())


def test_narrowing_cast_rounds_the_wide_value_once() -> None:
    x = torch.tensor([1 + 2.0**-11 + 2.0**-40], dtype=torch.float64)
    with emulate(FLOAT16):
        y = x.to(torch.float32)
        z = torch.empty(1)
        z.copy_(x)
    assert y.item() == 1 + 2.0**-10 and z.item() == 1 + 2.0**-10  # float32 first would give 1.0


def test_stagnation_under_round_to_nearest_and_its_cure_by_stochastic_rounding() -> None:
    """1 + 1e-4, a thousand times: below half an ulp (2^-11), RN never moves; SR is unbiased."""
    steps, inc = 1000, 1e-4
    x = torch.ones(2000)
    with emulate(FLOAT16):
        for _ in range(steps):
            x = x + inc
    assert torch.equal(x, torch.ones(2000))
    y = torch.ones(2000)
    with emulate(FLOAT16, rounding="stochastic", generator=torch.Generator().manual_seed(0)):
        for _ in range(steps):
            y = y + inc
    assert abs(y.double().mean().item() - (1 + steps * inc)) < 2e-3


def test_stochastic_emulation_is_reproducible() -> None:
    x = torch.randn(1000)

    def run(seed: int) -> torch.Tensor:
        with emulate(sbits(5), rounding="stochastic", generator=torch.Generator().manual_seed(seed)):
            return (x * 1.1).cumsum(0)

    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))


def test_state_rounding_and_round_module() -> None:
    x = torch.randn(100, dtype=torch.float64)
    sr = StateRounding(FLOAT16, "stochastic", torch.Generator().manual_seed(0))
    assert representable(sr(x)) and sr(x).dtype == torch.float64
    assert torch.equal(StateRounding(FLOAT16)(x), round_to(x, FLOAT16))
    net = round_module_(torch.nn.Linear(4, 4), FLOAT16)
    assert representable(net.weight) and representable(net.bias)
    with pytest.raises(RoundingError, match="not one of"):
        StateRounding(FLOAT16, "truncate")  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="Format"):
        emulate("float16")  # type: ignore[arg-type]
    with pytest.raises(RoundingError, match="not one of"):
        Emulate(FLOAT16, rounding="odd")  # type: ignore[arg-type]


def test_emulate_sweep_matches_each_arm_emulated_alone() -> None:
    arms = [Precision(FLOAT64), Precision(FLOAT16), Precision(sbits(5)), Precision(BFLOAT16)]
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(40, generator=g, dtype=torch.float64)

    def program(x: torch.Tensor) -> torch.Tensor:  # elementwise: batching changes no arithmetic
        for _ in range(5):
            x = torch.tanh(x * 0.7 + x.roll(1, -1) * 0.3) + 0.5 * x
        return x

    with emulate_sweep(arms):
        batched = program(x0.expand(len(arms), -1).clone())
    for k, arm in enumerate(arms):
        with emulate(arm.fmt):
            alone = program(x0.clone())
        assert torch.equal(batched[k], alone), arm.name
    assert not torch.equal(batched[0], batched[1])


def test_emulate_sweep_rejects_results_without_the_sweep_dimension() -> None:
    with pytest.raises(RoundingError, match="leading dimension"):
        with emulate_sweep([Precision(FLOAT16), Precision(BFLOAT16)]):
            torch.ones(3) * 2

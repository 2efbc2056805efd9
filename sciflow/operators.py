"""Linear forward operators of inverse problems: y = A x, its adjoint A^T and the least-squares
projection onto the measurements.

Each operator acts on a batch of samples x (N, *) and has

- ``forward(x)`` (also ``op(x)``): the measurement A x;
- ``adjoint(y)``: A^T y, so that <A x, y> = <x, A^T y> for every x, y;
- ``project(x, y)`` where it exists in closed form: the point of {x' : A x' = y} nearest to x,
  x + A^+ (y - A x), with A^+ the Moore-Penrose pseudo-inverse (exact data consistency).

:func:`project` uses an operator's own ``project`` and falls back to Landweber iterations
x <- x + (1 / L) A^T (y - A x), L >= ||A||^2 from a power iteration, which converge to the same
nearest consistent point for a consistent y (and to the nearest least-squares point otherwise).

Operators are callables, so they drop into :func:`sciflow.steering.linear_measurement_loss` as
well as into :func:`sciflow.flair.flair`.

- :class:`Mask`: inpainting, cloud removal (observed entries kept, y shaped like x);
- :class:`Downsample`: block means over the last two dimensions (super-resolution);
- :class:`Blur`: a circular convolution over the last two dimensions (deblurring);
- :class:`MatrixOperator`: any matrix on the flattened samples.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = [
    "LinearOperator",
    "Mask",
    "Downsample",
    "Blur",
    "MatrixOperator",
    "project",
    "operator_norm",
]


@runtime_checkable
class LinearOperator(Protocol):
    """A linear forward operator on batches of samples: ``forward`` and ``adjoint``."""

    def forward(self, x: Tensor) -> Tensor: ...

    def adjoint(self, y: Tensor) -> Tensor: ...


def _float(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {kind}")


class _Operator:
    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)  # type: ignore[attr-defined]


class Mask(_Operator):
    """y = M x with M a 0/1 mask (1 = observed); y is shaped like x and zero where unobserved.

    A^T = A (a projection), A^+ = A, and project(x, y) replaces the observed entries of x by y.
    ``mask`` broadcasts against the samples (e.g. (1, C, H, W) for one mask on every sample).
    """

    def __init__(self, mask: Tensor) -> None:
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask must be a tensor of 0/1 or booleans, got {type(mask).__name__}")
        values = mask.to(torch.float64)
        if bool(((values != 0) & (values != 1)).any()):
            raise ValueError("mask must hold only 0 and 1 (or booleans): 1 observed, 0 missing")
        self.mask = mask.to(torch.bool)

    def _m(self, x: Tensor) -> Tensor:
        try:
            torch.broadcast_shapes(self.mask.shape, x.shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(self.mask.shape)} does not broadcast against "
                             f"samples of shape {tuple(x.shape)}") from None
        return self.mask.to(x.device)

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(self._m(x), x, torch.zeros((), dtype=x.dtype, device=x.device))

    def adjoint(self, y: Tensor) -> Tensor:
        return self.forward(y)

    def project(self, x: Tensor, y: Tensor) -> Tensor:
        """x with its observed entries replaced by those of y (exact consistency)."""
        return torch.where(self._m(x), y.to(x.dtype), x)


class Downsample(_Operator):
    """y = block means of x over ``factor`` x ``factor`` pixels of the last two dimensions.

    Shapes: x (N, ..., H, W) with H, W divisible by ``factor`` -> y (N, ..., H/f, W/f).
    A A^T = I / f^2, so A^+ = f^2 A^T (nearest-neighbour upsampling) and the projection is exact.
    """

    def __init__(self, factor: int) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
        self.factor = factor

    def _check(self, x: Tensor) -> None:
        f = self.factor
        if x.dim() < 3 or x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"Downsample(factor={f}) needs samples (N, ..., H, W) with H and W "
                             f"divisible by {f}, got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        lead, (h, w) = x.shape[:-2], x.shape[-2:]
        pooled = F.avg_pool2d(x.reshape(-1, 1, h, w), self.factor)
        return pooled.reshape(*lead, h // self.factor, w // self.factor)

    def adjoint(self, y: Tensor) -> Tensor:
        f = self.factor
        up = y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)
        return up / f**2

    def project(self, x: Tensor, y: Tensor) -> Tensor:
        """x + f^2 A^T (y - A x): each block's mean is set to its measured value."""
        return x + self.factor**2 * self.adjoint(y.to(x.dtype) - self.forward(x))


class Blur(_Operator):
    """y = k * x, the circular convolution of the last two dimensions with a kernel k (kh, kw),
    centred on its middle pixel (odd sizes), computed in Fourier space.

    A^T is the correlation with k. The projection uses the pseudo-inverse of the truncated
    spectrum: frequencies with |K| < rcond max|K| are treated as unmeasured (A^+ is zero there),
    so the result is consistent on every measured frequency and stable where the blur erases
    the signal. Shapes: x, y (N, ..., H, W).
    """

    def __init__(self, kernel: Tensor, *, rcond: float = 1e-3) -> None:
        _float("kernel", kernel)
        if kernel.dim() != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
            raise ValueError(f"kernel must be a 2-D tensor of odd sizes, got shape "
                             f"{tuple(kernel.shape)}")
        if not 0.0 <= rcond < 1.0:
            raise ValueError(f"rcond must lie in [0, 1), got {rcond}")
        self.kernel, self.rcond = kernel, float(rcond)

    def _spectrum(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        kh, kw = self.kernel.shape
        if kh > h or kw > w:
            raise ValueError(f"the kernel {tuple(self.kernel.shape)} is larger than the images "
                             f"({h}, {w})")
        pad = torch.zeros(h, w, dtype=x.dtype, device=x.device)
        pad[:kh, :kw] = self.kernel.to(x.dtype)
        pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
        return torch.fft.fft2(pad)

    def _apply(self, x: Tensor, spectrum: Tensor) -> Tensor:
        return torch.fft.ifft2(torch.fft.fft2(x) * spectrum).real.to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        _float("x", x)
        return self._apply(x, self._spectrum(x))

    def adjoint(self, y: Tensor) -> Tensor:
        return self._apply(y, self._spectrum(y).conj())

    def project(self, x: Tensor, y: Tensor) -> Tensor:
        """x + A^+ (y - A x) with the truncated-spectrum pseudo-inverse."""
        k = self._spectrum(x)
        mag = k.abs()
        keep = mag >= self.rcond * mag.max()
        inverse = torch.where(keep, 1.0 / torch.where(keep, k, torch.ones_like(k)),
                              torch.zeros_like(k))
        return x + self._apply(y.to(x.dtype) - self._apply(x, k), inverse)


class MatrixOperator(_Operator):
    """y = A vec(x) for a matrix A (M, D) on the flattened samples.

    ``sample_shape`` is the shape of one sample (its entries multiply to D; (D,) by default), the
    shape the adjoint returns. Shapes: x (N, *sample_shape) -> y (N, M) -> A^T y (N,
    *sample_shape). The pseudo-inverse is computed once (``torch.linalg.pinv``).
    """

    def __init__(self, matrix: Tensor, *, sample_shape: tuple[int, ...] | None = None) -> None:
        _float("matrix", matrix)
        if matrix.dim() != 2:
            raise ValueError(f"matrix must be (M, D), got shape {tuple(matrix.shape)}")
        shape = (matrix.shape[1],) if sample_shape is None else tuple(sample_shape)
        if torch.Size(shape).numel() != matrix.shape[1]:
            raise ValueError(f"sample_shape {shape} holds {torch.Size(shape).numel()} values but "
                             f"the matrix takes D={matrix.shape[1]}")
        self.matrix, self.sample_shape = matrix, shape
        self.pinv = torch.linalg.pinv(matrix.to(torch.float64)).to(matrix.dtype)

    def _flat(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.matrix.shape[1]:
            raise ValueError(f"the operator takes samples of {self.matrix.shape[1]} values, got "
                             f"{flat.shape[1]} (shape {tuple(x.shape)})")
        return flat

    def forward(self, x: Tensor) -> Tensor:
        return self._flat(x) @ self.matrix.T.to(x.dtype)

    def adjoint(self, y: Tensor) -> Tensor:
        return (y @ self.matrix.to(y.dtype)).reshape(y.shape[0], *self.sample_shape)

    def project(self, x: Tensor, y: Tensor) -> Tensor:
        """x + A^+ (y - A x), reshaped like x."""
        step = (y.to(x.dtype) - self.forward(x)) @ self.pinv.T.to(x.dtype)
        return x + step.reshape(x.shape)


@torch.no_grad()
def operator_norm(op: LinearOperator, like: Tensor, *, iterations: int = 50) -> float:
    """||A||^2 (the largest eigenvalue of A^T A) by power iteration from a fixed start, times
    1.01 so that 1 / value is a safe Landweber step. Shapes: like (N, *) a sample batch."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn(like.shape, generator=g, dtype=torch.float64).to(like)
    value = 0.0
    for _ in range(iterations):
        w = op.adjoint(op.forward(v))
        value = float(w.norm() / v.norm().clamp_min(1e-30))
        v = w / w.norm().clamp_min(1e-30)
    return 1.01 * value


@torch.no_grad()
def project(op: LinearOperator, x: Tensor, y: Tensor, *, steps: int = 100, tol: float = 1e-6,
            lipschitz: float | None = None) -> Tensor:
    """The point of {x' : A x' = y} nearest to x: ``op.project`` where the operator has one, else
    at most ``steps`` Landweber iterations x <- x + (1/L) A^T (y - A x), stopped once
    ||A x - y|| <= tol ||y|| (L = ``lipschitz`` or :func:`operator_norm`).

    Shapes: x (N, *), y like op.forward(x).
    """
    _float("x", x)
    _float("y", y)
    expected = op.forward(x).shape
    if y.shape != expected:
        raise ValueError(f"y has shape {tuple(y.shape)} but the operator maps x of shape "
                         f"{tuple(x.shape)} to {tuple(expected)}")
    exact = getattr(op, "project", None)
    if callable(exact):
        return exact(x, y)
    step = 1.0 / (lipschitz if lipschitz is not None else operator_norm(op, x))
    target = tol * float(y.norm())
    for _ in range(steps):
        residual = y - op.forward(x)
        if float(residual.norm()) <= target:
            break
        x = x + step * op.adjoint(residual)
    return x

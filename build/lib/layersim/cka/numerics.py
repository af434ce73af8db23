"""Floating-point care shared by the CKA estimators: precision modes and centring.

``precision="exact"`` promises results within ``1e-6`` of a float64 computation on the same
input values, whatever the input dtype (float16, bfloat16, float32, float64).  How:

* column means are computed in float64 and subtracted before any product (:func:`shift`),
  so a large common offset, such as the few huge-mean dimensions of a transformer's
  residual stream, causes no cancellation;
* float64 input stays float64; lower-precision input is centred into float32 and the big
  products run in float32, IEEE only (:func:`matmul_precision` overrides
  ``torch.set_float32_matmul_precision``); a float32 sum never runs over more than
  ``budget.MAX_F32_ROWS`` rows (or one layer's features) before it is added in float64;
* a layer whose values would overflow or underflow float32 products is rescaled by an
  exact power of two (CKA is invariant to scaling a layer).

``precision="fast"`` centres with float32 means, lets the feature form accumulate over all
rows in float32, and on CUDA lets float32 matmuls use TF32 tensor cores.  Measured errors of
both modes: ``benchmarks/results/cka_cpu.txt`` and ``benchmarks/results/cka_accuracy_notes.txt``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from . import budget

F64 = torch.float64
F32 = torch.float32


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Pin float32 matmul precision: IEEE for "exact", TF32 on CUDA for "fast".

    ``torch.set_float32_matmul_precision("medium")`` would otherwise make CPU
    float32 matmuls use bfloat16 (and CUDA ones TF32), silently breaking the
    accuracy contract of ``precision="exact"``.  The previous settings are
    restored on exit.
    """
    wanted = [
        (getattr(torch.backends.cuda, "matmul", None), "tf32" if precision == "fast" else "ieee"),
        (getattr(torch.backends.mkldnn, "matmul", None), "ieee"),
    ]
    saved: list[tuple[object, str]] = []
    legacy: tuple[bool, str] | None = None
    try:
        for backend, value in wanted:
            if backend is None:
                continue
            try:
                old = backend.fp32_precision
                backend.fp32_precision = value
            except (AttributeError, RuntimeError):
                continue
            saved.append((backend, old))
        if not saved:  # torch without the fp32_precision API
            legacy = (
                torch.backends.cuda.matmul.allow_tf32,
                torch.get_float32_matmul_precision(),
            )
            torch.backends.cuda.matmul.allow_tf32 = precision == "fast"
            torch.set_float32_matmul_precision("high" if precision == "fast" else "highest")
        yield
    finally:
        for backend, old in reversed(saved):
            backend.fp32_precision = old  # type: ignore[attr-defined]
        if legacy is not None:
            torch.backends.cuda.matmul.allow_tf32 = legacy[0]
            torch.set_float32_matmul_precision(legacy[1])


def product_dtype(layers: Sequence[Tensor], precision: str) -> torch.dtype:
    """float64 when exact mode meets float64 input, else float32."""
    if precision == "exact" and any(x.dtype == F64 for x in layers):
        return F64
    return F32


#: A row whose squared norm is this many times the median one "dominates" (norm ratio 10).
DOMINANT_ROW = 1e2


def dominated_by_few_rows(layers: Sequence[Tensor]) -> bool:
    """Whether some row of some layer has a squared norm over :data:`DOMINANT_ROW` times the
    layer's median (outlier inputs, e.g. a few far larger activations)."""
    for x in layers:
        norms = (x.to(F64) - x.to(F64).mean(0)).pow(2).sum(1)
        median = float(norms.median())
        if median > 0 and float(norms.max()) > DOMINANT_ROW * median:
            return True
    return False


def pow2_scale(amax: float) -> float:
    """A power of two s that brings amax into [1, 2) when amax is outside [2⁻⁴⁰, 2⁴⁰], else 1.

    Scaling by a power of two is exact and CKA is invariant to it; it only keeps float32
    products of extreme values from overflowing or underflowing.
    """
    if not amax > 0.0 or not math.isfinite(amax) or 2.0**-40 <= amax <= 2.0**40:
        return 1.0
    return math.ldexp(1.0, -math.floor(math.log2(amax)))


def shift(
    x: Tensor, by: Tensor, out_dtype: torch.dtype, exact: bool, out: Tensor | None = None
) -> Tensor:
    """``x - by`` in ``out_dtype`` (written into ``out`` if given).

    With ``exact`` and float32 output the float64 ``by`` is split into
    ``hi + lo`` (both float32) and ``(x - hi) - lo`` is formed in float32: the
    first subtraction is exact whenever x is close to hi (Sterbenz), so the
    result is within about one float32 ulp of the correctly rounded float64
    difference, without a float64 copy of the data.
    """
    if out_dtype == F64:
        return torch.sub(x.to(F64), by.to(F64), out=out)
    x32 = x.to(F32)
    if not exact or by.dtype != F64:
        return torch.sub(x32, by.to(F32), out=out)
    hi = by.to(F32)
    lo = (by - hi.to(F64)).to(F32)
    z = torch.sub(x32, hi, out=out)
    return z.sub_(lo)


def _row_steps(x: Tensor) -> range:
    """Row-chunk starts so that a float64 copy of a chunk of ``x`` (..., n, d) fits the budget."""
    n = x.shape[-2]
    per_row = 8 * max(1, x.numel() // max(1, n))
    return range(0, n, max(1, min(n, budget.TEMP_BYTES // per_row)))


def mean64(x: Tensor) -> Tensor:
    """Column means of ``x`` (..., n, d) over the rows, accumulated in float64.

    Row chunks bound the float64 temporary that ``torch.sum(dtype=float64)`` makes.
    """
    steps = _row_steps(x)
    total = torch.sum(x[..., : steps.step, :], dim=-2, dtype=F64)
    for r0 in steps[1:]:
        total += torch.sum(x[..., r0 : r0 + steps.step, :], dim=-2, dtype=F64)
    return total.div_(x.shape[-2])


def column_mean(x: Tensor, exact: bool) -> Tensor:
    """Column means of ``x`` (..., n, d): float64-accurate when exact, float32 otherwise."""
    return mean64(x) if exact else torch.mean(x.to(F32), dim=-2)


def row_sq_norms(z: Tensor, exact: bool = True) -> Tensor:
    """Squared norms (float64) of the rows of ``z`` (..., n, d), summed in float64 if exact."""
    if not exact:
        return torch.linalg.vector_norm(z, dim=-1).square_().to(F64)
    steps = _row_steps(z)
    parts = [
        torch.linalg.vector_norm(z[..., r0 : r0 + steps.step, :], dim=-1, dtype=F64) for r0 in steps
    ]
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)).square_()


def layer_offsets(widths: Sequence[int]) -> list[int]:
    """First column of each layer when the layers sit side by side."""
    offsets = [0]
    for w in widths[:-1]:
        offsets.append(offsets[-1] + w)
    return offsets


def col_layer_index(widths: Sequence[int], device: torch.device) -> Tensor:
    """For every column of the side-by-side layers, the index of its layer."""
    return torch.repeat_interleave(
        torch.arange(len(widths), device=device),
        torch.tensor(widths, device=device),
    )


@dataclass
class Prepared:
    """Centred, power-of-two-rescaled data of a group of layers."""

    z: Tensor  # (n, Σd) in the product dtype
    widths: list[int]
    offsets: list[int]
    r: Tensor  # (L, n) float64 squared row norms of the centred, rescaled rows
    scales: Tensor  # (L,) float64 powers of two applied to each layer

    def layer(self, i: int) -> Tensor:
        return self.z[:, self.offsets[i] : self.offsets[i] + self.widths[i]]

    def stacked(self) -> Tensor | None:
        """(L, n, d) strided view of z when all layers have the same width, else None."""
        if len(set(self.widths)) != 1:
            return None
        n, count, width = self.z.shape[0], len(self.widths), self.widths[0]
        return self.z.view(n, count, width).permute(1, 0, 2)


def _spread(mean: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Largest |x - mean| per layer, from the column ranges (last dimension: columns)."""
    lo, hi = lo.to(mean.dtype), hi.to(mean.dtype)
    return torch.maximum(hi - mean, mean - lo).amax(-1)


def prepare(
    layers: Sequence[Tensor],
    precision: str,
    prod_dtype: torch.dtype,
    ranges: Sequence[tuple[Tensor, Tensor]],
    stacked: Tensor | None = None,
) -> Prepared:
    """Centre every layer (mean subtracted before any product) into one (n, Σd) matrix.

    ``ranges`` holds each layer's per-column (min, max), which bound the centred values;
    ``stacked`` is the (L, n, d) input when there was one (then a few batched operations
    replace a few per layer).
    """
    exact = precision == "exact"
    n = layers[0].shape[0]
    widths = [int(x.shape[1]) for x in layers]
    offsets = layer_offsets(widths)
    device = layers[0].device
    z_all = torch.empty((n, sum(widths)), dtype=prod_dtype, device=device)
    scales = torch.empty(len(layers), dtype=F64)
    if stacked is not None:
        mean = column_mean(stacked, exact)
        zs = z_all.view(n, len(layers), widths[0]).permute(1, 0, 2)
        shift(stacked, mean.unsqueeze(1), prod_dtype, exact, out=zs)
        lo = torch.stack([t for t, _ in ranges])
        hi = torch.stack([t for _, t in ranges])
        for i, bound in enumerate(_spread(mean, lo, hi).tolist()):
            scales[i] = pow2_scale(bound)
            if scales[i] != 1.0:
                zs[i].mul_(float(scales[i]))
        return Prepared(z_all, widths, offsets, row_sq_norms(zs, exact), scales.to(device))
    r = torch.empty((len(layers), n), dtype=F64, device=device)
    for i, x in enumerate(layers):
        mean = column_mean(x, exact)
        z = shift(x, mean, prod_dtype, exact, out=z_all[:, offsets[i] : offsets[i] + widths[i]])
        scale = pow2_scale(float(_spread(mean, *ranges[i])))
        if scale != 1.0:
            z.mul_(scale)
        scales[i] = scale
        r[i] = row_sq_norms(z, exact)
    return Prepared(z_all, widths, offsets, r, scales.to(device))

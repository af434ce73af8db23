"""Centred kernel alignment (CKA) between layer representations.

CKA (Kornblith, Norouzi, Lee & Hinton, 2019, "Similarity of Neural Network
Representations Revisited") compares two representations ``x`` (n, d1) and ``y``
(n, d2) of the same ``n`` examples.  With the centred Gram matrices
``K = H x xᵀ H`` and ``L = H y yᵀ H`` (``H = I - 11ᵀ/n``)::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

For the linear kernel and column-centred ``x``, ``y`` this equals
``‖xᵀy‖²_F / (‖xᵀx‖_F ‖yᵀy‖_F)``.

Two HSIC estimators are offered:

* ``debiased=False``: the biased estimator ``tr(KHLH) / (n-1)²`` (Gretton et al.
  2005), as in Kornblith et al. (2019).  Its value for independent data is
  positive and grows with ``d / n``.
* ``debiased=True``: the unbiased estimator of Song et al. (2012)::

      HSIC_u = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1] / (n(n-3))

  with ``K̃``, ``L̃`` the Gram matrices with zeroed diagonals.  Debiased CKA is
  close to 0 for independent data and **can be negative**; it is never clamped.
  It needs ``n >= 4``.

Everything in this module works on tensors of any device, never returns a silent
NaN (bad input raises :class:`ValueError` saying what is wrong, where, and what
to do) and returns ``torch.float64`` results.  Results are computed under
``torch.no_grad()`` and are not differentiable.

**Precision.** ``precision="exact"`` (default) gives results within ``1e-6`` of a
float64 computation on the same input values, whatever the input dtype
(float16, bfloat16, float32, float64):

* column means are computed in float64 and subtracted before any product, so a
  large common offset (e.g. the few huge-mean dimensions of a transformer's
  residual stream) causes no cancellation;
* float64 input is processed in float64 throughout;
* lower-precision input is centred (float64-accurate) into float32, and the big
  matrix products run in float32, IEEE only (never TF32 or bfloat16, whatever
  ``torch.set_float32_matmul_precision`` says; the setting is restored
  afterwards).  A float32 sum never runs over more than 4096 rows (or, for a
  Gram entry, the ``d`` features of one layer) before it is added in float64,
  and all other reductions are float64.  Measured on CPU against a float64
  oracle, 13 layers × 768, residual-stream data in float32, bfloat16 and
  float16, n = 2000 and 5000, 4 dimensions offset by 0, 30 or 300: max abs
  error ≤ 6e-9 in the Gram form and ≤ 4e-8 in the feature form, biased and
  debiased; a Gram-form check with d = 50,000 features gave 2e-9.

``precision="fast"`` centres in float32 (float32 column means) and, in the
feature form, accumulates products over all rows in float32; on CUDA it also
lets float32 matmuls use TF32 tensor cores.  On CPU this changes little: the
same measurements gave max abs error ≤ 6e-9 (Gram form) and ≤ 5e-8 (feature
form).  On GPU, measured on an NVIDIA H200 for a plain centred feature-space
formulation (n = 20,000, 13 layers × 768) against float64: TF32 products about
``5e-5`` and bfloat16 products about ``3e-4`` max abs error; that was a similar
formulation, not yet this exact code (bfloat16 products are not used here).

**Formulations.** Linear CKA for all layer pairs is computed from the squared
Frobenius norms ``P_ab = ‖X_aᵀX_b‖²_F = <K_a, K_b>_F`` of centred data plus,
for the debiased estimator, the centred row norms ``r_i = ‖x_i‖²``: for centred
data ``K̃1 = -r``, so ``tr(K̃L̃) = P - rᵀs``, ``1ᵀK̃1 = -Σr`` and
``1ᵀK̃L̃1 = rᵀs``.  ``P`` is obtained either

* in the **Gram form**: each layer's ``n×n`` Gram is built a block of rows at a
  time, only the upper triangle of row blocks (Grams are symmetric; blocks off
  the diagonal count twice), and for every row the inner products of all layer
  pairs are one small batched matmul, summed over rows in float64.  Memory is a
  fixed chunk budget (256 MiB), never ``L·n²``; or
* in the **feature form**: the blocks ``X_aᵀX_b`` of the feature
  cross-covariance, only the upper triangle of layer blocks for a
  self-comparison, accumulated over row chunks and reduced to their squared
  norms at once, so the full ``Σd×Σd`` matrix is never held.

:func:`cka_matrix` picks the cheaper: the Gram form costs about ``n²·Σd/2``
multiply-adds, the feature form about ``n·(Σd)²/2`` (self-comparison), so the
Gram form wins roughly when ``n < Σd`` (13 layers × 768: n below about 8,500).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "CKAAccumulator",
    "Layers",
    "MinibatchCKA",
    "cka_matrix",
    "linear_cka",
    "rbf_cka",
]

#: A stack of layer representations: an ``(L, n, d)`` tensor or a sequence of
#: ``(n, d_l)`` tensors (widths may differ between layers).
Layers = Tensor | Sequence[Tensor]

_KERNELS = ("linear", "rbf")
_PRECISIONS = ("exact", "fast")
_METHODS = ("auto", "gram", "feature")

_F64 = torch.float64
_F32 = torch.float32

#: Bytes of temporaries one step of a chunked computation may allocate.
_CHUNK_BYTES = 256 * 2**20
#: At most this many bytes of n×n RBF Gram matrices are held at once.
_GRAM_BYTES = 2 * 2**30
#: A float32 product sums at most this many rows before being added in float64.
_MAX_F32_ROWS = 4096
#: Bound on the float64 temporaries of float64-accumulated reductions.
_TEMP_BYTES = 64 * 2**20


# ----------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------


def _check_choice(value: object, name: str, options: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"unknown {name} {value!r}; expected one of {', '.join(repr(o) for o in options)}."
        )


def _as_layers(xs: Layers, name: str) -> tuple[list[Tensor], list[str], Tensor | None]:
    """Turn an (L, n, d) tensor or a sequence of (n, d) tensors into a list + labels.

    The third item is the (L, n, d) tensor itself when one was given (batched fast paths).
    """
    stacked = None
    if isinstance(xs, Tensor):
        if xs.ndim != 3:
            hint = " For a single layer use linear_cka(x, y) or pass [x]." if xs.ndim == 2 else ""
            raise ValueError(
                f"{name} must be a 3-D tensor (L, n, d) or a sequence of 2-D (n, d_l) "
                f"tensors; got a {xs.ndim}-D tensor of shape {tuple(xs.shape)}.{hint}"
            )
        layers = list(xs.unbind(0))
        stacked = xs
    elif isinstance(xs, Sequence) and not isinstance(xs, (str, bytes)):
        layers = list(xs)
    else:
        raise ValueError(
            f"{name} must be a 3-D tensor (L, n, d) or a sequence of 2-D (n, d_l) tensors; "
            f"got {type(xs).__name__}."
        )
    if len(layers) == 0:
        raise ValueError(f"{name} holds no layers; pass at least one (n, d) tensor.")
    labels = [f"{name}[{i}]" for i in range(len(layers))]
    for x, label in zip(layers, labels, strict=True):
        if not isinstance(x, Tensor):
            raise ValueError(f"{label} must be a torch.Tensor; got {type(x).__name__}.")
        if x.ndim != 2:
            raise ValueError(
                f"{label} must be 2-D (n examples, d features); got shape {tuple(x.shape)}. "
                "Flatten feature maps first, e.g. x.reshape(x.shape[0], -1)."
            )
    return layers, labels, stacked


def _check_tensor(x: Tensor, label: str) -> None:
    if not x.is_floating_point():
        raise ValueError(
            f"{label} has dtype {x.dtype}; CKA needs a floating-point tensor. "
            "Convert it with .float()."
        )
    if x.shape[1] == 0:
        raise ValueError(f"{label} has shape {tuple(x.shape)} with no features (d = 0).")


def _column_ranges(x: Tensor, label: str) -> tuple[Tensor, Tensor]:
    """Per-column min and max; raises if the layer holds NaN or Inf."""
    lo, hi = torch.amin(x, dim=0), torch.amax(x, dim=0)  # NaN propagates; faster than aminmax
    if not bool(torch.isfinite(lo).all() & torch.isfinite(hi).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{label} contains NaN or Inf ({bad} non-finite values in shape {tuple(x.shape)}). "
            "Check the model for overflow (e.g. float16 activations) or drop those examples."
        )
    return lo, hi


def _constant_error(label: str) -> ValueError:
    return ValueError(
        f"{label} is constant: every row (example) is identical, so its centred "
        "representation is zero and CKA is undefined (0/0). Remove this layer or check "
        "that its activations vary across examples."
    )


@torch.no_grad()
def _validate(
    groups: Sequence[tuple[list[Tensor], list[str], Tensor | None]],
    *,
    min_rows: int,
    debiased: bool,
    check_constant: bool,
    context: str = "",
) -> list[list[tuple[Tensor, Tensor]]]:
    """Check dtype, rows, finiteness and (optionally) constancy of every layer.

    Returns the per-column (min, max) of every layer, group by group.
    """
    first_x, first_label = groups[0][0][0], groups[0][1][0]
    n = first_x.shape[0]
    device = first_x.device
    for layers, labels, _ in groups:
        for x, label in zip(layers, labels, strict=True):
            _check_tensor(x, label)
            if x.device != device:
                raise ValueError(
                    f"{label} is on {x.device} but {first_label} is on {device}; move all "
                    "layers to one device."
                )
            if x.shape[0] != n:
                raise ValueError(
                    f"{label} has {x.shape[0]} rows but {first_label} has {n} rows{context}; "
                    "every layer must hold the same examples, one per row, in the same order."
                )
    if n < min_rows:
        which = "debiased CKA (the unbiased HSIC estimator)" if debiased else "CKA"
        fix = "" if not debiased else " or use debiased=False"
        raise ValueError(
            f"{which} needs at least {min_rows} rows (examples){context}; got n = {n} "
            f"(shape {tuple(first_x.shape)}). Pass more examples{fix}."
        )
    ranges: list[list[tuple[Tensor, Tensor]]] = []
    for layers, labels, stacked in groups:
        if stacked is not None:  # two batched reductions instead of two per layer
            lo_all, hi_all = torch.amin(stacked, dim=1), torch.amax(stacked, dim=1)
            finite = torch.isfinite(lo_all).all(1) & torch.isfinite(hi_all).all(1)
            if not bool(finite.all()):
                i = int(torch.nonzero(~finite)[0])
                _column_ranges(layers[i], labels[i])  # raises, naming the layer
            if check_constant:
                const = (lo_all == hi_all).all(1)
                if bool(const.any()):
                    raise _constant_error(labels[int(torch.nonzero(const)[0])])
            ranges.append(list(zip(lo_all.unbind(0), hi_all.unbind(0), strict=True)))
            continue
        ranges.append([])
        for x, label in zip(layers, labels, strict=True):
            lo, hi = _column_ranges(x, label)
            if check_constant and bool(torch.equal(lo, hi)):
                raise _constant_error(label)
            ranges[-1].append((lo, hi))
    return ranges


# ----------------------------------------------------------------------------
# Numerics helpers
# ----------------------------------------------------------------------------


@contextlib.contextmanager
def _matmul_precision(precision: str) -> Iterator[None]:
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


def _product_dtype(layers: Sequence[Tensor], precision: str) -> torch.dtype:
    if precision == "exact" and any(x.dtype == _F64 for x in layers):
        return _F64
    return _F32


def _pow2_scale(amax: float) -> float:
    """A power of two s that brings amax into [1, 2) when amax is outside [2⁻⁴⁰, 2⁴⁰], else 1.

    Scaling by a power of two is exact and CKA is invariant to it; it only keeps float32
    products of extreme values from overflowing or underflowing.
    """
    if not amax > 0.0 or not math.isfinite(amax) or 2.0**-40 <= amax <= 2.0**40:
        return 1.0
    return math.ldexp(1.0, -math.floor(math.log2(amax)))


def _shift(
    x: Tensor, shift: Tensor, out_dtype: torch.dtype, exact: bool, out: Tensor | None = None
) -> Tensor:
    """``x - shift`` in ``out_dtype`` (written into ``out`` if given).

    With ``exact`` and float32 output the float64 ``shift`` is split into
    ``hi + lo`` (both float32) and ``(x - hi) - lo`` is formed in float32: the
    first subtraction is exact whenever x is close to hi (Sterbenz), so the
    result is within about one float32 ulp of the correctly rounded float64
    difference, without a float64 copy of the data.
    """
    if out_dtype == _F64:
        xd = x if x.dtype == _F64 else x.to(_F64)
        return torch.sub(xd, shift.to(_F64), out=out)
    x32 = x if x.dtype == _F32 else x.to(_F32)
    if not exact or shift.dtype != _F64:
        return torch.sub(x32, shift.to(_F32), out=out)
    hi = shift.to(_F32)
    lo = (shift - hi.to(_F64)).to(_F32)
    z = torch.sub(x32, hi, out=out)
    return z.sub_(lo)


def _row_steps(x: Tensor) -> range:
    """Row-chunk starts so that a float64 copy of a chunk of ``x`` (..., n, d) fits 64 MiB."""
    n = x.shape[-2]
    per_row = 8 * max(1, x.numel() // max(1, n))
    return range(0, n, max(1, min(n, _TEMP_BYTES // per_row)))


def _mean64(x: Tensor) -> Tensor:
    """Column means of ``x`` (..., n, d) over the rows, accumulated in float64.

    Row chunks bound the float64 temporary that ``torch.sum(dtype=float64)`` makes.
    """
    steps = _row_steps(x)
    total = torch.sum(x[..., : steps.step, :], dim=-2, dtype=_F64)
    for r0 in steps[1:]:
        total += torch.sum(x[..., r0 : r0 + steps.step, :], dim=-2, dtype=_F64)
    return total.div_(x.shape[-2])


def _row_sq_norms(z: Tensor) -> Tensor:
    """Squared norms of the rows of ``z`` (..., n, d), accumulated in float64."""
    steps = _row_steps(z)
    parts = [
        torch.linalg.vector_norm(z[..., r0 : r0 + steps.step, :], dim=-1, dtype=_F64)
        for r0 in steps
    ]
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)).square_()


@dataclass
class _Prepared:
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


def _prepare(
    layers: Sequence[Tensor],
    precision: str,
    prod_dtype: torch.dtype,
    ranges: Sequence[tuple[Tensor, Tensor]],
    stacked: Tensor | None = None,
) -> _Prepared:
    """Centre every layer (mean subtracted before any product) into one (n, Σd) matrix.

    ``ranges`` holds each layer's per-column (min, max), which bound the centred values;
    ``stacked`` is the (L, n, d) input when there was one (then a few batched operations
    replace a few per layer).
    """
    exact = precision == "exact"
    n = layers[0].shape[0]
    widths = [int(x.shape[1]) for x in layers]
    offsets = [0]
    for w in widths[:-1]:
        offsets.append(offsets[-1] + w)
    device = layers[0].device
    z_all = torch.empty((n, sum(widths)), dtype=prod_dtype, device=device)
    r = torch.empty((len(layers), n), dtype=_F64, device=device)
    scales = torch.empty(len(layers), dtype=_F64)
    if stacked is not None:
        mean = (
            _mean64(stacked)
            if exact
            else torch.mean(stacked if stacked.dtype == _F32 else stacked.to(_F32), dim=1)
        )
        zs = z_all.view(n, len(layers), widths[0]).permute(1, 0, 2)
        _shift(stacked, mean.unsqueeze(1), prod_dtype, exact, out=zs)
        lo = torch.stack([t for t, _ in ranges]).to(mean.dtype)
        hi = torch.stack([t for _, t in ranges]).to(mean.dtype)
        bounds = torch.maximum(hi - mean, mean - lo).amax(1).tolist()
        for i, bound in enumerate(bounds):
            scales[i] = _pow2_scale(bound)
            if scales[i] != 1.0:
                zs[i].mul_(float(scales[i]))
        if exact:
            r = _row_sq_norms(zs)
        else:
            r = torch.linalg.vector_norm(zs, dim=-1).square_().to(_F64)
        return _Prepared(z_all, widths, offsets, r, scales.to(device))
    for i, x in enumerate(layers):
        if exact:
            mean = _mean64(x)
        else:
            mean = torch.mean(x if x.dtype == _F32 else x.to(_F32), dim=0)
        z = _shift(x, mean, prod_dtype, exact, out=z_all[:, offsets[i] : offsets[i] + widths[i]])
        lo, hi = (t.to(mean.dtype) for t in ranges[i])
        scale = _pow2_scale(float(torch.maximum(hi - mean, mean - lo).max()))
        if scale != 1.0:
            z.mul_(scale)
        scales[i] = scale
        r[i] = _row_sq_norms(z) if exact else torch.linalg.vector_norm(z, dim=-1).square_()
    return _Prepared(z_all, widths, offsets, r, scales.to(device))


# ----------------------------------------------------------------------------
# Sufficient statistics and the final formula
# ----------------------------------------------------------------------------


@dataclass
class _Stats:
    """What CKA needs: P = ‖XᵀY‖²_F, R = rᵀs and Σr for every pair (float64)."""

    n: int
    p_xy: Tensor  # (La, Lb)
    p_xx: Tensor  # (La,)
    p_yy: Tensor  # (Lb,)
    r_xy: Tensor  # (La, Lb)   Σ_i r_i^a s_i^b
    r_xx: Tensor  # (La,)
    r_yy: Tensor  # (Lb,)
    s_x: Tensor  # (La,)      Σ_i r_i^a
    s_y: Tensor  # (Lb,)
    self_mode: bool


def _numerators(st: _Stats, debiased: bool) -> tuple[Tensor, Tensor, Tensor]:
    """n(n-3)·HSIC_u (debiased) or ‖XᵀY‖² ∝ HSIC_0 (biased) for xy, xx and yy."""
    if not debiased:
        num_xy, num_xx, num_yy = st.p_xy, st.p_xx, st.p_yy
    else:
        n = st.n
        a = n / (n - 2)
        c = 1.0 / ((n - 1) * (n - 2))
        num_xy = st.p_xy - a * st.r_xy + c * torch.outer(st.s_x, st.s_y)
        num_xx = st.p_xx - a * st.r_xx + c * st.s_x * st.s_x
        num_yy = st.p_yy - a * st.r_yy + c * st.s_y * st.s_y
    if st.self_mode:
        upper = torch.triu(num_xy)
        num_xy = upper + torch.triu(num_xy, 1).T
        num_xx = num_yy = torch.diagonal(num_xy).clone()
    return num_xy, num_xx, num_yy


def _degenerate_error(label: str, value: float, debiased: bool) -> ValueError:
    if debiased:
        return ValueError(
            f"{label}: its debiased self-HSIC is {value:.3g} (must be > 0), so debiased CKA "
            "is undefined. The representation is (nearly) constant or has too few distinct "
            "rows; pass more examples or use debiased=False."
        )
    return ValueError(
        f"{label}: its self-HSIC is {value:.3g} (must be > 0), so CKA is undefined (0/0). "
        "The centred representation is zero or underflows; remove this layer or rescale it."
    )


def _ratio(
    num_xy: Tensor,
    num_xx: Tensor,
    num_yy: Tensor,
    labels_x: Sequence[str],
    labels_y: Sequence[str],
    debiased: bool,
) -> Tensor:
    """num_xy / sqrt(num_xx ⊗ num_yy) with checks; exact 1 where num_xy is num_xx."""
    for vals, labels in ((num_xx, labels_x), (num_yy, labels_y)):
        bad = ~(vals > 0)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise _degenerate_error(labels[i], float(vals[i]), debiased)
    # sqrt(v·v) == v exactly in IEEE arithmetic, so self-similarities come out as 1.
    out = num_xy / torch.sqrt(torch.outer(num_xx, num_yy))
    if not bool(torch.isfinite(out).all()):
        raise ValueError(
            "CKA came out non-finite (overflow in an intermediate). Rescale the inputs "
            "(CKA is invariant to scaling each layer) and retry."
        )
    return out


# ----------------------------------------------------------------------------
# Gram form
# ----------------------------------------------------------------------------


def _gram_block_rows(n: int, n_layers: int, itemsize: int) -> int:
    """Rows per block: about 4 blocks (the upper triangle is then ≈ 62 % of the full Grams;
    more, smaller blocks save little work but add per-call overhead), memory-capped."""
    by_memory = _CHUNK_BYTES // max(1, itemsize * n_layers * n)
    target = max(256, -(-n // 4))
    return max(1, min(n, by_memory, target))


class _GramRows:
    """Row blocks of the Gram matrices of all layers of one or two groups, in one reused
    buffer (layers of the first group first)."""

    def __init__(self, preps: Sequence[_Prepared], step: int) -> None:
        self.parts = [
            (prep.stacked(), [prep.layer(i) for i in range(len(prep.widths))]) for prep in preps
        ]
        self.count = sum(len(zs) for _, zs in self.parts)
        n = preps[0].z.shape[0]
        size = self.count * step * max(step, n - step)
        self.buf = torch.empty(size, dtype=preps[0].z.dtype, device=preps[0].z.device)

    def block(self, s: int, e: int, c0: int, c1: int) -> Tensor:
        """(b, L, c1-c0) view: rows s:e and columns c0:c1 of every layer's Gram."""
        b = e - s
        out = self.buf[: self.count * b * (c1 - c0)].view(self.count, b, c1 - c0)
        i0 = 0
        for stack, zs in self.parts:
            if stack is not None:  # equal widths: one batched matmul for all layers
                sub = out[i0 : i0 + len(zs)]
                torch.bmm(stack[:, s:e], stack[:, c0:c1].transpose(1, 2), out=sub)
            else:
                for i, z in enumerate(zs):
                    torch.matmul(z[s:e], z[c0:c1].T, out=out[i0 + i])
            i0 += len(zs)
        if c0 == s:  # diagonal block: drop K_ii (tr(K̃L̃) uses zero-diagonal Grams)
            out.diagonal(offset=0, dim1=1, dim2=2).zero_()
        return out.transpose(0, 1)


def _gram_offdiag_products(px: _Prepared, py: _Prepared | None) -> tuple[Tensor, Tensor, Tensor]:
    """T_ab = Σ_{i≠j} K^a_ij L^b_ij = tr(K̃_a L̃_b) for all pairs, in float64.

    Only the upper triangle of row blocks is formed (Grams are symmetric; blocks
    right of the diagonal count twice).  For each row ``i`` the sums over at most
    4096 columns of ``K^a_ij L^b_ij`` for all layer pairs are one small batched
    matmul in the product dtype; those per-row partial sums are added in float64.
    """
    n = px.z.shape[0]
    device = px.z.device
    preps = [px] if py is None else [px, py]
    la = len(px.widths)
    total = sum(len(p.widths) for p in preps)
    joint = torch.zeros((total, total), dtype=_F64, device=device)
    step = _gram_block_rows(n, total, px.z.element_size())
    grams = _GramRows(preps, step)
    # per-row partial sums (float32) wait in two buffers, one per weight, until summed in
    # float64: one reduction per buffer instead of one per block
    cap = max(step, 2**22 // (total * total))
    pending = {w: torch.empty((cap, total, total), dtype=px.z.dtype, device=device) for w in (1, 2)}
    filled = {1: 0, 2: 0}

    def flush(weight: int) -> None:
        nonlocal joint
        if filled[weight]:
            joint += weight * pending[weight][: filled[weight]].sum(0, dtype=_F64)
            filled[weight] = 0

    for s in range(0, n, step):
        e = min(n, s + step)
        # the diagonal block (weight 1), then the blocks to its right (weight 2)
        pieces = [(s, e, 1)] + [
            (c0, min(n, c0 + _MAX_F32_ROWS), 2) for c0 in range(e, n, _MAX_F32_ROWS)
        ]
        for c0, c1, weight in pieces:
            g = grams.block(s, e, c0, c1)
            if filled[weight] + (e - s) > cap:
                flush(weight)
            k = filled[weight]
            torch.bmm(g, g.transpose(1, 2), out=pending[weight][k : k + e - s])
            filled[weight] = k + e - s
    flush(1)
    flush(2)
    diag = torch.diagonal(joint).clone()
    if py is None:
        return joint, diag, diag
    return joint[:la, la:].clone(), diag[:la], diag[la:]


# ----------------------------------------------------------------------------
# Feature form
# ----------------------------------------------------------------------------


def _block_sq_norms(
    za: Tensor,
    zc: Tensor,
    col_layer: Tensor,
    n_out: int,
    rows_per: int,
    reduce_dtype: torch.dtype,
) -> Tensor:
    """Squared Frobenius norms of the column blocks of zaᵀ zc (block id per column in
    ``col_layer``), accumulating over row chunks in ``reduce_dtype``."""
    n, wa = za.shape
    out = torch.zeros(n_out, dtype=_F64, device=za.device)
    piece = max(1, _CHUNK_BYTES // max(1, 12 * wa))
    for c0 in range(0, zc.shape[1], piece):
        c1 = min(zc.shape[1], c0 + piece)
        acc: Tensor | None = None
        for r0 in range(0, n, rows_per):
            r1 = min(n, r0 + rows_per)
            prod = za[r0:r1].T @ zc[r0:r1, c0:c1]
            if acc is None:
                acc = prod if prod.dtype == reduce_dtype else prod.to(reduce_dtype)
            else:
                acc.add_(prod)
        assert acc is not None
        col_sq = (acc * acc).sum(0).to(_F64)
        out.index_add_(0, col_layer[c0:c1], col_sq)
    return out


def _col_layer_index(widths: Sequence[int], device: torch.device) -> Tensor:
    return torch.repeat_interleave(
        torch.arange(len(widths), device=device),
        torch.tensor(widths, device=device),
    )


def _feature_products(
    px: _Prepared, py: _Prepared | None, exact: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """P_ab = ‖X_aᵀ Y_b‖²_F for all needed pairs (upper triangle when self)."""
    n = px.z.shape[0]
    device = px.z.device
    low = px.z.dtype != _F64
    rows_per = _MAX_F32_ROWS if (exact and low) else n
    reduce_dtype = _F64 if exact else px.z.dtype
    la = len(px.widths)
    col_x = _col_layer_index(px.widths, device)
    if py is None:
        p = torch.zeros((la, la), dtype=_F64, device=device)
        for a in range(la):
            off = px.offsets[a]
            p[a, a:] = _block_sq_norms(
                px.layer(a), px.z[:, off:], col_x[off:] - a, la - a, rows_per, reduce_dtype
            )
        p = torch.triu(p) + torch.triu(p, 1).T
        d = torch.diagonal(p).clone()
        return p, d, d
    lb = len(py.widths)
    col_y = _col_layer_index(py.widths, device)
    zero = lambda w: torch.zeros(w, dtype=torch.long, device=device)  # noqa: E731
    p_xy = torch.empty((la, lb), dtype=_F64, device=device)
    p_xx = torch.empty(la, dtype=_F64, device=device)
    p_yy = torch.empty(lb, dtype=_F64, device=device)
    for a in range(la):
        za = px.layer(a)
        p_xy[a] = _block_sq_norms(za, py.z, col_y, lb, rows_per, reduce_dtype)
        p_xx[a] = _block_sq_norms(za, za, zero(za.shape[1]), 1, rows_per, reduce_dtype)[0]
    for b in range(lb):
        zb = py.layer(b)
        p_yy[b] = _block_sq_norms(zb, zb, zero(zb.shape[1]), 1, rows_per, reduce_dtype)[0]
    return p_xy, p_xx, p_yy


# ----------------------------------------------------------------------------
# Choice of formulation and the one-shot linear statistics
# ----------------------------------------------------------------------------


def _method_costs(n: int, wx: Sequence[int], wy: Sequence[int] | None) -> tuple[float, float]:
    """Approximate multiply-adds (float32-equivalent) of the Gram and feature forms."""
    la = len(wx)
    sx = sum(wx)
    if wy is None:
        suffix = [sum(wx[i:]) for i in range(la)]
        feature = n * sum(w * s for w, s in zip(wx, suffix, strict=True))
        gram = 0.6 * n * n * sx + 1.5 * n * n * la * (la + 1)
    else:
        sy = sum(wy)
        feature = n * (sum(w * w for w in wx) + sx * sy + sum(w * w for w in wy))
        gram = 0.6 * n * n * (sx + sy) + 1.5 * n * n * (la * len(wy) + la + len(wy))
    return float(gram), float(feature)


def _choose_method(n: int, wx: Sequence[int], wy: Sequence[int] | None) -> str:
    gram, feature = _method_costs(n, wx, wy)
    return "gram" if gram <= feature else "feature"


def _linear_stats(
    xs: Sequence[Tensor],
    ys: Sequence[Tensor] | None,
    precision: str,
    method: str,
    ranges: Sequence[Sequence[tuple[Tensor, Tensor]]],
    stacked: tuple[Tensor | None, Tensor | None] = (None, None),
) -> tuple[_Stats, Tensor, Tensor]:
    """One-shot sufficient statistics of linear CKA (inputs validated; ``ranges`` as
    returned by :func:`_validate`).

    Returns the statistics of the rescaled data and the per-layer power-of-two
    scales (x and y) that were applied.
    """
    exact = precision == "exact"
    prod = _product_dtype(list(xs) + list(ys or []), precision)
    n = xs[0].shape[0]
    px = _prepare(xs, precision, prod, ranges[0], stacked[0])
    py = None if ys is None else _prepare(ys, precision, prod, ranges[1], stacked[1])
    if method == "auto":
        method = _choose_method(n, px.widths, None if py is None else py.widths)
    r_x = px.r
    r_y = r_x if py is None else py.r
    r_xy = r_x @ r_y.T
    r_xx = (r_x * r_x).sum(1)
    r_yy = r_xx if py is None else (r_y * r_y).sum(1)
    if method == "gram":
        t_xy, t_xx, t_yy = _gram_offdiag_products(px, py)
        p_xy, p_xx, p_yy = t_xy + r_xy, t_xx + r_xx, t_yy + r_yy
    else:
        p_xy, p_xx, p_yy = _feature_products(px, py, exact)
    st = _Stats(
        n=n,
        p_xy=p_xy,
        p_xx=p_xx,
        p_yy=p_yy,
        r_xy=r_xy,
        r_xx=r_xx,
        r_yy=r_yy,
        s_x=r_x.sum(1),
        s_y=r_y.sum(1),
        self_mode=py is None,
    )
    return st, px.scales, (px.scales if py is None else py.scales)


# ----------------------------------------------------------------------------
# RBF kernel
# ----------------------------------------------------------------------------


def _median_all(v: Tensor) -> Tensor:
    """Median of all entries with numpy's convention (mean of the two middle ones)."""
    flat = v.reshape(-1)
    count = flat.numel()
    k = (count + 1) // 2
    lower = torch.kthvalue(flat, k).values
    if count % 2 == 1:
        return lower
    upper = torch.kthvalue(flat, k + 1).values
    return (lower + upper) / 2


def _rbf_centred_gram(
    x: Tensor, label: str, threshold: float, debiased: bool, dtype: torch.dtype
) -> Tensor:
    """RBF Gram of one layer, H-centred (biased) or U-centred (debiased)."""
    z = _shift(x, _mean64(x), dtype, exact=True)
    sq = (z * z).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    d2.clamp_(min=0.0)
    d2.fill_diagonal_(0.0)
    med = _median_all(d2)
    if not float(med) > 0.0:
        raise ValueError(
            f"{label}: the median squared distance between its rows is 0 (at least half of "
            "the row pairs, counting each row with itself, are identical), so the RBF "
            "bandwidth would be zero. Remove duplicate examples, pass more distinct "
            "examples, or use the linear kernel."
        )
    k = torch.exp(d2.div_(-2.0 * threshold**2 * med))
    n = k.shape[0]
    if not debiased:
        m = k.mean(0)
        return k - m[:, None] - m[None, :] + m.mean()
    # U-centring (Szekely & Rizzo 2014): zero diagonal, subtract row/column sums/(n-2),
    # add the total/((n-1)(n-2)), zero the diagonal again.  <U(K), U(L)> = n(n-3) HSIC_u.
    k.fill_diagonal_(0.0)
    means = k.sum(0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    k -= means[:, None]
    k -= means[None, :]
    k.fill_diagonal_(0.0)
    return k


def _rbf_numerators(
    xs: Sequence[Tensor],
    labels_x: Sequence[str],
    ys: Sequence[Tensor] | None,
    labels_y: Sequence[str],
    threshold: float,
    debiased: bool,
    precision: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """Frobenius inner products of centred RBF Grams, holding at most ~_GRAM_BYTES."""
    dtype = _F64 if precision == "exact" else _F32
    layers = list(xs) + list(ys or [])
    labels = list(labels_x) + list(labels_y if ys is not None else [])
    la = len(xs)
    n = xs[0].shape[0]
    device = xs[0].device
    per_gram = n * n * (8 if dtype == _F64 else 4)
    group = max(1, _GRAM_BYTES // (2 * per_gram))
    total = len(layers)
    ip = torch.full((total, total), float("nan"), dtype=_F64, device=device)

    def needed(i: int, j: int) -> bool:
        if ys is None:
            return True
        return i == j or (i < la) != (j < la)

    def grams(idx: range) -> Tensor:
        return torch.stack(
            [
                _rbf_centred_gram(layers[i], labels[i], threshold, debiased, dtype).reshape(-1)
                for i in idx
            ]
        )

    starts = list(range(0, total, group))
    for gi, s0 in enumerate(starts):
        idx_a = range(s0, min(total, s0 + group))
        ga = grams(idx_a)
        for s1 in starts[gi:]:
            idx_b = range(s1, min(total, s1 + group))
            if not any(needed(i, j) for i in idx_a for j in idx_b):
                continue
            gb = ga if s1 == s0 else grams(idx_b)
            block = (ga @ gb.T).to(_F64)
            ip[idx_a.start : idx_a.stop, idx_b.start : idx_b.stop] = block
            ip[idx_b.start : idx_b.stop, idx_a.start : idx_a.stop] = block.T
    if ys is None:
        num = torch.triu(ip) + torch.triu(ip, 1).T
        d = torch.diagonal(num).clone()
        return num, d, d
    diag = torch.diagonal(ip)
    return ip[:la, la:].clone(), diag[:la].clone(), diag[la:].clone()


# ----------------------------------------------------------------------------
# Public one-shot API
# ----------------------------------------------------------------------------


def _cka_matrix_impl(
    xs: Layers,
    ys: Layers | None,
    *,
    kernel: str,
    debiased: bool,
    precision: str,
    rbf_threshold: float,
    method: str,
    names: tuple[str, str] = ("xs", "ys"),
    pair: bool = False,
) -> Tensor:
    _check_choice(kernel, "kernel", _KERNELS)
    _check_choice(precision, "precision", _PRECISIONS)
    _check_choice(method, "method", _METHODS)
    sx = sy = None
    if pair:
        lx, labx = [xs], [names[0]]  # type: ignore[list-item]
        ly, laby = [ys], [names[1]]  # type: ignore[list-item]
        for t, label in ((xs, names[0]), (ys, names[1])):
            if not isinstance(t, Tensor) or t.ndim != 2:
                shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(
                    f"{label} must be a 2-D tensor (n examples, d features); got {shape}. "
                    "Flatten feature maps first, e.g. x.reshape(x.shape[0], -1)."
                )
    else:
        lx, labx, sx = _as_layers(xs, names[0])
        ly, laby, sy = (None, [], None) if ys is None else _as_layers(ys, names[1])
    if kernel == "rbf":
        if not (isinstance(rbf_threshold, (int, float)) and rbf_threshold > 0):
            raise ValueError(f"rbf threshold must be a positive number; got {rbf_threshold!r}.")
        if method == "feature":
            raise ValueError("the RBF kernel has no feature form; use method 'gram' or 'auto'.")
    groups = [(lx, labx, sx)] + ([] if ly is None else [(ly, laby, sy)])
    ranges = _validate(
        groups, min_rows=4 if debiased else 2, debiased=debiased, check_constant=True
    )
    device = lx[0].device
    with torch.no_grad(), _matmul_precision(precision):
        if kernel == "rbf":
            nums = _rbf_numerators(lx, labx, ly, laby, float(rbf_threshold), debiased, precision)
        else:
            st, _, _ = _linear_stats(lx, ly, precision, method, ranges, (sx, sy))
            nums = _numerators(st, debiased)
        out = _ratio(*nums, labx, labx if ly is None else laby, debiased)
    return out.to(device)


def cka_matrix(
    xs: Layers,
    ys: Layers | None = None,
    *,
    kernel: str = "linear",
    debiased: bool = False,
    precision: str = "exact",
    rbf_threshold: float = 1.0,
) -> Tensor:
    """CKA between every pair of layers.

    Parameters
    ----------
    xs : Tensor or sequence of Tensor
        Representations of one model: an ``(L, n, d)`` tensor or a sequence of
        ``L`` tensors of shape ``(n, d_l)`` (widths may differ per layer).  Row
        ``i`` of every layer must be the same example.
    ys : Tensor or sequence of Tensor, optional
        Representations to compare against (e.g. another model on the same
        rows), same format as ``xs``.  ``None`` compares ``xs`` with itself: the
        result is then exactly symmetric and its diagonal, although computed
        rather than set, is exactly 1 (the same float64 number appears in the
        numerator and, as ``sqrt(v·v)``, in the denominator).
    kernel : {"linear", "rbf"}
        ``"rbf"`` uses the Gaussian kernel of :func:`rbf_cka`; it always uses
        the Gram form and holds full ``n×n`` Gram matrices (at most about 2 GiB
        of them at once, recomputing some when more layers are needed), so it
        is meant for ``n`` up to a few thousand.
    debiased : bool
        Use the unbiased HSIC estimator of Song et al. (2012); can be negative.
    precision : {"exact", "fast"}
        See the module documentation: ``"exact"`` is within ``1e-6`` of a
        float64 computation for any input dtype; ``"fast"`` keeps float32 (TF32
        on CUDA) throughout.
    rbf_threshold : float
        Bandwidth factor of the RBF kernel (``threshold`` of :func:`rbf_cka`).

    Returns
    -------
    Tensor
        ``(L_x, L_y)`` float64 tensor on the input device.

    Raises
    ------
    ValueError
        If a layer has the wrong number of dimensions or rows, contains NaN or
        Inf, is constant, if there are too few rows (2, or 4 when debiased),
        or if ``kernel`` or ``precision`` is unknown.

    Notes
    -----
    For the linear kernel every pair is computed from ``‖X_aᵀX_b‖²_F`` and the
    row norms of the centred data (see the module documentation), with
    whichever of two formulations is cheaper for the shapes at hand:

    * Gram form, about ``n²·Σd/2`` multiply-adds: row blocks of each layer's
      ``n×n`` Gram (upper triangle only), reduced to the Frobenius inner
      products of all layer pairs block by block;
    * feature form, about ``n·(Σd)²/2`` multiply-adds: blocks ``X_aᵀX_b``
      (upper triangle of layer blocks), accumulated over row chunks and reduced
      to their squared norms at once.

    Neither holds the ``L`` Gram matrices nor the full ``Σd×Σd``
    cross-covariance: temporaries stay within a fixed chunk budget (256 MiB)
    on top of one centred copy of the input.  For 13 layers × 768 the Gram form
    is used below n ≈ 8,500.

    Examples
    --------
    >>> import torch
    >>> from layersim.cka import cka_matrix
    >>> acts = torch.randn(4, 100, 32)           # 4 layers, 100 examples, 32 units
    >>> m = cka_matrix(acts)
    >>> m.shape, bool((m.diagonal() == 1).all())
    (torch.Size([4, 4]), True)
    """
    return _cka_matrix_impl(
        xs,
        ys,
        kernel=kernel,
        debiased=debiased,
        precision=precision,
        rbf_threshold=rbf_threshold,
        method="auto",
    )


def linear_cka(x: Tensor, y: Tensor, *, debiased: bool = False, precision: str = "exact") -> Tensor:
    """Linear CKA between two representations of the same examples.

    ``CKA = ‖xᵀy‖²_F / (‖xᵀx‖_F ‖yᵀy‖_F)`` for column-centred ``x``, ``y``
    (Kornblith et al., 2019), or its debiased version built on the unbiased
    HSIC estimator of Song et al. (2012).

    Parameters
    ----------
    x : Tensor
        ``(n, d1)``: one row per example.
    y : Tensor
        ``(n, d2)``: the same ``n`` examples in the same order.
    debiased : bool
        Use the unbiased HSIC estimator (needs ``n >= 4``; can be negative).
    precision : {"exact", "fast"}
        See :func:`cka_matrix`.

    Returns
    -------
    Tensor
        0-d float64 tensor on the input device.

    Raises
    ------
    ValueError
        Wrong ndim, different numbers of rows, NaN/Inf, a constant input, too
        few rows, or an unknown ``precision``.

    Examples
    --------
    >>> import torch
    >>> from layersim.cka import linear_cka
    >>> x = torch.randn(200, 10)
    >>> round(float(linear_cka(x, 3 * x + 1)), 6)
    1.0
    """
    out = _cka_matrix_impl(
        x,
        y,
        kernel="linear",
        debiased=debiased,
        precision=precision,
        rbf_threshold=1.0,
        method="auto",
        names=("x", "y"),
        pair=True,
    )
    return out[0, 0]


def rbf_cka(
    x: Tensor,
    y: Tensor,
    *,
    threshold: float = 1.0,
    debiased: bool = False,
    precision: str = "exact",
) -> Tensor:
    """CKA with a Gaussian (RBF) kernel, following Kornblith et al. (2019).

    The kernel is the reference definition of Kornblith et al.'s ``gram_rbf``:
    with squared distances ``D_ij = ‖x_i - x_j‖²`` over the full ``n×n`` matrix
    and ``m = median(D)`` taken over **all** ``n²`` entries, *including the n
    zeros of the diagonal* (numpy's median: the mean of the two middle values
    when ``n²`` is even),

    ``K_ij = exp(-D_ij / (2 · threshold² · m))``

    i.e. ``σ² = threshold² · m`` with the usual factor 2 in the denominator.
    (``D`` is formed as ``r_i + r_j - 2 x_i·x_j`` from centred data, negatives
    from rounding are set to 0 and the diagonal is exactly 0.)  The Grams are
    H-centred for the biased estimator and U-centred (Székely & Rizzo, 2014)
    for the debiased one, whose Frobenius inner product equals ``n(n-3)`` times
    the unbiased HSIC of Song et al. (2012).

    Parameters
    ----------
    x : Tensor
        ``(n, d1)``.
    y : Tensor
        ``(n, d2)``, same examples as ``x``.
    threshold : float
        Bandwidth as a fraction of the median distance (``> 0``).
    debiased : bool
        Use the unbiased HSIC estimator (needs ``n >= 4``; can be negative).
    precision : {"exact", "fast"}
        ``"exact"``: distances, kernel and centring in float64;
        ``"fast"``: the same in float32.

    Returns
    -------
    Tensor
        0-d float64 tensor on the input device.

    Raises
    ------
    ValueError
        As :func:`linear_cka`, and when the median squared distance of a
        representation is 0 (more than half of the row pairs identical).
    """
    out = _cka_matrix_impl(
        x,
        y,
        kernel="rbf",
        debiased=debiased,
        precision=precision,
        rbf_threshold=threshold,
        method="auto",
        names=("x", "y"),
        pair=True,
    )
    return out[0, 0]


# ----------------------------------------------------------------------------
# Streaming: exact accumulator
# ----------------------------------------------------------------------------


class _Moments:
    """Float64 running moments of shifted rows z (layers side by side in columns).

    Accumulates n, Σz, the needed blocks of ZᵀZ and, for the debiased estimator,
    with a_i^l = ‖z_i^l‖²: Σa, Σ a aᵀ and Σ a ⊗ z.  From these the centred
    statistics follow exactly (see :meth:`stats`).
    """

    def __init__(
        self,
        widths_x: Sequence[int],
        widths_y: Sequence[int] | None,
        debiased: bool,
        device: torch.device,
    ) -> None:
        self.self_mode = widths_y is None
        self.la = len(widths_x)
        self.widths = list(widths_x) + list(widths_y or [])
        self.offsets = [0]
        for w in self.widths[:-1]:
            self.offsets.append(self.offsets[-1] + w)
        self.total = sum(self.widths)
        self.debiased = debiased
        self.device = device
        n_layers = len(self.widths)
        self.col_layer = _col_layer_index(self.widths, device)
        self.segments: list[list[tuple[int, int]]] = []
        for a in range(n_layers):
            lo, hi = self.offsets[a], self.offsets[a] + self.widths[a]
            if self.self_mode:
                self.segments.append([(lo, self.total)])
            elif a < self.la:
                self.segments.append([(lo, hi), (self.offsets[self.la], self.total)])
            else:
                self.segments.append([(lo, hi)])
        self.m = [
            [torch.zeros((self.widths[a], e - s), dtype=_F64, device=device) for s, e in segs]
            for a, segs in enumerate(self.segments)
        ]
        self.n = 0
        self.sum_z = torch.zeros(self.total, dtype=_F64, device=device)
        if debiased:
            self.sum_a = torch.zeros(n_layers, dtype=_F64, device=device)
            self.s_aa = torch.zeros((n_layers, n_layers), dtype=_F64, device=device)
            self.w_az = torch.zeros((n_layers, self.total), dtype=_F64, device=device)

    def add(self, z: Tensor) -> None:
        """Add a chunk of shifted rows z (b, total) in the product dtype."""
        z64 = z if z.dtype == _F64 else z.to(_F64)
        self.n += z.shape[0]
        self.sum_z += z64.sum(0)
        for a, segs in enumerate(self.segments):
            za = z[:, self.offsets[a] : self.offsets[a] + self.widths[a]]
            for acc, (s, e) in zip(self.m[a], segs, strict=True):
                acc.add_(za.T @ z[:, s:e])
        if self.debiased:
            sq = torch.zeros((z.shape[0], len(self.widths)), dtype=_F64, device=self.device)
            sq.index_add_(1, self.col_layer, z64 * z64)
            self.sum_a += sq.sum(0)
            self.s_aa += sq.T @ sq
            self.w_az += sq.T @ z64

    def stats(self) -> _Stats:
        """Centred statistics from the shifted moments.

        With μ = Σz/n and m_l = ‖μ_l‖², the centred cross-products are
        C_ab = M_ab − n μ_a μ_bᵀ, and the centred row norms are
        r_i = a_i − 2 z_i·μ + m, so that

        Σ r = Σa − n m and
        Σ_i r_i^a r_i^b = S_ab − 2 W_a·μ_b − 2 W_b·μ_a + m_b A_a + m_a A_b
        + 4 μ_aᵀ M_ab μ_b − 3 n m_a m_b,

        where S = Σ a aᵀ, W_a·μ_b = (Σ_i a_i^a z_i^b)·μ_b and A = Σa.
        """
        n = self.n
        n_layers = len(self.widths)
        dev = self.device
        mu = self.sum_z / n
        m = torch.zeros(n_layers, dtype=_F64, device=dev).index_add_(0, self.col_layer, mu * mu)
        p = torch.zeros((n_layers, n_layers), dtype=_F64, device=dev)
        q = torch.zeros((n_layers, n_layers), dtype=_F64, device=dev)
        for a, segs in enumerate(self.segments):
            mu_a = mu[self.offsets[a] : self.offsets[a] + self.widths[a]]
            for acc, (s, e) in zip(self.m[a], segs, strict=True):
                c = acc - n * torch.outer(mu_a, mu[s:e])
                cols = self.col_layer[s:e]
                p[a].index_add_(0, cols, (c * c).sum(0))
                q[a].index_add_(0, cols, (mu_a @ acc) * mu[s:e])
        if self.debiased:
            wmu = torch.zeros((n_layers, n_layers), dtype=_F64, device=dev)
            wmu.index_add_(1, self.col_layer, self.w_az * mu)
            big_a = self.sum_a
            r = (
                self.s_aa
                - 2.0 * wmu
                - 2.0 * wmu.T
                + torch.outer(big_a, m)
                + torch.outer(m, big_a)
                + 4.0 * q
                - 3.0 * n * torch.outer(m, m)
            )
            s = big_a - n * m
        else:
            r = torch.zeros_like(p)
            s = torch.zeros(n_layers, dtype=_F64, device=dev)
        la = self.la
        if self.self_mode:
            p = torch.triu(p) + torch.triu(p, 1).T
            r = torch.triu(r) + torch.triu(r, 1).T
            d, dr = torch.diagonal(p).clone(), torch.diagonal(r).clone()
            return _Stats(n, p, d, d, r, dr, dr, s, s, True)
        dp, dr = torch.diagonal(p), torch.diagonal(r)
        return _Stats(
            n=n,
            p_xy=p[:la, la:].clone(),
            p_xx=dp[:la].clone(),
            p_yy=dp[la:].clone(),
            r_xy=r[:la, la:].clone(),
            r_xx=dr[:la].clone(),
            r_yy=dr[la:].clone(),
            s_x=s[:la].clone(),
            s_y=s[la:].clone(),
            self_mode=False,
        )


class CKAAccumulator:
    """Exact streaming linear CKA over batches of rows.

    Feed the activations of successive batches of examples with :meth:`update`;
    :meth:`compute` returns the same matrix as :func:`cka_matrix` over all rows
    seen (biased or debiased), up to floating-point rounding: in float64 the
    two agree to about ``1e-12`` for any split into batches, including batches
    of one row.  Memory does not depend on the number of rows: it holds, in
    float64, the ``X_aᵀX_b`` blocks of the upper triangle (self comparison;
    ``Σd²/2`` numbers, about 430 MB for 13 layers × 768) or the cross blocks plus
    the per-layer diagonal blocks (comparison with ``ys``), and vectors of
    length ``Σd``.

    How: every layer is shifted by a fixed vector, the column mean of the first
    batch, and float64 moments of the shifted rows ``z`` are accumulated: ``n``,
    ``Σz``, the needed blocks of ``ZᵀZ`` and, for the debiased estimator, with
    ``a_i = ‖z_i‖²`` per layer, ``Σa``, ``Σ a aᵀ`` and ``Σ a ⊗ z``.  At
    :meth:`compute` the centred cross-products ``ZᵀZ − n μμᵀ`` and the sums of
    centred row norms (needed by the unbiased HSIC) follow exactly from these.
    The shift keeps the subtraction benign when the data has a large offset.

    Parameters
    ----------
    debiased : bool
        Use the unbiased HSIC estimator (needs at least 4 rows in total).
    precision : {"exact", "fast"}
        As in :func:`cka_matrix`: with ``"exact"`` each batch is shifted with
        float64 accuracy, float32 products sum at most 4096 rows and are added
        into float64 moments (float64 input is processed in float64
        throughout).  ``"fast"`` shifts in float32 (TF32 products on CUDA); the
        moments are float64 in both modes.
    device : torch.device or str, optional
        Where the moments live and the products run; default: the device of the
        first batch.  Batches are moved there.

    Examples
    --------
    >>> import torch
    >>> from layersim.cka import CKAAccumulator, cka_matrix
    >>> acts = torch.randn(3, 500, 16, dtype=torch.float64)
    >>> acc = CKAAccumulator()
    >>> for batch in acts.split(64, dim=1):
    ...     acc.update(batch)
    >>> bool(torch.allclose(acc.compute(), cka_matrix(acts), atol=1e-12))
    True
    """

    def __init__(
        self,
        *,
        debiased: bool = False,
        precision: str = "exact",
        device: torch.device | str | None = None,
    ) -> None:
        _check_choice(precision, "precision", _PRECISIONS)
        self.debiased = bool(debiased)
        self.precision = precision
        self._device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Forget every row seen so far (the shift is chosen again by the next batch)."""
        self._moments: _Moments | None = None
        self._widths: tuple[list[int], list[int] | None] | None = None
        self._shifts: list[Tensor] = []
        self._scales: list[float] = []
        self._col_min: list[Tensor] = []
        self._col_max: list[Tensor] = []
        self._batches = 0

    @property
    def n(self) -> int:
        """Number of rows (examples) seen so far."""
        return 0 if self._moments is None else self._moments.n

    @property
    def num_batches(self) -> int:
        """Number of :meth:`update` calls since construction or :meth:`reset`."""
        return self._batches

    @property
    def shape(self) -> tuple[int, int] | None:
        """Shape of the result, ``(L_x, L_y)``, or ``None`` before the first update."""
        if self._widths is None:
            return None
        wx, wy = self._widths
        return (len(wx), len(wx) if wy is None else len(wy))

    def update(self, xs: Layers, ys: Layers | None = None) -> None:
        """Add a batch of rows.

        Parameters
        ----------
        xs : Tensor or sequence of Tensor
            ``(L, b, d)`` or ``L`` tensors ``(b, d_l)``: one batch of ``b``
            examples (``b >= 1``).  The number of layers and their widths must
            stay the same across batches.
        ys : Tensor or sequence of Tensor, optional
            The other representation of the same ``b`` examples.  Either every
            update passes ``ys`` or none does.

        Raises
        ------
        ValueError
            On NaN/Inf, row or width mismatches, or switching between self and
            cross comparison.
        """
        batch_no = self._batches
        ctx = f" (update #{batch_no})"
        lx, labx, _ = _as_layers(xs, "xs")
        ly, laby, _ = (None, [], None) if ys is None else _as_layers(ys, "ys")
        for layers, labels in ((lx, labx), (ly or [], laby)):
            for x, label in zip(layers, labels, strict=True):
                _check_tensor(x, label)
        widths = (
            [int(x.shape[1]) for x in lx],
            None if ly is None else [int(y.shape[1]) for y in ly],
        )
        if self._widths is not None and widths != self._widths:
            raise ValueError(self._mismatch_message(widths, ctx))
        device = self._device if self._device is not None else lx[0].device
        lx = [x.to(device) for x in lx]
        ly = None if ly is None else [y.to(device) for y in ly]
        groups = [(lx, labx, None)] + ([] if ly is None else [(ly, laby, None)])
        ranges = _validate(groups, min_rows=1, debiased=False, check_constant=False, context=ctx)
        layers = lx + (ly or [])
        flat_ranges = [r for group in ranges for r in group]
        with torch.no_grad(), _matmul_precision(self.precision):
            if self._moments is None:
                self._start(layers, widths, device, flat_ranges)
            self._add(layers, flat_ranges)
        self._batches += 1

    def _mismatch_message(self, widths: tuple[list[int], list[int] | None], ctx: str) -> str:
        assert self._widths is not None
        old_x, old_y = self._widths
        new_x, new_y = widths
        if (old_y is None) != (new_y is None):
            had = "with ys" if old_y is not None else "without ys"
            return (
                f"the first update was {had}, this one{ctx} is not; pass ys in every "
                "update (cross comparison) or in none (self comparison), or call reset()."
            )
        for name, old, new in (("xs", old_x, new_x), ("ys", old_y, new_y)):
            if old is None or new is None:
                continue
            if len(old) != len(new):
                return (
                    f"{name} has {len(new)} layers{ctx} but earlier batches had {len(old)}; "
                    "every batch must hold the same layers."
                )
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                if a != b:
                    return (
                        f"{name}[{i}] has {b} features{ctx} but {a} in earlier batches; "
                        "every batch must hold the same layers."
                    )
        return f"layer shapes changed{ctx}; call reset() to start over."

    def _start(
        self,
        layers: list[Tensor],
        widths: tuple,
        device: torch.device,
        ranges: list[tuple[Tensor, Tensor]],
    ) -> None:
        exact = self.precision == "exact"
        for x, (lo, hi) in zip(layers, ranges, strict=True):
            shift = _mean64(x) if exact else torch.mean(x if x.dtype == _F32 else x.to(_F32), dim=0)
            lo, hi = lo.to(shift.dtype), hi.to(shift.dtype)
            spread = float(torch.maximum(hi - shift, shift - lo).max())
            if spread == 0.0:
                spread = float(shift.abs().amax())
            self._shifts.append(shift)
            self._scales.append(_pow2_scale(spread))
            self._col_min.append(torch.full_like(x[0], float("inf"), dtype=_F64))
            self._col_max.append(torch.full_like(x[0], float("-inf"), dtype=_F64))
        self._widths = widths
        self._moments = _Moments(widths[0], widths[1], self.debiased, device)

    def _add(self, layers: list[Tensor], ranges: list[tuple[Tensor, Tensor]]) -> None:
        assert self._moments is not None
        exact = self.precision == "exact"
        prod = _product_dtype(layers, self.precision)
        b = layers[0].shape[0]
        total = self._moments.total
        rows_per = max(1, _CHUNK_BYTES // (12 * total))
        if prod != _F64:
            rows_per = min(rows_per, _MAX_F32_ROWS)
        for i, (lo, hi) in enumerate(ranges):
            torch.minimum(self._col_min[i], lo.to(_F64), out=self._col_min[i])
            torch.maximum(self._col_max[i], hi.to(_F64), out=self._col_max[i])
        for r0 in range(0, b, rows_per):
            r1 = min(b, r0 + rows_per)
            z = torch.empty((r1 - r0, total), dtype=prod, device=layers[0].device)
            for i, x in enumerate(layers):
                off, w = self._moments.offsets[i], self._moments.widths[i]
                zi = _shift(x[r0:r1], self._shifts[i], prod, exact)
                if self._scales[i] != 1.0:
                    zi.mul_(self._scales[i])
                z[:, off : off + w] = zi
            self._moments.add(z)

    def compute(self) -> Tensor:
        """CKA matrix over all rows seen.

        Returns
        -------
        Tensor
            ``(L_x, L_y)`` float64, on the accumulator's device.

        Raises
        ------
        ValueError
            If no rows were seen, too few rows (2, or 4 when debiased), or a
            layer was constant over all rows seen.
        """
        if self._moments is None:
            raise ValueError("no rows seen yet; call update() with at least one batch first.")
        n = self._moments.n
        need = 4 if self.debiased else 2
        if n < need:
            which = "debiased CKA" if self.debiased else "CKA"
            raise ValueError(
                f"{which} needs at least {need} rows (examples); only {n} seen so far. "
                "Call update() with more examples."
            )
        wx, wy = self._widths  # type: ignore[misc]
        labx = [f"xs[{i}]" for i in range(len(wx))]
        laby = labx if wy is None else [f"ys[{i}]" for i in range(len(wy))]
        for i, label in enumerate(labx + ([] if wy is None else laby)):
            if bool(torch.equal(self._col_min[i], self._col_max[i])):
                raise _constant_error(label)
        with torch.no_grad():
            st = self._moments.stats()
            return _ratio(*_numerators(st, self.debiased), labx, laby, self.debiased)


# ----------------------------------------------------------------------------
# Streaming: minibatch estimator of Nguyen et al.
# ----------------------------------------------------------------------------


class MinibatchCKA:
    """Minibatch CKA estimator of Nguyen, Raghu & Kornblith (2021).

    From "Do Wide and Deep Networks Learn the Same Things?": for minibatches
    ``k = 1..K`` with Gram matrices ``K_k``, ``L_k``::

        CKA_mb = Σ_k HSIC_1(K_k, L_k) / sqrt(Σ_k HSIC_1(K_k, K_k) · Σ_k HSIC_1(L_k, L_k))

    with ``HSIC_1`` the unbiased estimator of Song et al. (2012) computed
    within each batch (``debiased=True``, as in the paper) or the biased
    ``HSIC_0 = tr(K H L H)/(b-1)²`` (``debiased=False``).

    .. warning::
       This is a **different estimator** from full-data CKA
       (:func:`cka_matrix`, :class:`CKAAccumulator`): it only uses the
       similarity of examples within the same batch, so its value depends on
       the batch size (strongly so with ``debiased=False``) and does not equal
       CKA over all rows.  Use :class:`CKAAccumulator` for exact full-data
       CKA.  Use batches of one fixed size to get a well-defined quantity.

    Each batch needs at least 4 rows (2 with ``debiased=False``).  A layer
    that is constant within one batch just contributes zero HSIC for it.

    Parameters
    ----------
    debiased : bool
        Per-batch unbiased ``HSIC_1`` (default, as in Nguyen et al.) or biased
        ``HSIC_0``.
    precision : {"exact", "fast"}
        Precision of the per-batch computation, as in :func:`cka_matrix`.
    device : torch.device or str, optional
        Where the sums are kept and batches processed (default: the device of
        the first batch).
    """

    def __init__(
        self,
        *,
        debiased: bool = True,
        precision: str = "exact",
        device: torch.device | str | None = None,
    ) -> None:
        _check_choice(precision, "precision", _PRECISIONS)
        self.debiased = bool(debiased)
        self.precision = precision
        self._device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Forget all batches."""
        self._sum_xy: Tensor | None = None
        self._sum_xx: Tensor | None = None
        self._sum_yy: Tensor | None = None
        self._widths: tuple[list[int], list[int] | None] | None = None
        self._n = 0
        self._batches = 0

    @property
    def n(self) -> int:
        """Number of rows (examples) seen so far."""
        return self._n

    @property
    def num_batches(self) -> int:
        """Number of batches seen so far."""
        return self._batches

    def update(self, xs: Layers, ys: Layers | None = None) -> None:
        """Add the per-batch HSIC terms of one minibatch.

        Parameters
        ----------
        xs : Tensor or sequence of Tensor
            ``(L, b, d)`` or ``L`` tensors ``(b, d_l)`` with ``b >= 4`` (``>= 2``
            when not debiased).
        ys : Tensor or sequence of Tensor, optional
            The other representation of the same examples; pass it in every
            update or in none.

        Raises
        ------
        ValueError
            On NaN/Inf, too few rows in the batch, row/width mismatches.
        """
        ctx = f" (update #{self._batches})"
        lx, labx, sx = _as_layers(xs, "xs")
        ly, laby, sy = (None, [], None) if ys is None else _as_layers(ys, "ys")
        widths = (
            [int(x.shape[1]) for x in lx],
            None if ly is None else [int(y.shape[1]) for y in ly],
        )
        if self._widths is not None and widths != self._widths:
            raise ValueError(
                f"layer shapes {widths} differ from the first batch's {self._widths}{ctx} "
                "(ys must be passed in every update or in none); call reset() to start over."
            )
        device = self._device if self._device is not None else lx[0].device
        if sx is not None:
            sx = sx.to(device)
            lx = list(sx.unbind(0))
        else:
            lx = [x.to(device) for x in lx]
        if sy is not None:
            sy = sy.to(device)
            ly = list(sy.unbind(0))
        elif ly is not None:
            ly = [y.to(device) for y in ly]
        groups = [(lx, labx, sx)] + ([] if ly is None else [(ly, laby, sy)])
        need = 4 if self.debiased else 2
        ranges = _validate(
            groups, min_rows=need, debiased=self.debiased, check_constant=False, context=ctx
        )
        with torch.no_grad(), _matmul_precision(self.precision):
            st, sc_x, sc_y = _linear_stats(lx, ly, self.precision, "auto", ranges, (sx, sy))
            num_xy, num_xx, num_yy = _numerators(st, self.debiased)
            b = st.n
            norm = float(b * (b - 3)) if self.debiased else float((b - 1) ** 2)
            # undo the (exact, power-of-two) per-batch rescaling before summing batches
            ux, uy = sc_x * sc_x, sc_y * sc_y
            h_xy = num_xy / (norm * torch.outer(ux, uy))
            if st.self_mode:
                h_xx = h_yy = torch.diagonal(h_xy).clone()
            else:
                h_xx = num_xx / (norm * ux * ux)
                h_yy = num_yy / (norm * uy * uy)
        if self._sum_xy is None:
            # separate tensors: h_xx and h_yy may be one object in a self comparison
            self._sum_xy, self._sum_xx, self._sum_yy = h_xy, h_xx.clone(), h_yy.clone()
            self._widths = widths
        else:
            self._sum_xy += h_xy
            self._sum_xx += h_xx  # type: ignore[operator]
            self._sum_yy += h_yy  # type: ignore[operator]
        self._n += b
        self._batches += 1

    def compute(self) -> Tensor:
        """Minibatch CKA matrix ``(L_x, L_y)`` (float64) over the batches seen.

        Raises
        ------
        ValueError
            If no batch was seen, or a layer's summed self-HSIC is not positive
            (constant in every batch).
        """
        if self._sum_xy is None:
            raise ValueError("no batches seen yet; call update() first.")
        wx, wy = self._widths  # type: ignore[misc]
        labx = [f"xs[{i}]" for i in range(len(wx))]
        laby = labx if wy is None else [f"ys[{i}]" for i in range(len(wy))]
        return _ratio(self._sum_xy, self._sum_xx, self._sum_yy, labx, laby, self.debiased)

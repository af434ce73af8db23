"""Linear-kernel CKA statistics for all layer pairs, in two formulations.

Linear CKA needs, for every pair of centred layers, ``P_ab = ‖X_aᵀX_b‖²_F = <K_a, K_b>_F``
(plus row norms, see :mod:`layersim.cka.hsic`).  ``P`` is obtained either

* in the **Gram form**: each layer's ``n×n`` Gram is built a block of rows at a time, only
  the upper triangle of row blocks (Grams are symmetric; blocks off the diagonal count
  twice), and for every row the inner products of all layer pairs are one small batched
  matmul, summed over rows in float64.  Memory is a fixed chunk budget, never ``L·n²``; or
* in the **feature form**: the blocks ``X_aᵀX_b`` of the feature cross-covariance, only the
  upper triangle of layer blocks for a self-comparison, accumulated over row chunks and
  reduced to their squared norms at once, so the full ``Σd×Σd`` matrix is never held.

:func:`choose_method` picks the cheaper: the Gram form costs about ``n²·Σd/2``
multiply-adds, the feature form about ``n·(Σd)²/2`` (self-comparison), so the Gram form
wins roughly when ``n < Σd`` (13 layers × 768: n below about 8,500).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import budget
from .hsic import Stats
from .numerics import F64, Prepared, col_layer_index, prepare, product_dtype

# ----------------------------------------------------------------------------
# Gram form
# ----------------------------------------------------------------------------


def _gram_block_rows(n: int, n_layers: int, itemsize: int) -> int:
    """Rows per block: about 4 blocks (the upper triangle is then ≈ 62 % of the full Grams;
    more, smaller blocks save little work but add per-call overhead), memory-capped."""
    by_memory = budget.CHUNK_BYTES // max(1, itemsize * n_layers * n)
    target = max(256, -(-n // 4))
    return max(1, min(n, by_memory, target))


class _GramRows:
    """Row blocks of the Gram matrices of all layers of one or two groups, in one reused
    buffer (layers of the first group first)."""

    def __init__(self, preps: Sequence[Prepared], step: int) -> None:
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


def gram_offdiag_products(px: Prepared, py: Prepared | None) -> tuple[Tensor, Tensor, Tensor]:
    """T_ab = Σ_{i≠j} K^a_ij L^b_ij = tr(K̃_a L̃_b) for all pairs, in float64.

    Only the upper triangle of row blocks is formed (Grams are symmetric; blocks
    right of the diagonal count twice).  For each row ``i`` the sums over at most
    ``budget.MAX_F32_ROWS`` columns of ``K^a_ij L^b_ij`` for all layer pairs are one
    small batched matmul in the product dtype; those per-row partial sums are added
    in float64.
    """
    n = px.z.shape[0]
    device = px.z.device
    preps = [px] if py is None else [px, py]
    la = len(px.widths)
    total = sum(len(p.widths) for p in preps)
    joint = torch.zeros((total, total), dtype=F64, device=device)
    step = _gram_block_rows(n, total, px.z.element_size())
    grams = _GramRows(preps, step)
    max_cols = budget.MAX_F32_ROWS
    # per-row partial sums (float32) wait in two buffers, one per weight, until summed in
    # float64: one reduction per buffer instead of one per block
    cap = max(step, 2**22 // (total * total))
    pending = {w: torch.empty((cap, total, total), dtype=px.z.dtype, device=device) for w in (1, 2)}
    filled = {1: 0, 2: 0}

    def flush(weight: int) -> None:
        nonlocal joint
        if filled[weight]:
            joint += weight * pending[weight][: filled[weight]].sum(0, dtype=F64)
            filled[weight] = 0

    for s in range(0, n, step):
        e = min(n, s + step)
        # the diagonal block (weight 1), then the blocks to its right (weight 2)
        pieces = [(s, e, 1)] + [(c0, min(n, c0 + max_cols), 2) for c0 in range(e, n, max_cols)]
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
    out = torch.zeros(n_out, dtype=F64, device=za.device)
    piece = max(1, budget.CHUNK_BYTES // max(1, 12 * wa))
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
        col_sq = (acc * acc).sum(0).to(F64)
        out.index_add_(0, col_layer[c0:c1], col_sq)
    return out


def feature_products(
    px: Prepared, py: Prepared | None, exact: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """P_ab = ‖X_aᵀ Y_b‖²_F for all needed pairs (upper triangle when self)."""
    n = px.z.shape[0]
    device = px.z.device
    low = px.z.dtype != F64
    rows_per = budget.MAX_F32_ROWS if (exact and low) else n
    reduce_dtype = F64 if exact else px.z.dtype
    la = len(px.widths)
    col_x = col_layer_index(px.widths, device)
    if py is None:
        p = torch.zeros((la, la), dtype=F64, device=device)
        for a in range(la):
            off = px.offsets[a]
            p[a, a:] = _block_sq_norms(
                px.layer(a), px.z[:, off:], col_x[off:] - a, la - a, rows_per, reduce_dtype
            )
        p = torch.triu(p) + torch.triu(p, 1).T
        d = torch.diagonal(p).clone()
        return p, d, d
    lb = len(py.widths)
    col_y = col_layer_index(py.widths, device)

    def self_sq_norm(z: Tensor) -> Tensor:
        one_block = torch.zeros(z.shape[1], dtype=torch.long, device=device)
        return _block_sq_norms(z, z, one_block, 1, rows_per, reduce_dtype)[0]

    p_xy = torch.empty((la, lb), dtype=F64, device=device)
    p_xx = torch.empty(la, dtype=F64, device=device)
    p_yy = torch.empty(lb, dtype=F64, device=device)
    for a in range(la):
        za = px.layer(a)
        p_xy[a] = _block_sq_norms(za, py.z, col_y, lb, rows_per, reduce_dtype)
        p_xx[a] = self_sq_norm(za)
    for b in range(lb):
        p_yy[b] = self_sq_norm(py.layer(b))
    return p_xy, p_xx, p_yy


# ----------------------------------------------------------------------------
# Choice of formulation and the one-shot linear statistics
# ----------------------------------------------------------------------------


def method_costs(n: int, wx: Sequence[int], wy: Sequence[int] | None) -> tuple[float, float]:
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


def choose_method(n: int, wx: Sequence[int], wy: Sequence[int] | None) -> str:
    """The cheaper formulation by :func:`method_costs`: ``"gram"`` or ``"feature"``."""
    gram, feature = method_costs(n, wx, wy)
    return "gram" if gram <= feature else "feature"


def linear_stats(
    xs: Sequence[Tensor],
    ys: Sequence[Tensor] | None,
    precision: str,
    method: str,
    ranges: Sequence[Sequence[tuple[Tensor, Tensor]]],
    stacked: tuple[Tensor | None, Tensor | None] = (None, None),
) -> tuple[Stats, Tensor, Tensor]:
    """One-shot sufficient statistics of linear CKA (inputs validated; ``ranges`` as
    returned by :func:`layersim.cka.checks.validate`).

    Returns the statistics of the rescaled data and the per-layer power-of-two
    scales (x and y) that were applied.
    """
    exact = precision == "exact"
    prod = product_dtype(list(xs) + list(ys or []), precision)
    n = xs[0].shape[0]
    px = prepare(xs, precision, prod, ranges[0], stacked[0])
    py = None if ys is None else prepare(ys, precision, prod, ranges[1], stacked[1])
    if method == "auto":
        method = choose_method(n, px.widths, None if py is None else py.widths)
    r_x = px.r
    r_y = r_x if py is None else py.r
    r_xy = r_x @ r_y.T
    r_xx = (r_x * r_x).sum(1)
    r_yy = r_xx if py is None else (r_y * r_y).sum(1)
    if method == "gram":
        # the Gram form sums off-diagonal entries only; the diagonal K_ii L_ii = r_i s_i
        t_xy, t_xx, t_yy = gram_offdiag_products(px, py)
        p_xy, p_xx, p_yy = t_xy + r_xy, t_xx + r_xx, t_yy + r_yy
    else:
        p_xy, p_xx, p_yy = feature_products(px, py, exact)
    st = Stats(
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

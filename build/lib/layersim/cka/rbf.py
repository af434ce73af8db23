"""CKA with a Gaussian (RBF) kernel: centred RBF Grams and their inner products.

The kernel follows Kornblith et al.'s (2019) ``gram_rbf``: with squared distances
``D_ij = ‖x_i - x_j‖²`` and ``m`` the median of all ``n²`` entries of ``D`` (the diagonal
zeros included; numpy's median), ``K = exp(-D / (2 · threshold² · m))``.  Grams are
H-centred for the biased estimator and U-centred (Székely & Rizzo 2014) for the debiased
one, whose Frobenius inner product is ``n(n-3)`` times the unbiased HSIC of Song et al.
(2012).  Unlike the linear kernel there is no feature form: full ``n×n`` Grams are held,
at most ``budget.GRAM_BYTES`` of them at once, recomputing some when more are needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import budget
from .numerics import F32, F64, mean64, shift


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


def _sq_distances(x: Tensor, dtype: torch.dtype) -> Tensor:
    """‖x_i - x_j‖² for all pairs, from centred rows; rounding negatives and the diagonal 0."""
    z = shift(x, mean64(x), dtype, exact=True)
    sq = (z * z).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    d2.clamp_(min=0.0)
    d2.fill_diagonal_(0.0)
    return d2


def _u_centre_(k: Tensor) -> Tensor:
    """U-centring in place (Székely & Rizzo 2014): <U(K), U(L)> = n(n-3) HSIC_u.

    Zero the diagonal, subtract row/column sums / (n-2), add the total / ((n-1)(n-2)),
    zero the diagonal again.
    """
    n = k.shape[0]
    k.fill_diagonal_(0.0)
    means = k.sum(0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    k -= means[:, None]
    k -= means[None, :]
    k.fill_diagonal_(0.0)
    return k


def _h_centre(k: Tensor) -> Tensor:
    """H K H with H = I - 11ᵀ/n, written with the row means (K is symmetric)."""
    m = k.mean(0)
    return k - m[:, None] - m[None, :] + m.mean()


def centred_gram(
    x: Tensor, label: str, threshold: float, debiased: bool, dtype: torch.dtype
) -> Tensor:
    """RBF Gram of one layer, H-centred (biased) or U-centred (debiased)."""
    d2 = _sq_distances(x, dtype)
    med = _median_all(d2)
    if not float(med) > 0.0:
        raise ValueError(
            f"{label}: the median squared distance between its rows is 0 (at least half of "
            "the row pairs, counting each row with itself, are identical), so the RBF "
            "bandwidth would be zero. Remove duplicate examples, pass more distinct "
            "examples, or use the linear kernel."
        )
    k = torch.exp(d2.div_(-2.0 * threshold**2 * med))
    return _u_centre_(k) if debiased else _h_centre(k)


def rbf_numerators(
    xs: Sequence[Tensor],
    labels_x: Sequence[str],
    ys: Sequence[Tensor] | None,
    labels_y: Sequence[str],
    threshold: float,
    debiased: bool,
    precision: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """Frobenius inner products of centred RBF Grams, holding at most ~budget.GRAM_BYTES."""
    dtype = F64 if precision == "exact" else F32
    layers = list(xs) + list(ys or [])
    labels = list(labels_x) + list(labels_y if ys is not None else [])
    la = len(xs)
    n = xs[0].shape[0]
    device = xs[0].device
    per_gram = n * n * (8 if dtype == F64 else 4)
    group = max(1, budget.GRAM_BYTES // (2 * per_gram))
    total = len(layers)
    ip = torch.full((total, total), float("nan"), dtype=F64, device=device)

    def needed(i: int, j: int) -> bool:
        if ys is None:
            return True
        return i == j or (i < la) != (j < la)

    def grams(idx: range) -> Tensor:
        return torch.stack(
            [
                centred_gram(layers[i], labels[i], threshold, debiased, dtype).reshape(-1)
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
            block = (ga @ gb.T).to(F64)
            ip[idx_a.start : idx_a.stop, idx_b.start : idx_b.stop] = block
            ip[idx_b.start : idx_b.stop, idx_a.start : idx_a.stop] = block.T
    if ys is None:
        num = torch.triu(ip) + torch.triu(ip, 1).T
        d = torch.diagonal(num).clone()
        return num, d, d
    diag = torch.diagonal(ip)
    return ip[:la, la:].clone(), diag[:la].clone(), diag[la:].clone()

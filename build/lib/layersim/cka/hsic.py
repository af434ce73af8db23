"""From sufficient statistics to CKA: the two HSIC estimators and the final ratio.

Every linear estimator here (one-shot, streaming) reduces a pair of centred layers ``X``,
``Y`` (n rows) to ``P = ‖XᵀY‖²_F``, the centred squared row norms ``r_i = ‖x_i‖²``,
``s_i = ‖y_i‖²`` and their sums.  For centred data the zero-diagonal Grams ``K̃``, ``L̃``
satisfy ``K̃1 = -r``, so the unbiased HSIC of Song et al. (2012)::

    HSIC_u = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1] / (n(n-3))

follows from ``tr(K̃L̃) = P - rᵀs``, ``1ᵀK̃1 = -Σr`` and ``1ᵀK̃L̃1 = rᵀs``; the biased
estimator ``tr(KHLH) / (n-1)²`` (Gretton et al. 2005) is ``P / (n-1)²``.  CKA is
``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``; the common factors ``1/(n(n-3))`` and
``1/(n-1)²`` cancel, so :func:`numerators` returns the HSIC values without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Stats:
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


def numerators(st: Stats, debiased: bool) -> tuple[Tensor, Tensor, Tensor]:
    """n(n-3)·HSIC_u (debiased) or ‖XᵀY‖² = (n-1)²·HSIC_0 (biased) for xy, xx and yy."""
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
        # mirror the upper triangle, so the result is exactly symmetric and its diagonal is
        # the very numbers used as self-HSIC (making the CKA diagonal exactly 1)
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


def ratio(
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

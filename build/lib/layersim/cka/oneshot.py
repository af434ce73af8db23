"""The one-shot public functions: CKA of representations held in memory.

:func:`cka_matrix` compares every pair of layers, :func:`linear_cka` and :func:`rbf_cka`
one pair.  All three check their input (:mod:`layersim.cka.checks`), compute under
``torch.no_grad()`` with the float32 matmul precision pinned
(:mod:`layersim.cka.numerics`), reduce the layers to HSIC numerators with the linear
(:mod:`layersim.cka.linear`) or RBF (:mod:`layersim.cka.rbf`) kernel and return the
float64 ratio of :func:`layersim.cka.hsic.ratio` on the input device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import (
    KERNELS,
    METHODS,
    PRECISIONS,
    Layers,
    as_layers,
    as_tensor,
    check_choice,
    check_pair,
    validate,
)
from .hsic import numerators, ratio
from .linear import linear_stats
from .numerics import dominated_by_few_rows, matmul_precision
from .rbf import rbf_numerators


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
    """:func:`cka_matrix` with the formulation forced by ``method`` ("auto", "gram",
    "feature"); ``pair`` takes two 2-D tensors named ``names`` (the pair functions)."""
    check_choice(kernel, "kernel", KERNELS)
    check_choice(precision, "precision", PRECISIONS)
    check_choice(method, "method", METHODS)
    sx = sy = None
    if pair:
        xs, ys = as_tensor(xs), as_tensor(ys)
        check_pair(xs, ys, names)
        lx, labx = [xs], [names[0]]  # type: ignore[list-item]
        ly, laby = [ys], [names[1]]  # type: ignore[list-item]
    else:
        lx, labx, sx = as_layers(xs, names[0])
        ly, laby, sy = (None, [], None) if ys is None else as_layers(ys, names[1])
    if kernel == "rbf":
        if not (isinstance(rbf_threshold, (int, float)) and rbf_threshold > 0):
            raise ValueError(f"rbf threshold must be a positive number; got {rbf_threshold!r}.")
        if method == "feature":
            raise ValueError("the RBF kernel has no feature form; use method 'gram' or 'auto'.")
    groups = [(lx, labx, sx)] + ([] if ly is None else [(ly, laby, sy)])
    ranges = validate(groups, min_rows=4 if debiased else 2, debiased=debiased, check_constant=True)
    device = lx[0].device
    with torch.no_grad(), matmul_precision(precision):
        if kernel == "rbf":
            nums = rbf_numerators(lx, labx, ly, laby, float(rbf_threshold), debiased, precision)
        else:
            if debiased and precision == "exact" and dominated_by_few_rows(lx + (ly or [])):
                # The debiased numerator cancels large terms when a few rows dominate; float32
                # products then miss the 1e-6 bound (3e-6 measured), so go float64 throughout.
                lx = [x.to(torch.float64) for x in lx]
                ly = None if ly is None else [y.to(torch.float64) for y in ly]
                sx = sy = None
            st, _, _ = linear_stats(lx, ly, precision, method, ranges, (sx, sy))
            nums = numerators(st, debiased)
        out = ratio(*nums, labx, labx if ly is None else laby, debiased)
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
        ``"exact"`` is within ``1e-6`` of a float64 computation for any input
        dtype: float64 column means are subtracted before any product, float32
        products are IEEE (whatever ``torch.set_float32_matmul_precision``
        says) and sum at most 4096 rows before being added in float64; with
        ``debiased=True`` and a few rows whose squared norm exceeds 100 times the
        median, everything runs in float64 (tests check 1e-6 on such data).
        ``"fast"`` keeps float32 throughout (TF32 on CUDA).  See
        :mod:`layersim.cka.numerics`.
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
    row norms of the centred data (see :mod:`layersim.cka.hsic`), with
    whichever of two formulations (:mod:`layersim.cka.linear`) is cheaper for
    the shapes at hand:

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

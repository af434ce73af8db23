"""Streaming CKA: estimators fed one batch of rows (examples) at a time.

:class:`CKAAccumulator` gives exact full-data linear CKA, whatever the split into batches
(float64 moments, :mod:`layersim.cka.moments`).  :class:`MinibatchCKA` is the different,
batch-size dependent estimator of Nguyen, Raghu & Kornblith (2021), which averages
per-batch HSIC estimates.  Both share their set-up and layer bookkeeping
(:class:`_StreamingCKA`): argument checks, the check of every batch against the first
one's layers, the device batches are moved to, and the layer labels of error messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import budget
from .checks import (
    PRECISIONS,
    LayerGroup,
    Layers,
    as_layers,
    check_choice,
    check_tensor,
    constant_error,
    validate,
)
from .hsic import Stats, numerators, ratio
from .linear import linear_stats
from .moments import Moments
from .numerics import F64, column_mean, matmul_precision, pow2_scale, product_dtype, shift

#: Layer widths of a batch: those of ``xs`` and those of ``ys`` (``None``: self comparison).
Widths = tuple[list[int], list[int] | None]


@dataclass
class _Batch:
    """One validated batch, on the estimator's device."""

    xs: LayerGroup
    ys: LayerGroup | None
    widths: Widths
    ranges: list[list[tuple[Tensor, Tensor]]]  # per-column (min, max), group by group
    device: torch.device

    @property
    def layers(self) -> list[Tensor]:
        """All layers, those of ``xs`` first."""
        return self.xs[0] + ([] if self.ys is None else self.ys[0])


def _to_device(group: LayerGroup, device: torch.device) -> LayerGroup:
    layers, labels, stacked = group
    if stacked is not None:
        stacked = stacked.to(device)
        return list(stacked.unbind(0)), labels, stacked
    return [x.to(device) for x in layers], labels, None


class _StreamingCKA:
    """Set-up and layer bookkeeping shared by the streaming estimators.

    Subclasses define :meth:`_clear` (forget their sums) and :meth:`update`, which reads a
    batch with :meth:`_read_batch` and, once it is added, calls :meth:`_count`.
    """

    def __init__(
        self,
        *,
        debiased: bool,
        precision: str,
        device: torch.device | str | None,
    ) -> None:
        check_choice(precision, "precision", PRECISIONS)
        self.debiased = bool(debiased)
        self.precision = precision
        self._device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._widths: Widths | None = None
        self._home: torch.device | None = self._device  # else set by the first batch
        self._batches = 0
        self._clear()

    def _clear(self) -> None:
        raise NotImplementedError

    @property
    def num_batches(self) -> int:
        """Number of batches added since construction or :meth:`reset`."""
        return self._batches

    def _read_batch(
        self, xs: Layers, ys: Layers | None, *, min_rows: int, debiased: bool
    ) -> _Batch:
        """Check a batch against the first one, move it to the device and validate it.

        ``min_rows`` rows are required (``debiased`` words the message accordingly).
        """
        ctx = f" (update #{self._batches})"
        gx = as_layers(xs, "xs")
        gy = None if ys is None else as_layers(ys, "ys")
        for layers, labels, _ in [gx] + ([] if gy is None else [gy]):
            for x, label in zip(layers, labels, strict=True):
                check_tensor(x, label)
        widths: Widths = (
            [int(x.shape[1]) for x in gx[0]],
            None if gy is None else [int(y.shape[1]) for y in gy[0]],
        )
        if self._widths is not None and widths != self._widths:
            raise ValueError(self._mismatch_message(widths, ctx))
        device = self._home if self._home is not None else gx[0][0].device
        gx = _to_device(gx, device)
        gy = None if gy is None else _to_device(gy, device)
        groups = [gx] + ([] if gy is None else [gy])
        ranges = validate(
            groups, min_rows=min_rows, debiased=debiased, check_constant=False, context=ctx
        )
        return _Batch(gx, gy, widths, ranges, device)

    def _count(self, batch: _Batch) -> None:
        """Record that ``batch`` was added; the first one fixes the layers and the device."""
        if self._widths is None:
            self._widths, self._home = batch.widths, batch.device
        self._batches += 1

    def _mismatch_message(self, widths: Widths, ctx: str) -> str:
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

    def _labels(self) -> tuple[list[str], list[str]]:
        """Labels of the layers of xs and ys (those of xs again in a self comparison)."""
        assert self._widths is not None
        wx, wy = self._widths
        labx = [f"xs[{i}]" for i in range(len(wx))]
        laby = labx if wy is None else [f"ys[{i}]" for i in range(len(wy))]
        return labx, laby


# ----------------------------------------------------------------------------
# Exact accumulator
# ----------------------------------------------------------------------------


class CKAAccumulator(_StreamingCKA):
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
        super().__init__(debiased=debiased, precision=precision, device=device)

    def reset(self) -> None:
        """Forget every row seen so far (the shift is chosen again by the next batch)."""
        super().reset()

    def _clear(self) -> None:
        self._moments: Moments | None = None
        self._shifts: list[Tensor] = []
        self._scales: list[float] = []
        self._col_min: list[Tensor] = []
        self._col_max: list[Tensor] = []

    @property
    def n(self) -> int:
        """Number of rows (examples) seen so far."""
        return 0 if self._moments is None else self._moments.n

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
        batch = self._read_batch(xs, ys, min_rows=1, debiased=False)
        layers = batch.layers
        ranges = [r for group in batch.ranges for r in group]
        with torch.no_grad(), matmul_precision(self.precision):
            if self._moments is None:
                self._start(layers, batch.widths, batch.device, ranges)
            self._add(layers, ranges)
        self._count(batch)

    def _start(
        self,
        layers: list[Tensor],
        widths: Widths,
        device: torch.device,
        ranges: list[tuple[Tensor, Tensor]],
    ) -> None:
        """Fix each layer's shift (the first batch's column mean) and power-of-two scale."""
        exact = self.precision == "exact"
        for x, (lo, hi) in zip(layers, ranges, strict=True):
            shift_by = column_mean(x, exact)
            lo, hi = lo.to(shift_by.dtype), hi.to(shift_by.dtype)
            spread = float(torch.maximum(hi - shift_by, shift_by - lo).max())
            if spread == 0.0:  # constant first batch: scale by the size of the values
                spread = float(shift_by.abs().amax())
            self._shifts.append(shift_by)
            self._scales.append(pow2_scale(spread))
            self._col_min.append(torch.full_like(x[0], float("inf"), dtype=F64))
            self._col_max.append(torch.full_like(x[0], float("-inf"), dtype=F64))
        self._moments = Moments(widths[0], widths[1], self.debiased, device)

    def _add(self, layers: list[Tensor], ranges: list[tuple[Tensor, Tensor]]) -> None:
        assert self._moments is not None
        exact = self.precision == "exact"
        prod = product_dtype(layers, self.precision)
        b = layers[0].shape[0]
        total = self._moments.total
        rows_per = max(1, budget.CHUNK_BYTES // (12 * total))
        if prod != F64:
            rows_per = min(rows_per, budget.MAX_F32_ROWS)
        # running column ranges: a layer constant over all rows makes CKA 0/0 at compute()
        for i, (lo, hi) in enumerate(ranges):
            torch.minimum(self._col_min[i], lo.to(F64), out=self._col_min[i])
            torch.maximum(self._col_max[i], hi.to(F64), out=self._col_max[i])
        for r0 in range(0, b, rows_per):
            r1 = min(b, r0 + rows_per)
            z = torch.empty((r1 - r0, total), dtype=prod, device=layers[0].device)
            for i, x in enumerate(layers):
                off, w = self._moments.offsets[i], self._moments.widths[i]
                zi = shift(x[r0:r1], self._shifts[i], prod, exact)
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
        labx, laby = self._labels()
        for i, label in enumerate(labx if laby is labx else labx + laby):
            if bool(torch.equal(self._col_min[i], self._col_max[i])):
                raise constant_error(label)
        with torch.no_grad():
            st = self._moments.stats()
            return ratio(*numerators(st, self.debiased), labx, laby, self.debiased)


# ----------------------------------------------------------------------------
# Minibatch estimator of Nguyen et al.
# ----------------------------------------------------------------------------


class MinibatchCKA(_StreamingCKA):
    """Minibatch CKA estimator of Nguyen, Raghu & Kornblith (2021).

    From "Do Wide and Deep Networks Learn the Same Things?": for minibatches
    ``i = 1..k`` with Gram matrices ``K_i``, ``L_i``, the per-batch HSIC
    estimates are averaged, each batch counting once whatever its size::

        CKA_mb = (1/k) Σ_i HSIC(K_i, L_i)
                 / sqrt((1/k) Σ_i HSIC(K_i, K_i) · (1/k) Σ_i HSIC(L_i, L_i))

    (the ``1/k`` cancels), with ``HSIC`` computed within each batch of ``b_i``
    rows: the unbiased ``HSIC_1`` of Song et al. (2012) (``debiased=True``, as
    in the paper) or the biased ``HSIC_0 = tr(K_i H L_i H)/(b_i-1)²``
    (``debiased=False``).  This is the paper's formula.  The authors'
    reference code (``efficient_CKA.py``) instead adds the unnormalised
    ``<U(K_i), U(L_i)> = b_i(b_i-3) · HSIC_1(K_i, L_i)``, i.e. weights batch
    ``i`` by ``b_i(b_i-3)``; the two agree exactly when all batches have the
    same size and differ otherwise (e.g. with a shorter last batch).

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
        super().__init__(debiased=debiased, precision=precision, device=device)

    def _clear(self) -> None:
        self._sum_xy: Tensor | None = None
        self._sum_xx: Tensor | None = None
        self._sum_yy: Tensor | None = None
        self._n = 0

    @property
    def n(self) -> int:
        """Number of rows (examples) seen so far."""
        return self._n

    def _mismatch_message(self, widths: Widths, ctx: str) -> str:
        return (
            f"layer shapes {widths} differ from the first batch's {self._widths}{ctx} "
            "(ys must be passed in every update or in none); call reset() to start over."
        )

    def update(self, xs: Layers, ys: Layers | None = None) -> None:
        """Add the per-batch HSIC estimates of one minibatch.

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
        need = 4 if self.debiased else 2
        batch = self._read_batch(xs, ys, min_rows=need, debiased=self.debiased)
        (lx, _, sx), gy = batch.xs, batch.ys
        ly, sy = (None, None) if gy is None else (gy[0], gy[2])
        with torch.no_grad(), matmul_precision(self.precision):
            st, sc_x, sc_y = linear_stats(lx, ly, self.precision, "auto", batch.ranges, (sx, sy))
            h_xy, h_xx, h_yy = self._batch_hsic(st, sc_x, sc_y)
        if self._sum_xy is None:
            # separate tensors: h_xx and h_yy may be one object in a self comparison
            self._sum_xy, self._sum_xx, self._sum_yy = h_xy, h_xx.clone(), h_yy.clone()
        else:
            self._sum_xy += h_xy
            self._sum_xx += h_xx  # type: ignore[operator]
            self._sum_yy += h_yy  # type: ignore[operator]
        self._n += st.n
        self._count(batch)

    def _batch_hsic(self, st: Stats, sc_x: Tensor, sc_y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """This batch's HSIC estimates (xy, xx, yy) of the unscaled data.

        :func:`numerators` leaves out the estimator's normalisation, ``1/(b(b-3))``
        (unbiased) or ``1/(b-1)²`` (biased); it is applied here so that every batch
        contributes an HSIC estimate, and batches of different sizes count equally.
        """
        num_xy, num_xx, num_yy = numerators(st, self.debiased)
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
        return h_xy, h_xx, h_yy

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
        labx, laby = self._labels()
        return ratio(self._sum_xy, self._sum_xx, self._sum_yy, labx, laby, self.debiased)

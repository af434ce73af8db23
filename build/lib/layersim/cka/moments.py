"""Float64 running moments from which exact full-data linear CKA follows.

:class:`layersim.cka.CKAAccumulator` shifts every batch by a fixed vector per layer and
adds the moments of the shifted rows ``z`` here: ``n``, ``Σz``, the needed blocks of
``ZᵀZ`` and, for the debiased estimator, with ``a_i = ‖z_i‖²`` per layer, ``Σa``,
``Σ a aᵀ`` and ``Σ a ⊗ z``.  :meth:`Moments.stats` turns them into the centred statistics
of :mod:`layersim.cka.hsic` exactly (the algebra is in its docstring), so the result does
not depend on how the rows were split into batches.  Memory is fixed by the layer widths.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .hsic import Stats
from .numerics import F64, col_layer_index, layer_offsets


class Moments:
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
        self.offsets = layer_offsets(self.widths)
        self.total = sum(self.widths)
        self.debiased = debiased
        self.device = device
        n_layers = len(self.widths)
        self.col_layer = col_layer_index(self.widths, device)
        # which column ranges of ZᵀZ each layer's rows need: the upper triangle of layer
        # blocks for a self comparison; the cross blocks and the own block otherwise
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
            [torch.zeros((self.widths[a], e - s), dtype=F64, device=device) for s, e in segs]
            for a, segs in enumerate(self.segments)
        ]
        self.n = 0
        self.sum_z = torch.zeros(self.total, dtype=F64, device=device)
        if debiased:
            self.sum_a = torch.zeros(n_layers, dtype=F64, device=device)
            self.s_aa = torch.zeros((n_layers, n_layers), dtype=F64, device=device)
            self.w_az = torch.zeros((n_layers, self.total), dtype=F64, device=device)

    def add(self, z: Tensor) -> None:
        """Add a chunk of shifted rows z (b, total) in the product dtype."""
        z64 = z.to(F64)
        self.n += z.shape[0]
        self.sum_z += z64.sum(0)
        for a, segs in enumerate(self.segments):
            za = z[:, self.offsets[a] : self.offsets[a] + self.widths[a]]
            for acc, (s, e) in zip(self.m[a], segs, strict=True):
                acc.add_(za.T @ z[:, s:e])
        if self.debiased:
            sq = torch.zeros((z.shape[0], len(self.widths)), dtype=F64, device=self.device)
            sq.index_add_(1, self.col_layer, z64 * z64)
            self.sum_a += sq.sum(0)
            self.s_aa += sq.T @ sq
            self.w_az += sq.T @ z64

    def stats(self) -> Stats:
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
        m = torch.zeros(n_layers, dtype=F64, device=dev).index_add_(0, self.col_layer, mu * mu)
        p = torch.zeros((n_layers, n_layers), dtype=F64, device=dev)
        q = torch.zeros((n_layers, n_layers), dtype=F64, device=dev)
        for a, segs in enumerate(self.segments):
            mu_a = mu[self.offsets[a] : self.offsets[a] + self.widths[a]]
            for acc, (s, e) in zip(self.m[a], segs, strict=True):
                c = acc - n * torch.outer(mu_a, mu[s:e])
                cols = self.col_layer[s:e]
                p[a].index_add_(0, cols, (c * c).sum(0))
                q[a].index_add_(0, cols, (mu_a @ acc) * mu[s:e])
        if self.debiased:
            wmu = torch.zeros((n_layers, n_layers), dtype=F64, device=dev)
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
            s = torch.zeros(n_layers, dtype=F64, device=dev)
        la = self.la
        if self.self_mode:
            p = torch.triu(p) + torch.triu(p, 1).T
            r = torch.triu(r) + torch.triu(r, 1).T
            d, dr = torch.diagonal(p).clone(), torch.diagonal(r).clone()
            return Stats(n, p, d, d, r, dr, dr, s, s, True)
        dp, dr = torch.diagonal(p), torch.diagonal(r)
        return Stats(
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

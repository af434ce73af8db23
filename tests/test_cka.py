"""Tests of layersim.cka against an independent float64 reference written here from the
published formulas, one pair at a time, in Gram (n x n) space.

Reference definitions (none of layersim's code is used for them):

* biased HSIC (Gretton et al. 2005): tr(K H L H) / (n-1)^2 with H = I - 11^T / n;
* unbiased HSIC (Song et al. 2012): with K~, L~ the Grams with zeroed diagonal,
  [tr(K~L~) + 1^T K~ 1 · 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) · 1^T K~ L~ 1] / (n(n-3));
* RBF Gram (Kornblith et al. 2019, `gram_rbf`): exp(-D / (2 t^2 median(D))) with D the full
  matrix of squared distances (diagonal zeros included in numpy's median);
* CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch

from layersim import cka
from layersim.cka import (
    CKAAccumulator,
    MinibatchCKA,
    budget,
    cka_matrix,
    linear,
    linear_cka,
    rbf_cka,
)
from layersim.cka.numerics import matmul_precision
from layersim.cka.oneshot import _cka_matrix_impl

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tests use small matrices: one thread avoids per-operation synchronisation
    costs that dominate when other processes compete for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Independent reference
# ---------------------------------------------------------------------------------------------


def ref_linear_gram(x: torch.Tensor) -> torch.Tensor:
    # Both HSIC estimators are invariant to translating x, so the reference may subtract the
    # column mean first; without it a Gram of data with mean 300 loses ~1e-10 to cancellation.
    x = x.to(F64)
    x = x - x.mean(0)
    return x @ x.T


def ref_rbf_gram(x: torch.Tensor, threshold: float) -> torch.Tensor:
    x = x.to(F64)
    diff = x[:, None, :] - x[None, :, :]
    sq_dist = (diff * diff).sum(-1)
    sq_median = float(np.median(sq_dist.numpy()))
    return torch.exp(-sq_dist / (2 * threshold**2 * sq_median))


def ref_hsic_biased(k: torch.Tensor, l_: torch.Tensor) -> float:
    n = k.shape[0]
    h = torch.eye(n, dtype=F64) - torch.full((n, n), 1.0 / n, dtype=F64)
    return float(torch.trace(k @ h @ l_ @ h)) / (n - 1) ** 2


def ref_hsic_unbiased(k: torch.Tensor, l_: torch.Tensor) -> float:
    n = k.shape[0]
    kt = k - torch.diag(torch.diagonal(k))
    lt = l_ - torch.diag(torch.diagonal(l_))
    one = torch.ones(n, dtype=F64)
    value = (
        torch.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    )
    return float(value) / (n * (n - 3))


def ref_gram(x: torch.Tensor, kernel: str, threshold: float) -> torch.Tensor:
    return ref_linear_gram(x) if kernel == "linear" else ref_rbf_gram(x, threshold)


def ref_cka_from_grams(k: torch.Tensor, l_: torch.Tensor, debiased: bool) -> float:
    hsic = ref_hsic_unbiased if debiased else ref_hsic_biased
    return hsic(k, l_) / math.sqrt(hsic(k, k) * hsic(l_, l_))


def ref_cka(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    debiased: bool = False,
    kernel: str = "linear",
    threshold: float = 1.0,
) -> float:
    return ref_cka_from_grams(
        ref_gram(x, kernel, threshold), ref_gram(y, kernel, threshold), debiased
    )


def ref_matrix(xs, ys=None, *, debiased=False, kernel="linear", threshold=1.0) -> torch.Tensor:
    """Reference CKA for every pair (each layer's Gram computed once)."""
    gx = [ref_gram(x, kernel, threshold) for x in xs]
    gy = gx if ys is None else [ref_gram(y, kernel, threshold) for y in ys]
    return torch.tensor([[ref_cka_from_grams(k, l_, debiased) for l_ in gy] for k in gx], dtype=F64)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def residual_layers(
    n: int,
    widths: tuple[int, ...],
    *,
    seed: int = 0,
    dtype: torch.dtype = F64,
    offset: float = 0.0,
) -> list[torch.Tensor]:
    """Correlated layers of different widths, like a residual stream read out per layer."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 8, generator=g, dtype=F64)
    layers = []
    for w in widths:
        base = base + 0.7 * torch.randn(n, 8, generator=g, dtype=F64)
        mix = torch.randn(8, w, generator=g, dtype=F64)
        x = base @ mix + 0.5 * torch.randn(n, w, generator=g, dtype=F64)
        x[:, :2] += offset  # a few dimensions with a large mean
        layers.append(x.to(dtype))
    return layers


def methods_impl(xs, ys=None, *, method: str, debiased: bool = False, precision: str = "exact"):
    return _cka_matrix_impl(
        xs,
        ys,
        kernel="linear",
        debiased=debiased,
        precision=precision,
        rbf_threshold=1.0,
        method=method,
    )


# ---------------------------------------------------------------------------------------------
# Agreement with the reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("method", ["auto", "gram", "feature"])
def test_linear_matrix_matches_reference(debiased: bool, method: str) -> None:
    xs = residual_layers(40, (5, 12, 30), seed=1, offset=3.0)
    got = methods_impl(xs, method=method, debiased=debiased)
    torch.testing.assert_close(got, ref_matrix(xs, debiased=debiased), atol=1e-10, rtol=0)
    ys = residual_layers(40, (7, 3), seed=2)
    ys[1] = ys[1] + xs[0][:, :3]
    got = methods_impl(xs, ys, method=method, debiased=debiased)
    torch.testing.assert_close(got, ref_matrix(xs, ys, debiased=debiased), atol=1e-10, rtol=0)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("n", [30, 31])  # n² even (median of two middle values) and odd
@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_rbf_matches_reference(debiased: bool, n: int, threshold: float) -> None:
    xs = residual_layers(n, (4, 9, 6), seed=3)
    got = cka_matrix(xs, kernel="rbf", debiased=debiased, rbf_threshold=threshold)
    want = ref_matrix(xs, debiased=debiased, kernel="rbf", threshold=threshold)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    value = rbf_cka(xs[0], xs[2], threshold=threshold, debiased=debiased)
    assert value.shape == () and value.dtype == F64
    assert float(value) == pytest.approx(float(want[0, 2]), abs=1e-10)


def test_pair_functions_match_reference_and_return_0d_float64() -> None:
    x, y = residual_layers(25, (6, 4), seed=4, dtype=torch.float32)
    for debiased in (False, True):
        value = linear_cka(x, y, debiased=debiased)
        assert value.shape == () and value.dtype == F64 and value.device == x.device
        assert float(value) == pytest.approx(ref_cka(x, y, debiased=debiased), abs=1e-6)


def test_debiased_can_be_negative_and_is_not_clamped() -> None:
    g = torch.Generator().manual_seed(5)
    values = []
    for _ in range(10):
        x = torch.randn(12, 3, generator=g, dtype=F64)
        y = torch.randn(12, 3, generator=g, dtype=F64)
        got = float(linear_cka(x, y, debiased=True))
        assert got == pytest.approx(ref_cka(x, y, debiased=True), abs=1e-12)
        values.append(got)
    assert min(values) < 0


def test_rbf_bandwidth_uses_median_with_diagonal_zeros_and_factor_two() -> None:
    # 4 points on a line: squared distances {0 x4, 1 x6, 4 x4, 9 x2}; numpy median of 16 = 1.
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=F64)
    y = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=F64)
    d2 = (x - x.T) ** 2
    k = torch.exp(-d2 / (2 * 1.0 * 1.0))  # sigma² = median = 1
    d2y = (y - y.T) ** 2
    l_ = torch.exp(-d2y / (2 * float(np.median(d2y.numpy()))))
    want = ref_hsic_biased(k, l_) / math.sqrt(ref_hsic_biased(k, k) * ref_hsic_biased(l_, l_))
    assert float(rbf_cka(x, y)) == pytest.approx(want, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_unit_diagonal_and_exact_symmetry(kernel: str, debiased: bool) -> None:
    xs = residual_layers(50, (3, 17, 8, 8), seed=6, dtype=torch.float32, offset=30.0)
    m = cka_matrix(xs, kernel=kernel, debiased=debiased)
    assert m.dtype == F64 and m.shape == (4, 4)
    assert torch.equal(m.diagonal(), torch.ones(4, dtype=F64))
    assert torch.equal(m, m.T)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_invariances(kernel: str, debiased: bool) -> None:
    x, y = residual_layers(35, (10, 6), seed=7)
    g = torch.Generator().manual_seed(8)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=F64))
    base = cka_matrix([x], [y], kernel=kernel, debiased=debiased)
    transformed = [x @ q, 3.7 * x, x + 100.0 * torch.randn(10, generator=g, dtype=F64)]
    for xt in transformed:
        got = cka_matrix([xt], [y], kernel=kernel, debiased=debiased)
        torch.testing.assert_close(got, base, atol=1e-10, rtol=0)


def test_null_expectation_for_independent_gaussians() -> None:
    n, d1, d2 = 200, 20, 30
    g = torch.Generator().manual_seed(9)
    biased, unbiased = [], []
    for _ in range(20):
        x = torch.randn(n, d1, generator=g, dtype=F64)
        y = torch.randn(n, d2, generator=g, dtype=F64)
        biased.append(float(linear_cka(x, y)))
        unbiased.append(float(linear_cka(x, y, debiased=True)))
    # E‖XᵀY‖² ≈ n·d1·d2 and E‖XᵀX‖² ≈ n·d·(n + d): biased CKA ≈ sqrt(d1 d2 / ((n+d1)(n+d2)))
    expected = math.sqrt(d1 * d2 / ((n + d1) * (n + d2)))
    assert np.mean(biased) == pytest.approx(expected, rel=0.05)
    # debiased CKA has mean ≈ 0 and a spread of about 1.5 / n here
    assert abs(np.mean(unbiased)) < 0.01
    assert min(unbiased) < 0 < max(unbiased)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("method", ["gram", "feature"])
def test_cross_matrix_is_off_diagonal_block_of_joint_matrix(debiased: bool, method: str) -> None:
    xs = residual_layers(30, (4, 9), seed=10)
    ys = residual_layers(30, (5, 2, 7), seed=11)
    joint = methods_impl(xs + ys, method=method, debiased=debiased)
    cross = methods_impl(xs, ys, method=method, debiased=debiased)
    torch.testing.assert_close(cross, joint[:2, 2:], atol=1e-12, rtol=0)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_gram_form_equals_feature_form(debiased: bool, dtype: torch.dtype) -> None:
    xs = residual_layers(60, (5, 40, 13), seed=12, dtype=dtype, offset=30.0)
    ys = residual_layers(60, (9, 3), seed=13, dtype=dtype)
    atol = 1e-12 if dtype == F64 else 1e-6
    for other in (None, ys):
        gram = methods_impl(xs, other, method="gram", debiased=debiased)
        feature = methods_impl(xs, other, method="feature", debiased=debiased)
        torch.testing.assert_close(gram, feature, atol=atol, rtol=0)


def test_chunked_code_paths_agree_with_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny chunk budgets force many row blocks, column pieces and RBF Gram groups."""
    xs = residual_layers(45, (6, 11, 4), seed=14, dtype=torch.float32, offset=30.0)
    ys = residual_layers(45, (3, 8), seed=15, dtype=torch.float32)
    want = {d: ref_matrix(xs, debiased=d) for d in (False, True)}
    want_xy = {d: ref_matrix(xs, ys, debiased=d) for d in (False, True)}
    want_rbf = ref_matrix(xs, ys, kernel="rbf")
    monkeypatch.setattr(budget, "CHUNK_BYTES", 512)
    monkeypatch.setattr(budget, "MAX_F32_ROWS", 7)
    monkeypatch.setattr(budget, "GRAM_BYTES", 45 * 45 * 8 * 2)  # one Gram per group
    monkeypatch.setattr(linear, "_gram_block_rows", lambda n, n_layers, itemsize: 8)
    for debiased in (False, True):
        for method in ("gram", "feature"):
            got = methods_impl(xs, method=method, debiased=debiased)
            torch.testing.assert_close(got, want[debiased], atol=1e-6, rtol=0)
            got = methods_impl(xs, ys, method=method, debiased=debiased)
            torch.testing.assert_close(got, want_xy[debiased], atol=1e-6, rtol=0)
        acc = CKAAccumulator(debiased=debiased)
        acc.update([x[:30] for x in xs])
        acc.update([x[30:] for x in xs])
        torch.testing.assert_close(acc.compute(), want[debiased], atol=1e-6, rtol=0)
    torch.testing.assert_close(cka_matrix(xs, ys, kernel="rbf"), want_rbf, atol=1e-10, rtol=0)


def test_method_choice_follows_cost() -> None:
    widths = [768] * 13
    assert linear.choose_method(2000, widths, None) == "gram"
    assert linear.choose_method(20000, widths, None) == "feature"
    assert linear.choose_method(100, [10000, 10000], [10000]) == "gram"
    assert linear.choose_method(100000, [16, 32], [8]) == "feature"


# ---------------------------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [30.0, 300.0])
@pytest.mark.parametrize("method", ["gram", "feature"])
@pytest.mark.parametrize("debiased", [False, True])
def test_exact_mode_float32_within_1e6_of_float64(offset: float, method: str, debiased: bool):
    xs = residual_layers(300, (64, 64, 32, 96), seed=16, dtype=torch.float32, offset=offset)
    want = methods_impl([x.to(F64) for x in xs], method=method, debiased=debiased)
    torch.testing.assert_close(want, ref_matrix(xs, debiased=debiased), atol=1e-10, rtol=0)
    got = methods_impl(xs, method=method, debiased=debiased)
    assert (got - want).abs().max() < 1e-6


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("debiased", [False, True])
def test_exact_mode_half_precision_inputs(dtype: torch.dtype, debiased: bool) -> None:
    xs = residual_layers(200, (32, 48, 16), seed=17, dtype=dtype, offset=30.0)
    want = ref_matrix(xs, debiased=debiased)  # float64 on the same (rounded) values
    got = cka_matrix(xs, debiased=debiased)
    assert (got - want).abs().max() < 1e-6


def test_exact_mode_ignores_reduced_precision_matmul_setting() -> None:
    """set_float32_matmul_precision('medium') makes CPU float32 matmuls use bfloat16."""
    xs = residual_layers(300, (64, 64, 32), seed=18, dtype=torch.float32, offset=300.0)
    want = ref_matrix(xs, debiased=True)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        for method in ("gram", "feature"):
            got = methods_impl(xs, method=method, debiased=True)
            assert (got - want).abs().max() < 1e-6
        assert torch.get_float32_matmul_precision() == "medium"  # restored afterwards
    finally:
        torch.set_float32_matmul_precision(before)


def test_fast_mode_is_close() -> None:
    xs = residual_layers(300, (64, 64, 32), seed=19, dtype=torch.float32, offset=30.0)
    for debiased in (False, True):
        want = ref_matrix(xs, debiased=debiased)
        for method in ("gram", "feature"):
            got = methods_impl(xs, method=method, debiased=debiased, precision="fast")
            assert (got - want).abs().max() < 1e-4
        acc = CKAAccumulator(debiased=debiased, precision="fast")
        acc.update(xs)
        assert (acc.compute() - want).abs().max() < 1e-4


def test_huge_values_do_not_overflow() -> None:
    xs = residual_layers(50, (8, 8), seed=20, dtype=torch.float32)
    big = [x * 1e30 for x in xs]  # float32 products of these would overflow
    torch.testing.assert_close(cka_matrix(big), cka_matrix(xs), atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


def random_splits(n: int, seed: int) -> list[slice]:
    g = torch.Generator().manual_seed(seed)
    cuts, start = [], 0
    while start < n:
        size = int(torch.randint(1, 9, (1,), generator=g))
        if int(torch.randint(0, 3, (1,), generator=g)) == 0:
            size = 1  # plenty of one-row batches
        cuts.append(slice(start, min(n, start + size)))
        start += size
    return cuts


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_one_shot(debiased: bool, cross: bool, seed: int) -> None:
    xs = residual_layers(57, (5, 13, 2), seed=21 + seed, offset=300.0)
    ys = residual_layers(57, (7, 4), seed=31 + seed) if cross else None
    acc = CKAAccumulator(debiased=debiased)
    for part in random_splits(57, seed):
        acc.update([x[part] for x in xs], None if ys is None else [y[part] for y in ys])
    assert acc.n == 57 and acc.shape == ((3, 2) if cross else (3, 3))
    want = cka_matrix(xs, ys, debiased=debiased)
    torch.testing.assert_close(acc.compute(), want, atol=1e-10, rtol=0)
    torch.testing.assert_close(
        acc.compute(), ref_matrix(xs, ys, debiased=debiased), atol=1e-10, rtol=0
    )


def test_streaming_stacked_batches_float32_and_reset() -> None:
    stack = torch.stack(residual_layers(80, (16, 16, 16), seed=41, dtype=torch.float32, offset=30))
    acc = CKAAccumulator(debiased=True)
    for batch in stack.split(11, dim=1):
        acc.update(batch)
    assert acc.num_batches == 8
    want = ref_matrix(list(stack), debiased=True)
    assert (acc.compute() - want).abs().max() < 1e-6
    acc.reset()
    assert acc.n == 0 and acc.shape is None
    acc.update(stack[:, :40])
    assert acc.n == 40


def test_streaming_memory_does_not_grow_with_rows() -> None:
    xs = residual_layers(400, (6, 10), seed=42)

    def state_numel(acc: CKAAccumulator) -> int:
        tensors = [t for t in vars(acc._moments).values() if isinstance(t, torch.Tensor)]
        blocks = [t for row in acc._moments.m for t in row]
        return sum(t.numel() for t in tensors + blocks)

    acc = CKAAccumulator(debiased=True)
    acc.update([x[:10] for x in xs])
    small = state_numel(acc)
    acc.update([x[10:] for x in xs])
    assert state_numel(acc) == small


@pytest.mark.parametrize("debiased", [True, False])
def test_minibatch_cka_is_sum_of_per_batch_hsic(debiased: bool) -> None:
    xs = residual_layers(48, (5, 9), seed=43, offset=30.0)
    ys = residual_layers(48, (4,), seed=44)
    hsic = ref_hsic_unbiased if debiased else ref_hsic_biased
    batches = [slice(0, 16), slice(16, 32), slice(32, 48)]
    for other in (None, ys):
        mb = MinibatchCKA(debiased=debiased)
        for part in batches:
            mb.update([x[part] for x in xs], None if other is None else [y[part] for y in other])
        assert mb.n == 48 and mb.num_batches == 3
        cols = xs if other is None else other
        want = torch.empty(len(xs), len(cols), dtype=F64)
        for a, x in enumerate(xs):
            for b, y in enumerate(cols):
                grams = [
                    (ref_linear_gram(x[p]), ref_linear_gram(y[p])) for p in batches
                ]  # per-batch Gram matrices
                xy = sum(hsic(k, l_) for k, l_ in grams)
                xx = sum(hsic(k, k) for k, _ in grams)
                yy = sum(hsic(l_, l_) for _, l_ in grams)
                want[a, b] = xy / math.sqrt(xx * yy)
        torch.testing.assert_close(mb.compute(), want, atol=1e-10, rtol=0)
    # a different estimator from full-data CKA
    full = cka_matrix(xs, debiased=debiased)
    mb = MinibatchCKA(debiased=debiased)
    for part in batches:
        mb.update([x[part] for x in xs])
    assert (mb.compute() - full).abs().max() > 1e-4


@pytest.mark.parametrize("debiased", [True, False])
def test_minibatch_cka_averages_per_batch_hsic_over_unequal_batches(debiased: bool) -> None:
    """Batches of 7, 12 and 20 rows: each batch's HSIC estimate counts once, as in Nguyen et
    al.'s (1/k) Σ_i HSIC_1(K_i, L_i); the reference code's sums of the unnormalised
    <U(K_i), U(L_i)> = b_i(b_i-3) HSIC_1 would weight the batches by size instead."""
    sizes = (7, 12, 20)
    ends = np.cumsum(sizes)
    batches = [slice(int(e - b), int(e)) for b, e in zip(sizes, ends, strict=True)]
    xs = residual_layers(int(ends[-1]), (5, 9, 3), seed=62, offset=30.0)
    ys = residual_layers(int(ends[-1]), (4, 6), seed=63)
    hsic = ref_hsic_unbiased if debiased else ref_hsic_biased

    def reference(rows, cols, weights) -> torch.Tensor:
        """Weighted sums over batches of the float64 per-batch HSIC, then the CKA ratio."""
        out = torch.empty(len(rows), len(cols), dtype=F64)
        for a, x in enumerate(rows):
            for c, y in enumerate(cols):
                sums = np.zeros(3)
                for part, w in zip(batches, weights, strict=True):
                    k, l_ = ref_linear_gram(x[part]), ref_linear_gram(y[part])
                    sums += w * np.array([hsic(k, l_), hsic(k, k), hsic(l_, l_)])
                out[a, c] = sums[0] / math.sqrt(sums[1] * sums[2])
        return out

    by_size = [b * (b - 3) if debiased else (b - 1) ** 2 for b in sizes]
    for other in (None, ys):
        mb = MinibatchCKA(debiased=debiased)
        for part in batches:
            mb.update([x[part] for x in xs], None if other is None else [y[part] for y in other])
        assert mb.n == sum(sizes) and mb.num_batches == 3
        cols = xs if other is None else other
        got = mb.compute()
        torch.testing.assert_close(got, reference(xs, cols, [1.0, 1.0, 1.0]), atol=1e-10, rtol=0)
        # the test tells the two weightings apart: size-weighted sums give other numbers here
        assert (got - reference(xs, cols, by_size)).abs().max() > 1e-3


def test_minibatch_tolerates_a_layer_constant_within_one_batch() -> None:
    xs = residual_layers(24, (4, 4), seed=45)
    xs[1][:8] = 1.0
    mb = MinibatchCKA()
    for part in (slice(0, 8), slice(8, 16), slice(16, 24)):
        mb.update([x[part] for x in xs])
    assert torch.isfinite(mb.compute()).all()


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_errors_row_mismatch() -> None:
    x, y = residual_layers(20, (3, 4), seed=50)
    with pytest.raises(ValueError, match=r"y has 19 rows but x has 20 rows"):
        linear_cka(x, y[:19])
    with pytest.raises(ValueError, match=r"xs\[1\] has 19 rows but xs\[0\] has 20"):
        cka_matrix([x, y[:19]])
    with pytest.raises(ValueError, match=r"ys\[0\] has 18 rows but xs\[0\] has 20"):
        cka_matrix([x], [y[:18]])


def test_errors_nan_and_inf_name_the_layer() -> None:
    xs = residual_layers(20, (3, 4, 5), seed=51, dtype=torch.float32)
    xs[2][4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"xs\[2\] contains NaN or Inf \(1 non-finite"):
        cka_matrix(xs)
    x, y = residual_layers(20, (3, 4), seed=52)
    y[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^y contains NaN or Inf"):
        linear_cka(x, y)
    with pytest.raises(ValueError, match=r"^y contains NaN or Inf"):
        rbf_cka(x, y)


def test_errors_too_few_rows() -> None:
    x, y = residual_layers(3, (3, 4), seed=53)
    with pytest.raises(ValueError, match=r"at least 4 rows .*got n = 3.*debiased=False"):
        linear_cka(x, y, debiased=True)
    assert torch.isfinite(linear_cka(x, y))  # 3 rows are fine for the biased estimator
    with pytest.raises(ValueError, match=r"at least 2 rows .*got n = 1"):
        linear_cka(x[:1], y[:1])


def test_errors_constant_layer() -> None:
    xs = residual_layers(20, (3, 4, 5), seed=54)
    xs[1] = torch.full((20, 4), 2.5, dtype=F64)
    with pytest.raises(ValueError, match=r"xs\[1\] is constant"):
        cka_matrix(xs)
    with pytest.raises(ValueError, match=r"^x is constant"):
        linear_cka(xs[1], xs[0])
    with pytest.raises(ValueError, match=r"xs\[1\] is constant"):
        cka_matrix(xs, kernel="rbf")


def test_errors_wrong_ndim_type_and_dtype() -> None:
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match=r"3-D tensor \(L, n, d\).*2-D tensor of shape \(10, 4\)"):
        cka_matrix(x)
    with pytest.raises(ValueError, match=r"xs\[1\] must be 2-D .*\(10, 2, 2\).*reshape"):
        cka_matrix([x, torch.randn(10, 2, 2)])
    with pytest.raises(ValueError, match=r"y must be a 2-D tensor .*\(3, 10, 4\)"):
        linear_cka(x, torch.randn(3, 10, 4))
    with pytest.raises(ValueError, match=r"xs holds no layers"):
        cka_matrix([])
    with pytest.raises(ValueError, match=r"floating-point"):
        cka_matrix([torch.ones(10, 3, dtype=torch.int64)])
    with pytest.raises(ValueError, match=r"xs\[0\] must be a torch.Tensor"):
        cka_matrix([[[1.0, 2.0], [3.0, 4.0]]])  # nested lists: not features
    # NumPy arrays are taken as they are, one (L, n, d) array or a list of (n, d) ones
    features = np.random.default_rng(0).normal(size=(2, 10, 3))
    torch.testing.assert_close(cka_matrix(features), cka_matrix(torch.from_numpy(features)))
    torch.testing.assert_close(cka_matrix(list(features)), cka_matrix(torch.from_numpy(features)))


def test_errors_unknown_options() -> None:
    xs = residual_layers(10, (3, 4), seed=55)
    with pytest.raises(ValueError, match=r"unknown kernel 'cosine'.*'linear', 'rbf'"):
        cka_matrix(xs, kernel="cosine")
    with pytest.raises(ValueError, match=r"unknown precision 'exakt'.*'exact', 'fast'"):
        cka_matrix(xs, precision="exakt")
    with pytest.raises(ValueError, match=r"unknown precision"):
        linear_cka(xs[0], xs[1], precision="half")
    with pytest.raises(ValueError, match=r"unknown precision"):
        CKAAccumulator(precision="double")
    with pytest.raises(ValueError, match=r"threshold must be a positive number"):
        rbf_cka(xs[0], xs[1], threshold=0.0)


def test_errors_rbf_zero_median_distance() -> None:
    x = torch.zeros(10, 3, dtype=F64)
    x[0, 0] = 1.0  # only 18 of 100 pairs differ: median squared distance is 0
    y = torch.randn(10, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"^x: the median squared distance .* is 0"):
        rbf_cka(x, y)


def test_errors_accumulator() -> None:
    xs = residual_layers(12, (3, 4), seed=56)
    acc = CKAAccumulator(debiased=True)
    with pytest.raises(ValueError, match=r"no rows seen yet"):
        acc.compute()
    acc.update([x[:3] for x in xs])
    with pytest.raises(ValueError, match=r"at least 4 rows .*only 3 seen"):
        acc.compute()
    with pytest.raises(ValueError, match=r"xs\[1\] has 5 features \(update #1\) but 4"):
        acc.update([xs[0][3:], torch.randn(9, 5, dtype=F64)])
    with pytest.raises(ValueError, match=r"ys in every update"):
        acc.update([x[3:] for x in xs], [x[3:] for x in xs])
    bad = [x[3:].clone() for x in xs]
    bad[0][2, 2] = float("nan")
    with pytest.raises(ValueError, match=r"xs\[0\] contains NaN"):
        acc.update(bad)
    cross = CKAAccumulator()
    cross.update([xs[0][:3]], [xs[1][:3]])
    with pytest.raises(
        ValueError, match=r"ys\[0\] has 8 rows but xs\[0\] has 9 rows \(update #1\)"
    ):
        cross.update([xs[0][3:]], [xs[1][4:]])
    const = CKAAccumulator()
    const.update([xs[0][:6], torch.ones(6, 2)])
    const.update([xs[0][6:], torch.ones(6, 2)])
    with pytest.raises(ValueError, match=r"xs\[1\] is constant"):
        const.compute()


def test_errors_minibatch() -> None:
    xs = residual_layers(12, (3, 4), seed=57)
    mb = MinibatchCKA()
    with pytest.raises(ValueError, match=r"no batches seen yet"):
        mb.compute()
    with pytest.raises(ValueError, match=r"at least 4 rows \(examples\) \(update #0\); got n = 3"):
        mb.update([x[:3] for x in xs])
    mb.update([x[:6] for x in xs])
    with pytest.raises(ValueError, match=r"differ from the first batch"):
        mb.update([xs[0][6:]])
    const = MinibatchCKA()
    const.update([xs[0][:6], torch.ones(6, 2, dtype=F64)])
    with pytest.raises(ValueError, match=r"xs\[1\]: its debiased self-HSIC is 0"):
        const.compute()


# ---------------------------------------------------------------------------------------------
# Docs and devices
# ---------------------------------------------------------------------------------------------


def test_docstring_examples() -> None:
    result = doctest.testmod(cka, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_public_api_has_docstrings() -> None:
    for name in cka.__all__:
        obj = getattr(cka, name)
        if callable(obj):
            assert obj.__doc__ and "Parameters" in obj.__doc__ or name == "Layers", name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    xs = residual_layers(500, (64, 96, 32), seed=60, dtype=torch.float32, offset=300.0)
    ys = residual_layers(500, (48,), seed=61, dtype=torch.float32)
    cuda = [x.cuda() for x in xs]
    cuda_y = [y.cuda() for y in ys]
    previous = torch.backends.cuda.matmul.fp32_precision
    torch.backends.cuda.matmul.fp32_precision = "tf32"  # exact mode must not use TF32 anyway
    try:
        for debiased in (False, True):
            want = cka_matrix(xs, debiased=debiased)
            for method in ("gram", "feature"):
                got = methods_impl(cuda, method=method, debiased=debiased)
                assert got.device.type == "cuda" and got.dtype == F64
                assert (got.cpu() - want).abs().max() < 1e-6
                fast = methods_impl(cuda, method=method, debiased=debiased, precision="fast")
                assert (fast.cpu() - want).abs().max() < 1e-3
            got = cka_matrix(cuda, cuda_y, debiased=debiased)
            assert (got.cpu() - cka_matrix(xs, ys, debiased=debiased)).abs().max() < 1e-6
            acc = CKAAccumulator(debiased=debiased)
            for part in (slice(0, 123), slice(123, 500)):
                acc.update([x[part] for x in cuda])
            assert (acc.compute().cpu() - want).abs().max() < 1e-6
            rbf = cka_matrix(cuda, kernel="rbf", debiased=debiased)
            want_rbf = cka_matrix(xs, kernel="rbf", debiased=debiased)
            assert (rbf.cpu() - want_rbf).abs().max() < 1e-9
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    finally:
        torch.backends.cuda.matmul.fp32_precision = previous


def test_streaming_accepts_mixed_dtypes_and_devices_argument() -> None:
    xs = residual_layers(40, (6, 5), seed=46)
    acc = CKAAccumulator(device="cpu")
    acc.update([x[:20].float() for x in xs])
    acc.update([x[20:] for x in xs])
    assert (acc.compute() - ref_matrix(xs)).abs().max() < 1e-6


def test_matmul_precision_settings_restored_after_an_error() -> None:
    before = (
        torch.backends.cuda.matmul.fp32_precision,
        torch.backends.mkldnn.matmul.fp32_precision,
    )
    with pytest.raises(RuntimeError, match="boom"), matmul_precision("fast"):
        raise RuntimeError("boom")
    after = (
        torch.backends.cuda.matmul.fp32_precision,
        torch.backends.mkldnn.matmul.fp32_precision,
    )
    assert after == before


def test_inputs_requiring_grad_give_a_detached_result() -> None:
    xs = torch.stack(residual_layers(20, (5, 5, 5), seed=47)).requires_grad_(True)
    m = cka_matrix(xs, debiased=True)
    assert not m.requires_grad
    torch.testing.assert_close(m, ref_matrix(list(xs.detach()), debiased=True), atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", ["gram", "feature"])
@pytest.mark.parametrize("debiased", [False, True])
def test_stacked_tensor_input_equals_list_input(method: str, debiased: bool) -> None:
    layers = residual_layers(70, (12, 12, 12, 12), seed=48, dtype=torch.float32, offset=300.0)
    layers[2] = layers[2] * 1e25  # exercises the power-of-two rescaling of one layer
    stacked = torch.stack(layers)
    from_stack = methods_impl(stacked, method=method, debiased=debiased)
    from_list = methods_impl(layers, method=method, debiased=debiased)
    torch.testing.assert_close(from_stack, from_list, atol=1e-12, rtol=0)
    assert (from_stack - ref_matrix(layers, debiased=debiased)).abs().max() < 1e-6
    other = torch.stack(residual_layers(70, (5, 5), seed=49, dtype=torch.float32))
    cross = methods_impl(stacked, other, method=method, debiased=debiased)
    torch.testing.assert_close(
        cross,
        methods_impl(layers, list(other), method=method, debiased=debiased),
        atol=1e-12,
        rtol=0,
    )


def test_stacked_tensor_errors_name_the_layer() -> None:
    stacked = torch.stack(residual_layers(20, (4, 4, 4), seed=58))
    bad = stacked.clone()
    bad[1, 3, 2] = float("inf")
    with pytest.raises(ValueError, match=r"xs\[1\] contains NaN or Inf"):
        cka_matrix(bad)
    const = stacked.clone()
    const[2] = 7.0
    with pytest.raises(ValueError, match=r"xs\[2\] is constant"):
        cka_matrix(const)
    with pytest.raises(ValueError, match=r"ys\[0\] is constant"):
        cka_matrix(stacked, const[2:])

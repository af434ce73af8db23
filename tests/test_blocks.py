"""layersim.stats.blocks on matrices and representations whose structure is known by construction.

The statistics are checked against loop-by-loop transcriptions of their definitions, and the
verdicts on block, smooth-decay (stationary and residual-stream) and structureless data.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch

from layersim.stats.block_intervals import (
    BlockBootstrap,
    bootstrap_blocks,
    has_block_structure,
    permutation_baseline,
    permutation_pvalue,
)
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD, best_split, split_at

# ----------------------------------------------------------------------------
# Independent references
# ----------------------------------------------------------------------------


def reference_stats(m: np.ndarray, b: int) -> dict[str, float]:
    """The definitions of the module docstring, one pair at a time."""
    n = len(m)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    between = [(i, j) for i, j in pairs if i < b <= j]
    within = [p for p in pairs if p not in between]
    out = {
        "within": np.mean([m[p] for p in within]),
        "between": np.mean([m[p] for p in between]),
    }
    out["contrast"] = out["within"] - out["between"]
    num = den = 0.0
    for d in range(1, n):
        w_d = [m[i, j] for i, j in within if j - i == d]
        b_d = [m[i, j] for i, j in between if j - i == d]
        if w_d and b_d:
            num += len(b_d) * (np.mean(w_d) - np.mean(b_d))
            den += len(b_d)
    out["excess_distance"] = num / den
    num = den = 0.0
    for d in range(1, n):
        w = min(d, b - d, n - b - d)
        if w >= 1:
            left = [m[i, i + d] for i in range(b - d - w, b - d)]
            right = [m[i, i + d] for i in range(b, b + w)]
            run = [m[i, i + d] for i in range(b - d, b)]
            num += d * ((np.mean(left) + np.mean(right)) / 2 - np.mean(run))
            den += d
    out["excess_local"] = num / den if den else out["excess_distance"]
    out["excess"] = min(out["excess_local"], out["excess_distance"])
    return out


def linear_cka(xs) -> np.ndarray:
    """Biased linear CKA of every pair of layers, float64, feature form."""
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    xs = [x - x.mean(axis=0) for x in xs]
    m = np.empty((len(xs), len(xs)))
    for a, x in enumerate(xs):
        for b, y in enumerate(xs):
            m[a, b] = np.sum((x.T @ y) ** 2) / np.sqrt(
                np.sum((x.T @ x) ** 2) * np.sum((y.T @ y) ** 2)
            )
    return m


def random_symmetric(n: int, seed: int) -> np.ndarray:
    m = np.random.default_rng(seed).random((n, n))
    return (m + m.T) / 2


def blocks(n: int, b: int, inside: float = 0.9, across: float = 0.2) -> np.ndarray:
    m = np.full((n, n), across)
    m[:b, :b] = inside
    m[b:, b:] = inside
    np.fill_diagonal(m, 1.0)
    return m


def toeplitz_decay(n: int, tau: float) -> np.ndarray:
    i = np.arange(n)
    return np.exp(-np.abs(i[:, None] - i[None, :]) / tau)


def residual_stream_cka(n: int) -> np.ndarray:
    """Population linear CKA of x_l = z_0 + ... + z_l with i.i.d. isotropic z: (i+1)/(j+1)."""
    i = np.arange(n)
    return (np.minimum.outer(i, i) + 1) / (np.maximum.outer(i, i) + 1)


def fixed_matrix_bootstrap(m: np.ndarray) -> BlockBootstrap:
    """A bootstrap whose every replicate sees the same matrix: interval = point estimate."""
    reps = np.zeros((len(m), 8, 1))
    return bootstrap_blocks(reps, n_boot=5, cka_fn=lambda _: m)


# ----------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 6, 13])
def test_statistics_match_their_definitions(n: int) -> None:
    m = random_symmetric(n, seed=n)
    for b in range(2, n - 1):
        split = split_at(m, b)
        ref = reference_stats(m, b)
        for name, value in ref.items():
            assert getattr(split, name) == pytest.approx(value, abs=1e-12), (b, name)


def test_three_layers_allow_one_layer_blocks_and_fall_back_to_distance_matching() -> None:
    m = random_symmetric(3, seed=1)
    for b in (1, 2):
        split = split_at(m, b)
        ref = reference_stats(m, b)
        assert split.excess == pytest.approx(ref["excess_distance"], abs=1e-12)
        assert split.excess_local == split.excess_distance
    # b = 1: the late pair (1, 2) against the between pair at distance 1, (0, 1).
    assert split_at(m, 1).excess == pytest.approx(m[1, 2] - m[0, 1], abs=1e-12)
    assert best_split(m).boundary in (1, 2)


def test_best_split_maximises_excess_or_contrast() -> None:
    m = random_symmetric(9, seed=3)
    splits = [split_at(m, b) for b in range(2, 8)]
    assert best_split(m).boundary == max(splits, key=lambda s: s.excess).boundary
    assert best_split(m, by="contrast").boundary == max(splits, key=lambda s: s.contrast).boundary
    assert best_split(m, by="contrast").by == "contrast"


@pytest.mark.parametrize(("n", "b"), [(6, 3), (7, 5), (13, 2), (13, 9), (25, 17)])
def test_clean_blocks_recover_the_boundary(n: int, b: int) -> None:
    split = best_split(blocks(n, b))
    assert split.boundary == b
    assert split.excess == pytest.approx(0.7)
    assert split.contrast == pytest.approx(0.7)
    assert (split.within, split.between) == (pytest.approx(0.9), pytest.approx(0.2))
    assert list(split.early_layers) == list(range(b))
    assert list(split.late_layers) == list(range(b, n))


def test_torch_input_gives_the_same_split() -> None:
    m = blocks(13, 8)
    assert best_split(torch.from_numpy(m)) == best_split(m)
    assert best_split(torch.from_numpy(m).float()).boundary == 8


def test_noisy_blocks_with_decay_inside_recover_the_boundary() -> None:
    n, b = 13, 8
    rng = np.random.default_rng(0)
    for _ in range(5):
        # within-block similarity decaying with distance, a gap across, symmetric noise
        m = 0.25 + 0.6 * blocks(n, b, 1.0, 0.0) * toeplitz_decay(n, 12.0)
        noise = rng.normal(0, 0.03, (n, n))
        m = m + (noise + noise.T) / 2
        split = best_split(m)
        assert split.boundary == b
        assert split.excess > 0.3


@pytest.mark.parametrize("tau", [0.5, 2.0, 6.0])
def test_toeplitz_decay_has_zero_excess_at_every_boundary(tau: float) -> None:
    m = toeplitz_decay(13, tau)
    for b in range(2, 12):
        split = split_at(m, b)
        assert split.excess_local == pytest.approx(0.0, abs=1e-12)
        assert split.excess_distance == pytest.approx(0.0, abs=1e-12)
        assert split.contrast > 0  # why the plain contrast cannot decide
    assert not has_block_structure(fixed_matrix_bootstrap(m))


def test_diagonals_linear_in_position_have_zero_local_excess() -> None:
    i = np.arange(10)
    lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
    m = np.exp(-(hi - lo) / 3.0) + 0.01 * (lo + hi)  # trend along every diagonal
    for b in range(2, 9):
        assert split_at(m, b).excess_local == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [6, 13, 25])
def test_residual_stream_decay_is_not_blocks(n: int) -> None:
    m = residual_stream_cka(n)
    assert best_split(m).excess <= 0
    # the distance-matched contrast alone would be fooled by the non-stationary decay
    assert max(split_at(m, b).excess_distance for b in range(2, n - 1)) > 0.15
    assert not has_block_structure(fixed_matrix_bootstrap(m))


def test_constant_matrix_has_no_structure() -> None:
    m = np.full((9, 9), 0.6)
    split = best_split(m)
    assert split.boundary == 2  # all tied: the earliest boundary
    assert split.excess == pytest.approx(0.0, abs=1e-12)
    assert split.contrast == pytest.approx(0.0, abs=1e-12)
    assert not has_block_structure(fixed_matrix_bootstrap(m))
    assert permutation_pvalue(m, n_permutations=50) == 1.0


def test_clean_blocks_pass_the_verdict_and_threshold_is_explicit() -> None:
    boot = fixed_matrix_bootstrap(blocks(13, 9))
    assert boot.excess_interval == pytest.approx((0.7, 0.7))
    assert has_block_structure(boot)
    assert has_block_structure(boot, threshold=DEFAULT_EXCESS_THRESHOLD)
    assert not has_block_structure(boot, threshold=0.75)


# ----------------------------------------------------------------------------
# Permutation baseline
# ----------------------------------------------------------------------------


def test_permutation_baseline_equals_best_split_of_shuffled_matrices() -> None:
    m = random_symmetric(8, seed=5)
    null = permutation_baseline(m, n_permutations=20, seed=3)
    assert null.shape == (20,) and null.dtype == np.float64
    np.testing.assert_array_equal(null, permutation_baseline(m, n_permutations=20, seed=3))
    assert not np.array_equal(null, permutation_baseline(m, n_permutations=20, seed=4))
    # every null value is the best split of one relabelling of the layers: with 5 layers all
    # 120 relabellings can be enumerated
    small = random_symmetric(5, seed=6)
    possible = np.array(
        [best_split(small[np.ix_(p, p)]).excess for p in itertools.permutations(range(5))]
    )
    null = permutation_baseline(small, n_permutations=300, seed=0)
    assert np.abs(null[:, None] - possible[None, :]).min(axis=1).max() < 1e-12
    assert len(np.unique(null.round(12))) > 5  # and not always the same relabelling
    contrast = permutation_baseline(small, n_permutations=50, by="contrast")
    possible = [
        best_split(small[np.ix_(p, p)], by="contrast").contrast
        for p in itertools.permutations(range(5))
    ]
    assert all(np.isclose(possible, c, atol=1e-12).any() for c in contrast)


def test_permutation_pvalue_small_for_blocks_large_for_shuffled_blocks() -> None:
    m = blocks(13, 6)
    noise = np.random.default_rng(1).normal(0, 0.02, m.shape)
    m = m + (noise + noise.T) / 2
    assert permutation_pvalue(m, n_permutations=500) <= 0.01
    for seed in (0, 2, 3):
        p = np.random.default_rng(seed).permutation(13)
        assert permutation_pvalue(m[np.ix_(p, p)], n_permutations=500) > 0.05


# ----------------------------------------------------------------------------
# Bootstrap over examples
# ----------------------------------------------------------------------------


def random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((d, d)))[0]


def block_reps(seed: int, n: int = 200, d: int = 8) -> np.ndarray:
    """Layers 0..2 rotate one latent, layers 3..5 another, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2, n, d))
    return np.stack(
        [
            z[layer // 3] @ random_rotation(rng, d) + 0.5 * rng.standard_normal((n, d))
            for layer in range(6)
        ]
    )


def residual_reps(seed: int, n: int = 200, d: int = 8, layers: int = 6) -> np.ndarray:
    """x_(l+1) = x_l + noise: similarity decays smoothly (and non-stationarily) with distance."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal((layers, n, d)), axis=0)


def test_bootstrap_finds_blocks_in_block_representations() -> None:
    for seed in range(3):
        boot = bootstrap_blocks(block_reps(seed), n_boot=100, seed=seed, cka_fn=linear_cka)
        assert boot.estimate.boundary == 3
        assert boot.excess_interval[0] > DEFAULT_EXCESS_THRESHOLD
        # resampled rows inflate the biased CKA of unrelated layers a little, so replicates sit
        # slightly below the full data's estimate (documented); they must still be close to it
        assert boot.excess_interval[0] <= boot.estimate.excess <= boot.excess_interval[1] + 0.02
        assert boot.boundary_counts[3] >= 0.8 * boot.n_boot
        assert boot.boundary_agreement >= 0.8
        assert has_block_structure(boot)


def test_bootstrap_rejects_smooth_decay_and_independent_layers() -> None:
    for seed in range(3):
        smooth = bootstrap_blocks(residual_reps(seed), n_boot=100, seed=seed, cka_fn=linear_cka)
        assert not has_block_structure(smooth)
        indep = np.random.default_rng(seed).standard_normal((6, 200, 8))
        assert not has_block_structure(bootstrap_blocks(indep, n_boot=100, cka_fn=linear_cka))


def test_bootstrap_replicates_are_resamples_of_rows() -> None:
    reps = block_reps(0, n=60)
    seen = []

    def spy(xs):
        seen.append([np.asarray(x) for x in xs])
        return linear_cka(xs)

    boot = bootstrap_blocks(reps, n_boot=4, seed=7, cka_fn=spy)
    assert len(seen) == 5 and boot.n_boot == 4
    np.testing.assert_array_equal(np.stack(seen[0]), reps)  # first call: the full data
    rng = np.random.default_rng(7)  # the documented draw
    for replicate, layers in enumerate(seen[1:]):
        idx = rng.integers(0, 60, size=60)
        np.testing.assert_array_equal(np.stack(layers), reps[:, idx])
        expected = split_at(linear_cka(reps[:, idx]), boot.estimate.boundary).excess
        assert boot.excess_samples[replicate] == pytest.approx(expected, abs=1e-12)
    assert sum(boot.boundary_counts.values()) == 4


def test_half_sampling_draws_distinct_rows_and_rescales_the_spread() -> None:
    reps = block_reps(0, n=61)
    seen = []

    def spy(xs):
        seen.append(np.stack([np.asarray(x) for x in xs]))
        return linear_cka(xs)

    boot = bootstrap_blocks(reps, n_boot=50, seed=3, cka_fn=spy, resample="half")
    rng = np.random.default_rng(3)  # the documented draw: 30 distinct rows, sorted
    for layers in seen[1:]:
        idx = np.sort(rng.choice(61, 30, replace=False))
        np.testing.assert_array_equal(layers, reps[:, idx])
        assert len(set(idx.tolist())) == 30
    # the subsampling interval, by hand from the replicates: t - c * (upper / lower quantile - t)
    t, c = boot.estimate.excess, np.sqrt(30 / 61)
    lo, hi = np.quantile(boot.excess_samples, [0.025, 0.975])
    assert boot.excess_interval == pytest.approx((t - c * (hi - t), t - c * (lo - t)), abs=1e-12)


def test_half_sampling_gives_the_debiased_estimator_a_verdict() -> None:
    cka = pytest.importorskip("layersim.cka")

    def debiased(xs):
        return cka.cka_matrix(torch.from_numpy(np.stack(xs)), debiased=True).numpy()

    for seed in range(2):
        found = bootstrap_blocks(block_reps(seed), n_boot=60, seed=seed, cka_fn=debiased,
                                 resample="half")  # fmt: skip
        assert found.estimate.boundary == 3 and has_block_structure(found)
        smooth = bootstrap_blocks(residual_reps(seed), n_boot=60, seed=seed, cka_fn=debiased,
                                  resample="half")  # fmt: skip
        assert not has_block_structure(smooth)
    # on the biased estimator both schemes measure the same spread (within sampling error)
    widths = [
        np.diff(bootstrap_blocks(block_reps(5, n=400), n_boot=200, seed=1, cka_fn=linear_cka,
                                 resample=scheme).excess_interval)[0]
        for scheme in ("bootstrap", "half")
    ]  # fmt: skip
    assert 0.6 < widths[1] / widths[0] < 1.6


def test_bootstrap_accepts_torch_and_lists_of_layers_of_different_widths() -> None:
    reps = block_reps(1, n=80)
    ref = bootstrap_blocks(reps, n_boot=10, cka_fn=linear_cka)
    as_torch = bootstrap_blocks(torch.from_numpy(reps), n_boot=10, cka_fn=linear_cka)
    as_list = bootstrap_blocks([torch.from_numpy(x) for x in reps], n_boot=10, cka_fn=linear_cka)
    assert as_torch.excess_interval == pytest.approx(ref.excess_interval, abs=1e-12)
    assert as_list.excess_interval == pytest.approx(ref.excess_interval, abs=1e-12)
    widths = [x[:, : 4 + i % 3] for i, x in enumerate(reps)]
    assert bootstrap_blocks(widths, n_boot=3, cka_fn=linear_cka).estimate.n_layers == 6


def test_bootstrap_default_cka_fn_is_layersim_cka() -> None:
    cka = pytest.importorskip("layersim.cka")
    reps = torch.from_numpy(block_reps(2, n=50))
    boot = bootstrap_blocks(reps, n_boot=2, seed=1)
    expected = best_split(cka.cka_matrix(reps))
    assert boot.estimate.boundary == expected.boundary
    assert boot.estimate.excess == pytest.approx(expected.excess, abs=1e-9)
    debiased = bootstrap_blocks(reps, n_boot=2, debiased=True)
    assert debiased.estimate.excess == pytest.approx(
        best_split(cka.cka_matrix(reps, debiased=True)).excess, abs=1e-9
    )


# ----------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (np.ones((3, 4)), "square"),
        (np.ones(5), "square"),
        (np.ones((2, 2)), "at least 3"),
        (np.where(np.eye(4) > 0, np.nan, 0.5), "non-finite"),
        (np.triu(np.ones((4, 4))), "not symmetric"),
        ([["a", "b", "c"]] * 3, "array of numbers"),
    ],
)
def test_bad_matrices_raise(matrix, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        best_split(matrix)


def test_bad_options_raise() -> None:
    m = blocks(6, 3)
    with pytest.raises(ValueError, match="unknown statistic"):
        best_split(m, by="within")
    with pytest.raises(ValueError, match="min_block_size"):
        best_split(m, min_block_size=4)
    with pytest.raises(ValueError, match="min_block_size"):
        best_split(m, min_block_size=0)
    with pytest.raises(ValueError, match="choose one of"):
        split_at(m, 1)
    with pytest.raises(ValueError, match="n_permutations"):
        permutation_baseline(m, n_permutations=0)
    with pytest.raises(ValueError, match="threshold"):
        has_block_structure(fixed_matrix_bootstrap(m), threshold=float("nan"))
    with pytest.raises(ValueError, match="BlockBootstrap"):
        has_block_structure(best_split(m))


def test_bad_bootstrap_inputs_raise() -> None:
    reps = block_reps(0, n=20)
    with pytest.raises(ValueError, match="same number of rows"):
        bootstrap_blocks([reps[0], reps[1][:10], reps[2]], cka_fn=linear_cka)
    with pytest.raises(ValueError, match=r"\(L, n, d\)"):
        bootstrap_blocks(reps[0], cka_fn=linear_cka)
    with pytest.raises(ValueError, match="at least 4"):
        bootstrap_blocks(reps[:, :3], cka_fn=linear_cka)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_blocks(reps, n_boot=1, cka_fn=linear_cka)
    with pytest.raises(ValueError, match="level"):
        bootstrap_blocks(reps, level=1.0, cka_fn=linear_cka)
    with pytest.raises(ValueError, match="debiased"):
        bootstrap_blocks(reps, debiased=True, cka_fn=linear_cka)
    with pytest.raises(ValueError, match="resample must be one of"):
        bootstrap_blocks(reps, resample="jackknife", cka_fn=linear_cka)
    with pytest.raises(ValueError, match="half-sampling 8"):
        bootstrap_blocks(reps[:, :7], resample="half", cka_fn=linear_cka)
    with pytest.raises(ValueError, match="every layer"):
        bootstrap_blocks(reps, cka_fn=lambda xs: linear_cka(xs[:4]))
    with pytest.raises(ValueError, match="returned by cka_fn"):
        bootstrap_blocks(reps, cka_fn=lambda xs: np.full((6, 6), np.nan))
    with pytest.raises(ValueError, match="unknown statistic"):
        bootstrap_blocks(reps, by="between", cka_fn=functools.partial(linear_cka))

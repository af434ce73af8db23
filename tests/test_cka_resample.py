"""layersim.cka.ResampledCKA: the CKA matrix of any selection of rows (repeats included), from
Grams built once, equals the float64 reference computed from the selected rows themselves; the
block bootstrap that uses it gives the intervals of recomputing every replicate."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from cka_reference import reference_cka_matrix

from layersim.cka import ResampledCKA, cka_matrix
from layersim.cka import resample as resample_module
from layersim.stats import block_intervals


def _layers(n: int = 60, seed: int = 0) -> list[torch.Tensor]:
    """Four layers of different widths sharing a latent, with large offsets (centring matters)."""
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 5, generator=generator)
    widths = (7, 12, 9, 16)
    return [
        latent @ torch.randn(5, d, generator=generator)
        + 0.5 * torch.randn(n, d, generator=generator)
        + 40.0 * torch.randn(d, generator=generator)
        for d in widths
    ]


@pytest.mark.parametrize("debiased", [False, True])
def test_a_resample_with_repeats_equals_the_reference_on_its_rows(debiased) -> None:
    layers = _layers()
    fast = ResampledCKA(layers)
    generator = torch.Generator().manual_seed(1)
    for rows in (torch.randint(0, 60, (60,), generator=generator),
                 torch.randperm(60, generator=generator)[:30],
                 torch.tensor([3, 3, 3, 7, 7, 11, 20, 41, 59, 0])):  # fmt: skip
        want = reference_cka_matrix([x[rows] for x in layers], [x[rows] for x in layers],
                                    debiased=debiased)  # fmt: skip
        got = fast.matrix(rows, debiased=debiased)
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, want.to(torch.float64), atol=1e-10, rtol=0)
        assert torch.equal(got, got.T) and bool((got.diagonal() == 1).all())


def test_all_rows_once_is_the_cka_matrix() -> None:
    xs = torch.stack([torch.randn(80, 10) @ torch.randn(10, 10) + 5 for _ in range(3)])
    torch.testing.assert_close(ResampledCKA(xs).matrix(torch.arange(80)),
                               cka_matrix(xs.double()), atol=1e-12, rtol=0)  # fmt: skip


def test_bad_selections_and_inputs_are_refused(monkeypatch) -> None:
    fast = ResampledCKA(_layers())
    with pytest.raises(ValueError, match="row indices must lie in 0..59"):
        fast.matrix([0, 60])
    with pytest.raises(ValueError, match="at least 4 row indices"):
        fast.matrix([0, 1, 2], debiased=True)
    with pytest.raises(ValueError, match="constant"):
        ResampledCKA([torch.ones(10, 3), torch.randn(10, 3)])
    monkeypatch.setattr(resample_module, "MAX_GRAM_BYTES", 1000)
    with pytest.raises(ValueError, match="resample the features"):
        ResampledCKA(_layers())


@pytest.mark.parametrize("resample", ["bootstrap", "half"])
def test_the_block_bootstrap_through_grams_equals_recomputing_each_replicate(resample) -> None:
    # two blocks of three layers, fewer rows (40) than features: the Gram path is taken
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(2, 40, 30, generator=generator)
    layers = torch.stack(
        [
            latents[int(i >= 3)] @ torch.randn(30, 30, generator=generator)
            + 0.5 * torch.randn(40, 30, generator=generator)
            for i in range(6)
        ]
    )
    debiased = resample == "half"
    through_grams = block_intervals.bootstrap_blocks(layers, n_boot=20, seed=4, debiased=debiased,
                                            resample=resample)  # fmt: skip
    recomputed = block_intervals.bootstrap_blocks(
        layers, n_boot=20, seed=4, resample=resample,
        cka_fn=functools.partial(cka_matrix, debiased=debiased),
    )  # fmt: skip
    np.testing.assert_allclose(through_grams.excess_samples, recomputed.excess_samples,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(through_grams.boundary_samples, recomputed.boundary_samples)


def test_the_unrelated_floor_is_what_independent_features_give() -> None:
    from layersim.cka import linear_cka, unrelated_floor

    generator = torch.Generator().manual_seed(0)
    for n, width in ((1000, 384), (300, 64)):
        values = [
            float(linear_cka(torch.randn(n, width, generator=generator),
                             torch.randn(n, width, generator=generator)))
            for _ in range(3)
        ]  # fmt: skip
        assert abs(np.mean(values) - unrelated_floor(n, width)) < 0.01
    with pytest.raises(ValueError, match="positive integers"):
        unrelated_floor(0, 10)


@pytest.mark.parametrize("scale", [20.0, 1e2, 1e3, 1e4])
def test_exact_debiased_cka_meets_its_bound_with_a_few_huge_rows(scale: float) -> None:
    # a few inputs with activations far larger than the rest: the debiased numerator cancels
    # large terms there, which float32 products alone got wrong by up to 6e-6
    worst = 0.0
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        base = torch.randn(400, 16, generator=generator)
        layers = [
            base @ torch.randn(16, 48, generator=generator)
            + torch.randn(400, 48, generator=generator)
            for _ in range(3)
        ]
        xs = torch.stack(layers)
        xs[:, :3] *= scale
        want = reference_cka_matrix(list(xs.double()), list(xs.double()), debiased=True)
        got = cka_matrix(xs.float(), debiased=True)
        worst = max(worst, float((got - want.to(torch.float64)).abs().max()))
    assert worst <= 1e-6

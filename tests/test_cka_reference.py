"""The test reference itself: two published routes to the unbiased HSIC must agree, and the
biased CKA must match its feature-space closed form (Kornblith et al. 2019, eq. 5)."""

import numpy as np
import torch
from cka_reference import _gram, _u_centre, reference_cka, unbiased_hsic


def test_u_centring_and_song_et_al_give_the_same_unbiased_hsic() -> None:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 5, generator=generator), torch.randn(30, 7, generator=generator)
    k, l_ = _gram(x), _gram(y)
    n = k.shape[0]
    via_u_centring = float((_u_centre(k) * _u_centre(l_)).sum()) / (n * (n - 3))
    np.testing.assert_allclose(via_u_centring, unbiased_hsic(k, l_), rtol=1e-10)


def test_biased_reference_matches_the_feature_space_formula() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=generator, dtype=torch.float64) + 3.0
    y = x @ torch.randn(6, 4, generator=generator, dtype=torch.float64) + torch.randn(40, 4)
    xc, yc = x - x.mean(0), y - y.mean(0)
    closed_form = (xc.T @ yc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm())
    np.testing.assert_allclose(reference_cka(x, y), float(closed_form), rtol=1e-12)

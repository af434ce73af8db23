"""Centred kernel alignment (CKA) between layer representations.

CKA (Kornblith, Norouzi, Lee & Hinton 2019) compares two representations ``x`` (n, d1)
and ``y`` (n, d2) of the same ``n`` examples through their centred Gram matrices ``K``,
``L``: ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``; for the linear kernel this is
``‖xᵀy‖²_F / (‖xᵀx‖_F ‖yᵀy‖_F)`` on column-centred data.  ``debiased=False`` uses the
biased HSIC ``tr(KHLH)/(n-1)²``, whose value for independent data grows with ``d/n``;
``debiased=True`` the unbiased HSIC of Song et al. (2012), close to 0 for independent data,
possibly negative (never clamped), needing ``n >= 4``.

* :func:`cka_matrix`, :func:`linear_cka`, :func:`rbf_cka`: data in memory (module ``oneshot``);
* :class:`CKAAccumulator`: exact CKA over batches of rows; :class:`MinibatchCKA`: the
  minibatch estimator of Nguyen et al. (2021) (module ``streaming``);
* :class:`ResampledCKA`: CKA matrices of many selections of the same rows (bootstraps) from
  Gram matrices built once (module ``resample``).

Results are float64, computed under ``torch.no_grad()``, on the input's device; bad input
raises :class:`ValueError` saying what is wrong and where, never a silent NaN.
``precision="exact"`` (default) is within ``1e-6`` of float64 for any input dtype
(:mod:`layersim.cka.numerics`; the debiased estimator of inputs where a few rows dominate, whose
numerator cancels large terms, is then computed in float64 throughout: float32 products missed
the bound by up to 6e-6 there); the linear kernel never holds ``L`` Gram matrices
(:mod:`layersim.cka.linear`).
"""

from .checks import Layers
from .floor import unrelated_floor
from .oneshot import cka_matrix, linear_cka, rbf_cka
from .resample import ResampledCKA
from .streaming import CKAAccumulator, MinibatchCKA

__all__ = [
    "CKAAccumulator",
    "Layers",
    "MinibatchCKA",
    "ResampledCKA",
    "cka_matrix",
    "linear_cka",
    "unrelated_floor",
    "rbf_cka",
]

# doctest.testmod(layersim.cka) runs the examples of the public objects, which live in
# submodules (doctest would otherwise only look at objects defined in this file).
__test__ = {name: globals()[name] for name in __all__ if name != "Layers"}

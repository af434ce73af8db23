"""An independent float64 reference for CKA, written straight from the published formulas.

One pair at a time, in Gram (n x n) space, with none of layersim's code: biased CKA with
H-centring (Kornblith et al. 2019, eq. 3-4), debiased CKA with U-centring (Szekely & Rizzo 2014,
as in Kornblith et al.'s reference implementation), and the minibatch estimator of Nguyen, Raghu &
Kornblith (2021) from the unbiased HSIC of Song et al. (2012, eq. 5).
"""

from __future__ import annotations

import numpy as np
import torch


def _gram(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu().double().numpy()
    return x @ x.T


def _h_centre(gram: np.ndarray) -> np.ndarray:
    n = gram.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return h @ gram @ h


def _u_centre(gram: np.ndarray) -> np.ndarray:
    n = gram.shape[0]
    gram = gram.copy()
    np.fill_diagonal(gram, 0.0)
    means = gram.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    gram -= means[:, None]
    gram -= means[None, :]
    np.fill_diagonal(gram, 0.0)
    return gram


def reference_cka(x: torch.Tensor, y: torch.Tensor, *, debiased: bool = False) -> float:
    centre = _u_centre if debiased else _h_centre
    k, l_ = centre(_gram(x)), centre(_gram(y))
    return float((k * l_).sum() / np.sqrt((k * k).sum() * (l_ * l_).sum()))


def reference_cka_matrix(xs, ys, *, debiased: bool = False) -> torch.Tensor:
    """(La, Lb) float64 matrix of reference_cka over all layer pairs."""
    return torch.tensor(
        [[reference_cka(x, y, debiased=debiased) for y in ys] for x in xs], dtype=torch.float64
    )


def unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012) eq. 5."""
    n = k.shape[0]
    k, l_ = k.copy(), l_.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l_, 0.0)
    ones = np.ones(n)
    return float(
        (
            np.trace(k @ l_)
            + (ones @ k @ ones) * (ones @ l_ @ ones) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (ones @ k @ l_ @ ones)
        )
        / (n * (n - 3))
    )


def reference_minibatch_cka(batches: list[torch.Tensor]) -> torch.Tensor:
    """Nguyen et al. (2021): sums of per-batch unbiased HSIC; `batches` are (L, n_b, d) tensors."""
    layers = batches[0].shape[0]
    hsic = np.zeros((layers, layers))
    for reps in batches:
        grams = [_gram(reps[i]) for i in range(layers)]
        for i in range(layers):
            for j in range(layers):
                hsic[i, j] += unbiased_hsic(grams[i], grams[j])
    scale = np.sqrt(np.diag(hsic))
    return torch.tensor(hsic / np.outer(scale, scale), dtype=torch.float64)

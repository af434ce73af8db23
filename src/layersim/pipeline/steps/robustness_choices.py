"""The measurement choices of the robustness step (E4) and the block statistics of one model's
hidden states under each.

The paper measures block structure one way: biased linear CKA of the first token's hidden state
on the task's own validation inputs. :func:`choice_rows` re-reads one fine-tuned model's hidden
states under the other choices a careful reader would try:

* the number of inputs ``n`` (:data:`SIZES`; the first ``n`` of one seeded set, so the sizes are
  nested and only ``n`` changes);
* the biased or the debiased (unbiased-HSIC) estimator; the debiased one gets a half-sampling
  interval (:func:`layersim.stats.block_intervals.bootstrap_blocks` with ``resample="half"``), since
  a bootstrap repeats inputs, which that estimator cannot take;
* the pooling: the model's own (``cls``, the first token, for an encoder; ``last``, the last real
  token, for a decoder: what its task head reads), ``mean`` (all real tokens) and ``tokens``: one
  real, non-special token drawn at random from each input, which keeps the rows independent (all
  tokens of a sentence are not) and the interval valid, at the cost of fewer rows than tokens;
* for the movie-review models, inputs from other domains (:data:`OTHER_DOMAINS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from layersim.models.reps import pool_hidden_states, real_token_mask
from layersim.stats import block_intervals
from layersim.tasks import DOMAIN_TASKS

__all__ = [
    "ESTIMATORS",
    "HEADLINE",
    "OTHER_DOMAINS",
    "OWN_POOLINGS",
    "POOLINGS",
    "SIZES",
    "choice_rows",
    "pooled_states",
    "sizes_for",
]


POOLINGS = ("cls", "mean", "tokens")


ESTIMATORS = ("biased", "debiased")


SIZES = (100, 250, 500, 1000)


#: The paper's choice; ``n`` is the largest size a run has. Its pooling is the model's own:
#: ``cls`` for an encoder, ``last`` for a decoder (:data:`OWN_POOLINGS`).
HEADLINE = {"inputs": "validation", "pooling": "cls", "estimator": "biased"}


#: The poolings that count as the paper's: each model's own (first token, or last for decoders).
OWN_POOLINGS = ("cls", "last")


#: Inputs from other domains for the models fine-tuned on movie-review sentences.
OTHER_DOMAINS: dict[str, tuple[str, ...]] = {
    "movie_polarity": DOMAIN_TASKS,
    "movie_rating": DOMAIN_TASKS,
}


def sizes_for(available: int, sizes: Sequence[int] = SIZES) -> list[int]:
    """The sizes of `sizes` that `available` inputs allow, and `available` itself when it falls
    short of the largest (a small validation split is used whole)."""
    if available < 8:
        raise ValueError(f"{available} inputs are too few for a verdict; use at least hundreds")
    chosen = [int(n) for n in sizes if n <= available]
    if available < max(sizes) and available not in chosen:
        chosen.append(int(available))
    return chosen


def pooled_states(
    cache: Sequence[tuple[dict, torch.Tensor]],
    special_token_ids: Sequence[int],
    *,
    seed: int,
    own: str = "cls",
) -> dict[str, tuple[list[int], torch.Tensor]]:
    """The model's own pooling `own` (``cls`` or, for a decoder, ``last``), ``mean`` and
    ``tokens``, each as ``(hidden-state indices, (layers, rows, d))``.

    `cache` is :func:`layersim.models.layer_cache.cached_hidden_states` (per batch: the batch and
    its ``(L + 1, rows, seq, d)`` states). The own pooling starts at layer 1 (the embedding output
    of the first token, or of a decoder's end marker, is the same for every input); ``tokens``
    draws one real, non-special token per row with a ``numpy`` generator seeded by `seed`.
    """
    if own not in OWN_POOLINGS:
        raise ValueError(
            f"own must be one of {OWN_POOLINGS} (the model's own pooling); got {own!r}"
        )
    rng = np.random.default_rng(seed)
    cls, mean, tokens = [], [], []
    for batch, hidden in cache:
        cls.append(pool_hidden_states(hidden, batch, own))
        mean.append(pool_hidden_states(hidden, batch, "mean"))
        mask = real_token_mask(batch, special_token_ids)
        if not bool(mask.any(dim=1).all()):
            raise ValueError("an input has no real, non-special token to draw for token pooling")
        drawn = [int(rng.choice(np.flatnonzero(row.numpy()))) for row in mask]
        tokens.append(hidden[:, torch.arange(len(drawn)), torch.tensor(drawn)])
    depth = cache[0][1].shape[0] - 1
    return {
        own: (list(range(1, depth + 1)), torch.cat(cls, 1)[1:]),
        "mean": (list(range(depth + 1)), torch.cat(mean, 1)),
        "tokens": (list(range(depth + 1)), torch.cat(tokens, 1)),
    }


def choice_rows(
    states: dict[str, tuple[list[int], torch.Tensor]],
    *,
    sizes: Sequence[int],
    estimators: Sequence[str] = ESTIMATORS,
    n_boot: int = 50,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Block statistics for every (pooling, estimator, n): ``excess`` and ``contrast`` at the best
    split with their 95% interval (:func:`layersim.stats.block_intervals.bootstrap_blocks`;
    bootstrap for the biased estimator, half-sampling for the debiased one), and the boundary (first
    hidden state of the late block), on the first ``n`` rows.

    Returns
    -------
    list of dict
        ``pooling, estimator, n, statistic, value, lower, upper, boundary``.
    """
    rows = []
    for pooling, (layers, x) in states.items():
        for n in sizes:
            if n > x.shape[1]:
                raise ValueError(f"n = {n} but only {x.shape[1]} rows were pooled ({pooling})")
            for estimator in estimators:
                boot = block_intervals.bootstrap_blocks(
                    x[:, :n], n_boot=n_boot, seed=seed, debiased=estimator == "debiased",
                    resample="half" if estimator == "debiased" else "bootstrap",
                )  # fmt: skip
                split = boot.estimate
                found = {"excess": (split.excess, *boot.excess_interval),
                         "contrast": (split.contrast, *boot.contrast_interval)}  # fmt: skip
                rows += [
                    {"pooling": pooling, "estimator": estimator, "n": int(n),
                     "statistic": statistic, "value": float(value), "lower": float(low),
                     "upper": float(high), "boundary": int(layers[split.boundary])}
                    for statistic, (value, low, high) in found.items()
                ]  # fmt: skip
    return rows

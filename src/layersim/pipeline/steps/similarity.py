"""Step 2, similarity: which hidden states are compared (:func:`compared_layers`), the CKA matrices
within and across the fine-tuned and the pretrained model (:func:`cka_matrices`), the ``cka``
table (:func:`cka_rows`) and the ``blocks`` table of the self matrices (:func:`block_table`: a
bootstrap over inputs and a permutation p-value per matrix).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from layersim import cka
from layersim.results import RunKey
from layersim.stats import block_intervals

__all__ = [
    "BLOCK_KINDS",
    "CKA_ESTIMATORS",
    "block_table",
    "cka_matrices",
    "cka_rows",
    "compared_layers",
]


#: CKA estimators of the ``cka`` table: the paper's biased one and the debiased (unbiased HSIC).
CKA_ESTIMATORS: tuple[str, ...] = ("biased", "debiased")


#: The self matrices that get block statistics (a cross matrix has no block structure to test).
BLOCK_KINDS: tuple[str, ...] = ("finetuned", "pretrained")


#: The estimator of the block statistics: the bootstrap repeats inputs, which the debiased
#: estimator cannot take (see :func:`layersim.stats.block_intervals.bootstrap_blocks`).
_BLOCK_ESTIMATOR = "biased"


def compared_layers(depth: int, pooling: str) -> list[int]:
    """Hidden-state indices compared by CKA for a model of `depth` layers (0: embeddings).

    With first-token pooling (``cls`` / ``first``) the embedding output is the same vector for
    every input (same token, same position), so its CKA is 0/0: the list then starts at 1. So it
    does with ``last``: a decoder's last token is here the same end marker for every input (and
    a single token's embedding says nothing of the rest of the input anyway).
    """
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
        raise ValueError(f"depth must be a positive number of layers; got {depth!r}")
    first = 1 if pooling in ("cls", "first", "last") else 0
    return list(range(first, int(depth) + 1))


def _shape(reps: Any) -> tuple[int, int]:
    """(layers, inputs) of an (L, n, d) tensor or a list of (n, d_l) ones."""
    if hasattr(reps, "shape") and len(reps.shape) == 3:
        return int(reps.shape[0]), int(reps.shape[1])
    if isinstance(reps, Sequence) and reps and all(len(getattr(x, "shape", ())) == 2 for x in reps):
        return len(reps), int(reps[0].shape[0])
    raise ValueError(
        "representations must be an (L, n, d) tensor or a list of (n, d_l) tensors, as "
        f"layersim.models.reps.layer_representations returns; got {type(reps).__name__}"
    )


def cka_matrices(
    finetuned: Any, pretrained: Any, *, estimators: Sequence[str] = CKA_ESTIMATORS
) -> dict[tuple[str, str], Any]:
    """Every CKA matrix of one run: ``(kind, estimator) -> (L, L)`` float64 tensor on the CPU.

    Kinds (:data:`layersim.results.CKA_KINDS`): ``finetuned`` and ``pretrained`` compare a
    model's layers with each other; ``pretrained_vs_finetuned`` has the pretrained layers as rows
    and the fine-tuned ones as columns. Keys come estimator by estimator, in that kind order.

    Parameters
    ----------
    finetuned, pretrained
        Layer representations of the two models on the same inputs, in the same order
        (:func:`layersim.models.reps.layer_representations`): ``(L, n, d)`` tensors or lists of
        ``(n, d_l)`` ones.
    estimators
        Some of :data:`CKA_ESTIMATORS`.
    """
    unknown = [e for e in estimators if e not in CKA_ESTIMATORS]
    if unknown or not estimators:
        raise ValueError(f"estimators must be some of {CKA_ESTIMATORS}; got {list(estimators)}")
    if _shape(finetuned) != _shape(pretrained):
        raise ValueError(
            f"the two models' representations must cover the same layers and inputs; got "
            f"(layers, inputs) {_shape(finetuned)} and {_shape(pretrained)}"
        )
    pairs = {
        "finetuned": (finetuned, None),
        "pretrained": (pretrained, None),
        "pretrained_vs_finetuned": (pretrained, finetuned),
    }
    return {
        (kind, estimator): cka.cka_matrix(xs, ys, debiased=estimator == "debiased").cpu()
        for estimator in estimators
        for kind, (xs, ys) in pairs.items()
    }


def as_array(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "detach"):  # a torch tensor
        matrix = matrix.detach().cpu().double().numpy()
    return np.asarray(matrix, dtype=np.float64)


def cka_rows(
    key: RunKey,
    matrices: Mapping[tuple[str, str], Any],
    *,
    layers: Sequence[int],
    pooling: str,
    n: int,
) -> pd.DataFrame:
    """The ``cka`` table of a run: one row per (kind, estimator, layer pair).

    Parameters
    ----------
    key
        The run.
    matrices
        ``(kind, estimator) -> (L, L)`` matrix (tensor or array), e.g. :func:`cka_matrices`.
        Rows come in its order, each matrix row by row.
    layers
        The hidden-state index of each matrix row and column (:func:`compared_layers`): the
        ``layer_a`` / ``layer_b`` columns.
    pooling, n
        The pooling and the number of inputs the matrices were computed with.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be the positive number of inputs compared; got {n!r}")
    if not matrices:
        raise ValueError("matrices is empty; pass the result of cka_matrices")
    layers = np.asarray(layers, dtype=np.int64)
    frames = []
    for (kind, estimator), matrix in matrices.items():
        values = as_array(matrix)
        if values.shape != (len(layers), len(layers)):
            raise ValueError(
                f"the {kind} {estimator} matrix is {values.shape}, but {len(layers)} layers "
                f"were given ({layers.tolist()}); pass the layers the matrices were computed on"
            )
        frames.append(
            pd.DataFrame(
                {
                    **{column: [value] * values.size for column, value in key.as_dict().items()},
                    "kind": kind,
                    "layer_a": np.repeat(layers, len(layers)),
                    "layer_b": np.tile(layers, len(layers)),
                    "cka": values.ravel(),
                    "estimator": estimator,
                    "pooling": pooling,
                    "n": np.int64(n),
                }
            )  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True)


def block_table(
    key: RunKey,
    reps: Mapping[str, Any],
    *,
    layers: Sequence[int],
    pooling: str,
    n_boot: int = 200,
    seed: int = 0,
    matrices: Mapping[tuple[str, str], Any] | None = None,
) -> pd.DataFrame:
    """The ``blocks`` table of a run: block statistics of each self matrix (biased CKA).

    Per kind, four rows (:mod:`layersim.stats.blocks` defines the statistics): ``excess`` and
    ``contrast`` at the best split, with the percentile interval of
    :func:`~layersim.stats.block_intervals.bootstrap_blocks` over inputs; ``boundary_agreement``
    (the share of bootstrap replicates whose own best split has the same boundary) and
    ``permutation_p`` (:func:`~layersim.stats.block_intervals.permutation_pvalue` over layer
    orders), which have no interval: their ``lower`` and ``upper`` are empty (NaN). Every row
    carries the boundary, the first hidden state of the late block.

    Parameters
    ----------
    key
        The run.
    reps
        ``kind -> representations`` for some of :data:`BLOCK_KINDS` (rows follow that order).
    layers
        The hidden-state index of each layer of the representations (:func:`compared_layers`).
    pooling
        The pooling they were computed with.
    n_boot, seed
        Bootstrap replicates, and the seed of the bootstrap and of the permutations.
    matrices
        The run's CKA matrices (:func:`cka_matrices`), to reuse the biased self matrices for the
        permutation test instead of recomputing them.
    """
    unknown = sorted(set(reps) - set(BLOCK_KINDS))
    if unknown or not reps:
        raise ValueError(
            f"reps must map some of {BLOCK_KINDS} to representations; got kinds {sorted(reps)}"
        )
    rows = []
    for kind in (k for k in BLOCK_KINDS if k in reps):
        depth = _shape(reps[kind])[0]
        if depth != len(layers):
            raise ValueError(
                f"the {kind} representations have {depth} layers but {len(layers)} were given "
                f"({list(layers)}); pass the layers they were computed on"
            )
        boot = block_intervals.bootstrap_blocks(reps[kind], n_boot=n_boot, seed=seed)
        if matrices is not None and (kind, _BLOCK_ESTIMATOR) in matrices:
            matrix = matrices[kind, _BLOCK_ESTIMATOR]
        else:
            matrix = cka.cka_matrix(reps[kind])
        split = boot.estimate
        stats = {
            "excess": (split.excess, *boot.excess_interval),
            "contrast": (split.contrast, *boot.contrast_interval),
            "boundary_agreement": (boot.boundary_agreement, math.nan, math.nan),
            "permutation_p": (
                block_intervals.permutation_pvalue(matrix, seed=seed),
                math.nan,
                math.nan,
            ),
        }
        boundary = int(layers[split.boundary])  # a matrix index, as a hidden-state index
        for statistic, (value, lower, upper) in stats.items():
            rows.append({
                **key.as_dict(), "kind": kind, "estimator": _BLOCK_ESTIMATOR, "pooling": pooling,
                "statistic": statistic, "value": float(value), "lower": float(lower),
                "upper": float(upper), "boundary": boundary,
            })  # fmt: skip
    return pd.DataFrame(rows)

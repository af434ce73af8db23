"""The computations of the pipeline's experiment steps, as functions the notebooks call.

The notebooks in ``notebooks/`` (run by ``python -m layersim run`` through papermill) hold the
parameters, the prose, the calls and the displays; what they compute lives here, where it is
tested. Each function returns a table in the schema of :data:`layersim.results.TABLES`, ready for
:func:`layersim.results.write_table`:

* step 2, similarity: :func:`compared_layers` says which hidden states are compared,
  :func:`cka_matrices` compares them within and across the fine-tuned and the pretrained model,
  :func:`cka_rows` makes the ``cka`` table of the matrices and :func:`block_table` the ``blocks``
  table of the self matrices (a bootstrap over inputs and a permutation p-value per matrix);
* step 3, truncation: :func:`truncation_curve` scores the model with only its first k layers for
  every k (the ``truncation`` table), loading and encoding the validation split once for all k;
* step 4, baselines: :func:`baseline_table` says what the task is worth without fine-tuning (the
  majority class, linear probes on the frozen pretrained model; the ``baselines`` table);
* step 5, layer dropping (E1, E2): :func:`layer_drop_tables` scores each redundancy signal's
  choice of layers at every budget, and every layer dropped alone, with the unchanged and a
  re-fitted head (the ``layer_drop`` table), next to each signal's score per layer
  (``layer_signals``);
* step 6, along fine-tuning (E3): :func:`progress_tables` gives the CKA matrix, block statistics
  and task metric at each snapshot that fine-tuning saved (``progress``, ``progress_cka``);
* step 7, robustness (E4): :func:`robustness_tables` gives the block statistics of the fine-tuned
  model under other numbers of inputs, estimators, poolings and input domains (``robustness``),
  and its metrics on those inputs (``robustness_metrics``);
* after the runs of a grid, across seeds and tasks (E5): :func:`across_table` compares the
  layers of every two fine-tuned models of the grid, and each with the pretrained model, on one
  shared set of inputs (the grid table ``across``).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from layersim import (
    across,
    blocks,
    cka,
    families,
    finetune,
    layer_cache,
    passes,
    presets,
    probe,
    redundancy,
    reps,
    robustness,
    tasks,
    truncate,
)
from layersim.results import RunKey

__all__ = [
    "BLOCK_KINDS",
    "across_table",
    "CKA_ESTIMATORS",
    "baseline_table",
    "block_table",
    "cka_matrices",
    "cka_rows",
    "compared_layers",
    "SINGLE_LAYER",
    "layer_drop_tables",
    "truncation_curve",
    "evaluation_rows",
    "validation_record",
]

#: CKA estimators of the ``cka`` table: the paper's biased one and the debiased (unbiased HSIC).
CKA_ESTIMATORS: tuple[str, ...] = ("biased", "debiased")
#: The self matrices that get block statistics (a cross matrix has no block structure to test).
BLOCK_KINDS: tuple[str, ...] = ("finetuned", "pretrained")
#: The estimator of the block statistics: the bootstrap repeats inputs, which the debiased
#: estimator cannot take (see :func:`layersim.blocks.bootstrap_blocks`).
_BLOCK_ESTIMATOR = "biased"


# ----------------------------------------------------------------------------
# Step 2: similarity
# ----------------------------------------------------------------------------


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
        f"layersim.reps.layer_representations returns; got {type(reps).__name__}"
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
        (:func:`layersim.reps.layer_representations`): ``(L, n, d)`` tensors or lists of
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


def _as_array(matrix: Any) -> np.ndarray:
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
        values = _as_array(matrix)
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

    Per kind, four rows (:mod:`layersim.blocks` defines the statistics): ``excess`` and
    ``contrast`` at the best split, with the percentile interval of
    :func:`~layersim.blocks.bootstrap_blocks` over inputs; ``boundary_agreement`` (the share of
    bootstrap replicates whose own best split has the same boundary) and ``permutation_p``
    (:func:`~layersim.blocks.permutation_pvalue` over layer orders), which have no interval:
    their ``lower`` and ``upper`` are empty (NaN). Every row carries the boundary, the first
    hidden state of the late block.

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
        boot = blocks.bootstrap_blocks(reps[kind], n_boot=n_boot, seed=seed)
        if matrices is not None and (kind, _BLOCK_ESTIMATOR) in matrices:
            matrix = matrices[kind, _BLOCK_ESTIMATOR]
        else:
            matrix = cka.cka_matrix(reps[kind])
        split = boot.estimate
        stats = {
            "excess": (split.excess, *boot.excess_interval),
            "contrast": (split.contrast, *boot.contrast_interval),
            "boundary_agreement": (boot.boundary_agreement, math.nan, math.nan),
            "permutation_p": (blocks.permutation_pvalue(matrix, seed=seed), math.nan, math.nan),
        }
        boundary = int(layers[split.boundary])  # a matrix index, as a hidden-state index
        for statistic, (value, lower, upper) in stats.items():
            rows.append({
                **key.as_dict(), "kind": kind, "estimator": _BLOCK_ESTIMATOR, "pooling": pooling,
                "statistic": statistic, "value": float(value), "lower": float(lower),
                "upper": float(upper), "boundary": boundary,
            })  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# Step 3: truncation
# ----------------------------------------------------------------------------


def truncation_curve(
    key: RunKey,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    *,
    limit: int | None = None,
    data_dir: str | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    preset: str | presets.Preset | None = None,
    progress: bool = False,
    record: passes.PassRecord | None = None,
) -> pd.DataFrame:
    """The ``truncation`` table of a run: the task metrics with only the first k layers kept.

    For every k from :func:`layersim.truncate.fewest_layers` (0, the embeddings alone; 1 for
    DeBERTa-v2) to the full depth L, :func:`layersim.truncate.keep_first_layers` feeds layer k's
    output to the unchanged task head and :func:`layersim.finetune.evaluate_model` scores it,
    with no further tuning. The validation split is loaded and encoded once and every k is scored
    on that same encoded split. Where :mod:`layersim.layer_cache` applies, one pass of the full
    model gives every hidden state and each k costs only its head (the same computation as
    running the truncated model: tests compare the two). `model` itself is not modified.

    Parameters
    ----------
    key
        The run.
    model, tokenizer
        The fine-tuned model with its task head, and its tokenizer.
    task
        The task.
    limit, data_dir
        The validation examples (a seeded subset, :func:`layersim.tasks.load`) and local files.
    batch_size, max_length, preset
        As for :func:`layersim.finetune.evaluate_model` (defaults: the preset's).
    progress
        Show a progress bar over k.
    record
        The run's :class:`layersim.passes.PassRecord` of this model over these validation rows
        (:func:`validation_record`): its outputs with k layers kept are read instead of running
        the model again (``limit`` then only documents the rows).

    Returns
    -------
    pandas.DataFrame
        One row per (k, metric): the key columns, ``layers_kept``, ``metric``, ``value``.
    """
    task = tasks.get_task(task)
    spec = presets.get_preset(preset, task.name)  # the preset's settings for this task
    max_length = spec.max_length if max_length is None else max_length
    batch_size = 2 * spec.batch_size if batch_size is None else int(batch_size)
    depths = range(truncate.fewest_layers(model), truncate.num_layers(model) + 1)
    if record is not None and record.layer_logits is not None:
        return _truncation_rows(key, {
            k: tasks.compute_metrics(task, record.layer_logits[k], record.labels) for k in depths
        })  # fmt: skip
    raw = tasks.load(task, "validation", limit=limit, data_dir=data_dir)
    encoded = tasks.encode(task, tokenizer, raw, max_length=max_length)
    if layer_cache.embedding_output_module(model) is not None:
        scores = _truncated_scores(model, tokenizer, task, encoded, depths, batch_size, progress)
    else:
        scores = {
            k: finetune.evaluate_model(truncate.keep_first_layers(model, k), tokenizer, task,
                                       encoded=encoded, batch_size=batch_size, preset=spec)
            for k in tqdm(depths, desc="layers kept", disable=not progress)
        }  # fmt: skip
    return _truncation_rows(key, scores)


def _truncation_rows(key: RunKey, scores: dict[int, dict[str, float]]) -> pd.DataFrame:
    rows = [
        {**key.as_dict(), "layers_kept": k, "metric": name, "value": float(value)}
        for k, found in scores.items()
        for name, value in found.items()
    ]
    return pd.DataFrame(rows)


def _truncated_scores(
    model: Any, tokenizer: Any, task: tasks.Task, encoded: Any, depths: range, batch_size: int,
    progress: bool,
) -> dict[int, dict[str, float]]:  # fmt: skip
    """The metrics of every truncation from one pass of the full model: the model kept to its
    embeddings and head reads hidden state k in place of its embedding output
    (:func:`layersim.layer_cache.starting_from`), which is what keeping k layers feeds the head."""
    head_only = truncate.keep_first_layers(model, 0)
    full_depth = depths[-1]
    outputs: dict[int, list] = {k: [] for k in depths}
    labels = []
    passes = layer_cache.hidden_state_batches(
        model, tokenizer, task, tasks.sort_by_length(encoded), batch_size=batch_size,
        with_outputs=True,
    )  # fmt: skip
    head_only.eval()
    for batch, (hidden, logits) in tqdm(passes, desc="batches", disable=not progress,
                                        total=math.ceil(len(encoded) / batch_size)):  # fmt: skip
        labels.append(batch["labels"].numpy())
        outputs[full_depth].append(logits)
        inputs = {k: v.to(next(model.parameters()).device) for k, v in batch.items()
                  if k != "labels"}  # fmt: skip
        for k in depths[:-1]:  # the last hidden state of a decoder is after its final norm
            with torch.no_grad(), layer_cache.starting_from(head_only, [hidden[k]]):
                outputs[k].append(head_only(**inputs).logits.float().cpu().numpy())
    labels = np.concatenate(labels)
    return {k: tasks.compute_metrics(task, np.concatenate(outputs[k]), labels) for k in depths}


# ----------------------------------------------------------------------------
# Step 4: baselines
# ----------------------------------------------------------------------------


def _constant_prediction(task: tasks.Task, labels: np.ndarray, n: int) -> np.ndarray:
    """The majority class (or choice position) of the training labels; the training mean for
    regression (whose correlations are then 0 by the metrics' convention)."""
    if task.kind == "regression":
        return np.full(n, float(np.mean(labels)))
    values, counts = np.unique(labels.astype(np.int64), return_counts=True)
    width = task.num_labels
    scores = np.zeros((n, width))
    scores[:, int(values[np.argmax(counts)])] = 1.0
    return scores


def baseline_table(
    key: RunKey,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    *,
    preset: str | presets.Preset | None = None,
    data_dir: str | None = None,
    batch_size: int = 64,
    record: passes.PassRecord | None = None,
    train_limit: int | None = None,
    eval_limit: int | None = None,
) -> pd.DataFrame:
    """The ``baselines`` table of a run: the task's metrics without fine-tuning.

    ``majority``: always the most frequent training class (multiple choice: answer position;
    regression: the training mean). ``probe_pooled`` and ``probe_mean``: a linear head
    (:func:`layersim.probe.fit_linear_head`) fitted on the frozen pretrained model's features
    (what its task head reads, and the mean of its last layer over tokens) of the same training
    subset fine-tuning uses, scored on the same validation examples as the fine-tuned model.

    Parameters
    ----------
    key
        The run (its seed seeds the probes' cross-validation folds).
    model, tokenizer
        The pretrained model with a (new) task head, and its tokenizer.
    task, preset, data_dir
        The task, the preset whose sizes apply (its settings for this task), local files.
    batch_size
        Examples per forward pass.
    record
        The run's :class:`layersim.passes.PassRecord` of the pretrained model over the
        evaluation rows (:func:`validation_record`): the validation features are read from it.
    train_limit, eval_limit
        The training examples the probes learn from and the validation examples they are scored
        on (default: the preset's, as fine-tuning uses).

    Returns
    -------
    pandas.DataFrame
        One row per (baseline, metric): the key columns, ``baseline``, ``metric``, ``value``.
    """
    task = tasks.get_task(task)
    spec = presets.get_preset(preset, task.name)
    train_limit = spec.train_limit if train_limit is None else train_limit
    eval_limit = spec.eval_limit if eval_limit is None else eval_limit
    splits = {
        "train": tasks.load(task, "train", limit=train_limit, data_dir=data_dir),
        "validation": tasks.load(task, "validation", limit=eval_limit, data_dir=data_dir),
    }
    features = {
        name: probe.head_inputs(
            model,
            tokenizer,
            task,
            tasks.encode(task, tokenizer, raw, max_length=spec.max_length),
            batch_size=batch_size,
        )
        for name, raw in splits.items()
        if name == "train" or record is None
    }
    if record is not None:  # the mean of the last hidden state, per row (and choice)
        last = record.pooled["mean"][-1].numpy().reshape(*record.head.shape[:-1], -1)
        features["validation"] = (record.head, last, record.labels)
    (train_head, train_mean, train_y), (val_head, val_mean, val_y) = (
        features["train"],
        features["validation"],
    )
    scores = {
        "majority": tasks.compute_metrics(
            task, _constant_prediction(task, train_y, len(val_y)), val_y
        ),
        "probe_pooled": probe.probe_scores(
            task, (train_head, train_y), (val_head, val_y), seed=key.seed
        ),
        "probe_mean": probe.probe_scores(
            task, (train_mean, train_y), (val_mean, val_y), seed=key.seed
        ),
    }
    return pd.DataFrame(
        [
            {**key.as_dict(), "baseline": baseline, "metric": metric, "value": float(value)}
            for baseline, values in scores.items()
            for metric, value in values.items()
        ]
    )


# ----------------------------------------------------------------------------
# Step 5: layer dropping, which layers can go (E1, E2)
# ----------------------------------------------------------------------------


def _signal_states(
    cache: list, special: list[int], *, seed: int, max_tokens: int, pooling: str
) -> dict:
    """The hidden states the signals read, from the cached pass: every non-padding, non-special
    token (a seeded subset of at most `max_tokens`), and the model's own pooled token (`pooling`:
    the first, or a decoder's last)."""
    tokens = torch.cat(
        [reps.pool_hidden_states(h, b, "tokens", special_token_ids=special) for b, h in cache], 1
    )
    if tokens.shape[1] > max_tokens:  # a seeded subset keeps memory and time bounded
        keep = np.sort(np.random.default_rng(seed).choice(tokens.shape[1], max_tokens, False))
        tokens = tokens[:, keep]
    pooled = torch.cat([reps.pool_hidden_states(h, b, pooling) for b, h in cache], 1)
    return {"tokens": tokens, "pooled": pooled}


def _pruned_head_inputs(
    model: Any, layers: tuple[int, ...], tokenizer: Any, task: tasks.Task, encoded: Any,
    cache: list | None, *, batch_size: int, with_logits: bool = False,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """:func:`layersim.probe.head_inputs` of `model` without `layers`; with the full model's
    cached hidden states, only the kept layers above the lowest dropped one run."""
    first = min(layers, default=1)
    if cache is None or first == 1:
        pruned, start = truncate.drop_layers(model, layers), contextlib.nullcontext()
    else:
        pruned = truncate.drop_layers(model, sorted(set(range(1, first)) | set(layers)))
        start = layer_cache.starting_from(pruned, [hidden[first - 1] for _, hidden in cache])
    with start:
        return probe.head_inputs(
            pruned, tokenizer, task, encoded, batch_size=batch_size, with_logits=with_logits
        )


def _score_heads(
    model: Any, layers: tuple[int, ...], tokenizer: Any, task: tasks.Task, data: dict, *,
    refit: bool, seed: int, batch_size: int,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """The unchanged head's metrics, and with `refit` those of a linear head re-fitted on the
    frozen pruned model's output over the training examples."""
    (train, train_cache), (valid, valid_cache) = data["train"], data["validation"]
    valid_x, _, valid_y, logits = _pruned_head_inputs(
        model, layers, tokenizer, task, valid, valid_cache, batch_size=batch_size,
        with_logits=True,
    )  # fmt: skip
    scores = {"unchanged": tasks.compute_metrics(task, logits, valid_y)}
    if refit:
        train_x, _, train_y = _pruned_head_inputs(
            model, layers, tokenizer, task, train, train_cache, batch_size=batch_size
        )
        scores["refit"] = probe.probe_scores(
            task, (train_x, train_y), (valid_x, valid_y), seed=seed
        )
    return scores


#: The pseudo-signal of the ``layer_drop`` table whose rows drop one layer at a time (budget 1,
#: every layer): the measured cost of each layer, which the signals' per-layer scores predict.
SINGLE_LAYER = "single"


def layer_drop_tables(
    key: RunKey,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    *,
    preset: str | presets.Preset | None = None,
    refit_examples: int = 100,
    eval_limit: int | None = 150,
    max_tokens: int = 20_000,
    data_dir: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """Which layers can go: each signal's choice at every budget, scored two ways.

    The signals (:mod:`layersim.redundancy`: top-k, block influence, angular distance,
    consecutive CKA) are computed once from the fine-tuned model's hidden states on the validation
    inputs. For every budget n of :func:`layersim.redundancy.budget_grid` (0..L; every second for
    a 12-layer model, every fifth for a 30-layer one; n = L only for top-k: the embeddings alone)
    each signal names n layers; every single layer is also dropped alone (signal
    :data:`SINGLE_LAYER`).
    :func:`layersim.truncate.drop_layers` removes them, and the pruned model is scored with its
    unchanged task head (the paper's condition) and, for the signals' choices, with a linear head
    re-fitted on its frozen output over `refit_examples` training examples (:mod:`layersim.probe`),
    both on the same `eval_limit` validation examples (None: the preset's). Identical layer sets
    are scored once; where :mod:`layersim.layer_cache` applies, a pruned model starts from the full
    model's cached hidden state below its lowest dropped layer, so only the layers above it run.

    Returns
    -------
    dict of pandas.DataFrame
        ``layer_drop``: one row per (signal, budget, layers, condition, metric): the key columns,
        ``signal``, ``budget``, ``layers`` (the dropped layers, e.g. ``"5,6"``; empty for none),
        ``condition`` (``unchanged`` or ``refit``), ``metric``, ``value``.
        ``layer_signals``: one row per (layer, signal) for layers 1..L: ``block_influence``,
        ``angular_distance`` (across the layer alone, n = 1), ``consecutive_cka`` (CKA of its
        input and output) and ``cka_with_last`` (CKA of its output with the last layer's); a
        CKA that is undefined (a constant representation, e.g. a random model's first-token
        embedding) has no row.
    """
    task = tasks.get_task(task)
    spec = presets.get_preset(preset, task.name)
    limit = spec.eval_limit if eval_limit is None else eval_limit
    train_limit = min(refit_examples, spec.train_limit or refit_examples)

    def encoded(split: str, n: int | None) -> Any:
        raw = tasks.load(task, split, limit=n, data_dir=data_dir)
        # Every pruned model runs over the same rows: batches of similar lengths pad less.
        return tasks.sort_by_length(tasks.encode(task, tokenizer, raw, max_length=spec.max_length))

    train, valid = encoded("train", train_limit), encoded("validation", limit)
    depth = truncate.num_layers(model)
    valid_cache = layer_cache.cached_hidden_states(model, tokenizer, task, valid,
                                                   batch_size=batch_size)  # fmt: skip
    states = _signal_states(valid_cache, tokenizer.all_special_ids, seed=key.seed,
                            max_tokens=max_tokens,
                            pooling=families.natural_pooling(model))  # fmt: skip
    fast = layer_cache.embedding_output_module(model) is not None
    data = {
        "train": (train, layer_cache.cached_hidden_states(
            model, tokenizer, task, train, batch_size=batch_size) if fast else None),
        "validation": (valid, valid_cache if fast else None),
    }  # fmt: skip
    per_layer = {
        "block_influence": redundancy.block_influence(states["tokens"]).tolist(),
        "angular_distance": redundancy.angular_distances(states["tokens"], 1).tolist(),
        "consecutive_cka": redundancy.consecutive_cka(states["pooled"]).tolist(),
        "cka_with_last": redundancy.cka_with_last(states["pooled"]).tolist(),
    }

    def signal_scores(signal: str, n: int) -> Any:
        if n == 0 or signal == "top_k":
            return None
        if signal == "angular_distance":
            return redundancy.angular_distances(states["tokens"], n)
        return per_layer["consecutive_cka" if signal == "cka" else signal]

    choices: dict[tuple[str, int, tuple[int, ...]], None] = {}
    for signal in redundancy.SIGNALS:
        for n in redundancy.budget_grid(depth):
            if n == depth and signal != "top_k":
                continue  # dropping every layer is the embeddings alone: top-k says it
            scores = signal_scores(signal, n)
            chosen = redundancy.choose_layers(signal, n, depth=depth, scores=scores)
            choices[signal, n, tuple(chosen)] = None
    chosen_by_signals = {layers for _, _, layers in choices}
    for layer in range(1, depth + 1):
        choices[SINGLE_LAYER, 1, (layer,)] = None
    scored: dict[tuple[int, ...], dict[str, dict[str, float]]] = {}
    layer_sets = sorted({layers for _, _, layers in choices}, key=lambda s: (len(s), s))
    for layers in tqdm(layer_sets, desc="layer sets", disable=not progress):
        if depth - len(layers) < truncate.fewest_layers(model):
            continue  # DeBERTa-v2 cannot run without a layer
        # A layer dropped alone only measures that layer's cost: the unchanged head suffices.
        scored[layers] = _score_heads(model, layers, tokenizer, task, data,
                                      refit=layers in chosen_by_signals, seed=key.seed,
                                      batch_size=batch_size)  # fmt: skip
    drops = [
        {**key.as_dict(), "signal": signal, "budget": n, "layers": ",".join(map(str, layers)),
         "condition": condition, "metric": metric, "value": float(value)}
        for signal, n, layers in choices
        for condition, metrics in scored.get(layers, {}).items()
        for metric, value in metrics.items()
    ]  # fmt: skip
    signals = [
        {**key.as_dict(), "layer": layer, "signal": signal, "value": float(values[layer - 1])}
        for signal, values in per_layer.items()
        for layer in range(1, depth + 1)
        if math.isfinite(values[layer - 1])  # CKA is undefined beside a constant layer
    ]
    return {"layer_drop": pd.DataFrame(drops), "layer_signals": pd.DataFrame(signals)}


# ----------------------------------------------------------------------------
# Step 6: along fine-tuning, when do the blocks form? (E3)
# ----------------------------------------------------------------------------


def _pooled_pass(model: Any, tokenizer: Any, task: tasks.Task, encoded: Any, batch_size: int):
    """One pass over a split: the model's own pooled states of every layer ``(L + 1, rows, d)``
    (first token; a decoder's last), the model's outputs and the labels."""
    pooling = families.natural_pooling(model)
    pooled, logits, labels = [], [], []
    for batch, hidden in layer_cache.cached_hidden_states(
        model, tokenizer, task, encoded, batch_size=batch_size, with_outputs=True
    ):
        states, output = hidden
        labels.append(batch["labels"].numpy())
        pooled.append(reps.pool_hidden_states(states, batch, pooling))
        logits.append(output)
    return torch.cat(pooled, 1), np.concatenate(logits), np.concatenate(labels)


def progress_tables(
    key: RunKey,
    snapshots: Sequence[tuple[int, int, Any]],
    tokenizer: Any,
    task: str | tasks.Task,
    *,
    preset: str | presets.Preset | None = None,
    limit: int = 300,
    n_boot: int = 100,
    data_dir: str | None = None,
    batch_size: int = 64,
    device: Any = None,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """The fine-tuned model's CKA matrix, block statistics and metrics at each saved snapshot.

    For every ``(step, max_steps, directory)`` of :func:`layersim.finetune.saved_snapshots`, one
    forward pass over the same `limit` validation examples gives both the first-token states of
    every layer (the paper's pooling, a decoder's last token; biased linear CKA) and the task
    head's outputs. The block
    statistics are those of the ``blocks`` table with `n_boot` bootstrap replicates
    (:func:`layersim.blocks.bootstrap_blocks`).

    Returns
    -------
    dict of pandas.DataFrame
        ``progress``: one row per (step, statistic): the key columns, ``step``, ``max_steps``,
        ``statistic`` (``excess`` and ``contrast`` with a 95% interval, ``boundary`` — the first
        hidden state of the late block — and the task's metrics, without one), ``value``,
        ``lower``, ``upper``. ``progress_cka``: one row per (step, layer_a, layer_b).
    """
    task = tasks.get_task(task)
    if not snapshots:
        raise ValueError(
            "no snapshots to analyse: fine-tune with snapshots=(0.0, ..., 1.0) "
            "(notebooks/finetune.py keeps them by default) and pass finetune.saved_snapshots(...)"
        )
    spec = presets.get_preset(preset, task.name)
    raw = tasks.load(task, "validation", limit=limit, data_dir=data_dir)
    # In length order: every statistic here is order-free, and batches of similar lengths pad less.
    encoded = tasks.sort_by_length(tasks.encode(task, tokenizer, raw, max_length=spec.max_length))
    statistics, matrices = [], []
    for step, max_steps, directory in tqdm(snapshots, desc="snapshots", disable=not progress):
        model = finetune.load_model(str(directory), task, seed=key.seed)
        model = model.to(device) if device is not None else model
        pooled, logits, labels = _pooled_pass(model, tokenizer, task, encoded, batch_size)
        layers = compared_layers(truncate.num_layers(model), families.natural_pooling(model))
        states = pooled[layers]
        matrix = _as_array(cka.cka_matrix(states))
        boot = blocks.bootstrap_blocks(states, n_boot=n_boot, seed=key.seed)
        split = boot.estimate
        found = {
            "excess": (split.excess, *boot.excess_interval),
            "contrast": (split.contrast, *boot.contrast_interval),
            "boundary": (float(layers[split.boundary]), math.nan, math.nan),
            **{
                name: (value, math.nan, math.nan)
                for name, value in tasks.compute_metrics(task, logits, labels).items()
            },
        }
        where = {**key.as_dict(), "step": int(step), "max_steps": int(max_steps)}
        statistics += [
            {**where, "statistic": name, "value": float(value), "lower": float(low),
             "upper": float(high)}
            for name, (value, low, high) in found.items()
        ]  # fmt: skip
        matrices += [
            {**where, "layer_a": a, "layer_b": b, "cka": float(matrix[i, j])}
            for i, a in enumerate(layers)
            for j, b in enumerate(layers)
        ]
    return {"progress": pd.DataFrame(statistics), "progress_cka": pd.DataFrame(matrices)}


# ----------------------------------------------------------------------------
# Step 7: robustness of the block verdict (E4)
# ----------------------------------------------------------------------------


def robustness_tables(
    key: RunKey,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    *,
    preset: str | presets.Preset | None = None,
    sizes: Sequence[int] = robustness.SIZES,
    domains: Sequence[str] | None = None,
    domain_examples: int = 500,
    n_boot: int = 50,
    data_dir: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
    record: passes.PassRecord | None = None,
) -> dict[str, pd.DataFrame]:
    """The fine-tuned model's block statistics under every choice of :mod:`layersim.robustness`.

    One forward pass per set of inputs: the run's own validation inputs (up to ``max(sizes)``,
    the same seeded subset as the similarity step's, read at every size of
    :func:`layersim.robustness.sizes_for`), and for each of `domains` (default:
    :data:`layersim.robustness.OTHER_DOMAINS` of the task) up to `domain_examples` validation
    inputs of that task, read at their full number with the paper's pooling. The own inputs are
    pooled three ways; every set is compared with both estimators
    (:func:`layersim.robustness.choice_rows`). With `record` (the run's
    :class:`layersim.passes.PassRecord` of this model over the seeded ``max(sizes)`` validation
    inputs, :func:`validation_record`) the own inputs are read from it instead of a new pass.

    Returns
    -------
    dict of pandas.DataFrame
        ``robustness``: one row per (inputs, pooling, estimator, n, statistic): the key columns,
        ``inputs`` (``validation`` or a domain task), ``pooling``, ``estimator``, ``n``,
        ``statistic`` (``excess``, ``contrast``), ``value``, ``lower``, ``upper``, ``boundary``.
        ``robustness_metrics``: the task head's metrics on each set of inputs whose labels are of
        the task's kind (the rows it was pooled from): ``inputs``, ``n``, ``metric``, ``value``.
    """
    task = tasks.get_task(task)
    spec = presets.get_preset(preset, task.name)
    domains = robustness.OTHER_DOMAINS.get(task.name, ()) if domains is None else domains
    own = families.natural_pooling(model)
    sources = {"validation": (task, max(sizes))}
    sources |= {name: (tasks.get_task(name), domain_examples) for name in domains}
    found, scores = [], []
    for name, (source, limit) in tqdm(sources.items(), desc="inputs", disable=not progress):
        if name == "validation" and record is not None:
            depth = record.pooled[own].shape[0] - 1
            states = {own: (list(range(1, depth + 1)), record.pooled[own][1:]),
                      "mean": (list(range(depth + 1)), record.pooled["mean"]),
                      "tokens": (list(range(depth + 1)), record.pooled["tokens"])}  # fmt: skip
            logits, labels = record.logits, record.labels
        else:
            states, logits, labels = _robustness_pass(
                model, tokenizer, source, limit, own, key, spec.max_length, batch_size, data_dir
            )
        rows = states[own][1].shape[1]
        if name == "validation":
            here = robustness.sizes_for(rows, sizes)
        else:  # another domain: the paper's pooling only, at its full number (cost)
            here, states = [rows], {own: states[own]}
        found += [
            {**key.as_dict(), "inputs": name, **row}
            for row in robustness.choice_rows(states, sizes=here, n_boot=n_boot, seed=key.seed)
        ]
        if (source.kind, source.num_labels) == (task.kind, task.num_labels):
            scores += [
                {**key.as_dict(), "inputs": name, "n": len(labels), "metric": metric,
                 "value": float(value)}
                for metric, value in tasks.compute_metrics(source, logits, labels).items()
            ]  # fmt: skip
    return {"robustness": pd.DataFrame(found), "robustness_metrics": pd.DataFrame(scores)}


def _robustness_pass(
    model: Any, tokenizer: Any, source: tasks.Task, limit: int, own: str, key: RunKey,
    max_length: int, batch_size: int, data_dir: str | None,
) -> tuple[dict, np.ndarray, np.ndarray]:  # fmt: skip
    """The pooled states (:func:`layersim.robustness.pooled_states`), logits and labels of the
    seeded `limit` validation inputs of `source`, in split order."""
    raw = tasks.load(source, "validation", limit=limit, data_dir=data_dir, seed=key.seed)
    encoded = tasks.encode(source, tokenizer, raw, max_length=max_length)
    # Run in length order (less padding), then put the rows back: the sizes read prefixes.
    order = tasks.length_order(encoded)
    restore = torch.from_numpy(np.argsort(order))
    cache = layer_cache.cached_hidden_states(
        model, tokenizer, source, encoded.select(order), batch_size=batch_size, with_outputs=True
    )
    pooled = robustness.pooled_states(
        [(b, h) for b, (h, _) in cache], tokenizer.all_special_ids, seed=key.seed, own=own
    )
    states = {pooling: (layers, x[:, restore]) for pooling, (layers, x) in pooled.items()}
    logits = np.concatenate([out for _, (_, out) in cache])[restore.numpy()]
    labels = np.concatenate([b["labels"].numpy() for b, _ in cache])[restore.numpy()]
    return states, logits, labels


def validation_record(
    key: RunKey,
    role: str,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    rows: Any,
    *,
    work_dir: str,
    weights: str,
    preset: str | presets.Preset | None = None,
    data_dir: str | None = None,
    batch_size: int = 64,
) -> passes.PassRecord:
    """The run's shared pass of `model` (`role`: ``finetuned`` or ``pretrained``) over the
    validation positions `rows` (:func:`layersim.passes.run_record`): computed once, by the first
    step that asks, over every row the run's steps read (:func:`layersim.passes.validation_rows`),
    and kept under the run's directory in `work_dir`. `weights` is where `model` was loaded from
    (its directory, or a model name), which a kept record must match."""
    if role not in ("finetuned", "pretrained"):
        raise ValueError(f"role must be 'finetuned' or 'pretrained'; got {role!r}")
    source = presets.resolve_model(weights)
    model_dir = source if isinstance(source, str) and os.path.isdir(source) else str(weights)
    task = tasks.get_task(task)
    spec = presets.get_preset(preset, task.name)
    size = len(tasks.load(task, "validation", data_dir=data_dir))
    union = passes.validation_rows(size, similarity=spec.similarity_examples,
                                   eval_limit=spec.eval_limit, seed=key.seed)  # fmt: skip
    path = key.run_dir(work_dir) / "passes" / f"{role}.pt"
    return passes.run_record(path, model, tokenizer, task, np.asarray(rows), model_dir=model_dir,
                             max_length=spec.max_length, batch_size=batch_size, seed=key.seed,
                             data_dir=data_dir, union=union)  # fmt: skip


def evaluation_rows(task: str | tasks.Task, *, limit: int | None, data_dir: str | None = None,
                    seed: int = 0) -> np.ndarray:  # fmt: skip
    """The validation positions ``tasks.load(task, "validation", limit=limit, seed=seed)`` reads."""
    size = len(tasks.load(task, "validation", data_dir=data_dir))
    return tasks.subset_indices(size, limit, seed)


# ----------------------------------------------------------------------------
# After the runs of a grid: across seeds and tasks (E5)
# ----------------------------------------------------------------------------


def across_table(
    preset: str | presets.Preset,
    model: str,
    runs: Sequence[RunKey],
    *,
    work_dir: str,
    per_task: int = 100,
    pooling: str | None = None,
    batch_size: int = 64,
    device: Any = "cpu",
    data_dir: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The ``across`` table of a grid: rectangular CKA matrices between its models' layers.

    Every fine-tuned model of `runs` (loaded from ``<run dir under work_dir>/model``) and the
    pretrained model of each seed (`model`: its name or directory, as fine-tuning was given it)
    read the same inputs, :func:`layersim.across.shared_inputs` of the runs' tasks (`per_task`
    validation examples each, at each task's ``max_length``); the pairs are
    :func:`layersim.across.model_pairs`, with the biased and the debiased estimator. `pooling`
    defaults to the model's own (:func:`layersim.families.natural_pooling`).
    """
    from torch.utils.data import DataLoader
    from transformers import AutoModel, DataCollatorWithPadding

    if not runs:
        raise ValueError("runs is empty; pass the fine-tuned runs of the grid")
    spec = presets.get_preset(preset)
    names = [name for name in spec.tasks if name in {key.task for key in runs}]
    names += sorted({key.task for key in runs} - set(names))
    tokenizer = finetune.load_tokenizer(model)
    lengths = {name: presets.get_preset(spec, name).max_length for name in names}
    inputs = across.shared_inputs(names, tokenizer, per_task=per_task, max_length=lengths,
                                  data_dir=data_dir)  # fmt: skip
    loader = DataLoader(inputs.remove_columns("source"), batch_size=batch_size,
                        collate_fn=DataCollatorWithPadding(tokenizer))  # fmt: skip
    device = torch.device(device)

    def load(run: RunKey | int) -> Any:
        """A fine-tuned body from work_dir, or (a seed) the pretrained model it started from."""
        if isinstance(run, RunKey):
            return AutoModel.from_pretrained(run.run_dir(work_dir) / "model")
        return finetune.load_model(model, names[0], seed=run)

    models: dict[str, RunKey | int] = {
        across.pretrained_label(seed): seed for seed in sorted({key.seed for key in runs})
    }
    models |= {across.run_label(key.task, key.seed): key for key in runs}
    representations, layers = {}, []
    for label, run in tqdm(models.items(), desc="models", disable=not progress):
        network = load(run).to(device)
        pooling = pooling or families.natural_pooling(network)
        layers = compared_layers(truncate.num_layers(network), pooling)
        representations[label] = reps.layer_representations(
            network, loader, pooling=pooling, layers=layers, autocast=device.type == "cuda",
            special_token_ids=tokenizer.all_special_ids,
        )  # fmt: skip
    pairs = across.model_pairs([(key.task, key.seed) for key in runs])
    return across.across_rows(spec.name, runs[0].model, representations, pairs, layers=layers,
                              pooling=pooling)  # fmt: skip

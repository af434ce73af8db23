"""Step 5, layer dropping (E1, E2): each redundancy signal's choice of layers at every budget, and
every layer dropped alone, scored with the unchanged and a re-fitted head (the ``layer_drop``
table), next to each signal's score per layer (``layer_signals``).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from layersim import tasks
from layersim.models import families, layer_cache, probe, reps, truncate
from layersim.pipeline import presets
from layersim.results import RunKey
from layersim.stats import redundancy

__all__ = ["SINGLE_LAYER", "layer_drop_tables"]


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
    """:func:`layersim.models.probe.head_inputs` of `model` without `layers`; with the full model's
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

    The signals (:mod:`layersim.stats.redundancy`: top-k, block influence, angular distance,
    consecutive CKA) are computed once from the fine-tuned model's hidden states on the validation
    inputs. For every budget n of :func:`layersim.stats.redundancy.budget_grid` (0..L; every second
    for a 12-layer model, every fifth for a 30-layer one; n = L only for top-k: the embeddings
    alone) each signal names n layers; every single layer is also dropped alone (signal
    :data:`SINGLE_LAYER`).
    :func:`layersim.models.truncate.drop_layers` removes them, and the pruned model is scored with
    its unchanged task head (the paper's condition) and, for the signals' choices, with a linear
    head re-fitted on its frozen output over `refit_examples` training examples
    (:mod:`layersim.models.probe`), both on the same `eval_limit` validation examples (None: the
    preset's). Identical layer sets are scored once; where :mod:`layersim.models.layer_cache`
    applies, a pruned model starts from the full model's cached hidden state below its lowest
    dropped layer, so only the layers above it run.

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

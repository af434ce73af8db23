"""Step 6, along fine-tuning (E3): the CKA matrix, block statistics and task metric at each
snapshot that fine-tuning saved (``progress``, ``progress_cka``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from layersim import cka, tasks
from layersim.models import families, layer_cache, reps, truncate
from layersim.pipeline import finetune, presets
from layersim.pipeline.steps.similarity import as_array, compared_layers
from layersim.results import RunKey
from layersim.stats import block_intervals


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

    For every ``(step, max_steps, directory)`` of
    :func:`layersim.pipeline.finetune.saved_snapshots`, one forward pass over the same `limit`
    validation examples gives both the first-token states of every layer (the paper's pooling, a
    decoder's last token; biased linear CKA) and the task head's outputs. The block
    statistics are those of the ``blocks`` table with `n_boot` bootstrap replicates
    (:func:`layersim.stats.block_intervals.bootstrap_blocks`).

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
        matrix = as_array(cka.cka_matrix(states))
        boot = block_intervals.bootstrap_blocks(states, n_boot=n_boot, seed=key.seed)
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

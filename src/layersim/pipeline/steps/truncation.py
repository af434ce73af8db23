"""Step 3, truncation: the model scored with only its first k layers for every k (the
``truncation`` table), the validation split loaded and encoded once for all k.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from layersim import tasks
from layersim.models import layer_cache, truncate
from layersim.pipeline import evaluation, passes, presets
from layersim.results import RunKey

__all__ = ["truncation_curve"]


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

    For every k from :func:`layersim.models.truncate.fewest_layers` (0, the embeddings alone; 1 for
    DeBERTa-v2) to the full depth L, :func:`layersim.models.truncate.keep_first_layers` feeds layer
    k's output to the unchanged task head and :func:`layersim.pipeline.evaluation.evaluate_model`
    scores it, with no further tuning. The validation split is loaded and encoded once and every k
    is scored on that same encoded split. Where :mod:`layersim.models.layer_cache` applies, one pass
    of the full model gives every hidden state and each k costs only its head (the same computation
    as running the truncated model: tests compare the two). `model` itself is not modified.

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
        As for :func:`layersim.pipeline.evaluation.evaluate_model` (defaults: the preset's).
    progress
        Show a progress bar over k.
    record
        The run's :class:`layersim.pipeline.passes.PassRecord` of this model over these validation
        rows (:func:`validation_record`): its outputs with k layers kept are read instead of running
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
            k: evaluation.evaluate_model(truncate.keep_first_layers(model, k), tokenizer, task,
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
    (:func:`layersim.models.layer_cache.starting_from`), which is what keeping k layers feeds the
    head."""
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

"""Scoring an in-memory model on a task's split with no training (a fine-tuned, truncated or
pruned model), in eval mode and batches of similar length.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from transformers import (
    PreTrainedModel,
)

from layersim.pipeline.presets import Preset, get_preset
from layersim.tasks import Task, collator, compute_metrics, encode, get_task, load

__all__ = ["evaluate_model"]


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: Any,
    task: str | Task,
    *,
    split: str = "validation",
    limit: int | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    data_dir: str | os.PathLike | None = None,
    dataset: Any | None = None,
    encoded: Any | None = None,
    preset: str | Preset | None = None,
) -> dict[str, float]:
    """The task metrics of an in-memory model on a split, with no training.

    Runs in eval mode under ``torch.inference_mode`` on the device of the model's parameters,
    batching examples of similar length (the order does not change the metrics); the model's
    training/eval mode is restored afterwards.

    Parameters
    ----------
    model : PreTrainedModel
        A model with the task's head (e.g. a fine-tuned or truncated one).
    tokenizer : PreTrainedTokenizerBase
        Its tokenizer.
    task : str or Task
        The task.
    split : str
        Split to score (``"validation"`` is MNLI's ``validation_matched``).
    limit : int, optional
        Seeded subset of the split (:func:`layersim.tasks.load`).
    batch_size : int, optional
        Examples per forward pass (default: twice the preset's training batch).
    max_length : int, optional
        Truncation length (default: the preset's).
    data_dir : str or path, optional
        Local task files.
    dataset : datasets.Dataset, optional
        The raw split, already loaded (skips :func:`layersim.tasks.load`; ``split``, ``limit``
        and ``data_dir`` are then ignored). Saves reloading when many models are scored.
    encoded : datasets.Dataset, optional
        The split already encoded for this tokenizer by :func:`layersim.tasks.encode` (skips
        loading and encoding; ``dataset``, ``split``, ``limit``, ``data_dir`` and ``max_length``
        are then ignored). Saves re-tokenizing when many models share a tokenizer.
    preset : str or Preset, optional
        Source of the defaults (default ``demo``).

    Returns
    -------
    dict of str to float
        ``task.metrics``.
    """
    task = get_task(task)
    preset = get_preset(preset, task.name)
    batch_size = 2 * preset.batch_size if batch_size is None else int(batch_size)
    max_length = preset.max_length if max_length is None else int(max_length)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if encoded is None:
        raw = dataset if dataset is not None else load(task, split, limit=limit, data_dir=data_dir)
        encoded = encode(task, tokenizer, raw, max_length=max_length)
    elif not {"input_ids", "labels"} <= set(getattr(encoded, "column_names", ())):
        raise ValueError(
            "encoded must be a split encoded by layersim.tasks.encode (columns input_ids and "
            "labels); pass a raw split as dataset= instead"
        )
    if task.kind == "multiple_choice":
        lengths = [max(len(ids) for ids in choices) for choices in encoded["input_ids"]]
    else:
        lengths = [len(ids) for ids in encoded["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    collate = collator(task, tokenizer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs, labels = [], []
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = collate([encoded[int(i)] for i in order[start : start + batch_size]])
                labels.append(batch.pop("labels").numpy())
                batch = {key: value.to(device) for key, value in batch.items()}
                outputs.append(model(**batch).logits.float().cpu().numpy())
    finally:
        model.train(was_training)
    return compute_metrics(task, np.concatenate(outputs), np.concatenate(labels))


def evaluate(*args: Any, **kwargs: Any) -> dict[str, float]:
    """Deprecated name of :func:`evaluate_model` (it shadowed the ``evaluate`` package)."""
    import warnings

    warnings.warn(
        "layersim.pipeline.finetune.evaluate is now evaluate_model; the old name will be removed",
        DeprecationWarning,
        stacklevel=2,
    )
    return evaluate_model(*args, **kwargs)

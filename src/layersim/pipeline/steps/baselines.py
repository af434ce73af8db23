"""Step 4, baselines: what the task is worth without fine-tuning (the majority class, linear
probes on the frozen pretrained model; the ``baselines`` table).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from layersim import tasks
from layersim.models import probe
from layersim.pipeline import passes, presets
from layersim.results import RunKey

__all__ = ["baseline_table"]


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
    (:func:`layersim.models.probe.fit_linear_head`) fitted on the frozen pretrained model's features
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
        The run's :class:`layersim.pipeline.passes.PassRecord` of the pretrained model over the
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

"""What the steps read: the validation positions a step scores and the run's shared forward pass
over them (:mod:`layersim.pipeline.passes`), computed by the first step that asks.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from layersim import tasks
from layersim.pipeline import passes, presets
from layersim.results import RunKey

__all__ = ["evaluation_rows", "validation_record"]


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
    validation positions `rows` (:func:`layersim.pipeline.passes.run_record`): computed once, by the
    first step that asks, over every row the run's steps read
    (:func:`layersim.pipeline.passes.validation_rows`), and kept under the run's directory in
    `work_dir`. `weights` is where `model` was loaded from (its directory, or a model name), which a
    kept record must match."""
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

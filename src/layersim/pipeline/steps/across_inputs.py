"""What the across step (E5) compares: the grid's run labels, one shared set of inputs, the pairs of
models, and the rows of their rectangular CKA matrices.

Every fine-tuned model of a grid (one preset and model: its tasks x seeds) and the pretrained
model reads the same inputs (:func:`shared_inputs`), since two models can only be compared on
common rows. CKA between layer i of one model and layer j of another is a rectangular matrix
(:func:`across_rows`); its diagonal says how much the same depth agrees. Three comparisons
(:data:`COMPARISONS`):

* ``seeds``: two seeds of the same task, what fine-tuning's randomness alone changes;
* ``tasks``: two tasks at the same seed, what the task changes (with the same randomness);
* ``pretrained``: the pretrained model against each fine-tuned one, the reference row: how far
  fine-tuning moved each layer at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from layersim import cka, tasks

__all__ = [
    "COMPARISONS",
    "across_rows",
    "model_pairs",
    "pretrained_label",
    "run_label",
    "shared_inputs",
    "split_label",
]


COMPARISONS = ("seeds", "tasks", "pretrained")


PRETRAINED = "pretrained"


def run_label(task: str, seed: int) -> str:
    """How the ``across`` table names a fine-tuned model: ``"<task>/seed<k>"``."""
    return f"{task}/seed{int(seed)}"


def pretrained_label(seed: int) -> str:
    """The pretrained model that seed `seed` started from: ``"pretrained/seed<k>"`` (the same
    weights for every seed of a pretrained checkpoint; a random ``tiny-*`` body per seed)."""
    return run_label(PRETRAINED, seed)


def split_label(label: str) -> tuple[str, int]:
    """``"<task>/seed<k>"`` -> (task, k); the inverse of :func:`run_label`."""
    task, _, seed = label.rpartition("/seed")
    if not task or not seed.isdigit():
        raise ValueError(f"{label!r} is not a run label of the form '<task>/seed<k>'")
    return task, int(seed)


def shared_inputs(
    task_names: Sequence[str],
    tokenizer: Any,
    *,
    per_task: int,
    max_length: int | Mapping[str, int],
    data_dir: str | None = None,
    seed: int = 0,
) -> Any:
    """The inputs every model of a grid reads: `per_task` validation examples of each task.

    Each is encoded as its task encodes it (:func:`layersim.tasks.encode`: a pair as a pair); a
    multiple-choice question contributes one sequence, its question with the correct answer.
    Rows are sorted by length (batches pad less; every model sees the same order).

    Returns
    -------
    datasets.Dataset
        The tokenizer's columns (``input_ids``, ``attention_mask``, ``token_type_ids`` if it
        makes them) and ``source``, the task each row came from.
    """
    import datasets

    if not task_names:
        raise ValueError("task_names is empty; pass the tasks of the grid")
    if isinstance(per_task, bool) or not isinstance(per_task, int) or per_task < 1:
        raise ValueError(f"per_task must be a positive number of examples; got {per_task!r}")
    columns: dict[str, list] = {}
    for name in task_names:
        length = max_length[name] if isinstance(max_length, Mapping) else max_length
        task = tasks.get_task(name)
        raw = tasks.load(task, "validation", limit=per_task, data_dir=data_dir, seed=seed)
        encoded = tasks.encode(task, tokenizer, raw, max_length=length)
        fields = [c for c in encoded.column_names if c != "labels"]
        for row in encoded:
            if task.kind == "multiple_choice":  # the correct (question, answer) sequence
                row = {field: row[field][row["labels"]] for field in fields}
            for field in fields:
                columns.setdefault(field, []).append(row[field])
            columns.setdefault("source", []).append(task.name)
    return tasks.sort_by_length(datasets.Dataset.from_dict(columns))


def model_pairs(runs: Sequence[tuple[str, int]]) -> list[tuple[str, str, str]]:
    """``(comparison, run_a, run_b)`` for a grid's runs ``(task, seed)``: every two seeds of a
    task (``seeds``), every two tasks of a seed (``tasks``), and each run against the pretrained
    model of its seed (``pretrained``, the pretrained model as ``run_a``)."""
    runs = sorted({(str(task), int(seed)) for task, seed in runs})
    pairs = []
    for (task_a, seed_a), (task_b, seed_b) in itertools.combinations(runs, 2):
        if task_a == task_b:
            pairs.append(("seeds", run_label(task_a, seed_a), run_label(task_b, seed_b)))
        elif seed_a == seed_b:
            pairs.append(("tasks", run_label(task_a, seed_a), run_label(task_b, seed_b)))
    pairs += [("pretrained", pretrained_label(seed), run_label(task, seed)) for task, seed in runs]
    return pairs


def across_rows(
    preset: str,
    model: str,
    representations: Mapping[str, Any],
    pairs: Sequence[tuple[str, str, str]],
    *,
    layers: Sequence[int],
    pooling: str,
    estimators: Sequence[str] = ("biased", "debiased"),
) -> pd.DataFrame:
    """The ``across`` table: the rectangular CKA matrix of each pair, row by row.

    Parameters
    ----------
    preset, model
        The grid.
    representations
        Label (:func:`run_label`, :func:`pretrained_label`) -> ``(L, n, d)`` layer
        representations on the same inputs in the same order
        (:func:`layersim.models.reps.layer_representations`).
    pairs
        :func:`model_pairs`.
    layers
        The hidden-state index of each representation layer: ``layer_a`` / ``layer_b``.
    pooling
        How the representations were pooled (recorded in every row).
    estimators
        ``biased`` (the paper's) and/or ``debiased`` CKA.
    """
    layers = np.asarray(layers, dtype=np.int64)
    missing = sorted({label for _, a, b in pairs for label in (a, b)} - set(representations))
    if missing:
        raise ValueError(f"no representations for {missing}; compute them for every pair's models")
    frames = []
    for comparison, run_a, run_b in pairs:
        xs, ys = representations[run_a], representations[run_b]
        if xs.shape[:2] != ys.shape[:2] or xs.shape[0] != len(layers):
            raise ValueError(
                f"{run_a} and {run_b} must have the same {len(layers)} layers and inputs; got "
                f"(layers, inputs, width) {tuple(xs.shape)} and {tuple(ys.shape)}"
            )
        for estimator in estimators:
            matrix = cka.cka_matrix(xs, ys, debiased=estimator == "debiased").double().numpy()
            frames.append(pd.DataFrame({
                "preset": preset, "model": model, "comparison": comparison,
                "run_a": run_a, "run_b": run_b,
                "layer_a": np.repeat(layers, len(layers)), "layer_b": np.tile(layers, len(layers)),
                "estimator": estimator, "pooling": pooling, "n": np.int64(xs.shape[1]),
                "cka": matrix.ravel(),
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)

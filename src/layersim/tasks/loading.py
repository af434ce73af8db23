"""Loading a task's split as a :class:`datasets.Dataset` in the hub schema: from the hub, from local
files (``data_dir``), from the prepared real-text splits or from the synthetic generator; and the
seeded subsets the steps read (:func:`subset_indices`).
"""

from __future__ import annotations

import glob
import os
from typing import Any

import datasets
import numpy as np

from layersim.tasks.registry import Task, get_task
from layersim.tasks.synthetic import generate_synthetic

__all__ = ["load", "subset_indices"]


_LOCAL_EXTENSIONS = ("jsonl", "json", "parquet", "csv", "tsv")


def _resolve_split(task: Task, split: str) -> str:
    if split == "validation" and "validation" not in task.splits:
        return task.validation_split  # MNLI: "validation" means validation_matched
    if split not in task.splits:
        raise ValueError(
            f"task {task.name!r} has no split {split!r}; its splits are: "
            f"{', '.join(task.splits)}. Pass one of these."
        )
    return split


def _local_files(task: Task, split: str, data_dir: str) -> tuple[str, list[str]] | None:
    folder = os.path.join(os.path.expanduser(data_dir), task.name)
    for ext in _LOCAL_EXTENSIONS:
        path = os.path.join(folder, f"{split}.{ext}")
        if os.path.isfile(path):
            return ext, [path]
    shards = sorted(glob.glob(os.path.join(folder, f"{split}-*.parquet")))
    if shards:
        return "parquet", shards
    return None


def _load_local(task: Task, split: str, data_dir: str) -> datasets.Dataset:
    found = _local_files(task, split, data_dir)
    if found is None:
        folder = os.path.join(data_dir, task.name)
        raise FileNotFoundError(
            f"no local files for task {task.name!r}, split {split!r} under data_dir={data_dir!r}. "
            f"Expected {folder}/{split}.jsonl (or .json, .parquet, .csv, .tsv) or "
            f"{folder}/{split}-*.parquet in the hub schema (fields: "
            f"{', '.join(_required_columns(task))})."
        )
    ext, paths = found
    builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv", "tsv": "csv"}
    kwargs: dict[str, Any] = {"delimiter": "\t"} if ext == "tsv" else {}
    return datasets.load_dataset(builder[ext], data_files=paths, split="train", **kwargs)


def _load_hub(task: Task, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(task.hub_path, task.hub_config, split=split)
    except (ConnectionError, OSError) as error:
        raise ConnectionError(
            f"could not load task {task.name!r} ({task.hub_path}"
            f"{'/' + task.hub_config if task.hub_config else ''}, split {split!r}) from the "
            f"Hugging Face Hub: {error}. Without network, put the split in local files and pass "
            f"data_dir=DIR: DIR/{task.name}/{split}.jsonl (or .parquet/.csv, or the hub's "
            f"{split}-*.parquet shards) with fields {', '.join(_required_columns(task))}; see "
            "the layersim.tasks module docstring."
        ) from error


def _required_columns(task: Task) -> list[str]:
    columns = list(task.text_fields) + [task.label_field]
    if task.prefix_field:
        columns.insert(0, task.prefix_field)
    if task.choices_field:
        columns.append(task.choices_field)
    return columns


def load(
    name: str | Task,
    split: str,
    *,
    limit: int | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> datasets.Dataset:
    """One split of a task, in the hub schema.

    The source is, in order: local files under ``data_dir`` when given (see the module docstring
    for the layout; for a synthetic task, used only if its folder holds the split), for the
    real-text tasks (:data:`REAL_TASKS`) the splits :mod:`layersim.tasks.real_text` prepared from
    their registry package (fetched on first use), the synthetic generator for synthetic tasks (the
    canonical data, generator seed 0, whatever ``seed``), or the Hugging Face Hub
    (``datasets.load_dataset(hub_path, hub_config, split=split)``).

    Parameters
    ----------
    name : str or Task
        Task name.
    split : str
        A split of the task (``task.splits``); ``"validation"`` also names MNLI's
        ``validation_matched``.
    limit : int, optional
        Keep ``limit`` examples: the first ``limit`` indices of a permutation drawn with
        ``numpy.random.default_rng(seed)``, kept in file order. Subsets are nested (a smaller
        limit keeps a subset of a larger one's examples). None or a limit ≥ the split size keeps
        everything.
    data_dir : str or path, optional
        Folder of local files (what a user without network passes).
    seed : int
        Seed of the subset drawn by ``limit``.

    Returns
    -------
    datasets.Dataset

    Raises
    ------
    ValueError
        Unknown task or split, a bad limit, or local files lacking the task's fields.
    FileNotFoundError
        ``data_dir`` given but no file for this task and split (hub tasks).
    ConnectionError
        The Hub could not be reached (the message says how to use ``data_dir``).
    """
    task = get_task(name)
    split = _resolve_split(task, split)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if task.is_packaged and data_dir is None:
        from layersim.tasks import real_text

        dataset = _load_local(task, split, str(real_text.ensure(task.name)))
    elif task.data_dir is not None and data_dir is None:  # your own data, split into the cache
        dataset = _load_local(task, split, task.data_dir)
    elif data_dir is not None and (
        not task.is_synthetic or _local_files(task, split, str(data_dir)) is not None
    ):
        dataset = _load_local(task, split, str(data_dir))
    elif task.is_synthetic:
        dataset = generate_synthetic(task.name, seed=0)[split]
    else:
        dataset = _load_hub(task, split)
    missing = [c for c in _required_columns(task) if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"data for task {task.name!r} ({split}) lacks the field(s) {', '.join(missing)}; it "
            f"has {', '.join(dataset.column_names)}. Write files in the hub schema with fields "
            f"{', '.join(_required_columns(task))}."
        )
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(subset_indices(len(dataset), limit, seed))
    return dataset


def subset_indices(size: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """The positions of a split of `size` rows that :func:`load` keeps for `limit` and `seed`:
    the first `limit` of a permutation drawn with ``numpy.random.default_rng(seed)``, sorted
    (every position when `limit` is None or not smaller than `size`)."""
    if limit is None or limit >= size:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).permutation(size)[:limit])

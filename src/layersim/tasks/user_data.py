"""Your own labelled data as a task: a CSV, TSV or JSON-lines file, a folder of split files, a
pandas frame or a ``datasets.Dataset``.

:func:`task_from_frame` checks the data (the text and label columns exist, at least two classes,
enough rows), infers the kind from the labels (whole numbers or strings: classification; other
numbers: regression) unless told, splits a single table into train / validation / test by a
stable hash of each row's text (80 / 10 / 10, so adding rows never moves one), writes the splits
into the cache (``<cache>/user_tasks/<name>/``) and registers the task, so
:func:`layersim.tasks.load`, fine-tuning and every step read it like the built-in tasks.

:func:`task_from_file` does the same for a path; :func:`layersim.tasks.get_task` calls it for any
task name that is a data file or folder, which is how ``python -m layersim run --tasks my.csv``
works: every notebook of the batch rebuilds the task from the path it is given. A file's task is
named after it and its content (``file-<name>-<hash>``), so a changed file is a new task.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FILE_SUFFIXES",
    "MIN_ROWS",
    "is_data_path",
    "task_from_file",
    "task_from_frame",
]

#: Files a task can be read from.
FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: The fewest labelled rows a task may have (each split needs some, the probes need ten).
MIN_ROWS = 50
_SPLITS = ("train", "validation", "test")
_FRACTIONS = (0.8, 0.1, 0.1)
_REGISTRY = "registry.json"


def _root() -> Path:
    from layersim.tasks.archives import cache_dir

    return cache_dir() / "user_tasks"


def is_data_path(name: object) -> bool:
    """Whether a task name is a data file (:data:`FILE_SUFFIXES`) or a folder with a train file."""
    if not isinstance(name, str | os.PathLike):
        return False
    path = Path(os.path.expanduser(str(name)))
    if path.suffix.lower() in FILE_SUFFIXES:
        return True
    return path.is_dir() and any((path / f"train{s}").is_file() for s in FILE_SUFFIXES)


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"task data {path} does not exist; pass an existing file")
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=suffix == ".jsonl")


def _infer_text_fields(frame: pd.DataFrame, label_field: str) -> tuple[str, ...]:
    """The text columns: a known pair of columns if there is one, else ``text`` or ``sentence``,
    else the first column of strings."""
    strings = [
        c for c in frame.columns
        if c != label_field
        and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c]))
    ]  # fmt: skip
    if not strings:
        raise ValueError(
            f"no text column besides the label {label_field!r}; columns: {list(frame.columns)}. "
            "Pass text_fields=('your_text_column',)"
        )
    for pair in (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "passage"),
                 ("text", "text_pair")):  # fmt: skip
        if all(c in strings for c in pair):
            return pair
    preferred = [c for c in ("text", "sentence") if c in strings]
    return ((preferred or strings)[0],)


def _infer_kind(labels: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(labels) or not pd.api.types.is_numeric_dtype(labels):
        return "classification"
    values = labels.to_numpy(dtype=float)
    return "classification" if np.all(values == np.round(values)) else "regression"


def _split_of(key: str) -> str:
    value = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    return "train" if value < _FRACTIONS[0] else "validation" if value < sum(_FRACTIONS[:2]) \
        else "test"  # fmt: skip


def _check(frame: pd.DataFrame, text_fields: Sequence[str], label_field: str, where: str) -> None:
    missing = [c for c in (*text_fields, label_field) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{where} lacks the column(s) {missing}; it has {list(frame.columns)}. Pass "
            "label_field= / text_fields= (command line: name the columns 'text' and 'label')"
        )
    if frame[label_field].isna().any():
        raise ValueError(f"{where}: {int(frame[label_field].isna().sum())} rows have no label")
    if len(frame) < MIN_ROWS:
        raise ValueError(
            f"{where} has {len(frame)} labelled rows; a task needs at least {MIN_ROWS} (each "
            "split needs examples, and the probes need ten per fold)"
        )


def task_from_frame(
    frame: Any,
    *,
    name: str,
    text_fields: Sequence[str] | None = None,
    label_field: str = "label",
    kind: str | None = None,
    splits: dict[str, Any] | None = None,
    source: str = "a data frame",
) -> Any:
    """Register a task from a table (pandas frame or ``datasets.Dataset``) and return it.

    Parameters
    ----------
    frame
        One table to split by a hash of each row's text, or None with `splits`.
    name
        The task's name (in run keys and results).
    text_fields
        One column (single sentences) or two (pairs); default: the text columns found.
    label_field
        The label column.
    kind
        ``classification`` or ``regression``; default: inferred from the labels.
    splits
        Ready-made splits instead of `frame`: ``{"train": ..., "validation": ...[, "test"]}``.
    source
        Where the data came from (the task's ``source``).

    Returns
    -------
    layersim.tasks.Task
        Registered, so ``layersim.tasks.get_task(name)`` finds it.

    Raises
    ------
    ValueError
        A missing column, a single class, too few rows, or an unknown kind.
    """
    from layersim import tasks

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise ValueError(f"task name {name!r} must be letters, digits, '.', '_' or '-'")
    parts = splits if splits is not None else {"all": frame}
    tables = {k: (v.to_pandas() if hasattr(v, "to_pandas") else pd.DataFrame(v)).reset_index(
        drop=True) for k, v in parts.items()}  # fmt: skip
    whole = pd.concat(tables.values(), ignore_index=True)
    fields = tuple(text_fields) if text_fields else _infer_text_fields(whole, label_field)
    _check(whole, fields, label_field, source)
    kind = kind or _infer_kind(whole[label_field])
    if kind not in ("classification", "regression"):
        raise ValueError(f"kind must be 'classification' or 'regression'; got {kind!r}")
    names: tuple[str, ...] = ()
    if kind == "classification":
        names = tuple(str(v) for v in sorted(whole[label_field].unique(), key=str))
        if all(str(v).lstrip("-").isdigit() for v in names):
            names = tuple(str(v) for v in sorted(int(v) for v in names))
        if len(names) < 2:
            raise ValueError(f"{source}: every row has the label {names[0]!r}; a task needs two")
    if splits is None:
        keys = whole[list(fields)].astype(str).agg("\n".join, axis=1)
        assigned = keys.map(_split_of)
        tables = {s: whole[assigned == s] for s in _SPLITS}
    tables.setdefault("test", tables.get("validation"))
    for split in ("train", "validation"):
        if split not in tables or len(tables[split]) == 0:
            raise ValueError(f"{source}: the {split} split is empty; pass more rows")
    folder = _root() / name
    folder.mkdir(parents=True, exist_ok=True)
    index = {label: i for i, label in enumerate(names)}
    for split, table in tables.items():
        rows = table[[*fields, label_field]].rename(columns={label_field: "label"})
        if kind == "classification":
            rows = rows.assign(label=rows["label"].map(lambda v: index[str(v)]))
        else:
            rows = rows.assign(label=rows["label"].astype(float))
        _write_atomic(folder / f"{split}.jsonl", rows.to_json(orient="records", lines=True))
    if kind == "regression":
        metrics = ("spearman", "pearson")
    else:
        metrics = ("accuracy", "f1") if len(names) == 2 else ("accuracy", "macro_f1")
    task = tasks.Task(
        name, None, None, fields, "label", kind, len(names) if names else 1, metrics[0],
        metrics=metrics, label_names=names, source=source, data_dir=str(_root()),
    )  # fmt: skip
    tasks.TASKS[name] = task
    return task


def _write_atomic(path: Path, text: str) -> None:
    from layersim.results import atomic_write

    atomic_write(path, text)


def _file_key(path: Path) -> str:
    digest = hashlib.sha256()
    for part in sorted(path.glob("*")) if path.is_dir() else [path]:
        if part.is_file():
            digest.update(part.name.encode())
            digest.update(part.read_bytes())
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem if path.is_file() else path.name)[:30]
    return f"file-{stem.strip('-.') or 'data'}-{digest.hexdigest()[:8]}"


def task_from_file(
    path: str | os.PathLike,
    *,
    text_fields: Sequence[str] | None = None,
    label_field: str = "label",
    kind: str | None = None,
) -> Any:
    """Register the task of a data file (split by a hash of each row's text) or of a folder
    holding ``train`` and ``validation`` (and optionally ``test``) files; see
    :func:`task_from_frame`. Its name, ``file-<name>-<hash of the content>``, is what results are
    filed under; the path is kept in ``<cache>/user_tasks/registry.json`` so that the name finds
    the data again."""
    from layersim import tasks

    path = Path(os.path.expanduser(str(path))).resolve()
    if not path.exists():
        raise FileNotFoundError(f"task data {path} does not exist; pass an existing file or folder")
    name = _file_key(path)
    if name in tasks.TASKS:
        return tasks.TASKS[name]
    if path.is_dir():
        found = {s: next((path / f"{s}{x}" for x in FILE_SUFFIXES if (path / f"{s}{x}").is_file()),
                         None) for s in _SPLITS}  # fmt: skip
        if found["train"] is None or found["validation"] is None:
            raise ValueError(
                f"{path} needs train and validation files ({', '.join(FILE_SUFFIXES)}); found "
                f"{[p.name for p in path.iterdir()]}"
            )
        splits = {s: _read_table(p) for s, p in found.items() if p is not None}
        task = task_from_frame(None, name=name, splits=splits, text_fields=text_fields,
                               label_field=label_field, kind=kind, source=str(path))  # fmt: skip
    else:
        task = task_from_frame(_read_table(path), name=name, text_fields=text_fields,
                               label_field=label_field, kind=kind, source=str(path))  # fmt: skip
    registry = _root() / _REGISTRY
    known = json.loads(registry.read_text()) if registry.is_file() else {}
    if known.get(name) != str(path):
        _write_atomic(registry, json.dumps({**known, name: str(path)}, indent=2, sort_keys=True))
    return task


def registered_path(name: str) -> str | None:
    """The data path a ``file-...`` task name was made from (None if unknown here)."""
    registry = _root() / _REGISTRY
    if not registry.is_file():
        return None
    return json.loads(registry.read_text()).get(name)

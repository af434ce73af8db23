"""Completion, failure and resume: which runs are done, missing or failed, and why."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from layersim.results.files import atomic_write, dump_json
from layersim.results.keys import RunKey, checked_key
from layersim.results.provenance import utc_now
from layersim.results.schemas import TABLE_NAMES, checked_tables
from layersim.results.tables import read_table

__all__ = [
    "RUN_STATES",
    "clear_failed",
    "failure",
    "is_complete",
    "table_problem",
    "mark_failed",
    "run_status",
]


#: States reported by :func:`run_status`.
RUN_STATES: tuple[str, ...] = ("done", "missing", "failed")


_FAILED = "FAILED"


def table_problem(
    root: str | os.PathLike[str], key: RunKey, tables: Iterable[str] = ()
) -> str | None:
    """Why run `key` is not complete: the first of `tables` that is missing or broken, and why
    (None when all are there and valid)."""
    for table in checked_tables(tables or TABLE_NAMES):
        try:
            read_table(root, key, table)
        except ValueError as error:
            return str(error)
    return None


def is_complete(
    root: str | os.PathLike[str], key: RunKey, tables: Iterable[str] = TABLE_NAMES
) -> bool:
    """Whether run `key` has all `tables`, each present, parseable and valid for the run.

    A failure marker does not matter here (see :func:`run_status`).
    """
    for table in checked_tables(tables):
        try:
            read_table(root, key, table)
        except ValueError:
            return False
    return True


def run_status(
    root: str | os.PathLike[str], keys: Iterable[RunKey], *, tables: Iterable[str] = TABLE_NAMES
) -> dict[RunKey, str]:
    """State of each run, for resuming a batch and summarising it.

    Returns
    -------
    dict
        In the order of `keys`: ``"failed"`` when the run's directory holds a ``FAILED`` marker
        (:func:`mark_failed`; its last attempt failed, whatever tables remain), else ``"done"``
        when :func:`is_complete`, else ``"missing"`` (never run, or interrupted: partial tables
        are rewritten by the next attempt).
    """
    needed = checked_tables(tables)
    status = {}
    for key in keys:
        if (checked_key(key).run_dir(root) / _FAILED).is_file():
            status[key] = "failed"
        elif is_complete(root, key, needed):
            status[key] = "done"
        else:
            status[key] = "missing"
    return status


def mark_failed(
    root: str | os.PathLike[str],
    key: RunKey,
    message: str,
    notebook_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Mark run `key` as failed: write ``FAILED`` (JSON: message, notebook, timestamp).

    The marker stays until :func:`clear_failed`, which the batch runner calls when an attempt
    of the run succeeds; earlier tables of the run are left in place.

    Parameters
    ----------
    root
        The results directory.
    key
        The run.
    message
        What went wrong (e.g. the exception's last line).
    notebook_path
        The executed notebook that holds the traceback, if any.

    Returns
    -------
    pathlib.Path
        The marker file.
    """
    if not isinstance(message, str):
        raise ValueError(f"message must be a string; got {type(message).__name__}")
    info = {
        "message": message,
        "notebook": None if notebook_path is None else os.fspath(notebook_path),
        "timestamp": utc_now(),
    }
    text = dump_json(info, "failure marker") + "\n"
    path = checked_key(key).run_dir(root) / _FAILED
    atomic_write(path, text)
    return path


def clear_failed(root: str | os.PathLike[str], key: RunKey) -> bool:
    """Remove run `key`'s failure marker; True if there was one."""
    try:
        (checked_key(key).run_dir(root) / _FAILED).unlink()
    except FileNotFoundError:
        return False
    return True


def failure(root: str | os.PathLike[str], key: RunKey) -> dict[str, Any] | None:
    """The failure marker's content (``message``, ``notebook``, ``timestamp``), or None."""
    path = checked_key(key).run_dir(root) / _FAILED
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # written by hand or by another tool
        return {"message": text.strip(), "notebook": None, "timestamp": None}
    return data

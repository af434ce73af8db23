"""Atomic writes and the JSON the store writes: an interrupted write leaves the previous file (or
none), never a partial one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], content: str | Callable[[IO[str]], None]) -> Path:
    """Write a UTF-8 text file so that readers see the old file or the whole new one, never part.

    The text goes to a uniquely named temporary file in the same directory (``.<name>.*.tmp``,
    from ``tempfile.mkstemp``, so concurrent writers never share one), is flushed and fsynced,
    and then replaces `path` with ``os.replace`` (atomic within one file system). If anything
    raises on the way, the temporary file is removed and `path` is left as it was. Only a killed
    process can leave a temporary file behind; readers of the results store ignore such names.

    Parameters
    ----------
    path
        The file to write; its directory is created if needed.
    content
        The text, or a function that writes it to the open text handle (e.g.
        ``lambda fh: frame.to_csv(fh)``). Line ends are written as given.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    path = Path(path)
    if not (isinstance(content, str) or callable(content)):
        raise ValueError(
            f"content must be a string or a function that writes to a text handle; got "
            f"{type(content).__name__}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if isinstance(content, str):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0o600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # 0-d torch tensors
        with contextlib.suppress(Exception):
            return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dump_json(data: Any, what: str) -> str:
    try:
        return json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} cannot be written as JSON ({err}); use numbers, strings, lists and dicts, "
            "and no NaN or infinity"
        ) from err

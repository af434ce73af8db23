"""Run keys and the directory names they map to.

A Hugging Face model id may contain ``/`` (``google/electra-base-discriminator``); its directory
name replaces each ``/`` by ``--``, the convention of the Hugging Face cache. That is reversible
because hub ids never contain ``--``, so names containing ``--`` are refused. Tables always hold
the real name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RunKey", "model_dirname", "model_from_dirname"]


_NAME = re.compile(r"[A-Za-z0-9_.-]+")


SEED_DIR = re.compile(r"seed(0|[1-9][0-9]*)")


def check_name(value: object, what: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value.startswith("."):
        raise ValueError(
            f"{what} must be a non-empty name of letters, digits, '.', '_' and '-' that does not "
            f"start with '.'; got {value!r}"
        )


def model_dirname(model: str) -> str:
    """Directory-safe form of a model name: each ``/`` becomes ``--``.

    Parameters
    ----------
    model
        A model name such as ``roberta-base`` or ``google/electra-base-discriminator``: components
        of letters, digits, ``.``, ``_``, ``-`` separated by single ``/``, without ``--``.

    Returns
    -------
    str
        E.g. ``google--electra-base-discriminator``; :func:`model_from_dirname` inverts it.

    Raises
    ------
    ValueError
        For an empty component, other characters, or ``--`` (which would make the mapping
        ambiguous; Hugging Face hub ids never contain it).
    """
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string; got {model!r}")
    if "--" in model:
        raise ValueError(
            f"model name {model!r} contains '--', which the results store uses for '/' in "
            "directory names; rename it (Hugging Face hub ids never contain '--')"
        )
    for part in model.split("/"):
        check_name(part, f"each '/'-separated part of the model name {model!r}")
    return model.replace("/", "--")


def model_from_dirname(name: str) -> str:
    """The model name a directory name stands for (inverse of :func:`model_dirname`)."""
    model = name.replace("--", "/")
    if model_dirname(model) != name:
        raise ValueError(f"{name!r} is not a directory name made by model_dirname")
    return model


@dataclass(frozen=True)
class RunKey:
    """Identity of one run: a model fine-tuned on a task with a seed, within a preset.

    Attributes
    ----------
    preset
        Preset name (``tiny``, ``demo``, ``paper``, ...).
    model
        Model name as it appears in tables (may contain ``/``).
    task
        Task name.
    seed
        Non-negative integer seed.
    """

    preset: str
    model: str
    task: str
    seed: int

    def __post_init__(self) -> None:
        check_name(self.preset, "preset")
        model_dirname(self.model)
        check_name(self.task, "task")
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        object.__setattr__(self, "seed", int(seed))

    def run_dir(self, root: str | os.PathLike[str]) -> Path:
        """``<root>/<preset>/<model dir>/<task>/seed<k>`` (not created)."""
        return Path(root) / self.preset / model_dirname(self.model) / self.task / f"seed{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        """The key as the four key columns of every table."""
        return {"preset": self.preset, "model": self.model, "task": self.task, "seed": self.seed}

    @classmethod
    def from_run_dir(cls, path: str | os.PathLike[str]) -> RunKey:
        """The key of a run directory ``.../<preset>/<model dir>/<task>/seed<k>``."""
        parts = Path(path).parts
        seed = SEED_DIR.fullmatch(parts[-1]) if parts else None
        if len(parts) < 4 or seed is None:
            raise ValueError(
                f"{os.fspath(path)!r} is not a run directory: expected "
                "<preset>/<model dir>/<task>/seed<k> at its end"
            )
        return cls(parts[-4], model_from_dirname(parts[-3]), parts[-2], int(seed.group(1)))


def checked_key(key: RunKey) -> RunKey:
    if not isinstance(key, RunKey):
        raise ValueError(f"key must be a RunKey; got {type(key).__name__}")
    return key

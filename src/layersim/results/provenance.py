"""Provenance: package and library versions, git commit, parameters, device and seconds, per step
of a run (``provenance.json``) or of a grid.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import numpy as np

import layersim
from layersim.results.files import atomic_write, dump_json
from layersim.results.keys import RunKey, checked_key

__all__ = ["collect_provenance", "read_provenance", "software_versions", "write_provenance"]


PROVENANCE = "provenance.json"


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            # --no-optional-locks: never take index.lock, so a concurrent git command in the
            # same checkout is not disturbed by provenance collection
            ["git", "--no-optional-locks", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_state(repo: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files differ from it), or (None, None) outside git."""
    head = _git(["rev-parse", "HEAD"], repo)
    commit = head.strip() if head else None
    if commit is None or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit):
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo)
    return commit, (None if status is None else bool(status.strip()))


def _package_version(name: str) -> str | None:
    try:
        return _dist_version(name)
    except PackageNotFoundError:
        return None


#: The libraries whose versions a result depends on (recorded by :func:`software_versions`).
_LIBRARIES = ("torch", "transformers", "datasets", "accelerate")


def software_versions() -> dict[str, str | None]:
    """Versions of layersim, Python and the libraries a result depends on.

    Read from the installed distributions' metadata (nothing is imported), so it is cheap and
    works whatever has been loaded. The one record of the software environment: provenance
    (:func:`collect_provenance`) and fine-tuning's ``metrics.json`` both use it.

    Returns
    -------
    dict
        ``layersim``, ``python``, ``torch``, ``transformers``, ``datasets``, ``accelerate``: version
        strings, None for a library that is not installed.
    """
    return {
        "layersim": layersim.__version__,
        "python": platform.python_version(),
        **{name: _package_version(name) for name in _LIBRARIES},
    }


def collect_provenance(
    parameters: Mapping[str, Any],
    device: str,
    seconds: float,
    *,
    repo: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Provenance of one step of a run, ready for :func:`write_provenance`.

    Parameters
    ----------
    parameters
        The step's parameters (e.g. the notebook's papermill parameters); JSON-serialisable
        values (numpy scalars and paths are converted when written).
    device
        What it ran on: :func:`layersim.models.devices.describe_device`'s description.
    seconds
        Wall-clock duration of the step (finite, >= 0).
    repo
        Directory inside the git checkout to describe; default: this package's source
        directory, which is inside the repository for an editable install.

    Returns
    -------
    dict
        ``layersim_version``, ``git_commit`` (``git rev-parse HEAD``; None outside a git checkout
        or without git), ``git_dirty`` (tracked files modified; None when unknown),
        ``parameters``, ``device``, ``seconds``, ``timestamp`` (UTC, ISO 8601), and ``python``,
        ``torch``, ``transformers``, ``datasets``, ``accelerate`` (:func:`software_versions`).
    """
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters must be a mapping; got {type(parameters).__name__}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | np.number):
        raise ValueError(f"seconds must be a number; got {seconds!r}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be finite and >= 0; got {seconds!r}")
    commit, dirty = _git_state(Path(repo) if repo is not None else Path(__file__).resolve().parent)
    versions = software_versions()
    return {
        "layersim_version": versions.pop("layersim"),
        "git_commit": commit,
        "git_dirty": dirty,
        "parameters": dict(parameters),
        "device": str(device),
        "seconds": float(seconds),
        "timestamp": utc_now(),
        **versions,
    }


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_provenance(root: str | os.PathLike[str], key: RunKey) -> dict[str, Any]:
    """A run's provenance: ``{"run": {key columns}, "steps": {step: info}}`` (empty steps if
    none was written)."""
    return read_provenance_file(checked_key(key).run_dir(root) / PROVENANCE, "run", key.as_dict())


def read_provenance_file(path: Path, kind: str, identity: dict[str, Any]) -> dict[str, Any]:
    """``{kind: identity, "steps": {...}}`` from `path` (empty steps when there is no file)."""
    if not path.is_file():
        return {kind: identity, "steps": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); delete it and rerun the {kind}"
        ) from err
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        raise ValueError(
            f"{path} is not a layersim provenance file; delete it and rerun the {kind}"
        )
    if data.get(kind) != identity:
        raise ValueError(f"{path} describes {kind} {data.get(kind)}, not {identity}")
    return data


def write_step_provenance(
    path: Path, kind: str, identity: dict[str, Any], step: str, info: Mapping[str, Any]
) -> Path:
    """Replace ``steps[step]`` of the provenance file at `path` by `info`, atomically."""
    if not isinstance(step, str) or not step:
        raise ValueError(f"step must be a non-empty string; got {step!r}")
    if not isinstance(info, Mapping):
        raise ValueError(f"info must be a mapping; got {type(info).__name__}")
    data = read_provenance_file(path, kind, identity)
    data["steps"][step] = dict(info)
    atomic_write(path, dump_json(data, f"provenance of step {step!r}") + "\n")
    return path


def write_provenance(
    root: str | os.PathLike[str], key: RunKey, step: str, info: Mapping[str, Any]
) -> Path:
    """Record `info` as the provenance of `step` of run `key`, keeping the other steps.

    ``provenance.json`` holds ``{"run": {preset, model, task, seed}, "steps": {step: info}}``;
    this reads it, replaces ``steps[step]`` and writes the whole file atomically. Steps of one
    run are expected to run one after another (a run's steps are sequential in the batch
    runner); concurrent writers of the same run could lose each other's step.

    Parameters
    ----------
    root
        The results directory.
    key
        The run.
    step
        Step name, by convention ``"finetune"``, ``"similarity"`` or ``"truncation"``.
    info
        Usually :func:`collect_provenance`'s result; must be JSON-serialisable (numpy scalars,
        arrays and paths are converted), without NaN.

    Returns
    -------
    pathlib.Path
        The provenance file.
    """
    return write_step_provenance(
        checked_key(key).run_dir(root) / PROVENANCE, "run", key.as_dict(), step, info
    )

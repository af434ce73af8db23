"""The results store: run keys, tidy tables, provenance, completion and failure markers.

This is the only module that reads or writes ``results/``. One run (model, task, seed of a preset)
owns one directory ``<root>/<preset>/<model dir>/<task>/seed<k>/`` holding ``metrics.csv``,
``cka.csv``, ``blocks.csv`` and ``truncation.csv`` (the tables of :data:`TABLES`, written by the
experiment steps of :data:`STEP_TABLES`), ``provenance.json`` (package version, git commit,
parameters, device, seconds, per step) and, while its last attempt failed, ``FAILED``. A grid
(one preset and model: its tasks x seeds) holds the tables that compare its runs with each other
(:data:`GRID_TABLES`, written by the steps of :data:`GRID_STEP_TABLES`) in its model directory
``<root>/<preset>/<model dir>/``, with their own ``provenance.json``.

A Hugging Face model id may contain ``/`` (``google/electra-base-discriminator``); its directory
name replaces each ``/`` by ``--``, the convention of the Hugging Face cache. That is reversible
because hub ids never contain ``--``, so names containing ``--`` are refused. Tables always hold
the real name.

Tables are CSV (UTF-8, ``\\n`` line ends, no index, floats with round-trip precision, an empty
cell for a statistic without an interval) so that committed results give readable diffs. Every
write goes through :func:`atomic_write`: an interrupted write leaves the previous file (or none),
never a partial one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

import layersim

__all__ = [
    "CKA_KINDS",
    "GRID_STEP_TABLES",
    "GRID_TABLES",
    "INTERVAL_COLUMNS",
    "RUN_STATES",
    "STEP_OF_TABLE",
    "STEP_TABLES",
    "TABLES",
    "TABLE_NAMES",
    "RunKey",
    "atomic_write",
    "clear_failed",
    "collect_provenance",
    "failure",
    "find_runs",
    "grid_dir",
    "grid_table_path",
    "is_complete",
    "table_problem",
    "load",
    "mark_failed",
    "model_dirname",
    "model_from_dirname",
    "read_grid_provenance",
    "read_grid_table",
    "read_provenance",
    "read_table",
    "run_status",
    "software_versions",
    "table_path",
    "write_grid_table",
    "write_provenance",
    "write_table",
]

_KEY_COLUMNS: dict[str, str] = {"preset": "str", "model": "str", "task": "str", "seed": "int"}

#: Column name -> kind (``"str"``, ``"int"``, ``"float"``) of every table, in file order.
TABLES: dict[str, dict[str, str]] = {
    "cka": {
        **_KEY_COLUMNS,
        "kind": "str",
        "layer_a": "int",
        "layer_b": "int",
        "cka": "float",
        "estimator": "str",
        "pooling": "str",
        "n": "int",
    },
    "truncation": {**_KEY_COLUMNS, "layers_kept": "int", "metric": "str", "value": "float"},
    "metrics": {**_KEY_COLUMNS, "metric": "str", "value": "float"},
    # What a task is worth without fine-tuning: the majority class, linear probes on the frozen
    # pretrained model (layersim.probe).
    "baselines": {**_KEY_COLUMNS, "baseline": "str", "metric": "str", "value": "float"},
    # Block-structure statistics of each CKA matrix (layersim.blocks), with bootstrap intervals
    # (empty for a statistic that has none, e.g. a p-value).
    "blocks": {
        **_KEY_COLUMNS,
        "kind": "str",
        "estimator": "str",
        "pooling": "str",
        "statistic": "str",
        "value": "float",
        "lower": "float",
        "upper": "float",
        "boundary": "int",
    },
    # Which layers can go (layersim.steps.layer_drop_tables): each redundancy signal's choice of
    # layers to drop at each budget, scored with the unchanged and a re-fitted head ...
    "layer_drop": {
        **_KEY_COLUMNS,
        "signal": "str",
        "budget": "int",
        "layers": "str",
        "condition": "str",
        "metric": "str",
        "value": "float",
    },
    # ... and each signal's score of each layer.
    "layer_signals": {**_KEY_COLUMNS, "layer": "int", "signal": "str", "value": "float"},
    # Along fine-tuning (layersim.steps.progress_tables): block statistics (with bootstrap
    # intervals), block boundary and task metrics at each saved snapshot ...
    "progress": {
        **_KEY_COLUMNS,
        "step": "int",
        "max_steps": "int",
        "statistic": "str",
        "value": "float",
        "lower": "float",
        "upper": "float",
    },
    # ... and the CKA matrix at each snapshot.
    "progress_cka": {
        **_KEY_COLUMNS,
        "step": "int",
        "max_steps": "int",
        "layer_a": "int",
        "layer_b": "int",
        "cka": "float",
    },
    # How robust the block verdict is (layersim.steps.robustness_tables): block statistics of the
    # fine-tuned model under each choice of inputs, pooling, estimator and number of inputs ...
    "robustness": {
        **_KEY_COLUMNS,
        "inputs": "str",
        "pooling": "str",
        "estimator": "str",
        "n": "int",
        "statistic": "str",
        "value": "float",
        "lower": "float",
        "upper": "float",
        "boundary": "int",
    },
    # ... and the task head's metrics on those inputs.
    "robustness_metrics": {
        **_KEY_COLUMNS,
        "inputs": "str",
        "n": "int",
        "metric": "str",
        "value": "float",
    },
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

_GRID_KEY_COLUMNS: dict[str, str] = {"preset": "str", "model": "str"}
#: Tables of a preset's whole grid for one model rather than of one run: they compare runs with
#: each other. Each lives at ``<root>/<preset>/<model dir>/<table>.csv``, beside the task
#: directories, with its provenance in ``<root>/<preset>/<model dir>/provenance.json``.
GRID_TABLES: dict[str, dict[str, str]] = {
    # Across seeds and tasks (layersim.across): CKA between the layers of two models of the grid
    # (or the pretrained one) on one shared set of inputs.
    "across": {
        **_GRID_KEY_COLUMNS,
        "comparison": "str",
        "run_a": "str",
        "run_b": "str",
        "layer_a": "int",
        "layer_b": "int",
        "estimator": "str",
        "pooling": "str",
        "n": "int",
        "cka": "float",
    },
}
#: The grid steps (notebook ``notebooks/<step>.py`` each, run after the runs, over the grid's
#: complete runs) and the tables each one writes.
GRID_STEP_TABLES: dict[str, tuple[str, ...]] = {"across": ("across",)}

#: Per table, the (lower, upper) columns of an interval that a row may leave empty (NaN, an empty
#: CSV cell): both empty or both finite, never just one.
INTERVAL_COLUMNS: dict[str, tuple[str, str]] = {
    "blocks": ("lower", "upper"),
    "progress": ("lower", "upper"),
    "robustness": ("lower", "upper"),
}

#: Columns that identify a row within one run: no two rows may share them.
_ROW_IDS: dict[str, tuple[str, ...]] = {
    "cka": ("kind", "layer_a", "layer_b", "estimator", "pooling", "n"),
    "truncation": ("layers_kept", "metric"),
    "metrics": ("metric",),
    "baselines": ("baseline", "metric"),
    "blocks": ("kind", "estimator", "pooling", "statistic"),
    "layer_drop": ("signal", "budget", "layers", "condition", "metric"),
    "layer_signals": ("layer", "signal"),
    "progress": ("step", "statistic"),
    "progress_cka": ("step", "layer_a", "layer_b"),
    "robustness": ("inputs", "pooling", "estimator", "n", "statistic"),
    "robustness_metrics": ("inputs", "metric"),
    "across": ("comparison", "run_a", "run_b", "layer_a", "layer_b", "estimator", "pooling"),
}

#: Allowed values of the ``kind`` column of the ``cka`` table.
CKA_KINDS: tuple[str, ...] = ("finetuned", "pretrained", "pretrained_vs_finetuned")

#: The experiment steps in run order (notebook ``notebooks/<step>.py`` each) and the tables each
#: one writes; a step is done when its tables exist. The one place this mapping is written.
STEP_TABLES: dict[str, tuple[str, ...]] = {
    "finetune": ("metrics",),
    "similarity": ("cka", "blocks"),
    "truncation": ("truncation",),
    "baselines": ("baselines",),
    "layer_drop": ("layer_drop", "layer_signals"),
    "progress": ("progress", "progress_cka"),
    "robustness": ("robustness", "robustness_metrics"),
}
#: The step that writes each table (the provenance step :func:`write_table` records by default).
STEP_OF_TABLE: dict[str, str] = {t: step for step, tables in STEP_TABLES.items() for t in tables}

#: States reported by :func:`run_status`.
RUN_STATES: tuple[str, ...] = ("done", "missing", "failed")

_PROVENANCE = "provenance.json"
_FAILED = "FAILED"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SEED_DIR = re.compile(r"seed(0|[1-9][0-9]*)")
_DTYPES = {"str": str, "int": "int64", "float": "float64"}


# ----------------------------------------------------------------------------
# Run keys and paths
# ----------------------------------------------------------------------------


def _check_name(value: object, what: str) -> None:
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
        _check_name(part, f"each '/'-separated part of the model name {model!r}")
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
        _check_name(self.preset, "preset")
        model_dirname(self.model)
        _check_name(self.task, "task")
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
        seed = _SEED_DIR.fullmatch(parts[-1]) if parts else None
        if len(parts) < 4 or seed is None:
            raise ValueError(
                f"{os.fspath(path)!r} is not a run directory: expected "
                "<preset>/<model dir>/<task>/seed<k> at its end"
            )
        return cls(parts[-4], model_from_dirname(parts[-3]), parts[-2], int(seed.group(1)))


def _key(key: RunKey) -> RunKey:
    if not isinstance(key, RunKey):
        raise ValueError(f"key must be a RunKey; got {type(key).__name__}")
    return key


def _table(table: str) -> dict[str, str]:
    if table not in TABLES:
        if table in GRID_TABLES:
            raise ValueError(
                f"{table!r} is a table of a whole grid, not of one run; use write_grid_table, "
                "read_grid_table or load"
            )
        raise ValueError(f"unknown table {table!r}; valid tables: {', '.join(TABLE_NAMES)}")
    return TABLES[table]


def _schema(table: str) -> dict[str, str]:
    """The columns of a run table or of a grid table."""
    return GRID_TABLES[table] if table in GRID_TABLES else _table(table)


def table_path(root: str | os.PathLike[str], key: RunKey, table: str) -> Path:
    """Where `table` of run `key` lives: ``<run dir>/<table>.csv``."""
    _table(table)
    return _key(key).run_dir(root) / f"{table}.csv"


# ----------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------


def _validate_frame(
    frame: pd.DataFrame, table: str, key: RunKey | None, source: str
) -> pd.DataFrame:
    """`frame` checked against the table's schema, columns in order and canonical dtypes."""
    schema = _schema(table)
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{source}: expected a pandas DataFrame; got {type(frame).__name__}")
    columns = list(frame.columns)
    missing = [c for c in schema if c not in columns]
    extra = [c for c in columns if c not in schema]
    if missing or extra or len(set(columns)) != len(columns):
        problems = []
        if missing:
            problems.append(f"missing columns {missing}")
        if extra:
            problems.append(f"unexpected columns {extra}")
        if len(set(columns)) != len(columns):
            problems.append("duplicated column names")
        raise ValueError(
            f"{source}: the {table!r} table has {' and '.join(problems)}; it needs exactly "
            f"{list(schema)}"
        )
    if len(frame) == 0:
        raise ValueError(f"{source}: the {table!r} table has no rows; do not write empty tables")
    frame = frame.reset_index(drop=True)  # e.g. pd.concat of frames without ignore_index
    optional = INTERVAL_COLUMNS.get(table, ())
    out = {}
    for column, kind in schema.items():
        series = frame[column]
        if column not in optional and series.isna().any():
            raise ValueError(
                f"{source}: column {column!r} has {int(series.isna().sum())} missing values "
                "(None or NaN); every cell must hold a value"
            )
        if kind == "str":
            if not series.map(lambda v: isinstance(v, str)).all():
                bad = series[~series.map(lambda v: isinstance(v, str))].iloc[0]
                raise ValueError(
                    f"{source}: column {column!r} must hold strings; found {bad!r} "
                    f"({type(bad).__name__})"
                )
            out[column] = series.astype(str)
        elif kind == "int":
            if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_integer_dtype(series):
                raise ValueError(
                    f"{source}: column {column!r} must have an integer dtype; got {series.dtype} "
                    "(convert with .astype('int64'))"
                )
            out[column] = series.astype("int64")
        else:
            if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
                raise ValueError(
                    f"{source}: column {column!r} must be numeric (float64); got {series.dtype}"
                )
            values = series.astype("float64")
            present = values.to_numpy()[~values.isna().to_numpy()]  # NaN: an empty interval
            if not np.isfinite(present).all():
                raise ValueError(
                    f"{source}: column {column!r} has non-finite values (NaN or inf); a result "
                    "must be a number, so fix the computation that produced it"
                )
            out[column] = values
    result = pd.DataFrame(out, index=range(len(frame)))
    if optional:
        _check_intervals(result, optional, source)
    if table in ("cka", "blocks"):
        bad_kinds = sorted(set(result["kind"]) - set(CKA_KINDS))
        if bad_kinds:
            raise ValueError(f"{source}: unknown cka kind(s) {bad_kinds}; valid: {list(CKA_KINDS)}")
    if key is not None:
        for column, expected in key.as_dict().items():
            wrong = sorted({str(v) for v in result[column] if v != expected})
            if wrong:
                raise ValueError(
                    f"{source}: column {column!r} must equal the run's {expected!r} in every "
                    f"row; found {wrong}"
                )
    duplicated = result.duplicated(subset=list(_ROW_IDS[table]))
    if duplicated.any():
        first = result.loc[duplicated.idxmax(), list(_ROW_IDS[table])].to_dict()
        raise ValueError(
            f"{source}: {int(duplicated.sum())} rows repeat the identifying columns "
            f"{list(_ROW_IDS[table])} of another row, e.g. {first}"
        )
    return result


def _check_intervals(frame: pd.DataFrame, columns: tuple[str, str], source: str) -> None:
    """An interval is either given (both ends) or empty (neither end): never half of one."""
    lower, upper = (frame[c].isna() for c in columns)
    half = lower != upper
    if half.any():
        row = int(half.to_numpy().argmax())
        raise ValueError(
            f"{source}: row {row} has only one end of its interval {list(columns)}; give both "
            "ends, or leave both empty (NaN) for a statistic without an interval"
        )


def write_table(
    root: str | os.PathLike[str],
    key: RunKey,
    table: str,
    frame: pd.DataFrame,
    *,
    provenance: Mapping[str, Any] | None = None,
    step: str | None = None,
) -> Path:
    """Validate `frame` and write it atomically as `table` of run `key`.

    Parameters
    ----------
    root
        The results directory (``results/``); the run's directory is created if needed.
    key
        The run the rows belong to; the key columns of every row must equal it.
    table
        One of :data:`TABLE_NAMES` (see :data:`TABLES` for the columns).
    frame
        Exactly the table's columns, any order; integer columns with an integer dtype, float
        columns numeric and finite, string columns strings; no missing cells except both ends of
        an empty interval (:data:`INTERVAL_COLUMNS`), no two rows with the same identifying
        columns (e.g. ``kind, layer_a, layer_b, estimator, pooling, n`` for ``cka``), ``kind``
        one of :data:`CKA_KINDS`. An existing table is replaced.
    provenance
        If given, also record it with :func:`write_provenance` (after the table is written).
    step
        Provenance step for `provenance`; default: the step that writes the table
        (:data:`STEP_OF_TABLE`).

    Returns
    -------
    pathlib.Path
        The table's path.

    Raises
    ------
    ValueError
        Naming the missing / unexpected columns or the offending values.
    """
    path = table_path(root, key, table)
    clean = _validate_frame(frame, table, key, f"write_table({table!r}, {key})")
    atomic_write(path, lambda fh: clean.to_csv(fh, index=False, lineterminator="\n"))
    if provenance is not None:
        name = step or STEP_OF_TABLE[table]
        rows = {**_step_rows(root, key, name), table: len(clean)}  # a step may write several
        write_provenance(root, key, name, {**provenance, "rows": rows})
    return path


def _step_rows(root: str | os.PathLike[str], key: RunKey, step: str) -> dict[str, int]:
    """The row counts `step` recorded for the tables it wrote (empty: none recorded)."""
    path = _key(key).run_dir(root) / _PROVENANCE
    try:
        steps = json.loads(path.read_text(encoding="utf-8")).get("steps", {})
    except (OSError, json.JSONDecodeError):
        return {}
    rows = (steps.get(step) or {}).get("rows", {})
    return rows if isinstance(rows, dict) else {}


def _recorded_rows(root: str | os.PathLike[str], key: RunKey, table: str) -> int | None:
    """The row count the table's step recorded when it wrote the table (None: not recorded)."""
    return _step_rows(root, key, STEP_OF_TABLE.get(table, "")).get(table)


def _read_csv(path: Path, table: str, key: RunKey | None) -> pd.DataFrame:
    schema = _schema(table)
    try:
        frame = pd.read_csv(
            path,
            dtype={c: _DTYPES[k] for c, k in schema.items()},
            keep_default_na=False,
            na_values={c: [""] for c, k in schema.items() if k != "str"},
            encoding="utf-8",
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} cannot be parsed as the {table!r} table: {err}") from err
    return _validate_frame(frame, table, key, str(path))


def read_table(root: str | os.PathLike[str], key: RunKey, table: str) -> pd.DataFrame:
    """One run's `table`, validated (``ValueError`` if it is absent or malformed, or has fewer
    or more rows than its step recorded writing: a file cut short at a row boundary)."""
    path = table_path(root, key, table)
    if not path.is_file():
        raise ValueError(f"run {key} has no {table!r} table at {path}; run its step first")
    frame = _read_csv(path, table, key)
    expected = _recorded_rows(root, key, table)
    if expected is not None and expected != len(frame):
        raise ValueError(
            f"{path} has {len(frame)} rows but its step recorded {expected} when it wrote it: "
            "the file was cut short or edited; run the step again (python -m layersim run)"
        )
    return frame


def table_problem(
    root: str | os.PathLike[str], key: RunKey, tables: Iterable[str] = ()
) -> str | None:
    """Why run `key` is not complete: the first of `tables` that is missing or broken, and why
    (None when all are there and valid)."""
    for table in _tables_arg(tables or TABLE_NAMES):
        try:
            read_table(root, key, table)
        except ValueError as error:
            return str(error)
    return None


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([], dtype=_DTYPES[k]) for c, k in _schema(table).items()}, index=range(0)
    )


def load(root: str | os.PathLike[str], table: str) -> pd.DataFrame:
    """`table` of every run under `root`, as one tidy frame.

    Parameters
    ----------
    root
        The results directory with presets below it (``results/``), or one preset's directory
        (``results/demo``), or any directory further down: every run directory
        (``.../<preset>/<model dir>/<task>/seed<k>/``) below `root` is read. Rows carry their
        preset, so the two forms differ only in which runs they include.
    table
        One of :data:`TABLE_NAMES`, or of :data:`GRID_TABLES` (then every grid below `root`).

    Returns
    -------
    pandas.DataFrame
        The table's columns (:data:`TABLES`), string/int64/float64 dtypes, rows sorted by preset,
        model, task and seed (file order within a run), a fresh ``RangeIndex``. No runs: an empty
        frame with the same columns and dtypes. A grid table's rows are sorted by preset, model.

    Raises
    ------
    ValueError
        For an unknown table, a missing `root`, or a table file that does not parse, fails
        validation, or sits in a directory that does not match its rows' key.
    """
    if table in GRID_TABLES:
        return _load_grid(root, table)
    _table(table)
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"results directory {base} does not exist; pass the results/ directory")
    frames = []
    for path in sorted(base.rglob(f"{table}.csv")):
        if not path.is_file() or not _SEED_DIR.fullmatch(path.parent.name):
            continue
        try:
            key = RunKey.from_run_dir(path.parent)
        except ValueError as err:
            raise ValueError(f"{path} is not inside a valid run directory: {err}") from err
        frames.append(_read_csv(path, table, key))
    if not frames:
        return _empty(table)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(list(_KEY_COLUMNS), kind="stable", ignore_index=True)


def _load_grid(root: str | os.PathLike[str], table: str) -> pd.DataFrame:
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"results directory {base} does not exist; pass the results/ directory")
    candidates = [base / f"{table}.csv", *base.rglob(f"*/{table}.csv")]
    frames = []
    for path in sorted({p.resolve() for p in candidates if p.is_file()}):
        if _SEED_DIR.fullmatch(path.parent.name) or len(path.parts) < 3:
            continue  # a run's file of the same name is not a grid table
        preset, model = path.parent.parent.name, model_from_dirname(path.parent.name)
        frames.append(_read_grid_csv(path, table, preset, model))
    if not frames:
        return _empty(table)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(list(_GRID_KEY_COLUMNS), kind="stable", ignore_index=True)


def grid_dir(root: str | os.PathLike[str], preset: str, model: str) -> Path:
    """``<root>/<preset>/<model dir>``: where a grid's tables and their provenance live."""
    _check_name(preset, "preset")
    return Path(root) / preset / model_dirname(model)


def _grid_table(table: str) -> dict[str, str]:
    if table not in GRID_TABLES:
        raise ValueError(f"unknown grid table {table!r}; grid tables: {', '.join(GRID_TABLES)}")
    return GRID_TABLES[table]


def grid_table_path(root: str | os.PathLike[str], preset: str, model: str, table: str) -> Path:
    """Where grid table `table` of (`preset`, `model`) lives."""
    _grid_table(table)
    return grid_dir(root, preset, model) / f"{table}.csv"


def _check_grid_rows(frame: pd.DataFrame, preset: str, model: str, source: str) -> pd.DataFrame:
    for column, expected in (("preset", preset), ("model", model)):
        wrong = sorted({str(v) for v in frame[column] if v != expected})
        if wrong:
            raise ValueError(
                f"{source}: column {column!r} must equal the grid's {expected!r} in every row; "
                f"found {wrong}"
            )
    return frame


def _read_grid_csv(path: Path, table: str, preset: str, model: str) -> pd.DataFrame:
    return _check_grid_rows(_read_csv(path, table, None), preset, model, str(path))


def write_grid_table(
    root: str | os.PathLike[str],
    preset: str,
    model: str,
    table: str,
    frame: pd.DataFrame,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Validate `frame` and write it atomically as grid table `table` of (`preset`, `model`),
    with the same checks as :func:`write_table`; `provenance` (if given) is recorded under the
    step that writes the table (:data:`GRID_STEP_TABLES`)."""
    path = grid_table_path(root, preset, model, table)
    source = f"write_grid_table({table!r}, {preset}, {model})"
    clean = _check_grid_rows(_validate_frame(frame, table, None, source), preset, model, source)
    atomic_write(path, lambda fh: clean.to_csv(fh, index=False, lineterminator="\n"))
    if provenance is not None:
        step = next(s for s, tables in GRID_STEP_TABLES.items() if table in tables)
        identity = {"preset": preset, "model": model}
        _write_step(grid_dir(root, preset, model) / _PROVENANCE, "grid", identity, step, provenance)
    return path


def read_grid_table(root: str | os.PathLike[str], preset: str, model: str, table: str):
    """Grid table `table` of (`preset`, `model`), validated (``ValueError`` if absent or
    malformed)."""
    path = grid_table_path(root, preset, model, table)
    if not path.is_file():
        raise ValueError(
            f"{preset} {model} has no {table!r} table at {path}; run `python -m layersim run "
            f"--preset {preset}` (it runs the grid steps after the runs)"
        )
    return _read_grid_csv(path, table, preset, model)


def read_grid_provenance(root: str | os.PathLike[str], preset: str, model: str) -> dict:
    """A grid's provenance: ``{"grid": {preset, model}, "steps": {step: info}}``."""
    path = grid_dir(root, preset, model) / _PROVENANCE
    return _read_provenance_file(path, "grid", {"preset": preset, "model": model})


def find_runs(root: str | os.PathLike[str]) -> list[RunKey]:
    """Keys of every run directory below `root` (same `root` forms as :func:`load`), sorted."""
    base = Path(root)
    if not base.is_dir():
        return []
    keys = set()
    for path in base.rglob("seed*"):
        if path.is_dir() and _SEED_DIR.fullmatch(path.name):
            with contextlib.suppress(ValueError):
                keys.add(RunKey.from_run_dir(path))
    return sorted(keys, key=lambda k: (k.preset, k.model, k.task, k.seed))


# ----------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------


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
        What it ran on: :func:`layersim.devices.describe_device`'s description.
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
        "timestamp": _now(),
        **versions,
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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


def _dump_json(data: Any, what: str) -> str:
    try:
        return json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} cannot be written as JSON ({err}); use numbers, strings, lists and dicts, "
            "and no NaN or infinity"
        ) from err


def read_provenance(root: str | os.PathLike[str], key: RunKey) -> dict[str, Any]:
    """A run's provenance: ``{"run": {key columns}, "steps": {step: info}}`` (empty steps if
    none was written)."""
    return _read_provenance_file(_key(key).run_dir(root) / _PROVENANCE, "run", key.as_dict())


def _read_provenance_file(path: Path, kind: str, identity: dict[str, Any]) -> dict[str, Any]:
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


def _write_step(
    path: Path, kind: str, identity: dict[str, Any], step: str, info: Mapping[str, Any]
) -> Path:
    """Replace ``steps[step]`` of the provenance file at `path` by `info`, atomically."""
    if not isinstance(step, str) or not step:
        raise ValueError(f"step must be a non-empty string; got {step!r}")
    if not isinstance(info, Mapping):
        raise ValueError(f"info must be a mapping; got {type(info).__name__}")
    data = _read_provenance_file(path, kind, identity)
    data["steps"][step] = dict(info)
    atomic_write(path, _dump_json(data, f"provenance of step {step!r}") + "\n")
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
    return _write_step(_key(key).run_dir(root) / _PROVENANCE, "run", key.as_dict(), step, info)


# ----------------------------------------------------------------------------
# Completion, failure, resume
# ----------------------------------------------------------------------------


def _tables_arg(tables: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tables, str):
        tables = (tables,)
    out = tuple(tables)
    for t in out:
        _table(t)
    if not out:
        raise ValueError(f"tables must name at least one of {', '.join(TABLE_NAMES)}")
    return out


def is_complete(
    root: str | os.PathLike[str], key: RunKey, tables: Iterable[str] = TABLE_NAMES
) -> bool:
    """Whether run `key` has all `tables`, each present, parseable and valid for the run.

    A failure marker does not matter here (see :func:`run_status`).
    """
    for table in _tables_arg(tables):
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
    needed = _tables_arg(tables)
    status = {}
    for key in keys:
        if (_key(key).run_dir(root) / _FAILED).is_file():
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
        "timestamp": _now(),
    }
    text = _dump_json(info, "failure marker") + "\n"
    path = _key(key).run_dir(root) / _FAILED
    atomic_write(path, text)
    return path


def clear_failed(root: str | os.PathLike[str], key: RunKey) -> bool:
    """Remove run `key`'s failure marker; True if there was one."""
    try:
        (_key(key).run_dir(root) / _FAILED).unlink()
    except FileNotFoundError:
        return False
    return True


def failure(root: str | os.PathLike[str], key: RunKey) -> dict[str, Any] | None:
    """The failure marker's content (``message``, ``notebook``, ``timestamp``), or None."""
    path = _key(key).run_dir(root) / _FAILED
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

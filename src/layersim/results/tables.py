"""Writing, reading and validating the tidy tables of runs and grids.

Tables are CSV (UTF-8, ``\\n`` line ends, no index, floats with round-trip precision, an empty
cell for a statistic without an interval) so that committed results give readable diffs. A
table's row count is recorded in its step's provenance, so a table cut short is detected.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layersim.results.files import atomic_write
from layersim.results.keys import (
    SEED_DIR,
    RunKey,
    check_name,
    checked_key,
    model_dirname,
    model_from_dirname,
)
from layersim.results.provenance import (
    PROVENANCE,
    read_provenance_file,
    write_provenance,
    write_step_provenance,
)
from layersim.results.schemas import (
    CKA_KINDS,
    DTYPES,
    GRID_KEY_COLUMNS,
    GRID_STEP_TABLES,
    GRID_TABLES,
    INTERVAL_COLUMNS,
    KEY_COLUMNS,
    ROW_IDS,
    STEP_OF_TABLE,
    grid_table_columns,
    table_columns,
    table_schema,
)

__all__ = [
    "find_runs",
    "grid_dir",
    "grid_table_path",
    "load",
    "read_grid_provenance",
    "read_grid_table",
    "read_table",
    "table_path",
    "write_grid_table",
    "write_table",
]


def table_path(root: str | os.PathLike[str], key: RunKey, table: str) -> Path:
    """Where `table` of run `key` lives: ``<run dir>/<table>.csv``."""
    table_columns(table)
    return checked_key(key).run_dir(root) / f"{table}.csv"


def _validate_frame(
    frame: pd.DataFrame, table: str, key: RunKey | None, source: str
) -> pd.DataFrame:
    """`frame` checked against the table's schema, columns in order and canonical dtypes."""
    schema = table_schema(table)
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
    duplicated = result.duplicated(subset=list(ROW_IDS[table]))
    if duplicated.any():
        first = result.loc[duplicated.idxmax(), list(ROW_IDS[table])].to_dict()
        raise ValueError(
            f"{source}: {int(duplicated.sum())} rows repeat the identifying columns "
            f"{list(ROW_IDS[table])} of another row, e.g. {first}"
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
    path = checked_key(key).run_dir(root) / PROVENANCE
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
    schema = table_schema(table)
    try:
        frame = pd.read_csv(
            path,
            dtype={c: DTYPES[k] for c, k in schema.items()},
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


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([], dtype=DTYPES[k]) for c, k in table_schema(table).items()}, index=range(0)
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
    table_columns(table)
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"results directory {base} does not exist; pass the results/ directory")
    frames = []
    for path in sorted(base.rglob(f"{table}.csv")):
        if not path.is_file() or not SEED_DIR.fullmatch(path.parent.name):
            continue
        try:
            key = RunKey.from_run_dir(path.parent)
        except ValueError as err:
            raise ValueError(f"{path} is not inside a valid run directory: {err}") from err
        frames.append(_read_csv(path, table, key))
    if not frames:
        return _empty(table)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(list(KEY_COLUMNS), kind="stable", ignore_index=True)


def _load_grid(root: str | os.PathLike[str], table: str) -> pd.DataFrame:
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"results directory {base} does not exist; pass the results/ directory")
    candidates = [base / f"{table}.csv", *base.rglob(f"*/{table}.csv")]
    frames = []
    for path in sorted({p.resolve() for p in candidates if p.is_file()}):
        if SEED_DIR.fullmatch(path.parent.name) or len(path.parts) < 3:
            continue  # a run's file of the same name is not a grid table
        preset, model = path.parent.parent.name, model_from_dirname(path.parent.name)
        frames.append(_read_grid_csv(path, table, preset, model))
    if not frames:
        return _empty(table)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(list(GRID_KEY_COLUMNS), kind="stable", ignore_index=True)


def grid_dir(root: str | os.PathLike[str], preset: str, model: str) -> Path:
    """``<root>/<preset>/<model dir>``: where a grid's tables and their provenance live."""
    check_name(preset, "preset")
    return Path(root) / preset / model_dirname(model)


def grid_table_path(root: str | os.PathLike[str], preset: str, model: str, table: str) -> Path:
    """Where grid table `table` of (`preset`, `model`) lives."""
    grid_table_columns(table)
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
        write_step_provenance(
            grid_dir(root, preset, model) / PROVENANCE, "grid", identity, step, provenance
        )
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
    path = grid_dir(root, preset, model) / PROVENANCE
    return read_provenance_file(path, "grid", {"preset": preset, "model": model})


def find_runs(root: str | os.PathLike[str]) -> list[RunKey]:
    """Keys of every run directory below `root` (same `root` forms as :func:`load`), sorted."""
    base = Path(root)
    if not base.is_dir():
        return []
    keys = set()
    for path in base.rglob("seed*"):
        if path.is_dir() and SEED_DIR.fullmatch(path.name):
            with contextlib.suppress(ValueError):
                keys.add(RunKey.from_run_dir(path))
    return sorted(keys, key=lambda k: (k.preset, k.model, k.task, k.seed))

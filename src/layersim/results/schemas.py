"""The schemas of the results tables: per-run and per-grid tables, their columns and types, which
step writes which table, and the columns that identify a row.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CKA_KINDS",
    "GRID_STEP_TABLES",
    "GRID_TABLES",
    "INTERVAL_COLUMNS",
    "STEP_OF_TABLE",
    "STEP_TABLES",
    "TABLES",
    "TABLE_NAMES",
]


KEY_COLUMNS: dict[str, str] = {"preset": "str", "model": "str", "task": "str", "seed": "int"}


#: Column name -> kind (``"str"``, ``"int"``, ``"float"``) of every table, in file order.
TABLES: dict[str, dict[str, str]] = {
    "cka": {
        **KEY_COLUMNS,
        "kind": "str",
        "layer_a": "int",
        "layer_b": "int",
        "cka": "float",
        "estimator": "str",
        "pooling": "str",
        "n": "int",
    },
    "truncation": {**KEY_COLUMNS, "layers_kept": "int", "metric": "str", "value": "float"},
    "metrics": {**KEY_COLUMNS, "metric": "str", "value": "float"},
    # What a task is worth without fine-tuning: the majority class, linear probes on the frozen
    # pretrained model (layersim.models.probe).
    "baselines": {**KEY_COLUMNS, "baseline": "str", "metric": "str", "value": "float"},
    # Block-structure statistics of each CKA matrix (layersim.stats.blocks), with bootstrap
    # intervals (empty for a statistic that has none, e.g. a p-value).
    "blocks": {
        **KEY_COLUMNS,
        "kind": "str",
        "estimator": "str",
        "pooling": "str",
        "statistic": "str",
        "value": "float",
        "lower": "float",
        "upper": "float",
        "boundary": "int",
    },
    # Which layers can go (layersim.pipeline.steps.layer_drop_tables): each redundancy signal's
    # choice of layers to drop at each budget, scored with the unchanged and a re-fitted head ...
    "layer_drop": {
        **KEY_COLUMNS,
        "signal": "str",
        "budget": "int",
        "layers": "str",
        "condition": "str",
        "metric": "str",
        "value": "float",
    },
    # ... and each signal's score of each layer.
    "layer_signals": {**KEY_COLUMNS, "layer": "int", "signal": "str", "value": "float"},
    # Along fine-tuning (layersim.pipeline.steps.progress_tables): block statistics (with bootstrap
    # intervals), block boundary and task metrics at each saved snapshot ...
    "progress": {
        **KEY_COLUMNS,
        "step": "int",
        "max_steps": "int",
        "statistic": "str",
        "value": "float",
        "lower": "float",
        "upper": "float",
    },
    # ... and the CKA matrix at each snapshot.
    "progress_cka": {
        **KEY_COLUMNS,
        "step": "int",
        "max_steps": "int",
        "layer_a": "int",
        "layer_b": "int",
        "cka": "float",
    },
    # How robust the block verdict is (layersim.pipeline.steps.robustness_tables): block statistics
    # of the fine-tuned model under each choice of inputs, pooling, estimator and number of inputs
    # ...
    "robustness": {
        **KEY_COLUMNS,
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
        **KEY_COLUMNS,
        "inputs": "str",
        "n": "int",
        "metric": "str",
        "value": "float",
    },
}


TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


GRID_KEY_COLUMNS: dict[str, str] = {"preset": "str", "model": "str"}


#: Tables of a preset's whole grid for one model rather than of one run: they compare runs with
#: each other. Each lives at ``<root>/<preset>/<model dir>/<table>.csv``, beside the task
#: directories, with its provenance in ``<root>/<preset>/<model dir>/provenance.json``.
GRID_TABLES: dict[str, dict[str, str]] = {
    # Across seeds and tasks (layersim.analysis.across): CKA between the layers of two models of the
    # grid (or the pretrained one) on one shared set of inputs.
    "across": {
        **GRID_KEY_COLUMNS,
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
ROW_IDS: dict[str, tuple[str, ...]] = {
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


DTYPES = {"str": str, "int": "int64", "float": "float64"}


def table_columns(table: str) -> dict[str, str]:
    if table not in TABLES:
        if table in GRID_TABLES:
            raise ValueError(
                f"{table!r} is a table of a whole grid, not of one run; use write_grid_table, "
                "read_grid_table or load"
            )
        raise ValueError(f"unknown table {table!r}; valid tables: {', '.join(TABLE_NAMES)}")
    return TABLES[table]


def table_schema(table: str) -> dict[str, str]:
    """The columns of a run table or of a grid table."""
    return GRID_TABLES[table] if table in GRID_TABLES else table_columns(table)


def grid_table_columns(table: str) -> dict[str, str]:
    if table not in GRID_TABLES:
        raise ValueError(f"unknown grid table {table!r}; grid tables: {', '.join(GRID_TABLES)}")
    return GRID_TABLES[table]


def checked_tables(tables: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tables, str):
        tables = (tables,)
    out = tuple(tables)
    for t in out:
        table_columns(t)
    if not out:
        raise ValueError(f"tables must name at least one of {', '.join(TABLE_NAMES)}")
    return out

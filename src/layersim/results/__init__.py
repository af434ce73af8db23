"""The results store: the only package that reads or writes ``results/``.

One run (model, task, seed of a preset) owns one directory
``<root>/<preset>/<model dir>/<task>/seed<k>/`` holding the tables of :data:`TABLES` (written by
the experiment steps of :data:`STEP_TABLES`), ``provenance.json`` (package version, git commit,
parameters, device, seconds and row counts, per step) and, while its last attempt failed,
``FAILED``. A grid (one preset and model: its tasks x seeds) holds the tables that compare its
runs (:data:`GRID_TABLES`) in its model directory, with their own ``provenance.json``.

Modules: run keys and directory names (:mod:`.keys`), table schemas (:mod:`.schemas`), atomic
writes (:mod:`.files`), reading and writing tables (:mod:`.tables`), provenance
(:mod:`.provenance`), completion and failure (:mod:`.status`). Their public names are re-exported
here (``layersim.results.write_table``).

May import: nothing of layersim but its version (checked by import-linter, ``.importlinter``).
"""

from layersim.results.files import atomic_write
from layersim.results.keys import RunKey, model_dirname, model_from_dirname
from layersim.results.provenance import (
    collect_provenance,
    read_provenance,
    software_versions,
    write_provenance,
)
from layersim.results.schemas import (
    CKA_KINDS,
    GRID_STEP_TABLES,
    GRID_TABLES,
    INTERVAL_COLUMNS,
    STEP_OF_TABLE,
    STEP_TABLES,
    TABLE_NAMES,
    TABLES,
)
from layersim.results.status import (
    RUN_STATES,
    clear_failed,
    failure,
    is_complete,
    mark_failed,
    run_status,
    table_problem,
)
from layersim.results.tables import (
    find_runs,
    grid_dir,
    grid_table_path,
    load,
    read_grid_provenance,
    read_grid_table,
    read_table,
    table_path,
    write_grid_table,
    write_table,
)

__all__ = [
    "CKA_KINDS",
    "GRID_STEP_TABLES",
    "GRID_TABLES",
    "INTERVAL_COLUMNS",
    "RUN_STATES",
    "RunKey",
    "STEP_OF_TABLE",
    "STEP_TABLES",
    "TABLES",
    "TABLE_NAMES",
    "atomic_write",
    "clear_failed",
    "collect_provenance",
    "failure",
    "find_runs",
    "grid_dir",
    "grid_table_path",
    "is_complete",
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
    "table_problem",
    "write_grid_table",
    "write_provenance",
    "write_table",
]

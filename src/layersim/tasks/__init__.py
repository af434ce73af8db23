"""Tasks: the one place that knows datasets.

The registry (:mod:`.registry`: fields, labels, kind, metric), loading a split
(:mod:`.loading`), model inputs (:mod:`.encoding`) and metrics (:mod:`.metrics`), their public
names re-exported here (``layersim.tasks.get_task``); the synthetic template tasks
(:mod:`.synthetic`), real English text from registry packages (:mod:`.real_text`) and your own
data as a task (:mod:`.user_data`).

May import: :mod:`layersim.results` (atomic writes, software versions) and nothing else of
layersim (checked by import-linter, ``.importlinter``).
"""

from layersim.tasks.encoding import collator, encode, length_order, sort_by_length
from layersim.tasks.loading import load, subset_indices
from layersim.tasks.metrics import compute_metrics
from layersim.tasks.registry import (
    DOMAIN_TASKS,
    KINDS,
    PAPER_TASKS,
    REAL_TASKS,
    SYNTHETIC_TASKS,
    TASKS,
    Task,
    get_task,
)
from layersim.tasks.synthetic import SYNTHETIC_SIZES, generate_synthetic

__all__ = [
    "DOMAIN_TASKS",
    "KINDS",
    "PAPER_TASKS",
    "REAL_TASKS",
    "SYNTHETIC_SIZES",
    "SYNTHETIC_TASKS",
    "TASKS",
    "Task",
    "collator",
    "compute_metrics",
    "encode",
    "generate_synthetic",
    "get_task",
    "length_order",
    "load",
    "sort_by_length",
    "subset_indices",
]

"""The computations of the pipeline's experiment steps, as functions the notebooks call.

The notebooks in ``notebooks/`` (run by ``python -m layersim run`` through papermill) hold the
parameters, the prose, the calls and the displays; what they compute lives here, where it is
tested, one module per step, their public names re-exported here. Each function returns a table in
the schema of :data:`layersim.results.TABLES`, ready for
:func:`layersim.results.write_table`:

* step 2, similarity: :func:`compared_layers` says which hidden states are compared,
  :func:`cka_matrices` compares them within and across the fine-tuned and the pretrained model,
  :func:`cka_rows` makes the ``cka`` table of the matrices and :func:`block_table` the ``blocks``
  table of the self matrices (a bootstrap over inputs and a permutation p-value per matrix);
* step 3, truncation: :func:`truncation_curve` scores the model with only its first k layers for
  every k (the ``truncation`` table), loading and encoding the validation split once for all k;
* step 4, baselines: :func:`baseline_table` says what the task is worth without fine-tuning (the
  majority class, linear probes on the frozen pretrained model; the ``baselines`` table);
* step 5, layer dropping (E1, E2): :func:`layer_drop_tables` scores each redundancy signal's
  choice of layers at every budget, and every layer dropped alone, with the unchanged and a
  re-fitted head (the ``layer_drop`` table), next to each signal's score per layer
  (``layer_signals``);
* step 6, along fine-tuning (E3): :func:`progress_tables` gives the CKA matrix, block statistics
  and task metric at each snapshot that fine-tuning saved (``progress``, ``progress_cka``);
* step 7, robustness (E4): :func:`robustness_tables` gives the block statistics of the fine-tuned
  model under other numbers of inputs, estimators, poolings and input domains (``robustness``),
  and its metrics on those inputs (``robustness_metrics``);
* after the runs of a grid, across seeds and tasks (E5): :func:`across_table` compares the
  layers of every two fine-tuned models of the grid, and each with the pretrained model, on one
  shared set of inputs (the grid table ``across``).
"""

from layersim.pipeline.steps.across import across_table
from layersim.pipeline.steps.baselines import baseline_table
from layersim.pipeline.steps.inputs import evaluation_rows, validation_record
from layersim.pipeline.steps.layer_drop import SINGLE_LAYER, layer_drop_tables
from layersim.pipeline.steps.progress import progress_tables
from layersim.pipeline.steps.robustness import robustness_tables
from layersim.pipeline.steps.similarity import (
    BLOCK_KINDS,
    CKA_ESTIMATORS,
    block_table,
    cka_matrices,
    cka_rows,
    compared_layers,
)
from layersim.pipeline.steps.truncation import truncation_curve

__all__ = [
    "BLOCK_KINDS",
    "CKA_ESTIMATORS",
    "SINGLE_LAYER",
    "across_table",
    "baseline_table",
    "block_table",
    "cka_matrices",
    "cka_rows",
    "compared_layers",
    "evaluation_rows",
    "layer_drop_tables",
    "progress_tables",
    "robustness_tables",
    "truncation_curve",
    "validation_record",
]

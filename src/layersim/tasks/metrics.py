"""The task metrics, computed locally with scikit-learn and scipy (the ``evaluate`` library
downloads metric scripts and cannot run offline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import f1_score, matthews_corrcoef

from layersim.tasks.registry import Task, get_task

__all__ = ["compute_metrics"]


def _correlation(function: Callable, predictions: np.ndarray, labels: np.ndarray) -> float:
    # A constant vector has no defined correlation; report 0.0 (no association), as scikit-learn
    # does for the Matthews correlation, rather than a NaN.
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(function(predictions, labels)[0])


def compute_metrics(
    task: str | Task, predictions: np.ndarray | Sequence, labels: np.ndarray | Sequence
) -> dict[str, float]:
    """The task's metrics of some predictions.

    Parameters
    ----------
    task : str or Task
        The task; ``task.metrics`` says which metrics are computed.
    predictions : array
        Logits ``(n, num_labels)`` or ``(n, choices)`` (argmax taken here), class ids ``(n,)``
        (integers), or regression outputs ``(n,)`` / ``(n, 1)``.
    labels : array
        Class ids ``(n,)`` or regression targets ``(n,)``.

    Returns
    -------
    dict of str to float
        ``accuracy``; ``f1`` (positive class 1; MRPC, QQP); ``macro_f1`` (mean F1 over the
        classes; CB); ``matthews_correlation`` (CoLA); ``pearson`` and ``spearman`` (STS-B). A
        correlation with a constant input is 0.0.

    Raises
    ------
    ValueError
        Mismatched lengths, no examples, or unlabelled examples (label -1: hub test splits).
    """
    task = get_task(task)
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if len(predictions) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"need as many predictions as labels and at least one: got {len(predictions)} "
            f"predictions and {len(labels)} labels"
        )
    if task.kind == "regression":
        predictions = predictions.reshape(len(predictions), -1)[:, 0].astype(np.float64)
        labels = labels.astype(np.float64)
        out = {
            "pearson": _correlation(stats.pearsonr, predictions, labels),
            "spearman": _correlation(stats.spearmanr, predictions, labels),
        }
        return {name: out[name] for name in task.metrics}
    if np.any(labels < 0):
        raise ValueError(
            f"labels of task {task.name!r} contain -1 (unlabelled examples, as in the hub's test "
            "splits); evaluate on a labelled split such as "
            f"{task.validation_split!r}"
        )
    if predictions.ndim == 2:
        predicted = predictions.argmax(axis=-1)
    elif predictions.ndim == 1 and np.issubdtype(predictions.dtype, np.integer):
        predicted = predictions
    else:
        raise ValueError(
            f"predictions for a {task.kind} task must be logits (n, classes) or integer class ids "
            f"(n,), got shape {predictions.shape} and dtype {predictions.dtype}"
        )
    labels = labels.astype(np.int64)
    out: dict[str, float] = {}
    for name in task.metrics:
        if name == "accuracy":
            out[name] = float(np.mean(predicted == labels))
        elif name == "f1":
            out[name] = float(f1_score(labels, predicted, pos_label=1, zero_division=0.0))
        elif name == "macro_f1":
            out[name] = float(
                f1_score(
                    labels, predicted, labels=list(range(task.num_labels)), average="macro",
                    zero_division=0.0,
                )
            )  # fmt: skip
        elif name == "matthews_correlation":
            out[name] = float(matthews_corrcoef(labels, predicted))
        else:  # pragma: no cover - the registry only uses the names above
            raise ValueError(f"unknown metric {name!r}")
    return out

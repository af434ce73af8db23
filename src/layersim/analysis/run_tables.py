"""Per run and per (model, task) pair, from the results tables: whether fine-tuning learned the
task (:func:`learned_table`: the margin over the best baseline against the seeds' spread), the
block verdict of each run (:func:`run_table`) and of each pair with its truncation knee
(:func:`pair_table`), and keeping only the learned pairs (:func:`only_learned`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layersim.analysis.verdicts import KNEE_TOLERANCE, PAIR_COLUMNS, RUN_COLUMNS, main_metric
from layersim.models.truncate import truncation_knee
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = ["learned_table", "left_out_note", "only_learned", "pair_table", "run_table"]


def is_electra(model: str) -> bool:
    return "electra" in model.lower()


def _excess(blocks: pd.DataFrame, kind: str, estimator: str) -> pd.DataFrame:
    rows = blocks[
        (blocks["kind"] == kind)
        & (blocks["statistic"] == "excess")
        & (blocks["estimator"] == estimator)
    ]
    if rows.duplicated(RUN_COLUMNS).any():
        raise ValueError(
            f"several {kind} excess rows per run (pooling {sorted(rows['pooling'].unique())}); "
            "select one pooling before deciding claims"
        )
    return rows.set_index(RUN_COLUMNS)[["value", "lower", "upper", "boundary"]]


def learned_table(metrics: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """Did fine-tuning learn each (model, task)? The main metric against what needs no training.

    A pair is **learned** when the mean of its fine-tuned seeds beats the best baseline of the
    ``baselines`` table (majority class, linear probes on the frozen pretrained model; each
    averaged over seeds) by more than the seeds' standard deviation (ddof 1; with one seed, by
    any positive margin).

    Parameters
    ----------
    metrics, baselines : pandas.DataFrame
        The ``metrics`` and ``baselines`` tables (:func:`layersim.results.load`).

    Returns
    -------
    pandas.DataFrame
        One row per (model, task): ``metric``, ``seeds``, ``finetuned`` (mean), ``spread``
        (standard deviation over seeds), ``majority``, ``probe`` (the better probe), ``margin``
        (``finetuned`` minus the best baseline), ``learned`` (bool; NaN without baselines).
    """
    rows = []
    for (model, task), group in metrics.groupby(["model", "task"], sort=True):
        metric = main_metric(task, list(group["metric"].unique()))
        values = group.loc[group["metric"] == metric, "value"].to_numpy(dtype=float)
        base = baselines[
            (baselines["model"] == model)
            & (baselines["task"] == task)
            & (baselines["metric"] == metric)
        ]
        means = base.groupby("baseline")["value"].mean()
        majority = float(means.get("majority", math.nan))
        probes = means[[name for name in means.index if name.startswith("probe")]]
        probe = float(probes.max()) if len(probes) else math.nan
        spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        best = max(majority, probe) if not (math.isnan(majority) or math.isnan(probe)) else math.nan
        margin = float(values.mean()) - best
        learned = math.nan if math.isnan(margin) else bool(margin > 0 and margin > spread)
        rows.append({
            "model": model, "task": task, "metric": metric, "seeds": len(values),
            "finetuned": float(values.mean()), "spread": spread, "majority": majority,
            "probe": probe, "margin": margin, "learned": learned,
        })  # fmt: skip
    return pd.DataFrame(rows)


def only_learned(table: pd.DataFrame, learned: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of (model, task) pairs that fine-tuning learned (``learned`` column of
    :func:`learned_table`); all rows when `learned` is None. A task the model did not learn has
    nothing to lose by dropping layers and no metric saturation, so it says nothing there."""
    if learned is None:
        return table
    kept = learned.loc[learned["learned"] == True, ["model", "task"]]  # noqa: E712 (NaN: no)
    return table.merge(kept, on=["model", "task"])


def left_out_note(table: pd.DataFrame, learned: pd.DataFrame | None) -> str:
    """`` (not learned, left out: <tasks>)`` for the tasks of `table` that :func:`only_learned`
    drops, for a verdict's evidence; empty when none is."""
    if learned is None:
        return ""
    gone = sorted(set(table["task"]) - set(only_learned(table, learned)["task"]))
    return f" (not learned, left out: {', '.join(gone)})" if gone else ""


def run_table(
    blocks: pd.DataFrame,
    *,
    estimator: str = "biased",
    threshold: float = DEFAULT_EXCESS_THRESHOLD,
) -> pd.DataFrame:
    """Per run: fine-tuned and pretrained ``excess`` with intervals, boundary, block verdicts.

    Columns: ``preset, model, task, seed, excess, excess_lower, excess_upper, boundary, blocks,
    pretrained_excess, pretrained_lower, pretrained_upper, pretrained_blocks``.
    """
    for column in ("kind", "statistic", "estimator", "value", "lower", "upper", "boundary"):
        if column not in blocks.columns:
            raise ValueError(
                f"blocks table lacks column {column!r}; use results.load(..., 'blocks')"
            )
    finetuned = _excess(blocks, "finetuned", estimator)
    pretrained = _excess(blocks, "pretrained", estimator)
    if finetuned.empty:
        raise ValueError(
            f"no fine-tuned excess rows for estimator {estimator!r} in the blocks table"
        )
    out = finetuned.rename(
        columns={"value": "excess", "lower": "excess_lower", "upper": "excess_upper"}
    )
    out["blocks"] = out["excess_lower"] > threshold
    out = out.join(
        pretrained.drop(columns="boundary").rename(
            columns={
                "value": "pretrained_excess",
                "lower": "pretrained_lower",
                "upper": "pretrained_upper",
            }
        ),
        how="left",
    )
    out["pretrained_blocks"] = out["pretrained_lower"] > threshold
    return out.reset_index()


def pair_table(
    blocks: pd.DataFrame,
    truncation: pd.DataFrame,
    *,
    estimator: str = "biased",
    threshold: float = DEFAULT_EXCESS_THRESHOLD,
    tolerance: float = KNEE_TOLERANCE,
) -> pd.DataFrame:
    """Per (model, task), over seeds: block verdict, mean boundary, truncation knee.

    Columns: ``preset, model, task, seeds, runs_with_blocks, blocks, boundary, metric, layers,
    full_value, knee, droppable, gap`` (``gap = knee - boundary``).
    """
    runs = run_table(blocks, estimator=estimator, threshold=threshold)
    pairs = (
        runs.groupby(PAIR_COLUMNS, sort=True)
        .agg(
            seeds=("seed", "nunique"),
            runs_with_blocks=("blocks", "sum"),
            boundary=("boundary", "mean"),
        )
        .reset_index()
    )
    pairs["blocks"] = pairs["runs_with_blocks"] * 2 > pairs["seeds"]
    curves = []
    for (preset, model, task), curve in truncation.groupby(PAIR_COLUMNS, sort=True):
        metric = main_metric(task, list(dict.fromkeys(curve["metric"])))
        curve = curve[curve["metric"] == metric]
        knee = truncation_knee(curve["layers_kept"], curve["value"], tolerance=tolerance)
        layers = int(curve["layers_kept"].max())
        full = float(curve.loc[curve["layers_kept"] == layers, "value"].mean())
        curves.append((preset, model, task, metric, layers, full, knee))
    columns = [*PAIR_COLUMNS, "metric", "layers", "full_value", "knee"]
    pairs = pairs.merge(pd.DataFrame(curves, columns=columns), on=PAIR_COLUMNS, how="left")
    pairs["droppable"] = pairs["layers"] - pairs["knee"]
    pairs["gap"] = pairs["knee"] - pairs["boundary"]
    return pairs

"""Which layers can go (E1, E2), read from the ``layer_drop`` and ``layer_signals`` tables.

Pure functions of the tables :func:`layersim.pipeline.steps.layer_drop_tables` writes; the book's
chapter "Which layers can go" and the scorecard's E1 and E2 rows call them, so nothing is typed by
hand. Every statistic reads each task's main metric and averages seeds first.

* E1, is the information still there? :func:`top_k_curves`: the paper's truncation (keep the first
  k layers, unchanged head) next to the same truncated models with a re-fitted linear head. The
  gap between the two is what the layers carry that the old head cannot read.
* E2, which signal predicts what can be dropped? :func:`signal_summary`: per (model, task) and
  signal, the metric of the signal's own choice averaged over budgets 1..L-1 and the largest
  budget it drops safely (within a tolerance of the full model at that and every smaller budget);
  :func:`signal_loss_correlation`: per run, Spearman's rank correlation between each signal's
  per-layer importance and the measured cost of dropping that layer alone.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from layersim.analysis.run_tables import left_out_note, only_learned
from layersim.analysis.verdicts import (
    KNEE_TOLERANCE,
    main_metric,
    mean_over,
    percentile_bootstrap,
    verdict_row,
)
from layersim.models.truncate import truncation_knee
from layersim.stats.redundancy import SIGNAL_LABELS

__all__ = [
    "IMPORTANCE_SIGN",
    "SIGNAL_LABELS",
    "main_metric_rows",
    "only_learned",
    "reading",
    "scorecard_rows",
    "signal_loss_correlation",
    "signal_summary",
    "top_k_curves",
]

PAIR_COLUMNS = ["preset", "model", "task"]
RUN_COLUMNS = [*PAIR_COLUMNS, "seed"]

#: Each per-layer score oriented as importance (larger: dropping the layer should cost more). A
#: layer that changes its input little (low block influence or angular distance, high CKA with its
#: input) or whose output already resembles the last layer's is predicted to be cheap.
IMPORTANCE_SIGN: dict[str, int] = {
    "block_influence": 1,
    "angular_distance": 1,
    "consecutive_cka": -1,
    "cka_with_last": -1,
}


def main_metric_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each task's main metric (accuracy, Spearman, ...), the one the book reads."""
    keep = table.groupby("task", sort=False)["metric"].transform(
        lambda metrics: main_metric(metrics.name, list(dict.fromkeys(metrics)))
    )
    return table[table["metric"] == keep]


def _depths(layer_drop: pd.DataFrame) -> pd.Series:
    """L per run: the largest top-k budget (the embeddings alone)."""
    top = layer_drop[layer_drop["signal"] == "top_k"]
    return top.groupby(RUN_COLUMNS)["budget"].max().rename("depth")


def top_k_curves(layer_drop: pd.DataFrame) -> pd.DataFrame:
    """E1: metric against layers kept, per run and condition, from the top-k rows.

    Returns the ``truncation`` table's columns plus ``condition`` (``unchanged``, ``refit``), for
    the main metric: ``layers_kept = L - budget``.
    """
    top = main_metric_rows(layer_drop[layer_drop["signal"] == "top_k"])
    top = top.join(_depths(layer_drop), on=RUN_COLUMNS)
    top = top.assign(layers_kept=top["depth"] - top["budget"])
    columns = [*RUN_COLUMNS, "layers_kept", "condition", "metric", "value"]
    return (
        top[columns].sort_values([*RUN_COLUMNS, "condition", "layers_kept"]).reset_index(drop=True)
    )


def _safe_budget(budgets: np.ndarray, values: np.ndarray, tolerance: float) -> int:
    """The largest n such that every budget 0..n keeps the budget-0 metric within tolerance."""
    order = np.argsort(budgets)
    budgets, values = budgets[order], values[order]
    losing = np.flatnonzero(values[0] - values > tolerance + 1e-12)
    return int(budgets[losing[0] - 1]) if len(losing) else int(budgets[-1])


def signal_summary(layer_drop: pd.DataFrame, *, tolerance: float = KNEE_TOLERANCE) -> pd.DataFrame:
    """E2 per (model, task, signal, condition), seeds averaged first.

    Columns: ``preset, model, task, metric, signal, condition, depth, mean_value`` (the metric
    of the signal's choice averaged over budgets 1..L-1), ``safe_budget`` (the most layers it
    drops with every budget up to it within `tolerance` of the full model).
    """
    rows = main_metric_rows(layer_drop[layer_drop["signal"] != "single"])
    rows = rows.join(_depths(layer_drop), on=RUN_COLUMNS)
    mean = (
        rows.groupby([*PAIR_COLUMNS, "metric", "signal", "condition", "budget"], sort=True)
        .agg(value=("value", "mean"), depth=("depth", "max"))
        .reset_index()
    )
    out = []
    for keys, group in mean.groupby([*PAIR_COLUMNS, "metric", "signal", "condition"], sort=True):
        depth = int(group["depth"].max())
        inner = group[(group["budget"] >= 1) & (group["budget"] <= depth - 1)]
        out.append(
            {
                **dict(zip([*PAIR_COLUMNS, "metric", "signal", "condition"], keys, strict=True)),
                "depth": depth,
                "mean_value": float(inner["value"].mean()) if len(inner) else math.nan,
                "safe_budget": _safe_budget(
                    group["budget"].to_numpy(), group["value"].to_numpy(float), tolerance
                ),
            }
        )
    return pd.DataFrame(out)


def signal_loss_correlation(layer_drop: pd.DataFrame, layer_signals: pd.DataFrame) -> pd.DataFrame:
    """Per run and signal: Spearman's rho between the signal's importance of each layer and the
    measured loss of dropping that layer alone (unchanged head, main metric).

    Columns: ``preset, model, task, seed, signal, layers`` (how many layers the signal scored),
    ``rho`` (NaN where either side is constant). A good signal has rho near +1.
    """
    single = main_metric_rows(
        layer_drop[(layer_drop["signal"] == "single") & (layer_drop["condition"] == "unchanged")]
    )
    full = main_metric_rows(
        layer_drop[
            (layer_drop["signal"] == "top_k")
            & (layer_drop["budget"] == 0)
            & (layer_drop["condition"] == "unchanged")
        ]
    ).set_index(RUN_COLUMNS)["value"]
    loss = single.assign(layer=single["layers"].astype(int))
    loss = loss.assign(loss=loss.set_index(RUN_COLUMNS).index.map(full).to_numpy() - loss["value"])
    merged = layer_signals.merge(loss[[*RUN_COLUMNS, "layer", "loss"]], on=[*RUN_COLUMNS, "layer"])
    out = []
    for (*run, signal), group in merged.groupby([*RUN_COLUMNS, "signal"], sort=True):
        importance = IMPORTANCE_SIGN[signal] * group["value"].to_numpy(float)
        constant = np.ptp(importance) == 0 or np.ptp(group["loss"].to_numpy(float)) == 0
        rho = math.nan if constant else float(stats.spearmanr(importance, group["loss"])[0])
        out.append({**dict(zip(RUN_COLUMNS, run, strict=True)), "signal": signal,
                    "layers": len(group), "rho": rho})  # fmt: skip
    return pd.DataFrame(out)


def _signal_verdict(
    best: str, interval: tuple[float, float], rank: tuple[float, tuple[float, float]] | None
) -> str:
    """E2's answer: a signal predicts which layers can go when its choices keep more of the
    metric than top-k (interval above 0) *and* it ranks the layers by their measured cost (rank
    correlation interval above 0). Keeping more while ranking the layers against their cost
    is only a partial answer; intervals across 0 leave it undetermined."""
    low, high = interval
    name = SIGNAL_LABELS[best]
    if math.isnan(low):
        return "undetermined: too few pairs for an interval"
    if high < 0:
        return f"{NO}: top-k is not beaten"
    if low <= 0:
        return f"undetermined: {name} keeps about as much as top-k"
    if rank is None or math.isnan(rank[1][0]):
        return f"partly: {name} keeps more than top-k; its ranking of layers is not measured"
    rho, (rho_low, rho_high) = rank
    if rho_low > 0:
        return f"{YES}: {name} (keeps more than top-k and ranks layers by their cost)"
    if rho_high < 0:
        return (f"partly: {name} keeps more than top-k but ranks layers against their measured "
                f"cost (rho {rho:+.2f})")  # fmt: skip
    return (f"partly: {name} keeps more than top-k; its ranking of layers by cost is "
            f"undetermined (rho {rho:+.2f})")  # fmt: skip


#: The questions of this edition that the layer-drop tables answer (DESIGN.md, E1 and E2).
QUESTIONS = {
    "E1": "With the top layers dropped, is the task's information still in the remaining layers "
    "(a re-fitted linear head recovers what the unchanged head loses)?",
    "E2": "Which signal best predicts which layers can be dropped with the unchanged head: CKA, "
    "block influence, angular distance, or the paper's fixed top-k?",
}
YES, NO = "yes", "no"


def scorecard_rows(
    layer_drop: pd.DataFrame,
    layer_signals: pd.DataFrame,
    *,
    learned: pd.DataFrame | None = None,
    tolerance: float = KNEE_TOLERANCE,
    seed: int = 0,
) -> pd.DataFrame:
    """The scorecard's E1 and E2 rows (columns of
    :data:`layersim.analysis.verdicts.SCORECARD_COLUMNS`).

    E1: mean over (model, task) pairs of the re-fitted minus the unchanged head's metric on the
    top-k truncated models, averaged over budgets 1..L-1; "yes" when the 95% bootstrap interval
    over pairs lies above 0, "no" when it lies below, "undetermined" otherwise. E2: the best
    signal's mean metric (unchanged head, budgets 1..L-1) minus top-k's, weighed together with
    that signal's rank correlation with the measured cost of each layer
    (:func:`_signal_verdict`). The evidence lists each signal's mean, the layers it drops safely
    and its rank correlation with the measured single-layer loss, with intervals over pairs.
    With `learned` (:func:`layersim.analysis.run_tables.learned_table`), only the pairs fine-tuning
    learned count.
    """
    left_out = left_out_note(layer_drop, learned)
    layer_drop = only_learned(layer_drop, learned)
    layer_signals = only_learned(layer_signals, learned)
    summary = signal_summary(layer_drop, tolerance=tolerance)
    top = summary[summary["signal"] == "top_k"].pivot_table(
        index=PAIR_COLUMNS, columns="condition", values="mean_value"
    )
    gap = (top["refit"] - top["unchanged"]).to_numpy(float)
    low, high = percentile_bootstrap((gap,), mean_over, seed)
    knees = []
    for (_, _model, task), curve in top_k_curves(layer_drop).groupby(PAIR_COLUMNS, sort=True):
        drops = {}
        for condition, rows in curve.groupby("condition"):
            knee = truncation_knee(rows["layers_kept"], rows["value"], tolerance=tolerance)
            drops[condition] = int(rows["layers_kept"].max()) - knee
        knees.append(f"{task} {drops.get('unchanged')} / {drops.get('refit')}")
    e1 = verdict_row(
        "E1",
        "mean re-fitted minus unchanged head, top-k truncation, budgets 1..L-1 (main metric)",
        float(gap.mean()) if len(gap) else math.nan,
        (low, high),
        YES if low > 0 else NO if high < 0 else "undetermined",
        f"{len(gap)} pairs{left_out}; top layers droppable within {tolerance:g}, unchanged / "
        "re-fitted: " + ", ".join(knees),
    )
    e1["statement"] = QUESTIONS["E1"]

    unchanged = summary[summary["condition"] == "unchanged"]
    means = unchanged.pivot_table(index=PAIR_COLUMNS, columns="signal", values="mean_value")
    safe = unchanged.groupby("signal")["safe_budget"].mean()
    rho_runs = signal_loss_correlation(layer_drop, layer_signals)
    rho_pairs = rho_runs.groupby([*PAIR_COLUMNS, "signal"])["rho"].mean().unstack("signal")
    others = [s for s in means.columns if s != "top_k"]
    best = max(others, key=lambda s: means[s].mean())
    difference = (means[best] - means["top_k"]).to_numpy(float)
    low, high = percentile_bootstrap((difference,), mean_over, seed)
    ranks = {
        s: (float(np.nanmean(v)), percentile_bootstrap((v[~np.isnan(v)],), mean_over, seed))
        for s, v in ((s, rho_pairs[s].to_numpy(float)) for s in rho_pairs.columns)
    }
    per_signal = ", ".join(
        f"{SIGNAL_LABELS.get(s, s)} {means[s].mean():.3f} (drops {safe[s]:.1f} safely)"
        for s in means.columns
    )
    rank_text = ", ".join(
        f"{SIGNAL_LABELS.get(s, s)} {r:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        for s, (r, (lo, hi)) in ranks.items()
    )
    e2 = verdict_row(
        "E2",
        f"best signal ({SIGNAL_LABELS[best]}) minus top-k, unchanged head, budgets 1..L-1",
        float(difference.mean()),
        (low, high),
        _signal_verdict(best, (low, high), ranks.get(best)),
        f"{len(difference)} pairs{left_out}; mean metric {per_signal}; rank correlation of each "
        f"layer's importance with the measured loss of dropping it alone (mean over pairs, 95% "
        f"interval) {rank_text}",
    )
    e2["statement"] = QUESTIONS["E2"]
    return pd.DataFrame([e1, e2])


def _strength(rho: float) -> str:
    """How a rank correlation with the measured costs reads in words."""
    if math.isnan(rho):
        return "is not measured"
    if rho >= 0.5:
        return "orders the layers much as their measured cost does"
    if rho > 0:
        return "orders them only weakly like their cost"
    return "orders them against their cost"


def reading(
    layer_drop: pd.DataFrame,
    layer_signals: pd.DataFrame,
    *,
    learned: pd.DataFrame | None = None,
    tolerance: float = KNEE_TOLERANCE,
) -> list[str]:
    """The chapter's summary of E1 and E2 in three sentences (Markdown bullets), every number
    computed from the tables: how many top layers go with each head, how much of the metric
    each head keeps with two and with half the layers dropped, and how each signal's ranking of
    layers agrees with their measured cost (learned pairs only, with `learned`)."""
    rows = scorecard_rows(layer_drop, layer_signals, learned=learned, tolerance=tolerance)
    rows = rows.set_index("claim")
    drops = only_learned(main_metric_rows(layer_drop), learned)
    summary = signal_summary(drops, tolerance=tolerance)
    rho = signal_loss_correlation(drops, only_learned(layer_signals, learned))
    rho = rho.groupby("signal")["rho"].mean()
    top = drops[drops["signal"] == "top_k"]
    curve = top.groupby(["task", "condition", "budget"])["value"].mean().unstack("budget")
    kept = curve.div(curve[0], axis=0)  # share of the full model's metric at each budget
    budgets = sorted(kept.columns)
    half = min(budgets, key=lambda b: abs(b - int(top["budget"].max()) / 2))
    two = min(budgets, key=lambda b: abs(b - 2))
    safe = summary[summary["signal"] == "top_k"].pivot_table(
        index="task", columns="condition", values="safe_budget"
    )

    def kept_at(budget: int, condition: str) -> float:
        return float(kept.xs(condition, level="condition")[budget].mean())

    def signal(name: str) -> str:
        value = float(rho.get(name, math.nan))
        return f"{_strength(value)} ({value:+.2f})"

    unchanged = summary[summary["condition"] == "unchanged"]
    best = unchanged.groupby("signal")["mean_value"].mean().drop("top_k").idxmax()
    return [
        f"- **The paper's reading (C5), drop the top layers and keep the head:** over the "
        f"{len(safe)} learned tasks top-k drops {safe['unchanged'].mean():.1f} layers on average "
        f"with the metric within {tolerance:g} of the full model's (re-fitted head: "
        f"{safe['refit'].mean():.1f}). With {two} layers dropped the unchanged head keeps "
        f"{kept_at(two, 'unchanged'):.0%} of the metric, the re-fitted head "
        f"{kept_at(two, 'refit'):.0%}; with {half} dropped {kept_at(half, 'unchanged'):.0%} and "
        f"{kept_at(half, 'refit'):.0%}. Is the information still there (E1)? "
        f"{rows.loc['E1', 'verdict']}.",
        f"- **CKA as a predictor (C6):** CKA of each layer with the last one "
        f"{signal('cka_with_last')}; consecutive CKA {signal('consecutive_cka')}.",
        f"- **The pruning signals of large decoders:** block influence "
        f"{signal('block_influence')} and angular distance {signal('angular_distance')}. Of the "
        f"three signals, {SIGNAL_LABELS[best]}'s choices keep the most with the unchanged head; "
        f"against top-k (E2): {rows.loc['E2', 'verdict']}.",
    ]

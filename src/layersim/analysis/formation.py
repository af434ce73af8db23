"""When the blocks form (E3), read from the ``progress`` table of the snapshots along fine-tuning.

Pure functions of the table :func:`layersim.pipeline.steps.progress_tables` writes. Per run, the
**block onset** is the earliest fraction of training from which on the late block is there at every
snapshot (the lower end of the ``excess`` interval above the threshold, as for claim C1), and the
**metric saturation** the earliest fraction from which on the task's main metric stays within
10% of its total change (start to end) of its final value. Their difference says whether the
blocks appear before (negative), with (about 0) or after (positive) the metric saturates.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layersim.analysis.run_tables import only_learned
from layersim.analysis.verdicts import main_metric, verdict_row
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = [
    "QUESTION",
    "SATURATION_SHARE",
    "matrix_strip",
    "onset_table",
    "scorecard_row",
    "two_stage_interval",
    "with_fractions",
]

RUN_COLUMNS = ["preset", "model", "task", "seed"]
#: Share of the metric's change from start to end that counts as saturated.
SATURATION_SHARE = 0.9
QUESTION = (
    "During fine-tuning, does the late block form before, with or after the task metric saturates?"
)


def with_fractions(progress: pd.DataFrame) -> pd.DataFrame:
    """The table with ``fraction`` = step / max_steps (the share of training done)."""
    return progress.assign(fraction=progress["step"] / progress["max_steps"].clip(lower=1))


def matrix_strip(progress_cka: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The snapshots' CKA matrices in the ``cka`` table's form, for
    :func:`layersim.book.plots.cka_heatmaps` with ``column="kind"``: ``kind`` is the share of
    training done (``"25%"``); returns the frame and the kinds in training order."""
    share = (100 * progress_cka["step"] / progress_cka["max_steps"].clip(lower=1)).round()
    frame = progress_cka.assign(
        kind=share.astype(int).astype(str) + "%", estimator="biased", n=0, share=share
    )
    order = frame.drop_duplicates("kind").sort_values("share")["kind"].tolist()
    return frame.drop(columns="share"), order


def _first_from_which_on(fractions: np.ndarray, holds: np.ndarray) -> float:
    """The earliest fraction from which `holds` is true at every later snapshot (NaN if the
    last snapshot does not hold)."""
    if len(holds) == 0 or not holds[-1]:
        return math.nan
    failing = np.flatnonzero(~holds)
    return float(fractions[0 if len(failing) == 0 else failing[-1] + 1])


def onset_table(
    progress: pd.DataFrame, *, threshold: float = DEFAULT_EXCESS_THRESHOLD
) -> pd.DataFrame:
    """Per run: ``block_onset``, ``metric_saturation`` and ``lead`` (onset minus saturation), as
    fractions of training; ``final_blocks`` says whether the finished model has the block.

    Columns: ``preset, model, task, seed, metric, snapshots, final_blocks, block_onset,
    metric_saturation, lead``.
    """
    frame = with_fractions(progress)
    rows = []
    for run, group in frame.groupby(RUN_COLUMNS, sort=True):
        group = group.sort_values("fraction")
        excess = group[group["statistic"] == "excess"]
        metric = main_metric(run[2], [s for s in group["statistic"].unique() if s not in
                                       ("excess", "contrast", "boundary")])  # fmt: skip
        scores = group[group["statistic"] == metric]
        onset = _first_from_which_on(
            excess["fraction"].to_numpy(), excess["lower"].to_numpy(float) > threshold
        )
        values = scores["value"].to_numpy(float)
        change = values[-1] - values[0] if len(values) else math.nan
        near_end = np.abs(values[-1] - values) <= (1 - SATURATION_SHARE) * abs(change) + 1e-12
        saturation = _first_from_which_on(scores["fraction"].to_numpy(), near_end)
        rows.append({
            **dict(zip(RUN_COLUMNS, run, strict=True)), "metric": metric,
            "snapshots": len(excess), "final_blocks": bool(not math.isnan(onset)),
            "block_onset": onset, "metric_saturation": saturation, "lead": onset - saturation,
        })  # fmt: skip
    return pd.DataFrame(rows)


def two_stage_interval(
    groups: list[np.ndarray], *, seed: int = 0, n_boot: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean over all values of `groups` (one array of runs per
    (model, task) pair) from a two-stage bootstrap: each replicate redraws the groups with
    replacement, then the values within each drawn group. The seeds of one task share it, so
    they are not independent draws of the question; with a single group this is the ordinary
    bootstrap over its values. ``(nan, nan)`` below two values."""
    groups = [np.asarray(group, dtype=float) for group in groups if len(group)]
    if sum(len(group) for group in groups) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for replicate in range(n_boot):
        drawn = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        means[replicate] = np.concatenate([rng.choice(g, len(g)) for g in drawn]).mean()
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def scorecard_row(
    progress: pd.DataFrame,
    *,
    learned: pd.DataFrame | None = None,
    threshold: float = DEFAULT_EXCESS_THRESHOLD,
    seed: int = 0,
) -> pd.DataFrame:
    """The scorecard's E3 row: mean ``lead`` over runs whose finished model has the block, with a
    95% two-stage bootstrap interval (:func:`two_stage_interval`: the (model, task) pairs, then
    their seeds); "before" when the interval lies below 0, "after" above 0, "undetermined"
    when it contains 0 (the block may form with the metric, or the runs cannot tell). With
    `learned` (:func:`layersim.analysis.run_tables.learned_table`), only runs of learned (model,
    task) pairs count: a metric that never moves has no saturation point."""
    progress = only_learned(progress, learned)
    onsets = onset_table(progress, threshold=threshold)
    formed = onsets[onsets["final_blocks"]]
    leads = formed["lead"].to_numpy(float)
    groups = [group["lead"].to_numpy(float) for _, group in formed.groupby(["model", "task"])]
    low, high = two_stage_interval(groups, seed=seed)
    if len(leads) == 0:
        verdict = "not testable: no finished model with a late block"
    elif not math.isnan(high) and high < 0:
        verdict = "before"
    elif not math.isnan(low) and low > 0:
        verdict = "after"
    else:
        verdict = "undetermined (the interval contains 0)"
    evidence = (
        f"{len(formed)} of {len(onsets)} runs end with a late block; mean onset "
        f"{formed['block_onset'].mean():.2f}, mean metric saturation "
        f"{formed['metric_saturation'].mean():.2f} of training"
        if len(formed)
        else f"0 of {len(onsets)} runs end with a late block"
    )
    row = verdict_row(
        "E3",
        "mean block onset minus metric saturation, fractions of training",
        float(leads.mean()) if len(leads) else math.nan,
        (low, high),
        verdict,
        evidence,
    )
    row["statement"] = QUESTION
    return pd.DataFrame([row])

"""The verdict rules every claim and question shares: the claims' statements, the verdict words,
the thresholds, intervals (Wilson for shares, a percentile bootstrap for means) and the
scorecard row they make.

A verdict is "reproduced" (or "yes") when the interval lies on the claim's side of its
threshold, "not reproduced" when it lies on the other side, and "undetermined" when it straddles
it (:func:`interval_verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "ALMOST_ALL",
    "CLAIMS",
    "CLAIM_IDS",
    "KNEE_TOLERANCE",
    "NOT_REPRODUCED",
    "NOT_TESTABLE",
    "REPRODUCED",
    "SCORECARD_COLUMNS",
    "UNDETERMINED",
    "interval_verdict",
    "wilson_interval",
]


#: The claims in the paper's words (Phang, Liu & Bowman 2021); C6 is this edition's hypothesis.
CLAIMS = {
    "C1": "After fine-tuning, the layer-by-layer CKA matrix is block diagonal: an early and a late "
    "cluster of layers.",
    "C2": "The block structure is consistent across (almost all) tasks.",
    "C3": "The pretrained model does not show it: similarity decays smoothly with layer distance.",
    "C4": "ELECTRA does not show the same consistent structure.",
    "C5": "Later layers add little: the top layers can be dropped, feeding the unchanged task "
    "head, and performance is kept.",
    "C6": "(hypothesis) The safe truncation depth matches the late block found by CKA.",
}


CLAIM_IDS = tuple(CLAIMS)


REPRODUCED = "reproduced"


NOT_REPRODUCED = "not reproduced"


UNDETERMINED = "undetermined"


NOT_TESTABLE = "not testable offline"


#: Share of (model, task) pairs that counts as "almost all" tasks (C2, C3, C4).
ALMOST_ALL = 0.75


#: Metric loss (absolute, metric units) that a truncated model may have and still "keep" it (C5).
KNEE_TOLERANCE = 0.01


#: Largest mean |knee - boundary|, as a fraction of the model's depth, that counts as a match
#: (C6): half a layer of a 6-layer model, one layer of a 12-layer one.
GAP_TOLERANCE = 1 / 12


SCORECARD_COLUMNS = [
    "claim", "statement", "statistic", "estimate", "lower", "upper", "verdict", "evidence"
]  # fmt: skip


PAIR_COLUMNS = ["preset", "model", "task"]


RUN_COLUMNS = [*PAIR_COLUMNS, "seed"]


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (better than the normal one for few trials).

    ``scipy.stats.binomtest(successes, trials).proportion_ci(method="wilson")``, without
    continuity correction. No trials give no interval: ``(nan, nan)``.

    Raises
    ------
    ValueError
        For counts that are not integers with ``0 <= successes <= trials``, or a `level`
        outside (0, 1).
    """
    for name, value in (("successes", successes), ("trials", trials)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    if successes > trials:
        raise ValueError(f"successes ({successes}) cannot exceed trials ({trials})")
    if not 0 < level < 1:
        raise ValueError(f"level must be a coverage strictly between 0 and 1; got {level!r}")
    if trials == 0:
        return (math.nan, math.nan)
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(
        confidence_level=level, method="wilson"
    )
    return (float(interval.low), float(interval.high))


def percentile_bootstrap(samples, statistic, seed: int, n_boot: int = 2000) -> tuple[float, float]:
    """95% percentile bootstrap interval of `statistic` (``scipy.stats.bootstrap``), resampling
    each sample independently; ``(nan, nan)`` when a sample has fewer than two values (a single
    value cannot show its own spread)."""
    samples = tuple(np.asarray(sample, dtype=np.float64) for sample in samples)
    if min(len(sample) for sample in samples) < 2:
        return (math.nan, math.nan)
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=n_boot,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def mean_over(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def difference_of_means(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(first, axis=axis) - np.mean(second, axis=axis)


def main_metric(task: str, available: Sequence[str]) -> str:
    from layersim.tasks import TASKS

    if task in TASKS and TASKS[task].metric in available:
        return TASKS[task].metric
    return available[0]


def verdict_row(claim: str, statistic: str, estimate: float, interval, verdict: str, evidence: str):
    low, high = interval
    return {
        "claim": claim,
        "statement": CLAIMS.get(claim, ""),
        "statistic": statistic,
        "estimate": estimate,
        "lower": low,
        "upper": high,
        "verdict": verdict,
        "evidence": evidence,
    }


def interval_verdict(
    estimate: float, interval: tuple[float, float], threshold: float, *, above: bool,
    inclusive: bool = False,
) -> str:  # fmt: skip
    """:data:`REPRODUCED` when the interval lies on the claim's side of `threshold` (above it
    with `above`, else below; touching it counts with `inclusive`), :data:`NOT_REPRODUCED` when
    it lies on the other side, :data:`UNDETERMINED` when it straddles the threshold. Without an
    interval (NaN ends: too few pairs) the estimate decides."""
    low, high = interval
    if math.isnan(low) or math.isnan(high):
        low = high = estimate
    if not above:  # mirror: "at most the threshold" is "at least minus the threshold"
        low, high, threshold = -high, -low, -threshold
    if low > threshold or (inclusive and low >= threshold):
        return REPRODUCED
    if high < threshold or (not inclusive and high <= threshold):
        return NOT_REPRODUCED
    return UNDETERMINED


def share_row(claim, statistic, hits, total, threshold, evidence, *, inclusive=False):
    if total == 0:
        return verdict_row(claim, statistic, math.nan, (math.nan, math.nan), NOT_TESTABLE, evidence)
    share = hits / total
    interval = wilson_interval(hits, total)
    verdict = interval_verdict(share, interval, threshold, above=True, inclusive=inclusive)
    return verdict_row(claim, statistic, share, interval, verdict, evidence)

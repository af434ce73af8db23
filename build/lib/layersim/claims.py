"""The paper's claims C1–C6 decided from the results tables: the book's scorecard.

Pure functions of the ``blocks`` and ``truncation`` tables of :func:`layersim.results.load`; the
book glues :func:`scorecard`'s frame, so no verdict is typed by hand. A **run** (model, task,
seed) has block structure when the lower end of the bootstrap interval of its ``excess`` clears
``threshold`` (:func:`layersim.blocks.has_block_structure`, default 0.05 CKA); a **(model, task)
pair** has it when a strict majority of its seeds do. A pair's **knee** is
:func:`layersim.truncate.truncation_knee` of its seed-averaged curve of the task's main metric (the
fewest layers kept with the metric within ``tolerance`` of the full model from there on);
``droppable = L - knee`` top layers can go.

=====  ========================================================  ================================
claim  estimate                                                  "reproduced" when the interval
=====  ========================================================  ================================
C1     share of fine-tuned runs (ELECTRA aside) with blocks      lies above 50% (a majority)
C2     share of (model, task) pairs (ELECTRA aside) with blocks  lies at or above 75% (almost all)
C3     share of runs whose *pretrained* matrix has no blocks     lies at or above 75%
C4     ELECTRA's C2 share minus the others'                      lies below 0 (ELECTRA's < 75%)
C5     share of pairs whose top layer(s) can be dropped          lies above 50%
C6     mean abs(knee - boundary) / depth over pairs with blocks  lies at or below 1/12 of depth
=====  ========================================================  ================================

A claim is "not reproduced" when its interval lies on the other side of the threshold, and
**undetermined** when the interval straddles it (:data:`UNDETERMINED`): the runs cannot tell.
With ``learned`` (:func:`learned_table`) every claim counts only the (model, task) pairs that
fine-tuning learned: a model at chance keeps its metric whatever layers go, so its truncation
curve says nothing, and a model that learned nothing is no test of what *fine-tuning* does to
its layers. Where counting every run changes the numbers, the evidence says so ("all runs: ...").
Shares carry a 95% Wilson interval, the C4 difference and the C6 mean a 95% percentile
bootstrap over pairs (``scipy.stats``; empty below two pairs, then the estimate decides). A
claim is "not testable offline" when the results hold nothing to test it on (no ELECTRA model for
C4, one task for C2, no blocks for C6). With ``robustness`` (the E4 table), C1's evidence names
the measurement choices under which fewer than 80% of the runs keep their block verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .blocks import DEFAULT_EXCESS_THRESHOLD
from .truncate import truncation_knee

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
    "learned_table",
    "left_out_note",
    "only_learned",
    "pair_table",
    "run_table",
    "scorecard",
    "scorecard_by_model",
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

_PAIR = ["preset", "model", "task"]
_RUN = [*_PAIR, "seed"]


def _is_electra(model: str) -> bool:
    return "electra" in model.lower()


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


def _percentile_bootstrap(samples, statistic, seed: int, n_boot: int = 2000) -> tuple[float, float]:
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


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def _difference_of_means(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(first, axis=axis) - np.mean(second, axis=axis)


def _excess(blocks: pd.DataFrame, kind: str, estimator: str) -> pd.DataFrame:
    rows = blocks[
        (blocks["kind"] == kind)
        & (blocks["statistic"] == "excess")
        & (blocks["estimator"] == estimator)
    ]
    if rows.duplicated(_RUN).any():
        raise ValueError(
            f"several {kind} excess rows per run (pooling {sorted(rows['pooling'].unique())}); "
            "select one pooling before deciding claims"
        )
    return rows.set_index(_RUN)[["value", "lower", "upper", "boundary"]]


def _main_metric(task: str, available: Sequence[str]) -> str:
    from .tasks import TASKS

    if task in TASKS and TASKS[task].metric in available:
        return TASKS[task].metric
    return available[0]


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
        metric = _main_metric(task, list(group["metric"].unique()))
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
        runs.groupby(_PAIR, sort=True)
        .agg(
            seeds=("seed", "nunique"),
            runs_with_blocks=("blocks", "sum"),
            boundary=("boundary", "mean"),
        )
        .reset_index()
    )
    pairs["blocks"] = pairs["runs_with_blocks"] * 2 > pairs["seeds"]
    curves = []
    for (preset, model, task), curve in truncation.groupby(_PAIR, sort=True):
        metric = _main_metric(task, list(dict.fromkeys(curve["metric"])))
        curve = curve[curve["metric"] == metric]
        knee = truncation_knee(curve["layers_kept"], curve["value"], tolerance=tolerance)
        layers = int(curve["layers_kept"].max())
        full = float(curve.loc[curve["layers_kept"] == layers, "value"].mean())
        curves.append((preset, model, task, metric, layers, full, knee))
    columns = [*_PAIR, "metric", "layers", "full_value", "knee"]
    pairs = pairs.merge(pd.DataFrame(curves, columns=columns), on=_PAIR, how="left")
    pairs["droppable"] = pairs["layers"] - pairs["knee"]
    pairs["gap"] = pairs["knee"] - pairs["boundary"]
    return pairs


def _row(claim: str, statistic: str, estimate: float, interval, verdict: str, evidence: str):
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


def _share_row(claim, statistic, hits, total, threshold, evidence, *, inclusive=False):
    if total == 0:
        return _row(claim, statistic, math.nan, (math.nan, math.nan), NOT_TESTABLE, evidence)
    share = hits / total
    interval = wilson_interval(hits, total)
    verdict = interval_verdict(share, interval, threshold, above=True, inclusive=inclusive)
    return _row(claim, statistic, share, interval, verdict, evidence)


def _also_all(learned_hits: int, learned_total: int, hits: int, total: int, what: str) -> str:
    """'; all runs: x of y' when counting the unlearned pairs too changes the count."""
    if (hits, total) == (learned_hits, learned_total):
        return ""
    return f"; counting the tasks not learned too: {hits} of {total} {what}"


def scorecard(
    blocks: pd.DataFrame,
    truncation: pd.DataFrame,
    *,
    estimator: str = "biased",
    threshold: float = DEFAULT_EXCESS_THRESHOLD,
    tolerance: float = KNEE_TOLERANCE,
    seed: int = 0,
    learned: pd.DataFrame | None = None,
    robustness: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per claim (:data:`CLAIM_IDS` order): statistic, estimate, 95% interval, verdict.

    Parameters
    ----------
    blocks, truncation
        Tables of :func:`layersim.results.load` (each model from one preset; several models
        are pooled: :func:`scorecard_by_model` decides per model).
    estimator
        CKA estimator whose matrices decide C1–C4 and C6 (``biased``: the paper's).
    threshold
        Block-structure threshold on the lower end of the ``excess`` interval.
    tolerance
        Metric loss that still counts as kept (C5, C6).
    seed
        Seed of the bootstrap intervals.
    learned
        :func:`learned_table` of the same runs: every claim then counts only learned (model,
        task) pairs and its evidence names the others (and the counts with them, where they
        differ). None counts every pair.
    robustness
        The ``robustness`` table (E4) of the same runs: C1's evidence then names the choices
        (pooling, estimator, inputs) under which its verdict is fragile.

    Returns
    -------
    pandas.DataFrame
        Columns ``claim, statement, statistic, estimate, lower, upper, verdict, evidence``.
    """
    for frame in (blocks, truncation):
        if (frame.groupby("model")["preset"].nunique() > 1).any():
            raise ValueError(
                "scorecard: a model appears under several presets (e.g. demo and synthetic); "
                "pass one preset's runs of each model (filter on the preset column)"
            )
    every_run = run_table(blocks, estimator=estimator, threshold=threshold)
    every_pair = pair_table(
        blocks, truncation, estimator=estimator, threshold=threshold, tolerance=tolerance
    )
    runs, pairs = only_learned(every_run, learned), only_learned(every_pair, learned)
    left_out = left_out_note(every_pair, learned)
    main_runs = runs[~runs["model"].map(_is_electra).astype(bool)]
    main_pairs = pairs[~pairs["model"].map(_is_electra).astype(bool)]
    all_runs = every_run[~every_run["model"].map(_is_electra).astype(bool)]
    all_pairs = every_pair[~every_pair["model"].map(_is_electra).astype(bool)]
    rows = []

    hits, total = int(main_runs["blocks"].sum()), len(main_runs)
    fragile = _fragile_choices(robustness, learned)
    rows.append(
        _share_row(
            "C1",
            f"share of fine-tuned runs whose excess interval clears {threshold:g}",
            hits,
            total,
            0.5,
            f"{hits} of {total} runs (model, task, seed) show two blocks{left_out}"
            + _also_all(hits, total, int(all_runs["blocks"].sum()), len(all_runs), "runs")
            + fragile,
        )
    )

    hits, total = int(main_pairs["blocks"].sum()), len(main_pairs)
    tasks = main_pairs["task"].nunique()
    c2 = _share_row(
        "C2",
        "share of (model, task) pairs with blocks in a majority of seeds",
        hits,
        total,
        ALMOST_ALL,
        f"{hits} of {total} (model, task) pairs over {tasks} tasks{left_out}"
        + _also_all(hits, total, int(all_pairs["blocks"].sum()), len(all_pairs), "pairs"),
        inclusive=True,
    )
    if tasks < 2:
        c2["verdict"] = NOT_TESTABLE
        c2["evidence"] += "; consistency needs at least two tasks"
    rows.append(c2)

    tested, every = (frame.dropna(subset=["pretrained_lower"]) for frame in (main_runs, all_runs))
    hits, total = int((~tested["pretrained_blocks"].astype(bool)).sum()), len(tested)
    rows.append(
        _share_row(
            "C3",
            "share of runs whose pretrained matrix (same inputs) shows no blocks",
            hits,
            total,
            ALMOST_ALL,
            f"{hits} of {total} pretrained matrices without blocks{left_out}"
            + _also_all(
                hits,
                total,
                int((~every["pretrained_blocks"].astype(bool)).sum()),
                len(every),
                "matrices",
            ),  # fmt: skip
            inclusive=True,
        )
    )

    electra, others = pairs[pairs["model"].map(_is_electra).astype(bool)], main_pairs
    statistic = "ELECTRA's share of pairs with blocks minus the other models'"
    if electra.empty or others.empty:
        rows.append(_row("C4", statistic, math.nan, (math.nan, math.nan), NOT_TESTABLE,
                         "needs fine-tuned ELECTRA runs next to other models' (the paper "
                         "preset)"))  # fmt: skip
    else:
        e, o = electra["blocks"].to_numpy(float), others["blocks"].to_numpy(float)
        diff = float(e.mean() - o.mean())
        interval = _percentile_bootstrap((e, o), _difference_of_means, seed)
        verdict = interval_verdict(diff, interval, 0.0, above=False)
        if verdict == REPRODUCED and e.mean() >= ALMOST_ALL:
            verdict = NOT_REPRODUCED  # lower, but still "consistent" by C2's rule
        rows.append(_row("C4", statistic, diff, interval, verdict,
                         f"ELECTRA {int(e.sum())} of {len(e)} pairs, others {int(o.sum())} of "
                         f"{len(o)}{left_out}"))  # fmt: skip

    curves = pairs.dropna(subset=["knee"])
    hits, total = int((curves["droppable"] >= 1).sum()), len(curves)
    mean_drop = float(curves["droppable"].mean()) if total else math.nan
    rows.append(
        _share_row(
            "C5",
            f"share of (model, task) pairs whose top layer(s) can go within {tolerance:g} of the "
            "full model's metric",
            hits,
            total,
            0.5,
            f"{hits} of {total} pairs{left_out}; on average {mean_drop:.2f} top layers can be "
            "dropped",
        )
    )

    matched = pairs[pairs["blocks"].astype(bool)].dropna(subset=["gap"])
    statistic = "mean |knee - CKA boundary| as a fraction of depth, over pairs with blocks"
    if matched.empty:
        rows.append(_row("C6", statistic, math.nan, (math.nan, math.nan), NOT_TESTABLE,
                         "no (model, task) pair with block structure to compare with its knee"
                         + left_out))  # fmt: skip
    else:
        gaps = (matched["gap"].abs() / matched["layers"]).to_numpy(float)
        mean_gap = float(gaps.mean())
        interval = _percentile_bootstrap((gaps,), _mean, seed)
        rows.append(
            _row(
                "C6",
                statistic,
                mean_gap,
                interval,
                interval_verdict(mean_gap, interval, GAP_TOLERANCE, above=False, inclusive=True),
                f"{len(gaps)} pairs{left_out}; knee minus boundary, in layers: "
                + ", ".join(
                    f"{g:+.1f} of {n:.0f}"
                    for g, n in zip(matched["gap"], matched["layers"], strict=True)
                ),
            )  # fmt: skip
        )
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


#: Share of runs whose block verdict must stay for a measurement choice to count as harmless
#: (the same rule as E4's, :data:`layersim.robustness.MIN_AGREEMENT`).
ROBUST_SHARE = 0.8


def _fragile_choices(robustness: pd.DataFrame | None, learned: pd.DataFrame | None) -> str:
    """'; fragile under: pooling tokens (40% keep blocks), ...' from the E4 table, or ''."""
    if robustness is None or robustness.empty:
        return ""
    from .robustness import agreement_table  # the analysis of E4 lives there

    table = agreement_table(only_learned(robustness, learned))
    sizes = pd.to_numeric(table["level"], errors="coerce")
    table = table[~((table["factor"] == "n") & (sizes < 250))]  # too few inputs: not counted
    fragile = table[table["agree"] < ROBUST_SHARE]
    if fragile.empty:
        return "; the verdict holds under every other measurement choice of E4"
    return "; sensitive to the measurement (E4): " + ", ".join(
        f"{f} {lv} ({a:.0%} of runs keep the verdict)"
        for f, lv, a in zip(fragile["factor"], fragile["level"], fragile["agree"], strict=True)
    )


#: The ``model`` of :func:`scorecard_by_model`'s rows that pool every model.
ALL_MODELS = "all models"


def scorecard_by_model(
    blocks: pd.DataFrame,
    truncation: pd.DataFrame,
    *,
    learned: pd.DataFrame | None = None,
    claims: Sequence[str] = ("C1", "C2", "C3", "C5", "C6"),
    **options,
) -> pd.DataFrame:
    """The claims decided for each model alone, then for all models together.

    Each model's runs go through :func:`scorecard` on their own; the rows of :data:`ALL_MODELS`
    pool every run and pair (the models may come from different presets, e.g. MiniLM's ``demo``
    and the ``models`` preset). `options` are :func:`scorecard`'s (``threshold``, ...).

    Returns
    -------
    pandas.DataFrame
        ``model`` then :data:`SCORECARD_COLUMNS`, the `claims` of each model in model order, then
        those of all models (only when there are several).
    """
    models = list(dict.fromkeys(blocks["model"]))
    groups = [(model, blocks["model"] == model, truncation["model"] == model) for model in models]
    if len(models) > 1:
        groups.append((ALL_MODELS, blocks["model"].notna(), truncation["model"].notna()))
    frames = []
    for name, in_blocks, in_truncation in groups:
        card = scorecard(blocks[in_blocks], truncation[in_truncation], learned=learned, **options)
        frames.append(card[card["claim"].isin(claims)].assign(model=name))
    table = pd.concat(frames, ignore_index=True)
    return table[["model", *SCORECARD_COLUMNS]]

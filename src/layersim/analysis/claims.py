"""The paper's claims C1–C6 decided from the results tables: the book's scorecard.

Pure functions of the ``blocks`` and ``truncation`` tables of :func:`layersim.results.load`; the
book glues :func:`scorecard`'s frame, so no verdict is typed by hand. A **run** (model, task,
seed) has block structure when the lower end of the bootstrap interval of its ``excess`` clears
``threshold`` (:func:`layersim.stats.block_intervals.has_block_structure`, default 0.05 CKA); a
**(model, task) pair** has it when a strict majority of its seeds do. A pair's **knee** is
:func:`layersim.models.truncate.truncation_knee` of its seed-averaged curve of the task's main
metric (the fewest layers kept with the metric within ``tolerance`` of the full model from there
on); ``droppable = L - knee`` top layers can go.

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

The rules live in :mod:`layersim.analysis.verdicts`, the per-run and per-pair tables in
:mod:`layersim.analysis.run_tables`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from layersim.analysis.run_tables import (
    is_electra,
    left_out_note,
    only_learned,
    pair_table,
    run_table,
)
from layersim.analysis.verdicts import (
    ALMOST_ALL,
    GAP_TOLERANCE,
    KNEE_TOLERANCE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    SCORECARD_COLUMNS,
    difference_of_means,
    interval_verdict,
    mean_over,
    percentile_bootstrap,
    share_row,
    verdict_row,
)
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = ["scorecard", "scorecard_by_model"]


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
    main_runs = runs[~runs["model"].map(is_electra).astype(bool)]
    main_pairs = pairs[~pairs["model"].map(is_electra).astype(bool)]
    all_runs = every_run[~every_run["model"].map(is_electra).astype(bool)]
    all_pairs = every_pair[~every_pair["model"].map(is_electra).astype(bool)]
    rows = []

    hits, total = int(main_runs["blocks"].sum()), len(main_runs)
    fragile = _fragile_choices(robustness, learned)
    rows.append(
        share_row(
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
    c2 = share_row(
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
        share_row(
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

    electra, others = pairs[pairs["model"].map(is_electra).astype(bool)], main_pairs
    statistic = "ELECTRA's share of pairs with blocks minus the other models'"
    if electra.empty or others.empty:
        rows.append(verdict_row("C4", statistic, math.nan, (math.nan, math.nan), NOT_TESTABLE,
                         "needs fine-tuned ELECTRA runs next to other models' (the paper "
                         "preset)"))  # fmt: skip
    else:
        e, o = electra["blocks"].to_numpy(float), others["blocks"].to_numpy(float)
        diff = float(e.mean() - o.mean())
        interval = percentile_bootstrap((e, o), difference_of_means, seed)
        verdict = interval_verdict(diff, interval, 0.0, above=False)
        if verdict == REPRODUCED and e.mean() >= ALMOST_ALL:
            verdict = NOT_REPRODUCED  # lower, but still "consistent" by C2's rule
        rows.append(verdict_row("C4", statistic, diff, interval, verdict,
                         f"ELECTRA {int(e.sum())} of {len(e)} pairs, others {int(o.sum())} of "
                         f"{len(o)}{left_out}"))  # fmt: skip

    curves = pairs.dropna(subset=["knee"])
    hits, total = int((curves["droppable"] >= 1).sum()), len(curves)
    mean_drop = float(curves["droppable"].mean()) if total else math.nan
    rows.append(
        share_row(
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
        rows.append(verdict_row("C6", statistic, math.nan, (math.nan, math.nan), NOT_TESTABLE,
                         "no (model, task) pair with block structure to compare with its knee"
                         + left_out))  # fmt: skip
    else:
        gaps = (matched["gap"].abs() / matched["layers"]).to_numpy(float)
        mean_gap = float(gaps.mean())
        interval = percentile_bootstrap((gaps,), mean_over, seed)
        rows.append(
            verdict_row(
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
#: (the same rule as E4's, :data:`layersim.analysis.robustness.MIN_AGREEMENT`).
ROBUST_SHARE = 0.8


def _fragile_choices(robustness: pd.DataFrame | None, learned: pd.DataFrame | None) -> str:
    """'; fragile under: pooling tokens (40% keep blocks), ...' from the E4 table, or ''."""
    if robustness is None or robustness.empty:
        return ""
    from layersim.analysis.robustness import agreement_table  # the analysis of E4 lives there

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

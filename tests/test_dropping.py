"""layersim.analysis.dropping, the E1 and E2 readings of the layer-drop tables, on hand-made tables
whose answers are known: curves, safe budgets, rank correlations and the scorecard rows."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from layersim.analysis import dropping

DEPTH = 3


def _rows(task: str, seed: int, signal: str, budget: int, layers: str, values: dict) -> list:
    return [
        {"preset": "demo", "model": "m", "task": task, "seed": seed, "signal": signal,
         "budget": budget, "layers": layers, "condition": condition, "metric": metric,
         "value": value}
        for condition, value in values.items()
        for metric in ("accuracy", "f1")
    ]  # fmt: skip


def layer_drop_table(task: str = "movie_polarity", seeds=(0, 1), *, bi_better=True,
                     single=(0.05, 0.1, 0.02)) -> pd.DataFrame:  # fmt: skip
    """L = 3. Top-k: the unchanged head falls to 0.5 from budget 2, the re-fitted head keeps 0.9,
    0.8, 0.6 at budgets 1..3. Block influence drops layers {1}, {1,2} and keeps 0.9, 0.8 (or
    0.5, 0.5); dropping layer l alone costs single[l - 1]."""
    rows = []
    for seed in seeds:
        top = {0: 0.9, 1: 0.9, 2: 0.5, 3: 0.5}
        for n, value in top.items():
            layers = ",".join(str(i) for i in range(DEPTH - n + 1, DEPTH + 1))
            refit = {0: 0.9, 1: 0.9, 2: 0.8, 3: 0.6}[n]
            rows += _rows(task, seed, "top_k", n, layers, {"unchanged": value, "refit": refit})
        bi = {1: 0.9, 2: 0.8} if bi_better else {1: 0.5, 2: 0.5}
        rows += _rows(task, seed, "block_influence", 0, "", {"unchanged": 0.9, "refit": 0.9})
        for n, value in bi.items():
            layers = ",".join(str(i) for i in range(1, n + 1))
            rows += _rows(task, seed, "block_influence", n, layers,
                          {"unchanged": value, "refit": value})  # fmt: skip
        for layer, cost in enumerate(single, start=1):
            rows += _rows(task, seed, "single", 1, str(layer), {"unchanged": 0.9 - cost})
    return pd.DataFrame(rows)


def signals_table(task: str = "movie_polarity", seeds=(0, 1)) -> pd.DataFrame:
    """Block influence ordered like the single-layer losses (0.05, 0.1, 0.02): rho = +1; the
    consecutive CKA ordered the same way, i.e. wrongly (high CKA predicts a cheap layer): -1."""
    values = {"block_influence": (0.2, 0.3, 0.1), "consecutive_cka": (0.5, 0.7, 0.4)}
    return pd.DataFrame(
        [
            {"preset": "demo", "model": "m", "task": task, "seed": seed, "layer": layer,
             "signal": signal, "value": v}
            for seed in seeds
            for signal, scores in values.items()
            for layer, v in enumerate(scores, start=1)
        ]
    )  # fmt: skip


def test_top_k_curves_count_layers_kept_from_the_top_and_keep_the_main_metric() -> None:
    curves = dropping.top_k_curves(layer_drop_table())
    assert set(curves["metric"]) == {"accuracy"}
    seed0 = curves[(curves["seed"] == 0) & (curves["condition"] == "unchanged")]
    assert dict(zip(seed0["layers_kept"], seed0["value"], strict=True)) == {
        3: 0.9, 2: 0.9, 1: 0.5, 0: 0.5
    }  # fmt: skip


def test_safe_budget_stops_at_the_first_budget_that_loses_the_metric() -> None:
    summary = dropping.signal_summary(layer_drop_table(), tolerance=0.01).set_index(
        ["signal", "condition"]
    )
    assert summary.loc[("top_k", "unchanged"), "safe_budget"] == 1
    assert summary.loc[("block_influence", "unchanged"), "safe_budget"] == 1  # 0.9, then 0.8
    # mean over budgets 1..L-1 = 1, 2
    assert summary.loc[("top_k", "unchanged"), "mean_value"] == pytest.approx((0.9 + 0.5) / 2)
    assert summary.loc[("block_influence", "unchanged"), "mean_value"] == pytest.approx(0.85)


def test_rank_correlation_is_plus_one_for_a_signal_ordered_like_the_measured_loss() -> None:
    rho = dropping.signal_loss_correlation(layer_drop_table(), signals_table())
    by_signal = rho.groupby("signal")["rho"].mean()
    assert by_signal["block_influence"] == pytest.approx(1.0)
    assert by_signal["consecutive_cka"] == pytest.approx(-1.0)
    assert set(rho["layers"]) == {DEPTH}


def test_scorecard_rows_answer_from_the_tables() -> None:
    tasks = ("movie_polarity", "movie_rating", "vitaminc")
    drop = pd.concat([layer_drop_table(task) for task in tasks])
    signals = pd.concat([signals_table(task) for task in tasks])
    rows = dropping.scorecard_rows(drop, signals).set_index("claim")
    assert rows.loc["E1", "verdict"] == dropping.YES  # the re-fitted head keeps more
    assert rows.loc["E1", "estimate"] > 0
    assert rows.loc["E2", "verdict"].startswith("yes: block influence")
    assert rows.loc["E2", "estimate"] == pytest.approx(0.85 - 0.7)
    assert "+1.00" in rows.loc["E2", "evidence"]
    # without a better signal the answer is no
    worse = pd.concat([layer_drop_table(task, bi_better=False) for task in tasks])
    row = dropping.scorecard_rows(worse, signals).set_index("claim").loc["E2"]
    assert row["verdict"].startswith(dropping.NO) and row["estimate"] < 0
    assert not math.isnan(row["lower"])


def test_a_signal_that_keeps_more_but_ranks_layers_against_their_cost_is_a_partial_answer():
    tasks = ("movie_polarity", "movie_rating", "vitaminc")
    drop = pd.concat([layer_drop_table(task) for task in tasks])
    signals = pd.concat([signals_table(task) for task in tasks])
    # block influence's per-layer scores reversed: it still keeps more than top-k, but the
    # layers it calls unimportant are the costly ones (rho = -1 in every run)
    reverse = signals["signal"] == "block_influence"
    signals.loc[reverse, "value"] = 0.4 - signals.loc[reverse, "value"]
    row = dropping.scorecard_rows(drop, signals).set_index("claim").loc["E2"]
    assert row["verdict"].startswith("partly: block influence keeps more than top-k but ranks")
    assert "-1.00 [-1.00, -1.00]" in row["evidence"]


def test_only_learned_pairs_count_and_the_others_are_named() -> None:
    tasks = ("movie_polarity", "movie_rating", "vitaminc")
    drop = pd.concat([layer_drop_table(task) for task in tasks])
    signals = pd.concat([signals_table(task) for task in tasks])
    learned = pd.DataFrame(
        {"model": "m", "task": list(tasks), "learned": [True, True, math.nan]}
    )  # NaN (no baselines) is not learned
    assert set(dropping.only_learned(drop, learned)["task"]) == {"movie_polarity", "movie_rating"}
    assert dropping.only_learned(drop, None) is drop
    rows = dropping.scorecard_rows(drop, signals, learned=learned).set_index("claim")
    assert rows.loc["E1", "evidence"].startswith("2 pairs (not learned, left out: vitaminc)")


def test_the_reading_states_the_tables_numbers() -> None:
    tasks = ("movie_polarity", "movie_rating", "vitaminc")
    drop = pd.concat([layer_drop_table(task) for task in tasks])
    signals = pd.concat([signals_table(task) for task in tasks])
    lines = dropping.reading(drop, signals)
    assert len(lines) == 3 and all(line.startswith("- **") for line in lines)
    # top-k, unchanged head: 0.9 at budget 1, 0.5 from 2: one layer goes; re-fitted: none
    # (0.8 at budget 2 is more than 0.01 below 0.9)
    assert "top-k drops 1.0 layers on average" in lines[0]
    assert "(re-fitted head: 1.0)" in lines[0]
    # with two layers dropped: unchanged 0.5 / 0.9 = 56%, re-fitted 0.8 / 0.9 = 89%
    assert "the unchanged head keeps 56% of the metric, the re-fitted head 89%" in lines[0]
    assert "block influence orders the layers much as their measured cost does (+1.00)" in lines[2]
    assert "consecutive CKA orders them against their cost (-1.00)" in lines[1]

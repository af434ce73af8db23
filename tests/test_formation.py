"""layersim.analysis.formation: block onset, metric saturation and the E3 answer on hand-made
snapshot tables whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from layersim.analysis import formation

STEPS = (0, 25, 50, 75, 100)


def progress_table(seed: int, lower: list, accuracy: list, task: str = "movie_polarity"):
    rows = []
    for step, low, value in zip(STEPS, lower, accuracy, strict=True):
        where = {"preset": "demo", "model": "m", "task": task, "seed": seed, "step": step,
                 "max_steps": 100}  # fmt: skip
        rows += [
            {**where, "statistic": "excess", "value": low + 0.05, "lower": low, "upper": low + 0.1},
            {**where, "statistic": "boundary", "value": 4.0, "lower": np.nan, "upper": np.nan},
            {**where, "statistic": "accuracy", "value": value, "lower": np.nan, "upper": np.nan},
            {**where, "statistic": "f1", "value": 0.0, "lower": np.nan, "upper": np.nan},
        ]
    return pd.DataFrame(rows)


def test_onset_and_saturation_are_the_first_fractions_from_which_on_they_hold() -> None:
    # excess clears 0.05 from 50% on; accuracy is within 10% of its 0.4 change from 75% on
    table = progress_table(0, [0.0, 0.0, 0.1, 0.1, 0.1], [0.5, 0.6, 0.8, 0.9, 0.9])
    row = formation.onset_table(table).iloc[0]
    assert row["metric"] == "accuracy" and row["snapshots"] == 5
    assert row["block_onset"] == 0.5 and row["metric_saturation"] == 0.75
    assert row["lead"] == pytest.approx(-0.25)
    # a block that comes and goes counts from its last appearance; none at the end: no onset
    comes_and_goes = progress_table(1, [0.1, 0.0, 0.1, 0.1, 0.1], [0.5] * 5)
    assert formation.onset_table(comes_and_goes).iloc[0]["block_onset"] == 0.5
    gone = formation.onset_table(progress_table(2, [0.1, 0.1, 0.1, 0.1, 0.0], [0.5] * 5))
    assert math.isnan(gone.iloc[0]["block_onset"]) and not gone.iloc[0]["final_blocks"]


def test_scorecard_row_says_before_with_or_after() -> None:
    early = pd.concat(
        progress_table(seed, [0.0, 0.1, 0.1, 0.1, 0.1], [0.5, 0.6, 0.7, 0.8 + seed / 100, 0.9])
        for seed in range(4)
    )
    row = formation.scorecard_row(early).iloc[0]
    assert row["claim"] == "E3" and row["verdict"] == "before"
    assert row["estimate"] == pytest.approx(0.25 - 1.0)
    late = pd.concat(
        progress_table(seed, [0.0, 0.0, 0.0, 0.0 if seed else 0.1, 0.1], [0.5, 0.9, 0.9, 0.9, 0.9])
        for seed in range(4)
    )
    assert formation.scorecard_row(late).iloc[0]["verdict"] == "after"
    none = progress_table(0, [0.0] * 5, [0.5] * 5)
    assert formation.scorecard_row(none).iloc[0]["verdict"].startswith("not testable")


def test_the_interval_redraws_tasks_before_seeds() -> None:
    # task a: three seeds with lead -0.5 (onset 0.25, saturation 0.75); task b: one seed with
    # lead +0.25 (onset 0.75, saturation 0.5). Redrawing the tasks gives aa (-0.5, p 1/4),
    # ab (-0.3125, p 1/2) or bb (+0.25, p 1/4): the interval is exactly [-0.5, 0.25]. Redrawing
    # the four runs alone would put the upper end at 0.0625 (four draws of b have p 1/256).
    a = [progress_table(seed, [0.0, 0.1, 0.1, 0.1, 0.1], [0.5, 0.6, 0.7, 0.9, 0.9], task="a")
         for seed in range(3)]  # fmt: skip
    b = progress_table(0, [0.0, 0.0, 0.0, 0.1, 0.1], [0.5, 0.7, 0.9, 0.9, 0.9], task="b")
    row = formation.scorecard_row(pd.concat([*a, b])).iloc[0]
    assert (row["lower"], row["upper"]) == pytest.approx((-0.5, 0.25))
    assert row["estimate"] == pytest.approx((3 * -0.5 + 0.25) / 4)
    assert row["verdict"] == "undetermined (the interval contains 0)"
    assert all(math.isnan(end) for end in formation.two_stage_interval([np.array([0.3])]))


def test_matrix_strip_labels_snapshots_by_share_of_training_in_order() -> None:
    cells = pd.DataFrame(
        [
            {"preset": "demo", "model": "m", "task": "t", "seed": 0, "step": step,
             "max_steps": 189, "layer_a": 1, "layer_b": 1, "cka": 1.0}
            for step in (189, 9, 0, 47)
        ]
    )  # fmt: skip
    frame, order = formation.matrix_strip(cells)
    assert order == ["0%", "5%", "25%", "100%"]
    assert set(frame["estimator"]) == {"biased"} and "kind" in frame


def test_runs_of_tasks_not_learned_are_left_out_of_the_answer() -> None:
    table = pd.concat([
        progress_table(0, [0.0, 0.1, 0.1, 0.1, 0.1], [0.5, 0.6, 0.7, 0.8, 0.9]),
        progress_table(0, [0.0, 0.0, 0.0, 0.0, 0.1], [0.5, 0.9, 0.9, 0.9, 0.9], task="vitaminc"),
    ])  # fmt: skip
    learned = pd.DataFrame({"model": "m", "task": ["movie_polarity", "vitaminc"],
                            "learned": [True, False]})  # fmt: skip
    row = formation.scorecard_row(table, learned=learned).iloc[0]
    assert row["evidence"].startswith("1 of 1 runs")
    assert row["estimate"] == pytest.approx(0.25 - 1.0)

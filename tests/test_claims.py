"""layersim.analysis.claims: verdicts on constructed tables whose answer is known by
construction."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from layersim.analysis import claims, run_tables, verdicts


def block_rows(model, task, seed, *, lower, pretrained_lower=-0.02, boundary=5, pooling="cls"):
    rows = []
    for kind, low in (("finetuned", lower), ("pretrained", pretrained_lower)):
        for statistic, value in (("excess", low + 0.02), ("contrast", 0.3)):
            rows.append({
                "preset": "demo", "model": model, "task": task, "seed": seed, "kind": kind,
                "estimator": "biased", "pooling": pooling, "statistic": statistic,
                "value": value, "lower": low, "upper": low + 0.04, "boundary": boundary,
            })  # fmt: skip
    return rows


def curve_rows(model, task, seed, values, metric="accuracy"):
    return [
        {
            "preset": "demo",
            "model": model,
            "task": task,
            "seed": seed,
            "layers_kept": k,
            "metric": metric,
            "value": v,
        }  # fmt: skip
        for k, v in enumerate(values)
    ]


FULL_DROP_ONE = [0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9]  # knee 5: the top layer can go
NO_DROP = [0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.9]  # knee 6


def tables(specs):
    """specs: (model, task, seed, finetuned lower, curve, boundary)."""
    blocks, curves = [], []
    for model, task, seed, lower, curve, boundary in specs:
        blocks += block_rows(model, task, seed, lower=lower, boundary=boundary)
        curves += curve_rows(model, task, seed, curve)
    return pd.DataFrame(blocks), pd.DataFrame(curves)


def card_of(specs, **kwargs):
    return claims.scorecard(*tables(specs), **kwargs).set_index("claim")


def test_wilson_interval_matches_the_textbook_value() -> None:
    # 3 successes of 4 at 95%: Wilson (1927) interval 0.3006 .. 0.9544 (hand-computed).
    low, high = verdicts.wilson_interval(3, 4)
    assert low == pytest.approx(0.3006, abs=5e-4) and high == pytest.approx(0.9544, abs=5e-4)
    assert verdicts.wilson_interval(0, 10)[0] == 0.0
    assert verdicts.wilson_interval(10, 10)[1] == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (1, 3), (7, 12), (50, 51)])
def test_wilson_interval_is_the_score_interval(k: int, n: int) -> None:
    # Wilson (1927): centre (k + z²/2) / (n + z²), half-width z sqrt(k(n-k)/n + z²/4) / (n + z²)
    z = 1.959963984540054
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    low, high = verdicts.wilson_interval(k, n)
    assert low == pytest.approx(centre - half, abs=1e-12)
    assert high == pytest.approx(centre + half, abs=1e-12)


def test_wilson_interval_edge_cases() -> None:
    assert all(math.isnan(end) for end in verdicts.wilson_interval(0, 0))  # no trials: no interval
    for successes, trials, match in [(5, 4, "cannot exceed"), (-1, 4, "non-negative"),
                                     (1.5, 4, "integer"), (True, 4, "integer")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            verdicts.wilson_interval(successes, trials)
    with pytest.raises(ValueError, match="level"):
        verdicts.wilson_interval(1, 4, level=95)


def test_one_row_per_claim_in_order() -> None:
    card = claims.scorecard(*tables([("m", "t1", 0, 0.2, FULL_DROP_ONE, 5)]))
    assert tuple(card["claim"]) == verdicts.CLAIM_IDS
    assert list(card.columns) == verdicts.SCORECARD_COLUMNS


def test_blocks_in_most_tasks_reproduce_c1_c2_and_c6() -> None:
    # 19 of 20 tasks with blocks in both seeds: every interval clears its threshold
    specs = [
        ("m", f"t{i}", seed, 0.2 if i < 19 else 0.0, FULL_DROP_ONE, 5)
        for i in range(20)
        for seed in (0, 1)
    ]
    card = card_of(specs)
    assert card.loc["C1", "estimate"] == pytest.approx(38 / 40)
    assert card.loc["C1", "lower"] > 0.5 and card.loc["C1", "verdict"] == verdicts.REPRODUCED
    assert card.loc["C2", "estimate"] == pytest.approx(19 / 20)
    assert card.loc["C2", "lower"] >= 0.75 and card.loc["C2", "verdict"] == verdicts.REPRODUCED
    assert card.loc["C3", "verdict"] == verdicts.REPRODUCED  # pretrained lower -0.02 everywhere
    assert card.loc["C5", "verdict"] == verdicts.REPRODUCED
    assert card.loc["C6", "estimate"] == 0.0  # knee 5 == boundary 5
    assert card.loc["C6", "verdict"] == verdicts.REPRODUCED
    assert card.loc["C4", "verdict"] == verdicts.NOT_TESTABLE


def test_an_interval_across_the_threshold_is_undetermined() -> None:
    # 6 of 8 runs with blocks: a majority, but the Wilson interval [0.41, 0.93] includes 50%
    specs = [
        ("m", f"t{i}", seed, 0.2 if i < 3 else 0.0, FULL_DROP_ONE, 5)
        for i in range(4)
        for seed in (0, 1)
    ]
    card = card_of(specs)
    assert card.loc["C1", "estimate"] == pytest.approx(6 / 8)
    assert card.loc["C1", "lower"] < 0.5 < card.loc["C1", "upper"]
    assert card.loc["C1", "verdict"] == verdicts.UNDETERMINED
    assert card.loc["C2", "verdict"] == verdicts.UNDETERMINED  # 3 of 4 pairs: [0.30, 0.95]


def test_interval_verdict_reads_the_side_of_the_threshold() -> None:
    verdict = verdicts.interval_verdict
    assert verdict(0.7, (0.6, 0.8), 0.5, above=True) == verdicts.REPRODUCED
    assert verdict(0.3, (0.2, 0.4), 0.5, above=True) == verdicts.NOT_REPRODUCED
    assert verdict(0.55, (0.4, 0.7), 0.5, above=True) == verdicts.UNDETERMINED
    assert verdict(0.75, (0.75, 0.9), 0.75, above=True) == verdicts.UNDETERMINED  # touches
    assert verdict(0.75, (0.75, 0.9), 0.75, above=True, inclusive=True) == verdicts.REPRODUCED
    assert verdict(0.05, (0.01, 0.07), 1 / 12, above=False, inclusive=True) == verdicts.REPRODUCED
    assert verdict(0.2, (0.1, 0.3), 1 / 12, above=False) == verdicts.NOT_REPRODUCED
    assert verdict(0.6, (math.nan, math.nan), 0.5, above=True) == verdicts.REPRODUCED  # estimate


def test_learned_leaves_chance_pairs_out_of_every_claim() -> None:
    # t0, t1 learned: blocks, nothing droppable (knee 6, boundary 5: gap 1); t2 at chance: its
    # flat curve drops every layer (knee 0) and would pull C5 up and C6's gap to 5 on its own;
    # its pretrained matrix has blocks, which would pull C3 down.
    flat = [0.5] * 7
    specs = [("m", "t0", 0, 0.2, NO_DROP, 5), ("m", "t1", 0, 0.2, NO_DROP, 5),
             ("m", "t2", 0, 0.2, flat, 5)]  # fmt: skip
    blocks, curves = tables(specs)
    chance = (blocks["task"] == "t2") & (blocks["kind"] == "pretrained")
    blocks.loc[chance, "lower"] = 0.2
    learned = pd.DataFrame({"model": "m", "task": ["t0", "t1", "t2"],
                            "learned": [True, True, False]})  # fmt: skip
    every = claims.scorecard(blocks, curves).set_index("claim")
    only = claims.scorecard(blocks, curves, learned=learned).set_index("claim")
    assert every.loc["C5", "estimate"] == pytest.approx(1 / 3)
    assert every.loc["C6", "estimate"] == pytest.approx((1 + 1 + 5) / 3 / 6)  # share of 6 layers
    assert only.loc["C5", "estimate"] == 0.0 and only.loc["C6", "estimate"] == pytest.approx(1 / 6)
    assert every.loc["C3", "estimate"] == pytest.approx(2 / 3)
    assert only.loc["C3", "estimate"] == 1.0
    assert "counting the tasks not learned too: 2 of 3 matrices" in only.loc["C3", "evidence"]
    assert "counting the tasks not learned too: 3 of 3 runs" in only.loc["C1", "evidence"]
    for claim in CLAIMS_WITH_PAIRS:
        assert "(not learned, left out: t2)" in only.loc[claim, "evidence"]


CLAIMS_WITH_PAIRS = ("C1", "C2", "C3", "C5", "C6")


def test_no_blocks_means_c1_not_reproduced_and_c6_not_testable() -> None:
    card = card_of([("m", f"t{i}", 0, 0.01, NO_DROP, 5) for i in range(10)])
    assert card.loc["C1", "estimate"] == 0.0
    assert card.loc["C1", "verdict"] == verdicts.NOT_REPRODUCED
    assert card.loc["C5", "verdict"] == verdicts.NOT_REPRODUCED
    assert card.loc["C6", "verdict"] == verdicts.NOT_TESTABLE
    assert math.isnan(card.loc["C6", "estimate"])


def test_c1_names_the_measurement_choices_that_change_its_verdict() -> None:
    blocks, curves = tables([("m", f"t{i}", 0, 0.2, NO_DROP, 5) for i in range(3)])
    rows = []
    for task in ("t0", "t1", "t2"):
        for pooling, lower in (
            ("cls", 0.2),
            ("mean", 0.2),
            ("tokens", 0.0 if task != "t0" else 0.2),
        ):
            rows.append({"preset": "demo", "model": "m", "task": task, "seed": 0,
                         "inputs": "validation", "pooling": pooling, "estimator": "biased",
                         "n": 1000, "statistic": "excess", "value": lower + 0.02,
                         "lower": lower, "upper": lower + 0.04, "boundary": 5})  # fmt: skip
    card = claims.scorecard(blocks, curves, robustness=pd.DataFrame(rows)).set_index("claim")
    assert (
        "sensitive to the measurement (E4): pooling tokens (33% of runs keep the verdict)"
        in (card.loc["C1", "evidence"])
    )
    assert "mean" not in card.loc["C1", "evidence"].split("E4)")[1]


def test_threshold_is_a_strict_lower_bound() -> None:
    at = card_of([("m", "t", 0, claims.DEFAULT_EXCESS_THRESHOLD, NO_DROP, 5)])
    assert at.loc["C1", "estimate"] == 0.0
    looser = card_of([("m", "t", 0, 0.03, NO_DROP, 5)], threshold=0.02)
    assert looser.loc["C1", "estimate"] == 1.0


def test_a_pair_needs_a_strict_majority_of_seeds() -> None:
    specs = [("m", "t", 0, 0.2, NO_DROP, 5), ("m", "t", 1, 0.0, NO_DROP, 5)]
    pairs = run_tables.pair_table(*tables(specs))
    assert pairs.loc[0, "runs_with_blocks"] == 1 and not pairs.loc[0, "blocks"]


def test_c2_needs_two_tasks() -> None:
    card = card_of([("m", "t", seed, 0.2, NO_DROP, 5) for seed in range(3)])
    assert card.loc["C2", "verdict"] == verdicts.NOT_TESTABLE


def test_c6_interval_is_a_bootstrap_of_the_mean_gap() -> None:
    # boundaries 5, 3 and 4 against knee 5 on every curve: gaps 0, 2 and 1 of 6 layers, mean 1/6
    specs = [("m", f"t{i}", 0, 0.2, FULL_DROP_ONE, b) for i, b in enumerate((5, 3, 4))]
    card = card_of(specs)
    assert card.loc["C6", "estimate"] == pytest.approx(1 / 6)
    low, high = card.loc["C6", ["lower", "upper"]]
    # a resampled mean of three values lies between their minimum and maximum
    assert 0.0 <= low < 1 / 6 < high <= 2 / 6
    same = card_of([("m", f"t{i}", 0, 0.2, FULL_DROP_ONE, 4) for i in range(3)])
    assert tuple(same.loc["C6", ["lower", "upper"]]) == pytest.approx((1 / 6, 1 / 6))


def test_c6_of_a_single_pair_has_no_interval() -> None:
    card = card_of([("m", "t", 0, 0.2, FULL_DROP_ONE, 4)])
    assert card.loc["C6", "estimate"] == pytest.approx(1 / 6)  # one layer of six
    assert math.isnan(card.loc["C6", "lower"]) and math.isnan(card.loc["C6", "upper"])


def test_knee_mismatch_fails_c6() -> None:
    card = card_of([("m", f"t{i}", 0, 0.2, NO_DROP, 4) for i in range(3)])
    assert card.loc["C6", "estimate"] == pytest.approx(2 / 6)  # knee 6, boundary 4, of 6 layers
    assert card.loc["C6", "verdict"] == verdicts.NOT_REPRODUCED


def test_electra_is_compared_with_the_others() -> None:
    specs = [("roberta-base", f"t{i}", 0, 0.2, NO_DROP, 5) for i in range(4)]
    specs += [("google/electra-base-discriminator", f"t{i}", 0, 0.0, NO_DROP, 5) for i in range(4)]
    card = card_of(specs)
    assert card.loc["C4", "estimate"] == pytest.approx(-1.0)
    assert card.loc["C4", "verdict"] == verdicts.REPRODUCED
    # every ELECTRA pair lacks blocks and every other pair has them: no resample differs
    assert tuple(card.loc["C4", ["lower", "upper"]]) == (-1.0, -1.0)
    # ELECTRA runs are left out of C1: all remaining runs have blocks.
    assert card.loc["C1", "estimate"] == 1.0


def test_main_metric_of_a_known_task_decides_the_knee() -> None:
    # synth_agreement's main metric is accuracy; its MCC curve (listed first) would give knee 6.
    blocks, _ = tables([("m", "synth_agreement", 0, 0.2, NO_DROP, 5)])
    curves = pd.DataFrame(
        curve_rows("m", "synth_agreement", 0, NO_DROP, metric="matthews_correlation")
        + curve_rows("m", "synth_agreement", 0, FULL_DROP_ONE, metric="accuracy")
    )
    pairs = run_tables.pair_table(blocks, curves)
    assert pairs.loc[0, "metric"] == "accuracy" and pairs.loc[0, "knee"] == 5


def test_bad_tables_are_refused() -> None:
    blocks, curves = tables([("m", "t", 0, 0.2, NO_DROP, 5)])
    with pytest.raises(ValueError, match="lacks column 'boundary'"):
        claims.scorecard(blocks.drop(columns="boundary"), curves)
    two_poolings = pd.concat([blocks, blocks.assign(pooling="mean")])
    with pytest.raises(ValueError, match="select one pooling"):
        claims.scorecard(two_poolings, curves)
    with pytest.raises(ValueError, match="several presets"):
        claims.scorecard(pd.concat([blocks, blocks.assign(preset="tiny")]), curves)
    with pytest.raises(ValueError, match="estimator 'debiased'"):
        claims.scorecard(blocks, curves, estimator="debiased")


def test_learned_table_compares_the_seed_mean_with_the_best_baseline() -> None:
    key = {"preset": "demo", "model": "m"}

    def metric_rows(task, values):
        return [{**key, "task": task, "seed": s, "metric": "accuracy", "value": v}
                for s, v in enumerate(values)]  # fmt: skip

    def base_rows(task, majority, probe):
        return [{**key, "task": task, "seed": 0, "baseline": b, "metric": "accuracy", "value": v}
                for b, v in (("majority", majority), ("probe_pooled", probe),
                             ("probe_mean", probe - 0.1))]  # fmt: skip

    metrics = pd.DataFrame(
        metric_rows("clear", [0.9, 0.92, 0.91])  # mean 0.91, sd 0.01, best baseline 0.7
        + metric_rows("noisy", [0.6, 0.9, 0.75])  # mean 0.75, sd 0.15 > margin 0.05
        + metric_rows("below", [0.5, 0.52, 0.51])  # under the majority class
        + metric_rows("unknown", [0.8])
    )
    baselines = pd.DataFrame(
        base_rows("clear", 0.5, 0.7) + base_rows("noisy", 0.5, 0.7) + base_rows("below", 0.55, 0.5)
    )
    table = run_tables.learned_table(metrics, baselines).set_index("task")
    assert table.loc["clear", "learned"] is True
    assert table.loc["clear", "margin"] == pytest.approx(0.21)
    assert table.loc["clear", "spread"] == pytest.approx(0.01)
    assert table.loc["noisy", "learned"] is False and table.loc["below", "learned"] is False
    assert table.loc["below", "probe"] == pytest.approx(0.5)  # the better of the two probes
    assert math.isnan(table.loc["unknown", "margin"]) and math.isnan(
        table.loc["unknown", "learned"]
    )


def test_c6_counts_the_gap_as_a_share_of_each_models_depth() -> None:
    # one layer off in a 6-layer model (1/6) is too much; one layer off in a 12-layer one (1/12)
    # is within the tolerance
    deep = [0.5] * 11 + [0.9, 0.9]  # knee 11 of 12
    shallow = card_of([("small", f"t{i}", 0, 0.2, FULL_DROP_ONE, 4) for i in range(2)])
    assert shallow.loc["C6", "verdict"] == verdicts.NOT_REPRODUCED
    deeper = card_of([("big", f"t{i}", 0, 0.2, deep, 10) for i in range(2)])
    assert deeper.loc["C6", "estimate"] == pytest.approx(1 / 12)
    assert deeper.loc["C6", "verdict"] == verdicts.REPRODUCED


def test_scorecard_by_model_decides_each_model_alone_then_all() -> None:
    specs = [("a", f"t{i}", s, 0.2, FULL_DROP_ONE, 5) for i in range(2) for s in range(2)]
    specs += [("b", f"t{i}", s, 0.0, NO_DROP, 5) for i in range(2) for s in range(2)]
    blocks, curves = tables(specs)
    blocks.loc[blocks["model"] == "b", "preset"] = "models"  # models may come from two presets
    curves.loc[curves["model"] == "b", "preset"] = "models"
    card = claims.scorecard_by_model(blocks, curves).set_index(["model", "claim"])
    assert list(card.index.get_level_values(0).unique()) == ["a", "b", claims.ALL_MODELS]
    assert set(card.index.get_level_values(1)) == {"C1", "C2", "C3", "C5", "C6"}
    assert card.loc[("a", "C1"), "estimate"] == 1.0  # every run of a has blocks
    assert card.loc[("b", "C1"), "estimate"] == 0.0
    assert card.loc[(claims.ALL_MODELS, "C1"), "estimate"] == 0.5  # 4 of 8 runs
    assert card.loc[("b", "C5"), "verdict"] == verdicts.UNDETERMINED  # 0 of 2 pairs: [0, 0.66]
    assert card.loc[(claims.ALL_MODELS, "C5"), "estimate"] == 0.5

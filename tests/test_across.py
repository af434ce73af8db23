"""layersim.analysis.across (E5) and steps.across_table: pairs counted by hand, the rectangular
matrices against a plain float64 CKA formula, identical models agreeing exactly, and the parting
depth of tables built with a known answer."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from layersim import results
from layersim.analysis import across
from layersim.pipeline import finetune, steps
from layersim.pipeline.steps import across_inputs
from layersim.results import RunKey


def plain_linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Biased linear CKA in feature space (Kornblith et al. 2019, eq. 5), in float64."""
    x, y = x.double().numpy(), y.double().numpy()
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def test_labels_round_trip_and_bad_labels_are_refused() -> None:
    assert across_inputs.split_label(across_inputs.run_label("movie_polarity", 2)) == (
        "movie_polarity",
        2,
    )
    assert across_inputs.split_label(across_inputs.pretrained_label(0)) == ("pretrained", 0)
    with pytest.raises(ValueError, match="not a run label"):
        across_inputs.split_label("movie_polarity")


def test_model_pairs_of_a_grid_are_the_seed_task_and_pretrained_pairs() -> None:
    runs = [(task, seed) for task in ("a", "b", "c", "d", "e") for seed in (0, 1, 2)]
    pairs = across_inputs.model_pairs(runs)
    kinds = pd.Series([kind for kind, _, _ in pairs]).value_counts().to_dict()
    # seeds: 3 choose 2 per task; tasks: 5 choose 2 per seed; one pretrained row per run
    assert kinds == {"seeds": 5 * 3, "tasks": 3 * 10, "pretrained": 15}
    assert ("seeds", "a/seed0", "a/seed2") in pairs and ("tasks", "a/seed1", "c/seed1") in pairs
    assert ("pretrained", "pretrained/seed1", "b/seed1") in pairs
    assert not any(kind == "tasks" and a[-1] != b[-1] for kind, a, b in pairs)  # same seed
    assert len(set(pairs)) == len(pairs)


def test_across_rows_are_plain_cka_of_every_layer_pair() -> None:
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(3, 50, 6, generator=generator, dtype=torch.float64)
    rotation = torch.linalg.qr(torch.randn(6, 6, generator=generator, dtype=torch.float64))[0]
    second = first[[2, 0, 1]] @ rotation
    second = second + 0.5 * torch.randn(3, 50, 6, generator=generator, dtype=torch.float64)
    representations = {"pretrained/seed0": first, "t/seed0": second}
    pairs = [("pretrained", "pretrained/seed0", "t/seed0")]
    table = across_inputs.across_rows("demo", "m", representations, pairs, layers=[1, 2, 3],
                               pooling="cls")  # fmt: skip
    biased = table[table["estimator"] == "biased"]
    assert len(biased) == 9 and set(table["estimator"]) == {"biased", "debiased"}
    for row in biased.itertuples():
        want = plain_linear_cka(first[row.layer_a - 1], second[row.layer_b - 1])
        assert row.cka == pytest.approx(want, abs=1e-10)
    # the second model's layer 1 is a rotated, noisy copy of the first model's layer 3
    best = biased.loc[biased[biased["layer_b"] == 1]["cka"].idxmax()]
    assert best["layer_a"] == 3
    assert (table["n"] == 50).all()


def test_across_rows_refuse_missing_models_and_mismatched_inputs() -> None:
    reps = {"a/seed0": torch.randn(2, 10, 4), "a/seed1": torch.randn(2, 12, 4)}
    with pytest.raises(ValueError, match="no representations"):
        across_inputs.across_rows("demo", "m", reps, [("seeds", "a/seed0", "a/seed9")],
                                  layers=[1, 2],
                                  pooling="cls")  # fmt: skip
    with pytest.raises(ValueError, match="same 2 layers and inputs"):
        across_inputs.across_rows("demo", "m", reps, [("seeds", "a/seed0", "a/seed1")],
                                  layers=[1, 2],
                                  pooling="cls")  # fmt: skip


def _constructed(seeds: dict[int, float], tasks: dict[int, float]) -> pd.DataFrame:
    """An across table whose same-layer CKA is `seeds[l]` for seed pairs and `tasks[l]` for task
    pairs (with a little spread over pairs), and 0.5 for the pretrained rows."""
    runs = [(task, seed) for task in ("x", "y", "z") for seed in (0, 1, 2)]
    rng = np.random.default_rng(0)
    rows = []
    for comparison, a, b in across_inputs.model_pairs(runs):
        for layer in seeds:
            value = {"seeds": seeds, "tasks": tasks}.get(comparison, dict.fromkeys(seeds, 0.5))
            rows.append({"preset": "demo", "model": "m", "comparison": comparison, "run_a": a,
                         "run_b": b, "layer_a": layer, "layer_b": layer, "estimator": "biased",
                         "pooling": "cls", "n": 100,
                         "cka": value[layer] + rng.uniform(-0.01, 0.01)})  # fmt: skip
    return pd.DataFrame(rows)


def test_parting_depth_is_where_seeds_start_to_agree_more_than_tasks() -> None:
    table = _constructed({1: 0.95, 2: 0.95, 3: 0.9, 4: 0.9}, {1: 0.95, 2: 0.95, 3: 0.6, 4: 0.4})
    diagonals = across.diagonal(table)
    agreement = across.agreement_table(diagonals)
    seeds = agreement[agreement["comparison"] == "seeds"]
    assert seeds["pairs"].unique().tolist() == [9] and seeds["mean"].between(0.89, 0.96).all()
    parting = across.parting_table(diagonals)
    assert parting["parted"].tolist() == [False, False, True, True]
    assert across.parting_depth(parting) == 3
    row = across.scorecard_row(table).iloc[0]
    assert row["claim"] == "E5" and row["estimate"] == 3
    assert row["verdict"].startswith("tasks part from layer 3 of 4")
    assert "9 seeds pairs" in row["evidence"] and "9 tasks pairs" in row["evidence"]


def _redrawn_grid_difference(cka: dict, tasks: list[str], seeds: list[int]) -> float:
    """Seeds-minus-tasks mean CKA of a grid built from drawn positions: every two positions of
    one task that hold different seeds make a seeds pair, every two positions of one seed that
    hold different tasks a tasks pair; each stands for the original pair's CKA."""
    same_task = [cka["seeds", t, frozenset((s, u))] for t in tasks
                 for s, u in itertools.combinations(seeds, 2) if s != u]  # fmt: skip
    same_seed = [cka["tasks", s, frozenset((t, v))] for s in seeds
                 for t, v in itertools.combinations(tasks, 2) if t != v]  # fmt: skip
    if not same_task or not same_seed:
        return math.nan
    return float(np.mean(same_task) - np.mean(same_seed))


def test_grid_differences_average_the_pairs_of_every_redrawn_grid() -> None:
    runs = [(task, seed) for task in ("x", "y", "z") for seed in (0, 1)]
    rng = np.random.default_rng(3)
    pairs = pd.DataFrame([
        {"comparison": c, "run_a": a, "run_b": b, "cka": rng.uniform(0.2, 1.0)}
        for c, a, b in across_inputs.model_pairs(runs) if c != "pretrained"
    ])  # fmt: skip
    cka = {}
    for c, a, b, value in pairs[["comparison", "run_a", "run_b", "cka"]].itertuples(index=False):
        (ta, sa), (tb, sb) = across_inputs.split_label(a), across_inputs.split_label(b)
        key = (
            ("seeds", ta, frozenset((sa, sb)))
            if c == "seeds"
            else ("tasks", sa, frozenset((ta, tb)))
        )
        cka[key] = value
    tasks, seeds = across.grid_tasks_and_seeds(pairs)
    draws = [
        (dt, ds)
        for dt in itertools.product(tasks, repeat=3)
        for ds in itertools.product(seeds, repeat=2)
    ]  # every ordered draw: 27 x 4
    counts_t = np.array([[dt.count(t) for t in tasks] for dt, _ in draws])
    counts_s = np.array([[ds.count(s) for s in seeds] for _, ds in draws])
    found = across.grid_differences(pairs, counts_t, counts_s)
    expected = [_redrawn_grid_difference(cka, list(dt), list(ds)) for dt, ds in draws]
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)  # NaN where expected NaN
    assert np.isnan(found).sum() == 27 * 2 + 3 * 4 - 3 * 2  # one seed drawn, or one task
    low, high = across.grid_bootstrap(pairs, n_boot=4000)
    assert np.nanmin(expected) <= low < high <= np.nanmax(expected)
    one_seed = pairs[pairs["comparison"] == "tasks"]
    assert all(math.isnan(end) for end in across.grid_bootstrap(one_seed))


def test_parting_needs_every_deeper_layer_and_says_when_there_is_none() -> None:
    parted = pd.DataFrame({"layer": [1, 2, 3, 4], "parted": [True, False, True, False]})
    assert math.isnan(across.parting_depth(parted))
    parted["parted"] = [True, False, True, True]
    assert across.parting_depth(parted) == 3
    alike = _constructed(dict.fromkeys([1, 2, 3], 0.9), dict.fromkeys([1, 2, 3], 0.9))
    assert across.scorecard_row(alike).iloc[0]["verdict"].startswith("no depth")


def test_unlearned_tasks_leave_the_comparison() -> None:
    table = _constructed({1: 0.9, 2: 0.9}, {1: 0.9, 2: 0.5})
    learned = pd.DataFrame({"model": ["m", "m", "m"], "task": ["x", "y", "z"],
                            "learned": [True, True, False]})  # fmt: skip
    kept = across.diagonal(table, learned=learned)
    assert not kept["task_a"].eq("z").any() and not kept["task_b"].eq("z").any()
    assert set(kept["comparison"]) == {"seeds", "tasks", "pretrained"}


def test_shared_inputs_take_each_task_and_the_correct_answer_of_a_question(tmp_path) -> None:
    rows = [
        {"id": f"q{i}", "question": f"Question number {i} about where milk goes?",
         "question_concept": "milk", "answerKey": "B",
         "choices": {"label": list("ABCDE"), "text": ["oven", "fridge", "shelf", "car", "desk"]}}
        for i in range(4)
    ]  # fmt: skip
    (tmp_path / "commonsense_qa").mkdir()
    (tmp_path / "commonsense_qa" / "validation.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows)
    )
    tokenizer = finetune.load_tokenizer("tiny-bert")
    inputs = across_inputs.shared_inputs(
        ["synth_sentiment", "commonsense_qa"], tokenizer, per_task=4, max_length=32,
        data_dir=str(tmp_path),
    )  # fmt: skip
    assert sorted(inputs["source"]) == ["commonsense_qa"] * 4 + ["synth_sentiment"] * 4
    lengths = [len(ids) for ids in inputs["input_ids"]]
    assert lengths == sorted(lengths)  # sorted by length
    questions = [ids for ids, s in zip(inputs["input_ids"], inputs["source"], strict=True)
                 if s == "commonsense_qa"]  # fmt: skip
    text = tokenizer.decode(questions[0], skip_special_tokens=True)
    assert "fridge" in text and "oven" not in text  # the correct answer, B, only
    with pytest.raises(ValueError, match="per_task"):
        across_inputs.shared_inputs(["synth_sentiment"], tokenizer, per_task=0, max_length=32)


def test_across_table_of_saved_models_agrees_exactly_where_the_weights_are_equal(tmp_path) -> None:
    # "fine-tuned" models that are the pretrained tiny-bert of their seed: every pretrained row
    # and every pair of two tasks at one seed (the same body) must have a same-layer CKA of 1.
    runs = [RunKey("tiny", "tiny-bert", task, seed)
            for task in ("synth_sentiment", "synth_agreement") for seed in (0, 1)]  # fmt: skip
    for key in runs:
        finetune.load_model("tiny-bert", key.task, seed=key.seed).save_pretrained(
            key.run_dir(tmp_path) / "model"
        )
    table = steps.across_table("tiny", "tiny-bert", runs, work_dir=str(tmp_path), per_task=30)
    results.write_grid_table(tmp_path / "results", "tiny", "tiny-bert", "across", table)
    table = results.load(tmp_path / "results", "across")
    biased = table[(table["estimator"] == "biased") & (table["layer_a"] == table["layer_b"])]
    same = biased[biased["comparison"].isin(["pretrained", "tasks"])]
    assert len(same) and ((same["cka"] - 1).abs() < 1e-6).all()
    # two random initialisations differ
    assert (biased[biased["comparison"] == "seeds"]["cka"] < 0.999).all()
    assert set(table["n"]) == {60} and set(table["layer_a"]) == {1, 2, 3, 4}


def test_several_models_each_get_their_own_answer() -> None:
    first = _constructed({1: 0.95, 2: 0.9}, {1: 0.95, 2: 0.5})
    second = _constructed({1: 0.9, 2: 0.9}, {1: 0.5, 2: 0.5}).assign(model="m2")
    row = across.scorecard_row(pd.concat([first, second], ignore_index=True)).iloc[0]
    assert math.isnan(row["estimate"])
    assert "m: tasks part from layer 2 of 2" in row["verdict"]
    assert "m2: tasks part from layer 1 of 2" in row["verdict"]

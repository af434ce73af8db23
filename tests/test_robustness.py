"""layersim.analysis.robustness and steps.robustness_tables (E4): the poolings against the hidden
states read by hand, the block statistics against a plain float64 CKA (biased and debiased), and the
agreement analysis on hand-made tables whose answers are known."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from cka_reference import reference_cka_matrix

from layersim import results, tasks
from layersim.analysis import robustness
from layersim.models import layer_cache
from layersim.pipeline import evaluation, steps
from layersim.pipeline.steps import robustness_choices
from layersim.results import TABLES, RunKey
from layersim.stats import blocks

TASK = "synth_sentiment"
KEY = RunKey("tiny", "tiny-bert", TASK, 0)


def _cache(model, tokenizer, n: int, batch_size: int = 16):
    encoded = tasks.encode(TASK, tokenizer, tasks.load(TASK, "validation", limit=n), max_length=64)
    return layer_cache.cached_hidden_states(model, tokenizer, TASK, encoded, batch_size=batch_size)


def test_sizes_are_nested_and_a_small_split_is_used_whole() -> None:
    assert robustness_choices.sizes_for(5000) == [100, 250, 500, 1000]
    assert robustness_choices.sizes_for(828) == [100, 250, 500, 828]
    assert robustness_choices.sizes_for(157) == [100, 157]
    assert robustness_choices.sizes_for(60) == [60]
    with pytest.raises(ValueError, match="too few"):
        robustness_choices.sizes_for(5)


def test_each_pooling_reads_the_hidden_states_it_says(tiny_bert) -> None:
    model, tokenizer = tiny_bert
    cache = _cache(model, tokenizer, 24, batch_size=10)  # batches of 10, 10 and 4
    states = robustness_choices.pooled_states(cache, tokenizer.all_special_ids, seed=3)
    special = set(tokenizer.all_special_ids)
    rows = 0
    for batch, hidden in cache:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        for r in range(ids.shape[0]):
            real = [p for p in range(ids.shape[1]) if mask[r, p]]
            words = [p for p in real if int(ids[r, p]) not in special]
            torch.testing.assert_close(states["cls"][1][:, rows], hidden[1:, r, 0])
            torch.testing.assert_close(states["mean"][1][:, rows], hidden[:, r, real].mean(1))
            drawn = states["tokens"][1][:, rows]  # one real, non-special token of this input
            matches = [p for p in words if torch.equal(hidden[:, r, p], drawn)]
            assert matches, "the drawn token is not a real, non-special token of its input"
            rows += 1
    assert states["cls"][0] == [1, 2, 3, 4] and states["mean"][0] == [0, 1, 2, 3, 4]
    assert all(x.shape[1] == 24 for _, x in states.values())
    again = robustness_choices.pooled_states(cache, tokenizer.all_special_ids, seed=3)
    assert torch.equal(again["tokens"][1], states["tokens"][1])  # the draw is seeded


def test_choice_rows_match_a_plain_cka_of_the_first_n_rows() -> None:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 60, 6, generator=generator)
    x = torch.stack([latents[int(layer >= 3)] + 0.4 * torch.randn(60, 6, generator=generator)
                     for layer in range(6)])  # fmt: skip
    states = {"cls": (list(range(1, 7)), x)}
    rows = pd.DataFrame(robustness_choices.choice_rows(states, sizes=[30, 60], n_boot=20, seed=1))
    assert len(rows) == 2 * 2 * 2  # sizes x estimators x (excess, contrast)
    for (n, estimator), group in rows.groupby(["n", "estimator"]):
        matrix = reference_cka_matrix(x[:, :n], x[:, :n], debiased=estimator == "debiased")
        split = blocks.best_split(matrix.numpy())
        values = group.set_index("statistic")["value"]
        assert values["excess"] == pytest.approx(split.excess, abs=1e-6)
        assert values["contrast"] == pytest.approx(split.contrast, abs=1e-6)
        assert (group["boundary"] == split.boundary + 1).all()  # hidden-state index: layers 1..6
        assert (group["lower"] <= group["upper"]).all()
    assert (rows["boundary"] == 4).all()  # the constructed edge: layers 1-3 | 4-6
    with pytest.raises(ValueError, match="only 60 rows"):
        robustness_choices.choice_rows(states, sizes=[61])


def test_robustness_tables_agree_with_the_similarity_path_and_the_metrics(
    tiny_bert, tmp_path
) -> None:
    model, tokenizer = tiny_bert
    tables = steps.robustness_tables(KEY, model, tokenizer, TASK, preset="tiny", sizes=[20, 40],
                                     domains=["synth_agreement"], domain_examples=30,
                                     n_boot=10)  # fmt: skip
    table, scores = tables["robustness"], tables["robustness_metrics"]
    for name in tables:
        assert list(tables[name].columns) == list(TABLES[name])
    choices = table.groupby(["inputs", "n"]).size().to_dict()
    # own inputs: 3 poolings x 2 estimators x (excess, contrast); other domains: first token only
    assert choices == {("validation", 20): 12, ("validation", 40): 12, ("synth_agreement", 30): 4}
    # the paper's choice equals the similarity step's block statistic on the same inputs
    raw = tasks.load(TASK, "validation", limit=40, seed=0)
    loader = torch.utils.data.DataLoader(
        tasks.encode(TASK, tokenizer, raw, max_length=64),
        batch_size=16,
        collate_fn=tasks.collator(TASK, tokenizer),
    )
    from layersim.models import reps  # the similarity step's path

    cls = reps.layer_representations(model, loader, pooling="cls", layers=[1, 2, 3, 4])
    paper = table[(table["inputs"] == "validation") & (table["n"] == 40) & (table["pooling"] ==
                  "cls") & (table["estimator"] == "biased")].set_index("statistic")  # fmt: skip
    split = blocks.best_split(reference_cka_matrix(cls, cls).numpy())
    assert paper.loc["excess", "value"] == pytest.approx(split.excess, abs=1e-6)
    # a smaller n reads the first rows in the inputs' own order (the pass runs in length order)
    first = [x[:20] for x in cls]
    prefix = table[(table["inputs"] == "validation") & (table["n"] == 20) & (table["pooling"] ==
                   "cls") & (table["estimator"] == "biased")].set_index("statistic")  # fmt: skip
    split = blocks.best_split(reference_cka_matrix(first, first).numpy())
    assert prefix.loc["excess", "value"] == pytest.approx(split.excess, abs=1e-6)
    # metrics on the own inputs equal the model scored the usual way on those 40 examples
    own = scores[scores["inputs"] == "validation"].set_index("metric")["value"].to_dict()
    usual = evaluation.evaluate_model(model, tokenizer, TASK, encoded=loader.dataset, preset="tiny")
    assert own == pytest.approx(usual)
    assert set(scores["inputs"]) == {"validation", "synth_agreement"}  # same kind, two labels
    for name, frame in tables.items():  # the results store accepts both tables
        results.write_table(tmp_path, KEY, name, frame)
        assert len(results.read_table(tmp_path, KEY, name)) == len(frame)


def _table(runs: dict[int, dict[tuple, float]]) -> pd.DataFrame:
    """A robustness table from {seed: {(inputs, pooling, estimator, n): lower end}}: the excess
    is the lower end + 0.1, the boundary 3 unless the lower end is exactly 0.2 (then 2)."""
    rows = []
    for seed, choices in runs.items():
        for (inputs, pooling, estimator, n), lower in choices.items():
            rows.append({"preset": "demo", "model": "m", "task": "t", "seed": seed,
                         "inputs": inputs, "pooling": pooling, "estimator": estimator, "n": n,
                         "statistic": "excess", "value": lower + 0.1, "lower": lower,
                         "upper": lower + 0.2, "boundary": 2 if lower == 0.2 else 3})  # fmt: skip
    return pd.DataFrame(rows)


def test_agreement_changes_one_choice_at_a_time() -> None:
    paper = ("validation", "cls", "biased", 1000)
    runs = {
        # blocks under the paper's choice; mean pooling loses them, fewer inputs keep them
        0: {paper: 0.3, ("validation", "mean", "biased", 1000): 0.0,
            ("validation", "cls", "debiased", 1000): 0.3, ("validation", "cls", "biased", 250): 0.3,
            ("validation", "mean", "debiased", 250): 0.0, ("tweet", "cls", "biased", 500): 0.2},
        # no blocks under the paper's choice; mean pooling finds them
        1: {paper: 0.0, ("validation", "mean", "biased", 1000): 0.3,
            ("validation", "cls", "debiased", 1000): 0.0, ("validation", "cls", "biased", 250): 0.0,
            ("validation", "mean", "debiased", 250): 0.3, ("tweet", "cls", "biased", 500): 0.0},
    }  # fmt: skip
    verdicts = robustness.verdict_table(_table(runs))
    assert verdicts["headline"].sum() == 2
    table = robustness.agreement_table(_table(runs)).set_index(["factor", "level"])
    # the two-factor change (mean, debiased, 250) is not a one-choice change: not counted
    assert set(table.index) == {("pooling", "mean"), ("estimator", "debiased"), ("n", "250"),
                                ("inputs", "tweet")}  # fmt: skip
    assert table.loc[("pooling", "mean"), "agree"] == 0.0
    assert table.loc[("estimator", "debiased"), "agree"] == 1.0
    assert table.loc[("n", "250"), "agree"] == 1.0 and table.loc[("n", "250"), "runs"] == 2
    # the tweet inputs keep seed 0's blocks but move its boundary (lower end 0.2: boundary 2)
    assert table.loc[("inputs", "tweet"), "agree"] == 1.0
    assert table.loc[("inputs", "tweet"), "same_boundary"] == 0.0
    assert table.loc[("estimator", "debiased"), "same_boundary"] == 1.0
    row = robustness.scorecard_row(_table(runs)).iloc[0]
    assert row["claim"] == "E4" and row["estimate"] == 0.0
    assert row["verdict"] == "no: pooling mean"


def test_scorecard_says_yes_when_every_change_keeps_the_verdicts() -> None:
    paper = ("validation", "cls", "biased", 500)
    runs = {s: {paper: 0.3, ("validation", "tokens", "biased", 500): 0.3,
                ("validation", "cls", "biased", 100): 0.0}  # too few inputs: shown, not counted
            for s in range(3)}  # fmt: skip
    row = robustness.scorecard_row(_table(runs)).iloc[0]
    assert row["verdict"] == "yes" and row["estimate"] == 1.0
    assert "n 100" in row["evidence"] and "0% of 3 runs" in row["evidence"]
    assert math.isnan(robustness.scorecard_row(_table({0: {paper: 0.3}})).iloc[0]["estimate"])

"""layersim.pipeline.steps, the computations of the experiment notebooks, against independent
computations: CKA recomputed with plain float64 formulas, block boundaries known by construction,
and truncated models scored by hand from the full model's hidden states."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from cka_reference import reference_cka
from tiny_models import tiny_config
from transformers import AutoModelForSequenceClassification

from layersim import results, tasks
from layersim.models import truncate
from layersim.pipeline import evaluation, finetune, steps
from layersim.results import TABLES, RunKey
from layersim.stats import blocks

KEY = RunKey("tiny", "tiny-bert", "synth_sentiment", 0)


def plain_linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Biased linear CKA in feature space (Kornblith et al. 2019, eq. 5), in float64."""
    x = x.double().numpy()
    y = y.double().numpy()
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def two_block_reps(seed: int, *, n: int = 120, d: int = 8, early: int = 3, late: int = 3):
    """(early + late, n, d): the early layers rotate one latent, the late ones another."""
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, n, d, generator=generator)
    layers = []
    for layer in range(early + late):
        rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
        noise = 0.3 * torch.randn(n, d, generator=generator)
        layers.append(latents[int(layer >= early)] @ rotation + noise)
    return torch.stack(layers).float()


# ----------------------------------------------------------------------------
# Step 2: similarity
# ----------------------------------------------------------------------------


def test_compared_layers_skip_the_constant_first_token_embedding() -> None:
    assert steps.compared_layers(4, "cls") == [1, 2, 3, 4]
    assert steps.compared_layers(4, "first") == [1, 2, 3, 4]
    assert steps.compared_layers(4, "mean") == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="positive number of layers"):
        steps.compared_layers(0, "cls")


def test_cka_rows_hold_every_matrix_entry_in_the_table_schema() -> None:
    finetuned, pretrained = two_block_reps(0), two_block_reps(1) + 0.1 * two_block_reps(2)
    layers = [1, 2, 3, 4, 5, 6]  # hidden-state indices of the six representations
    matrices = steps.cka_matrices(finetuned, pretrained)
    table = steps.cka_rows(KEY, matrices, layers=layers, pooling="cls", n=120)
    assert list(table.columns) == list(TABLES["cka"])
    assert len(table) == 2 * 3 * 6 * 6
    assert list(dict.fromkeys(zip(table["estimator"], table["kind"], strict=True))) == [
        (estimator, kind) for estimator in ("biased", "debiased") for kind in results.CKA_KINDS
    ]
    assert set(table["layer_a"]) == set(table["layer_b"]) == set(layers)
    assert (table["n"] == 120).all() and (table["pooling"] == "cls").all()
    by_cell = table.set_index(["estimator", "kind", "layer_a", "layer_b"])["cka"]
    reps = {"finetuned": (finetuned, finetuned), "pretrained": (pretrained, pretrained),
            "pretrained_vs_finetuned": (pretrained, finetuned)}  # fmt: skip
    for kind, (rows_of, columns_of) in reps.items():
        for i, j in [(0, 0), (0, 4), (2, 5), (5, 1)]:
            a, b = layers[i], layers[j]
            expected = plain_linear_cka(rows_of[i], columns_of[j])
            assert by_cell["biased", kind, a, b] == pytest.approx(expected, abs=1e-6)
            debiased = reference_cka(rows_of[i], columns_of[j], debiased=True)
            assert by_cell["debiased", kind, a, b] == pytest.approx(debiased, abs=1e-6)


def test_cka_rows_are_accepted_by_the_results_store(tmp_path) -> None:
    reps = two_block_reps(3, n=40)
    matrices = steps.cka_matrices(reps, reps, estimators=("biased",))
    table = steps.cka_rows(KEY, matrices, layers=list(range(6)), pooling="mean", n=40)
    path = results.write_table(tmp_path, KEY, "cka", table)
    pd.testing.assert_frame_equal(results.read_table(tmp_path, KEY, "cka"), table)
    assert path.is_file()


def test_cka_inputs_that_do_not_match_are_refused() -> None:
    reps = two_block_reps(0, n=40)
    with pytest.raises(ValueError, match="same layers and inputs"):
        steps.cka_matrices(reps, reps[:, :30])
    with pytest.raises(ValueError, match="estimators"):
        steps.cka_matrices(reps, reps, estimators=("rbf",))
    matrices = steps.cka_matrices(reps, reps, estimators=("biased",))
    with pytest.raises(ValueError, match="but 5 layers were given"):
        steps.cka_rows(KEY, matrices, layers=[1, 2, 3, 4, 5], pooling="cls", n=40)
    with pytest.raises(ValueError, match="number of inputs"):
        steps.cka_rows(KEY, matrices, layers=list(range(6)), pooling="cls", n=0)


def test_block_table_finds_the_constructed_boundary_and_leaves_p_values_without_interval(
    tmp_path,
) -> None:
    finetuned = two_block_reps(0, early=3, late=4)  # late block starts at the 4th matrix row
    pretrained = two_block_reps(1, early=5, late=2)
    layers = [1, 2, 3, 4, 5, 6, 7]  # first-token pooling: the matrix starts at hidden state 1
    table = steps.block_table(
        KEY, {"finetuned": finetuned, "pretrained": pretrained}, layers=layers, pooling="cls",
        n_boot=30, seed=0,
    )  # fmt: skip
    assert list(table.columns) == list(TABLES["blocks"])
    assert list(zip(table["kind"], table["statistic"], strict=True)) == [
        (kind, statistic)
        for kind in ("finetuned", "pretrained")
        for statistic in ("excess", "contrast", "boundary_agreement", "permutation_p")
    ]
    rows = table.set_index(["kind", "statistic"])
    # the boundary is the first hidden state of the late block: matrix row 3 is hidden state 4
    assert set(rows.loc["finetuned", "boundary"]) == {4}
    assert set(rows.loc["pretrained", "boundary"]) == {6}
    for kind, reps in (("finetuned", finetuned), ("pretrained", pretrained)):
        reference = np.array([[plain_linear_cka(x, y) for y in reps] for x in reps])
        split = blocks.best_split(reference)
        assert rows.loc[(kind, "excess"), "value"] == pytest.approx(split.excess, abs=1e-6)
        assert rows.loc[(kind, "contrast"), "value"] == pytest.approx(split.contrast, abs=1e-6)
        for statistic in ("excess", "contrast"):
            lower, upper = rows.loc[(kind, statistic), ["lower", "upper"]]
            assert lower <= upper
        agreement = rows.loc[(kind, "boundary_agreement"), "value"]
        assert 0 <= agreement <= 1 and (agreement * 30) == pytest.approx(round(agreement * 30))
        p_value = rows.loc[(kind, "permutation_p"), "value"]
        # (1 + #null >= observed) / (1 + 1000 permutations): a multiple of 1/1001 in (0, 1]
        assert 0 < p_value <= 1 and p_value * 1001 == pytest.approx(round(p_value * 1001))
        for statistic in ("boundary_agreement", "permutation_p"):
            assert rows.loc[(kind, statistic), ["lower", "upper"]].isna().all()
    path = results.write_table(tmp_path, KEY, "blocks", table)
    assert ",permutation_p," in path.read_text() and ",,," in path.read_text()


def test_block_table_reuses_the_given_matrices() -> None:
    reps = {"finetuned": two_block_reps(4, n=60)}
    matrices = steps.cka_matrices(reps["finetuned"], reps["finetuned"], estimators=("biased",))
    common = dict(layers=list(range(6)), pooling="mean", n_boot=10, seed=1)
    given = steps.block_table(KEY, reps, matrices=matrices, **common)
    pd.testing.assert_frame_equal(given, steps.block_table(KEY, reps, **common))
    # a different matrix changes exactly the permutation p-value, which it alone feeds
    other = {("finetuned", "biased"): torch.eye(6) * 0.5 + 0.5}
    changed = steps.block_table(KEY, reps, matrices=other, **common)
    differs = changed["value"] != given["value"]
    assert list(changed.loc[differs, "statistic"]) == ["permutation_p"]


def test_block_table_refuses_cross_matrices_and_wrong_layers() -> None:
    reps = two_block_reps(0, n=40)
    with pytest.raises(ValueError, match="reps must map some of"):
        steps.block_table(KEY, {"pretrained_vs_finetuned": reps}, layers=list(range(6)),
                          pooling="cls")  # fmt: skip
    with pytest.raises(ValueError, match="6 layers but 4 were given"):
        steps.block_table(KEY, {"finetuned": reps}, layers=[1, 2, 3, 4], pooling="cls")


# ----------------------------------------------------------------------------
# Step 3: truncation
# ----------------------------------------------------------------------------

TASK = "synth_sentiment"
LIMIT = 40


def count_calls(monkeypatch, module, name: str) -> list:
    """Replace module.name by a wrapper that records each call and then calls the original."""
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_truncation_curve_loads_and_encodes_the_split_once(tiny_bert, monkeypatch) -> None:
    model, tokenizer = tiny_bert
    # finetune imported these functions by name, so count the calls there too
    encodes = count_calls(monkeypatch, tasks, "encode")
    encodes_in_finetune = count_calls(monkeypatch, finetune, "encode")
    loads = count_calls(monkeypatch, tasks, "load")
    loads_in_finetune = count_calls(monkeypatch, finetune, "load")
    curve = steps.truncation_curve(KEY, model, tokenizer, TASK, limit=LIMIT, preset="tiny")
    assert sorted(set(curve["layers_kept"])) == [0, 1, 2, 3, 4]  # tiny models have 4 layers
    assert len(encodes) + len(encodes_in_finetune) == 1
    assert len(loads) + len(loads_in_finetune) == 1


def _hand_scored_accuracy(model, tokenizer, k: int) -> float:
    """Accuracy of the model truncated to k layers, from the full model's hidden_states[k] fed
    to its pooler and classifier, one unpadded example at a time."""
    raw = tasks.load(TASK, "validation", limit=LIMIT)
    encoded = tasks.encode(TASK, tokenizer, raw, max_length=64)
    correct = 0
    with torch.no_grad():
        for example in encoded:
            inputs = {name: torch.tensor([example[name]]) for name in example if name != "labels"}
            hidden = model(**inputs, output_hidden_states=True).hidden_states[k]
            logits = model.classifier(model.bert.pooler(hidden))
            correct += int(logits.argmax(-1).item() == example["labels"])
    return correct / len(encoded)


def test_truncation_curve_matches_models_scored_by_hand(tiny_bert) -> None:
    model, tokenizer = tiny_bert
    before = {name: p.clone() for name, p in model.state_dict().items()}
    curve = steps.truncation_curve(KEY, model, tokenizer, TASK, limit=LIMIT, preset="tiny")
    assert list(curve.columns) == list(TABLES["truncation"])
    assert set(curve["metric"]) == set(tasks.get_task(TASK).metrics)
    accuracy = curve[curve["metric"] == "accuracy"].set_index("layers_kept")["value"]
    for k in range(5):
        assert accuracy[k] == pytest.approx(_hand_scored_accuracy(model, tokenizer, k), abs=1e-12)
    # k = L is the untruncated model, scored the usual way (loading and encoding by itself)
    full = evaluation.evaluate_model(model, tokenizer, TASK, limit=LIMIT, preset="tiny")
    assert curve[curve["layers_kept"] == 4].set_index("metric")["value"].to_dict() == full
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())


def test_the_curve_of_deberta_starts_at_one_layer(tiny_bert) -> None:
    _, tokenizer = tiny_bert
    config = tiny_config("deberta-v2")
    config.vocab_size = tokenizer.vocab_size  # read the tokenizer's ids
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    curve = steps.truncation_curve(KEY, model, tokenizer, TASK, limit=20, preset="tiny")
    assert sorted(set(curve["layers_kept"])) == [1, 2, 3]
    assert not math.isnan(curve["value"].sum())


def test_baseline_table_majority_is_the_share_of_the_training_majority_class(tmp_path) -> None:
    key = RunKey("tiny", "tiny-bert", "synth_paraphrase", 0)
    model = finetune.load_model("tiny-bert", "synth_paraphrase", seed=0)
    tokenizer = finetune.load_tokenizer("tiny-bert")
    table = steps.baseline_table(key, model, tokenizer, "synth_paraphrase", preset="tiny")
    assert set(table["baseline"]) == {"majority", "probe_pooled", "probe_mean"}
    assert set(table["metric"]) == set(tasks.get_task("synth_paraphrase").metrics)
    results.write_table(tmp_path, key, "baselines", table)  # in the store's schema
    # by hand: the most frequent class of the preset's training subset, its validation share
    train = np.array(tasks.load("synth_paraphrase", "train", limit=400)["label"])
    valid = np.array(tasks.load("synth_paraphrase", "validation", limit=200)["label"])
    values, counts = np.unique(train, return_counts=True)
    expected = float(np.mean(valid == values[np.argmax(counts)]))
    majority = table[(table["baseline"] == "majority") & (table["metric"] == "accuracy")]
    assert majority["value"].item() == pytest.approx(expected)
    assert table["value"].between(0, 1).all()


def test_layer_drop_tables_score_every_signal_and_budget(tiny_bert) -> None:
    model, tokenizer = tiny_bert
    key = RunKey("tiny", "tiny-bert", "synth_sentiment", 0)
    tables = steps.layer_drop_tables(
        key, model, tokenizer, "synth_sentiment", preset="tiny", refit_examples=80, eval_limit=60
    )
    table = tables["layer_drop"]
    depth = truncate.num_layers(model)
    # every layer dropped alone, and one per-layer score of each signal for layers 1..L
    single = table[(table["signal"] == steps.SINGLE_LAYER) & (table["metric"] == "accuracy")]
    assert sorted(set(single["layers"])) == [str(layer) for layer in range(1, depth + 1)]
    signals = tables["layer_signals"]
    layers_of = {signal: sorted(rows["layer"]) for signal, rows in signals.groupby("signal")}
    assert len(layers_of) == 4
    assert all(set(v) <= set(range(1, depth + 1)) for v in layers_of.values())
    assert layers_of["block_influence"] == list(range(1, depth + 1))
    top = table[(table["signal"] == "top_k") & (table["metric"] == "accuracy")]
    assert sorted(set(top["budget"])) == list(range(depth + 1))
    assert set(table["condition"]) == {"unchanged", "refit"}
    assert set(table.loc[table["budget"] == 2, "layers"].str.count(",")) == {1}  # two layers
    # top-k with the unchanged head is the truncation curve: budget n keeps L - n layers
    curve = steps.truncation_curve(
        key, model, tokenizer, "synth_sentiment", limit=60, preset="tiny"
    )
    for n in range(depth + 1):
        got = top[(top["budget"] == n) & (top["condition"] == "unchanged")]["value"].item()
        want = curve[(curve["layers_kept"] == depth - n) & (curve["metric"] == "accuracy")]
        assert got == pytest.approx(want["value"].item())
    # budget 0 drops nothing: every signal scores the full model alike
    full = table[(table["budget"] == 0) & (table["metric"] == "accuracy")]
    assert full.groupby("condition")["value"].nunique().eq(1).all()
    assert (table.loc[table["budget"] == 0, "layers"] == "").all()


def test_progress_tables_score_each_snapshot_like_its_model_scored_by_hand(tmp_path) -> None:
    result = finetune.finetune(
        "tiny-bert", TASK, tmp_path / "model", preset="tiny", limit=64, eval_limit=32, epochs=1,
        snapshots=(0.0, 0.5, 1.0), progress=False,
    )  # fmt: skip
    snapshots = finetune.saved_snapshots(result.output_dir)
    total = snapshots[-1][1]
    assert [step for step, _, _ in snapshots] == [0, round(total / 2), total]
    tokenizer = finetune.load_tokenizer(str(result.output_dir))
    tables = steps.progress_tables(KEY, snapshots, tokenizer, TASK, preset="tiny", limit=40,
                                   n_boot=20)  # fmt: skip
    along, matrices = tables["progress"], tables["progress_cka"]
    for table in ("progress", "progress_cka"):
        assert list(tables[table].columns) == list(TABLES[table])
    encoded = tasks.encode(TASK, tokenizer, tasks.load(TASK, "validation", limit=40),
                           max_length=64)  # fmt: skip
    batch = tasks.collator(TASK, tokenizer)([encoded[i] for i in range(40)])
    labels = batch.pop("labels").numpy()
    for step, _, directory in snapshots:
        model = finetune.load_model(str(directory), TASK, seed=0).eval()
        with torch.no_grad():
            out = model(**batch, output_hidden_states=True)
        rows = along[along["step"] == step].set_index("statistic")["value"]
        accuracy = float(np.mean(out.logits.argmax(-1).numpy() == labels))
        assert rows["accuracy"] == pytest.approx(accuracy)
        cls = [h[:, 0] for h in out.hidden_states]
        cells = matrices[matrices["step"] == step]
        for row in cells.itertuples():  # layers 1..L: the first token's embedding is constant
            want = plain_linear_cka(cls[row.layer_a], cls[row.layer_b])
            assert row.cka == pytest.approx(want, abs=1e-5)
        assert sorted(set(cells["layer_a"])) == [1, 2, 3, 4]
        assert 1 <= rows["boundary"] <= 4
    excess = along[along["statistic"] == "excess"]
    assert (excess["lower"] <= excess["upper"]).all()
    with pytest.raises(ValueError, match="no snapshots"):
        steps.progress_tables(KEY, [], tokenizer, TASK, preset="tiny")

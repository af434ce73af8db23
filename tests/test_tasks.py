"""layersim.tasks: registry, synthetic data, local loading in the hub schema, encoding, metrics.

Metrics are checked against numbers computed by hand (or an independent formula), not against
the code under test.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from tiny_models import minilm_dir
from transformers import AutoTokenizer

from layersim.tasks import (
    DOMAIN_TASKS,
    KINDS,
    PAPER_TASKS,
    REAL_TASKS,
    SYNTHETIC_SIZES,
    SYNTHETIC_TASKS,
    TASKS,
    collator,
    compute_metrics,
    encode,
    generate_synthetic,
    get_task,
    length_order,
    load,
    loading,
    sort_by_length,
    synthetic,
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


def _write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


# --------------------------------------------------------------------------- registry


def test_registry_has_the_paper_the_real_and_the_synthetic_tasks() -> None:
    assert set(PAPER_TASKS) == {
        "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "boolq", "cb", "wic",
        "commonsense_qa",
    }  # fmt: skip
    assert len(SYNTHETIC_TASKS) >= 4
    assert set(REAL_TASKS) == {
        "movie_polarity", "movie_rating", "vitaminc", "presupposition_nli", "social_iqa",
    }  # fmt: skip
    assert all(
        get_task(name).is_packaged and not get_task(name).is_synthetic for name in REAL_TASKS
    )
    assert set(DOMAIN_TASKS) == {"tweet_polarity", "amazon_polarity", "nyt_polarity"}
    assert set(PAPER_TASKS) | set(SYNTHETIC_TASKS) | set(REAL_TASKS) | set(DOMAIN_TASKS) == set(
        TASKS
    )


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_fields_are_sane(name: str) -> None:
    task = get_task(name)
    assert task.name == name == name.lower() and " " not in name and "-" not in name
    assert task.kind in KINDS
    assert task.metric in task.metrics
    assert task.validation_split in task.splits and "train" in task.splits
    assert 1 <= len(task.text_fields) <= 2
    if task.kind == "classification":
        assert task.num_labels >= 2 and len(task.label_names) == task.num_labels
    if task.kind == "regression":
        assert task.num_labels == 1 and set(task.metrics) == {"pearson", "spearman"}
    if task.kind == "multiple_choice":
        assert task.choices_field and task.num_labels >= 2
    if name in PAPER_TASKS:
        assert task.hub_path and task.train_size and task.source.startswith("https://")
    elif name in REAL_TASKS + DOMAIN_TASKS:
        assert task.hub_path is None and task.package and not task.is_synthetic
    else:
        assert task.hub_path is None and task.is_synthetic


def test_paper_task_schema_details() -> None:
    assert get_task("mnli").validation_split == "validation_matched"
    assert get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("cb").label_names == ("entailment", "contradiction", "neutral")
    assert get_task("stsb").kind == "regression"
    assert get_task("commonsense_qa").kind == "multiple_choice"
    assert get_task("cola").metric == "matthews_correlation"
    assert get_task("wic").prefix_field == "word"
    assert {get_task(n).hub_path for n in ("boolq", "cb", "wic")} == {"aps/super_glue"}
    # about one million training examples over the twelve tasks
    assert 900_000 < sum(get_task(n).train_size for n in PAPER_TASKS) < 1_100_000


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown task 'glue_rte'.*cola.*synth_sentiment"):
        get_task("glue_rte")


# --------------------------------------------------------------------------- synthetic data


@pytest.mark.parametrize("name", SYNTHETIC_TASKS)
def test_synthetic_sizes_balance_and_disjoint_splits(name: str) -> None:
    data = generate_synthetic(name, seed=0)
    task = get_task(name)
    assert SYNTHETIC_SIZES["train"] >= 2000 and SYNTHETIC_SIZES["validation"] >= 500
    texts_by_split = {}
    for split, size in SYNTHETIC_SIZES.items():
        rows = data[split]
        assert len(rows) == size
        counts = Counter(rows["label"])
        assert sorted(counts) == list(range(task.num_labels))
        assert len(set(counts.values())) == 1  # exactly balanced
        keys = list(zip(*(rows[field] for field in task.text_fields), strict=True))
        assert len(set(keys)) == size  # no duplicated example
        texts_by_split[split] = {text for field in task.text_fields for text in rows[field]}
    assert not texts_by_split["train"] & texts_by_split["validation"]
    assert not texts_by_split["train"] & texts_by_split["test"]
    assert not texts_by_split["validation"] & texts_by_split["test"]


@pytest.mark.parametrize("name", SYNTHETIC_TASKS)
def test_synthetic_data_are_deterministic_in_the_seed(name: str) -> None:
    synthetic._build_splits.cache_clear()  # regenerate rather than read the cache
    first = generate_synthetic(name, seed=0)["validation"].to_list()
    synthetic._build_splits.cache_clear()
    again = generate_synthetic(name, seed=0)["validation"].to_list()
    other = generate_synthetic(name, seed=1)["validation"].to_list()
    assert first == again
    assert first != other


def test_synthetic_labels_follow_their_rules() -> None:
    # entailment: monotonicity and hypernyms, checked on hand-picked cases
    assert synthetic._entailed("all", "dog", "sprinted", "all", "poodle", "ran")
    assert not synthetic._entailed("all", "dog", "ran", "all", "animal", "ran")
    assert synthetic._entailed("all", "dog", "ran", "some", "animal", "moved")
    assert synthetic._entailed("some", "poodle", "sprinted", "some", "dog", "moved")
    assert not synthetic._entailed("some", "dog", "ran", "some", "poodle", "ran")
    assert synthetic._entailed("none", "animal", "moved", "none", "poodle", "sprinted")
    assert not synthetic._entailed("none", "dog", "ran", "none", "animal", "ran")
    assert not synthetic._entailed("some", "dog", "ran", "all", "dog", "ran")
    # agreement: the main verb agrees with the head noun, never with the attractor
    singular, plural = {"is", "was", "has", "does"}, {"are", "were", "have", "do"}
    checked = 0
    for row in generate_synthetic("synth_agreement")["validation"]:
        words = row["sentence"].split()
        if words[1] in ("key", "keys") and words[2] in ("of", "near", "behind", "to"):
            singular_head = words[1] == "key"
            verb = next(w for w in words[4:] if w in singular | plural)
            assert row["label"] == int(singular_head == (verb in singular)), row
            checked += 1
    assert checked >= 1  # the rule above is checked on every such sentence


def test_load_synthetic_with_a_nested_seeded_limit() -> None:
    small = load("synth_paraphrase", "train", limit=50)
    large = load("synth_paraphrase", "train", limit=200)
    assert len(small) == 50 and len(large) == 200
    assert set(small["sentence1"]) <= set(large["sentence1"])
    assert small.to_list() == load("synth_paraphrase", "train", limit=50).to_list()
    assert small.to_list() != load("synth_paraphrase", "train", limit=50, seed=1).to_list()
    assert len(load("synth_paraphrase", "validation", limit=10**6)) == 1000


def test_wrong_split_and_bad_limit_are_explained() -> None:
    with pytest.raises(ValueError, match="no split 'dev'.*train, validation, test"):
        load("synth_sentiment", "dev")
    with pytest.raises(ValueError, match="validation_matched, validation_mismatched"):
        load("mnli", "validation_mixed")
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        load("synth_sentiment", "train", limit=0)


# --------------------------------------------------------------------------- local files


def _rte_rows() -> list[dict]:
    pairs = [
        ("A cat sat on the mat.", "An animal sat.", 0),
        ("Paris is in France.", "Paris is in Spain.", 1),
        ("He bought milk.", "He bought something.", 0),
    ]
    return [
        {"sentence1": s1, "sentence2": s2, "label": label, "idx": i}
        for i, (s1, s2, label) in enumerate(pairs)
    ]


def _csqa_rows() -> list[dict]:
    letters = ["A", "B", "C", "D", "E"]
    return [
        {
            "id": "q1",
            "question": "Where do you keep milk cold?",
            "question_concept": "milk",
            "choices": {"label": letters, "text": ["oven", "fridge", "shelf", "car", "desk"]},
            "answerKey": "B",
        },
        {
            "id": "q2",
            "question": "What do people use to write on paper with a long thin tool?",
            "question_concept": "write",
            "choices": {"label": letters, "text": ["pen", "fork", "rock", "cup", "shoe"]},
            "answerKey": "A",
        },
    ]


def test_local_glue_superglue_and_csqa_files_load_and_encode(tmp_path, tokenizer) -> None:
    _write_jsonl(tmp_path / "rte" / "validation.jsonl", _rte_rows())
    # SuperGLUE CB as parquet, labels as names (what a CSV/parquet export may contain)
    cb = pd.DataFrame(
        {
            "premise": ["It rained all day.", "She may come.", "The door is shut."],
            "hypothesis": ["It was wet.", "She came.", "The door is open."],
            "idx": [0, 1, 2],
            "label": ["entailment", "neutral", "contradiction"],
        }
    )
    (tmp_path / "cb").mkdir()
    cb.to_parquet(tmp_path / "cb" / "train-00000-of-00001.parquet")
    _write_jsonl(
        tmp_path / "wic" / "validation.jsonl",
        [{"word": "bank", "sentence1": "He sat on the bank.", "sentence2": "The bank closed.",
          "start1": 14, "end1": 18, "start2": 4, "end2": 8, "idx": 0, "label": 0}],
    )  # fmt: skip
    _write_jsonl(tmp_path / "commonsense_qa" / "validation.jsonl", _csqa_rows())

    rte = load("rte", "validation", data_dir=tmp_path)
    assert rte["sentence2"] == [row["sentence2"] for row in _rte_rows()]
    encoded = encode("rte", tokenizer, rte, max_length=32)
    assert set(encoded.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert encoded["labels"] == [0, 1, 0]
    first = encoded[0]
    expected = tokenizer("A cat sat on the mat.", "An animal sat.")["input_ids"]
    assert first["input_ids"] == expected  # a pair: [CLS] s1 [SEP] s2 [SEP], no padding
    assert set(first["token_type_ids"]) == {0, 1}

    cb_train = load("cb", "train", data_dir=tmp_path)
    assert encode("cb", tokenizer, cb_train, max_length=32)["labels"] == [0, 2, 1]

    wic = encode("wic", tokenizer, load("wic", "validation", data_dir=tmp_path), max_length=32)
    assert (
        wic[0]["input_ids"]
        == tokenizer("bank: He sat on the bank.", "The bank closed.")["input_ids"]
    )

    csqa = load("commonsense_qa", "validation", data_dir=tmp_path)
    mc = encode("commonsense_qa", tokenizer, csqa, max_length=24)
    assert mc["labels"] == [1, 0]
    assert len(mc[0]["input_ids"]) == 5  # one encoded (question, choice) pair per choice
    assert mc[0]["input_ids"][1] == tokenizer("Where do you keep milk cold?", "fridge")["input_ids"]
    assert max(len(ids) for choices in mc["input_ids"] for ids in choices) <= 24  # truncated
    batch = collator("commonsense_qa", tokenizer)([mc[0], mc[1]])
    assert batch["input_ids"].shape[:2] == (2, 5)
    assert batch["labels"].tolist() == [1, 0]


def test_sort_by_length_keeps_every_row_and_orders_by_tokens(tmp_path, tokenizer) -> None:
    import datasets

    sentences = ["A much longer sentence than the others, with many words.", "Short.", "Mid one."]
    encoded = encode(
        "sst2", tokenizer,
        datasets.Dataset.from_dict({"sentence": sentences, "label": [0, 1, 0], "idx": [0, 1, 2]}),
        max_length=32,
    )  # fmt: skip
    ordered = sort_by_length(encoded)
    lengths = [len(ids) for ids in ordered["input_ids"]]
    assert lengths == sorted(lengths)
    assert sorted(map(tuple, ordered["input_ids"])) == sorted(map(tuple, encoded["input_ids"]))
    assert ordered["labels"] == [1, 0, 0]  # each label travels with its row
    order = length_order(encoded)
    assert order == [1, 2, 0]
    assert ordered.select(np.argsort(order))["input_ids"] == encoded["input_ids"]  # put back

    _write_jsonl(tmp_path / "commonsense_qa" / "validation.jsonl", _csqa_rows())
    mc = encode("commonsense_qa", tokenizer, load("commonsense_qa", "validation",
                                                  data_dir=tmp_path), max_length=24)  # fmt: skip
    longest = [max(map(len, choices)) for choices in sort_by_length(mc)["input_ids"]]
    assert longest == sorted(longest)  # multiple choice: by the longest choice


def test_stsb_labels_are_floats_and_mnli_validation_is_matched(tmp_path, tokenizer) -> None:
    _write_jsonl(
        tmp_path / "stsb" / "train.jsonl",
        [{"sentence1": "A man plays.", "sentence2": "A man is playing.", "label": 4.6, "idx": 0}],
    )
    stsb = encode("stsb", tokenizer, load("stsb", "train", data_dir=tmp_path), max_length=16)
    assert stsb["labels"] == [pytest.approx(4.6)]
    batch = collator("stsb", tokenizer)([stsb[0]])
    assert batch["labels"].dtype.is_floating_point

    rows = [{"premise": "A dog ran.", "hypothesis": "An animal ran.", "label": 0, "idx": 0}]
    _write_jsonl(tmp_path / "mnli" / "validation_matched.jsonl", rows)
    assert load("mnli", "validation", data_dir=tmp_path)["premise"] == ["A dog ran."]


def test_missing_local_files_and_fields_are_explained(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"rte.*validation\.jsonl"):
        load("rte", "validation", data_dir=tmp_path)
    _write_jsonl(tmp_path / "rte" / "train.jsonl", [{"premise": "x", "label": 0}])
    with pytest.raises(ValueError, match="lacks the field.*sentence1"):
        load("rte", "train", data_dir=tmp_path)


def test_unreachable_hub_says_how_to_use_data_dir(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(loading.datasets, "load_dataset", offline)
    with pytest.raises(ConnectionError, match=r"data_dir=DIR: DIR/rte/validation\.jsonl"):
        load("rte", "validation")


# --------------------------------------------------------------------------- metrics


def test_accuracy_from_logits_and_from_class_ids() -> None:
    logits = np.array([[2.0, 1.0], [0.1, 0.3], [5.0, -1.0], [0.0, 1.0]])  # argmax 0, 1, 0, 1
    labels = np.array([0, 0, 0, 1])
    assert compute_metrics("sst2", logits, labels) == {"accuracy": 0.75}
    assert compute_metrics("sst2", np.array([0, 1, 0, 1]), labels) == {"accuracy": 0.75}
    choice_logits = np.array([[0, 0, 3, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 2.0]])
    assert compute_metrics("commonsense_qa", choice_logits, [2, 0, 1]) == {
        "accuracy": pytest.approx(2 / 3)
    }


def test_f1_and_matthews_correlation_by_hand() -> None:
    predictions = np.array([1, 1, 0, 0, 1, 0])
    labels = np.array([1, 0, 0, 1, 1, 0])
    # TP = 2 (idx 0, 4), FP = 1 (idx 1), FN = 1 (idx 3), TN = 2 (idx 2, 5)
    f1 = 2 * 2 / (2 * 2 + 1 + 1)  # 2TP / (2TP + FP + FN) = 2/3
    mcc = (2 * 2 - 1 * 1) / math.sqrt((2 + 1) * (2 + 1) * (2 + 1) * (2 + 1))  # 3 / 9
    assert compute_metrics("mrpc", predictions, labels) == {
        "f1": pytest.approx(f1),
        "accuracy": pytest.approx(4 / 6),
    }
    assert compute_metrics("qqp", predictions, labels)["f1"] == pytest.approx(2 / 3)
    assert compute_metrics("cola", predictions, labels) == {
        "matthews_correlation": pytest.approx(mcc),
        "accuracy": pytest.approx(4 / 6),
    }
    assert compute_metrics("cola", np.ones(6, dtype=int), labels)["matthews_correlation"] == 0.0


def test_macro_f1_of_cb_by_hand() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 1, 2, 0, 0])
    # class 0: TP 1, FP 2, FN 1 → F1 = 2/(2+3) = 0.4
    # class 1: TP 2, FP 1, FN 0 → F1 = 4/5 = 0.8
    # class 2: TP 1, FP 0, FN 2 → F1 = 2/4 = 0.5
    out = compute_metrics("cb", predictions, labels)
    assert out["macro_f1"] == pytest.approx((0.4 + 0.8 + 0.5) / 3)
    assert out["accuracy"] == pytest.approx(4 / 7)


def test_pearson_and_spearman_by_hand() -> None:
    # deviations from the mean 2.5: (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5):
    # covariance sum 2.25 - .25 - .25 + 2.25 = 4, each sum of squares 5 → r = 0.8; ranks equal
    # the values, so Spearman is also 0.8.
    out = compute_metrics("stsb", np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([1, 3, 2, 4]))
    assert out == {"pearson": pytest.approx(0.8), "spearman": pytest.approx(0.8)}
    # a monotone but non-linear relation: Spearman 1, Pearson from the definition
    predictions = np.array([1.0, 4.0, 9.0, 16.0])
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    p, q = predictions - predictions.mean(), labels - labels.mean()
    pearson = (p * q).sum() / math.sqrt((p * p).sum() * (q * q).sum())
    out = compute_metrics("stsb", predictions, labels)
    assert out["spearman"] == pytest.approx(1.0) and out["pearson"] == pytest.approx(pearson)
    assert compute_metrics("stsb", np.full(4, 2.0), labels) == {"pearson": 0.0, "spearman": 0.0}


def test_bad_metric_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match="contain -1"):
        compute_metrics("rte", np.zeros((2, 2)), np.array([-1, -1]))
    with pytest.raises(ValueError, match="as many predictions as labels"):
        compute_metrics("rte", np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        compute_metrics("rte", np.array([0.2, 0.7]), np.array([0, 1]))

"""layersim.models.probe: what the task head reads, and linear heads fitted on frozen features,
checked against direct computations and against data with a known answer."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from layersim import tasks
from layersim.models import probe
from layersim.pipeline.finetune import load_model


def _encoded(task: str, tokenizer, n: int):
    return tasks.encode(task, tokenizer, tasks.load(task, "validation", limit=n), max_length=32)


def test_head_inputs_are_the_pooled_output_and_the_masked_mean(tokenizer) -> None:
    model = load_model("tiny-bert", "synth_sentiment", seed=0).eval()
    encoded = _encoded("synth_sentiment", tokenizer, 20)
    heads, means, labels = probe.head_inputs(
        model, tokenizer, "synth_sentiment", encoded, batch_size=6
    )
    batch = tasks.collator("synth_sentiment", tokenizer)([encoded[i] for i in range(20)])
    assert np.array_equal(labels, batch.pop("labels").numpy())
    with torch.no_grad():
        out = model.bert(**batch)
    # BERT's head reads the pooler output (tanh of a dense layer on [CLS])
    np.testing.assert_allclose(heads, out.pooler_output.numpy(), atol=1e-5)
    hidden, mask = out.last_hidden_state.numpy(), batch["attention_mask"].numpy()
    for i in range(20):
        tokens = hidden[i][mask[i] == 1]
        np.testing.assert_allclose(means[i], tokens.mean(0), atol=1e-5)


def test_head_inputs_of_multiple_choice_have_one_row_per_choice(tmp_path, tokenizer) -> None:
    model = load_model("tiny-bert", "commonsense_qa", seed=0)
    dataset = datasets.Dataset.from_list(
        [
            {
                "question": f"question {i}?",
                "choices": {"label": ["A", "B", "C"], "text": ["yes", "no", f"maybe {i}"]},
                "answerKey": "ABC"[i % 3],
            }
            for i in range(9)
        ]
    )
    encoded = tasks.encode("commonsense_qa", tokenizer, dataset, max_length=16)
    heads, means, labels = probe.head_inputs(model, tokenizer, "commonsense_qa", encoded)
    assert heads.shape == (9, 3, 64) and means.shape == (9, 3, 64)
    assert list(labels) == [i % 3 for i in range(9)]
    # scoring the captured rows with the model's own classifier gives the model's logits
    weight = model.classifier.weight.detach().numpy()
    bias = model.classifier.bias.detach().numpy()
    batch = tasks.collator("commonsense_qa", tokenizer)([encoded[i] for i in range(9)])
    batch.pop("labels")
    with torch.no_grad():
        logits = model.eval()(**batch).logits.numpy()
    np.testing.assert_allclose((heads @ weight.T)[..., 0] + bias[0], logits, atol=1e-5)


def test_a_model_without_a_head_is_refused() -> None:
    from transformers import AutoModel

    from layersim.pipeline.presets import resolve_model

    with pytest.raises(ValueError, match="no linear task head"):
        probe.last_linear(AutoModel.from_config(resolve_model("tiny-bert")))


def test_logistic_head_separates_separable_classes() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    centres = rng.normal(size=(3, 8)) * 4
    features = centres[labels] + rng.normal(size=(300, 8))
    scores = probe.probe_scores(
        "mnli", (features[:200], labels[:200]), (features[200:], labels[200:])
    )
    assert scores["accuracy"] > 0.97


def test_ridge_head_recovers_a_linear_target() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, 6)) * rng.uniform(0.5, 5, 6) + 3
    coefficients = rng.normal(size=6)
    target = features @ coefficients + 0.01 * rng.normal(size=400)
    head = probe.fit_linear_head("stsb", features[:300], target[:300])
    predicted = head.predict(features[300:])
    # the closed-form least-squares fit, written independently
    design = np.c_[features[:300], np.ones(300)]
    solution = np.linalg.lstsq(design, target[:300], rcond=None)[0]
    np.testing.assert_allclose(predicted, np.c_[features[300:], np.ones(100)] @ solution, atol=0.05)


def test_choice_scorer_recovers_the_scoring_direction() -> None:
    rng = np.random.default_rng(2)
    direction = rng.normal(size=10)
    features = rng.normal(size=(500, 3, 10))
    labels = (features @ direction).argmax(-1)
    head = probe.fit_linear_head("commonsense_qa", features[:400], labels[:400])
    assert np.mean(head.predict(features[400:]).argmax(-1) == labels[400:]) > 0.9
    weights, _ = head.model
    learned = weights / head.scale  # back to the unstandardised features
    cosine = learned @ direction / np.linalg.norm(learned) / np.linalg.norm(direction)
    assert cosine > 0.95


def test_features_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="needs features of 3 dimensions"):
        probe.fit_linear_head("commonsense_qa", np.zeros((20, 4)), np.zeros(20))

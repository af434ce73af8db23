"""layersim.models.layer_cache: a pruned model started from the full model's cached hidden state
gives what the same pruned model gives when run from its input (head inputs and logits)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from layersim import tasks
from layersim.models import layer_cache, probe, truncate
from layersim.pipeline.finetune import load_model


def _sentences(tokenizer, n: int = 13):
    raw = tasks.load("synth_sentiment", "validation", limit=n)
    return tasks.encode("synth_sentiment", tokenizer, raw, max_length=32)


def _from_cache(model, tokenizer, task, encoded, layers, batch_size):
    """Head inputs of `model` without `layers`, started from the cached hidden state below the
    lowest dropped layer (the prefix below it dropped too)."""
    cache = layer_cache.cached_hidden_states(model, tokenizer, task, encoded, batch_size=batch_size)
    first = min(layers)
    pruned = truncate.drop_layers(model, sorted(set(range(1, first)) | set(layers)))
    with layer_cache.starting_from(pruned, [hidden[first - 1] for _, hidden in cache]):
        return probe.head_inputs(pruned, tokenizer, task, encoded, batch_size=batch_size,
                                 with_logits=True)  # fmt: skip


@pytest.mark.parametrize(
    "name", ["tiny-bert", "tiny-roberta", "tiny-electra", "tiny-mpnet", "tiny-llama"]
)
@pytest.mark.parametrize("layers", [(2,), (2, 4), (3, 4), (4,), (2, 3, 4)])
def test_starting_from_the_cache_equals_running_the_pruned_model(name, layers, tokenizer) -> None:
    model = load_model(name, "synth_sentiment", seed=0).eval()
    encoded = _sentences(tokenizer)
    head, _, labels, logits = _from_cache(model, tokenizer, "synth_sentiment", encoded, layers, 5)
    want_head, _, want_labels, want_logits = probe.head_inputs(
        truncate.drop_layers(model, layers), tokenizer, "synth_sentiment", encoded, batch_size=5,
        with_logits=True,
    )  # fmt: skip
    assert np.array_equal(labels, want_labels)
    np.testing.assert_allclose(head, want_head, atol=1e-5)
    np.testing.assert_allclose(logits, want_logits, atol=1e-5)


def test_multiple_choice_starts_from_one_cached_row_per_choice(tokenizer) -> None:
    model = load_model("tiny-bert", "commonsense_qa", seed=0).eval()
    rows = [
        {
            "question": f"question {i}?",
            "choices": {"label": ["A", "B", "C"], "text": ["yes", "no", f"maybe {i}"]},
            "answerKey": "ABC"[i % 3],
        }
        for i in range(7)
    ]
    encoded = tasks.encode(
        "commonsense_qa", tokenizer, datasets.Dataset.from_list(rows), max_length=16
    )
    cache = layer_cache.cached_hidden_states(model, tokenizer, "commonsense_qa", encoded,
                                             batch_size=4)  # fmt: skip
    assert cache[0][1].shape[:2] == (5, 12)  # embeddings + 4 layers, 4 questions x 3 choices
    head, _, _, logits = _from_cache(model, tokenizer, "commonsense_qa", encoded, (3,), 4)
    want = probe.head_inputs(truncate.drop_layers(model, (3,)), tokenizer, "commonsense_qa",
                             encoded, batch_size=4, with_logits=True)  # fmt: skip
    np.testing.assert_allclose(head, want[0], atol=1e-5)
    np.testing.assert_allclose(logits, want[3], atol=1e-5)


def test_cached_states_are_the_models_hidden_states(tokenizer) -> None:
    model = load_model("tiny-bert", "synth_sentiment", seed=0).eval()
    encoded = _sentences(tokenizer, 6)
    (batch, hidden), = layer_cache.cached_hidden_states(model, tokenizer, "synth_sentiment",
                                                        encoded, batch_size=8)  # fmt: skip
    batch.pop("labels")
    want = model(**batch, output_hidden_states=True).hidden_states
    assert hidden.shape[0] == len(want) == 5
    for got, expected in zip(hidden, want, strict=True):
        np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), atol=1e-6)


def test_states_of_other_batches_are_refused(tokenizer) -> None:
    model = load_model("tiny-bert", "synth_sentiment", seed=0).eval()
    encoded = _sentences(tokenizer)
    cache = layer_cache.cached_hidden_states(model, tokenizer, "synth_sentiment", encoded,
                                             batch_size=5)  # fmt: skip
    pruned = truncate.drop_layers(model, (1, 2))
    with (
        pytest.raises(ValueError, match="same examples in the same batches"),
        layer_cache.starting_from(pruned, [hidden[2] for _, hidden in cache]),
    ):
        probe.head_inputs(pruned, tokenizer, "synth_sentiment", encoded, batch_size=4)


def test_architectures_without_one_embedding_output_have_no_shortcut() -> None:
    albert = load_model("tiny-albert", "synth_sentiment", seed=0)
    assert layer_cache.embedding_output_module(albert) is None
    with pytest.raises(ValueError, match="run the pruned model in full"):
        with layer_cache.starting_from(albert, []):
            pass
    electra = load_model("tiny-electra", "synth_sentiment", seed=0)
    assert layer_cache.embedding_output_module(electra) is electra.electra.embeddings_project

"""layersim.models.families: the decoders' multiple-choice head scores each choice as the
sequence-classification model with one output would, one choice at a time; the pooling that
matches each family's head; a decoder's head inputs are read at the last real token."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import padded_batch, tiny_config
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    LlamaForSequenceClassification,
)

from layersim import tasks
from layersim.models import families, probe
from layersim.pipeline.finetune import load_model, load_tokenizer


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2"])
def test_multiple_choice_scores_each_choice_alone_and_takes_the_softmax_loss(model_type) -> None:
    torch.manual_seed(0)
    chooser = AutoModelForMultipleChoice.from_config(tiny_config(model_type)).eval()
    assert type(chooser).__name__.endswith("ForMultipleChoice")
    flat = padded_batch([6, 3, 8, 5, 2, 7], seq=8)  # 2 questions x 3 choices, right padded
    ids = flat["input_ids"].reshape(2, 3, 8)
    mask = flat["attention_mask"].reshape(2, 3, 8)
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        output = chooser(input_ids=ids, attention_mask=mask, labels=labels)
        # independently: each (question, choice) alone, unpadded, through the base model and the
        # score layer at its last token
        expected = torch.zeros(2, 3)
        for q in range(2):
            for c in range(3):
                length = int(mask[q, c].sum())
                hidden = chooser.model(input_ids=ids[q, c, :length][None]).last_hidden_state
                expected[q, c] = chooser.score(hidden[0, -1])[0]
    torch.testing.assert_close(output.logits, expected, atol=1e-5, rtol=1e-5)
    by_hand = -torch.log_softmax(expected, -1)[torch.arange(2), labels].mean()
    assert output.loss.item() == pytest.approx(by_hand.item(), abs=1e-5)


def test_multiple_choice_round_trips_through_save_and_from_pretrained(tmp_path) -> None:
    torch.manual_seed(0)
    chooser = AutoModelForMultipleChoice.from_config(tiny_config("llama")).eval()
    chooser.save_pretrained(tmp_path)
    again = AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    batch = padded_batch([4, 6, 5, 3], seq=6)
    ids, mask = batch["input_ids"].reshape(2, 2, 6), batch["attention_mask"].reshape(2, 2, 6)
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).logits,
                                   chooser(input_ids=ids, attention_mask=mask).logits)  # fmt: skip
    with pytest.raises(ValueError, match=r"\(batch, choices, tokens\)"):
        chooser(input_ids=ids[0], attention_mask=mask[0])


def test_natural_pooling_reads_what_the_head_reads() -> None:
    assert families.natural_pooling(tiny_config("bert")) == "cls"
    assert families.natural_pooling(tiny_config("mpnet")) == "cls"
    for decoder in ("gpt2", "llama", "mistral", "qwen2"):
        assert families.natural_pooling(tiny_config(decoder)) == "last"
        assert families.is_decoder(tiny_config(decoder))
    assert not families.is_decoder(tiny_config("roberta"))


def test_a_decoders_head_inputs_are_its_final_state_at_the_last_real_token() -> None:
    model = load_model("tiny-llama", "synth_sentiment", seed=0).eval()
    assert isinstance(model, LlamaForSequenceClassification)
    tokenizer = load_tokenizer("tiny-llama")
    raw = tasks.load("synth_sentiment", "validation", limit=9)
    encoded = tasks.encode("synth_sentiment", tokenizer, raw, max_length=32)
    head, _, labels, logits = probe.head_inputs(model, tokenizer, "synth_sentiment", encoded,
                                                batch_size=4, with_logits=True)  # fmt: skip
    assert head.shape == (9, model.config.hidden_size)
    with torch.no_grad():
        for i, example in enumerate(encoded):  # one unpadded example at a time
            ids = torch.tensor([example["input_ids"]])
            last = model.model(input_ids=ids).last_hidden_state[0, -1]
            np.testing.assert_allclose(head[i], last.numpy(), atol=1e-5)
            np.testing.assert_allclose(logits[i], model.score(last).numpy(), atol=1e-5)
    assert labels.tolist() == list(encoded["labels"])


def test_tiny_decoders_and_mpnet_load_with_every_head() -> None:
    for name in ("tiny-llama", "tiny-mpnet"):
        assert load_model(name, "stsb").config.num_labels == 1
        chooser = load_model(name, "commonsense_qa")
        assert type(chooser).__name__.endswith("ForMultipleChoice")
    decoder = AutoModelForSequenceClassification.from_config(tiny_config("llama"))
    assert families.natural_pooling(decoder) == "last"

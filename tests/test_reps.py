"""layer_representations and stream_cka against hand-written pooling and stored representations."""

from __future__ import annotations

import pytest
import torch
from cka_reference import reference_cka_matrix, reference_minibatch_cka
from tiny_models import minilm_dir, padded_batch, tiny_config
from transformers import AutoModel, AutoModelForMultipleChoice, AutoModelForSequenceClassification

from layersim.models.reps import layer_representations, stream_cka

SPECIAL = (1, 2)  # ids the tests treat as [CLS] / [SEP]
EXACT = 1e-6  # the exact-mode contract of layersim.cka: within 1e-6 of float64


def _model(model_type: str = "bert", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(tiny_config(model_type)).eval()


def _batches(left: bool = False) -> list[dict[str, torch.Tensor]]:
    """Two padded batches whose rows start with 1 and end with 2, like [CLS] ... [SEP]."""
    batches = []
    for seed, lengths in enumerate([[10, 6, 3], [4, 9]]):
        batch = padded_batch(lengths, left=left, seed=seed)
        for row in range(len(lengths)):
            real = batch["attention_mask"][row].nonzero().flatten()
            batch["input_ids"][row, real[0]] = SPECIAL[0]
            batch["input_ids"][row, real[-1]] = SPECIAL[1]
        batch["labels"] = torch.zeros(len(lengths), dtype=torch.long)  # must be ignored
        batches.append(batch)
    return batches


def _all_hidden(model, batches) -> list[tuple[torch.Tensor, ...]]:
    with torch.no_grad():
        return [
            model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                  output_hidden_states=True).hidden_states
            for b in batches
        ]  # fmt: skip


def test_cls_pooling_is_position_zero_of_every_hidden_state() -> None:
    model, batches = _model(), _batches()
    reps = layer_representations(model, batches, pooling="cls")
    hidden = _all_hidden(model, batches)
    assert reps.shape == (4, 5, 32) and reps.dtype == torch.float32
    expected = torch.stack([torch.cat([h[layer][:, 0] for h in hidden]) for layer in range(4)])
    torch.testing.assert_close(reps, expected)
    torch.testing.assert_close(layer_representations(model, batches, pooling="first"), expected)


def test_mean_pooling_equals_a_hand_written_masked_mean() -> None:
    model, batches = _model(), _batches()
    reps = layer_representations(model, batches, pooling="mean", layers=[0, 3])
    hidden = _all_hidden(model, batches)
    rows = []
    for h, b in zip(hidden, batches, strict=True):
        for i, length in enumerate(b["attention_mask"].sum(1).tolist()):
            rows.append(torch.stack([h[layer][i, :length].mean(0) for layer in (0, 3)]))
    torch.testing.assert_close(reps, torch.stack(rows, dim=1))


@pytest.mark.parametrize("left", [False, True])
def test_last_pooling_picks_the_last_real_token(left: bool) -> None:
    model, batches = _model("llama"), _batches(left=left)
    reps = layer_representations(model, batches, pooling="last")
    hidden = _all_hidden(model, batches)
    rows = []
    for h, b in zip(hidden, batches, strict=True):
        for i, length in enumerate(b["attention_mask"].sum(1).tolist()):
            position = b["input_ids"].shape[1] - 1 if left else length - 1
            assert b["input_ids"][i, position] == SPECIAL[1]  # the [SEP]-like end token
            rows.append(torch.stack([layer[i, position] for layer in h]))
    torch.testing.assert_close(reps, torch.stack(rows, dim=1))


def test_token_pooling_takes_exactly_the_real_non_special_tokens() -> None:
    model, batches = _model(), _batches()
    hidden = _all_hidden(model, batches)
    expected = []
    for h, b in zip(hidden, batches, strict=True):
        keep = b["attention_mask"].bool() & ~torch.isin(b["input_ids"], torch.tensor(SPECIAL))
        expected.append(torch.stack(h)[:, keep])
    expected = torch.cat(expected, dim=1)
    assert expected.shape[1] == (10 + 6 + 3 + 4 + 9) - 2 * 5
    reps = layer_representations(model, batches, pooling="tokens", special_token_ids=SPECIAL)
    torch.testing.assert_close(reps, expected)
    with_mask = [dict(b, special_tokens_mask=torch.isin(b["input_ids"], torch.tensor(SPECIAL)))
                 for b in batches]  # fmt: skip
    torch.testing.assert_close(layer_representations(model, with_mask, pooling="tokens"), expected)


def test_token_sampling_is_uniform_without_duplicates_and_seeded() -> None:
    model, batches = _model(), _batches()
    everything = layer_representations(model, batches, pooling="tokens", special_token_ids=SPECIAL)
    sample = layer_representations(
        model, batches, pooling="tokens", special_token_ids=SPECIAL, max_rows=7, seed=3
    )
    assert sample.shape == (4, 7, 32)
    # each sampled row is one of the real tokens, and no token is taken twice
    distance = torch.cdist(sample[-1], everything[-1])
    matches = (distance < 1e-5).nonzero()[:, 1]
    assert len(matches) == 7 and len(set(matches.tolist())) == 7
    assert matches.tolist() == sorted(matches.tolist())  # kept in input order
    again = layer_representations(
        model, batches, pooling="tokens", special_token_ids=SPECIAL, max_rows=7, seed=3
    )
    torch.testing.assert_close(sample, again)
    other = layer_representations(
        model, batches, pooling="tokens", special_token_ids=SPECIAL, max_rows=7, seed=4
    )
    assert not torch.equal(sample, other)


def test_token_sampling_covers_all_tokens_evenly() -> None:
    """Over many seeds every token is drawn about max_rows / total of the time."""
    model, batches = _model(), _batches()
    everything = layer_representations(model, batches, pooling="tokens", special_token_ids=SPECIAL)
    total = everything.shape[1]
    counts = torch.zeros(total)
    for seed in range(300):
        sample = layer_representations(
            model, batches, pooling="tokens", special_token_ids=SPECIAL, max_rows=5, seed=seed
        )
        counts += (torch.cdist(sample[0], everything[0]) < 1e-5).sum(0)
    expected = 300 * 5 / total
    assert counts.sum() == 300 * 5
    assert counts.min() > expected * 0.5 and counts.max() < expected * 1.6


def test_asking_for_more_rows_than_exist_says_so() -> None:
    model, batches = _model(), _batches()
    with pytest.raises(ValueError, match="hold only 22 real, non-special tokens"):
        layer_representations(
            model, batches, pooling="tokens", special_token_ids=SPECIAL, max_rows=23
        )
    with pytest.raises(ValueError, match="hold only 5 examples"):
        layer_representations(model, batches, max_rows=6)
    assert layer_representations(model, batches, max_rows=4).shape[1] == 4


def test_token_pooling_without_special_token_information_is_refused() -> None:
    with pytest.raises(ValueError, match="return_special_tokens_mask=True"):
        layer_representations(_model(), _batches(), pooling="tokens")


def test_bad_arguments_are_refused() -> None:
    model, batches = _model(), _batches()
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        layer_representations(model, batches, pooling="max")
    with pytest.raises(ValueError, match="layers \\[7\\] out of range"):
        layer_representations(model, batches, layers=[0, 7])
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        layer_representations(model, batches, max_rows=0)
    empty = [dict(batches[0], attention_mask=torch.zeros_like(batches[0]["attention_mask"]))]
    with pytest.raises(ValueError, match="no real tokens"):
        layer_representations(model, empty)


def test_multiple_choice_inputs_give_one_row_per_choice() -> None:
    torch.manual_seed(0)
    model = AutoModelForMultipleChoice.from_config(tiny_config("bert")).eval()
    flat = padded_batch([10, 7, 5, 8, 3, 9])  # 2 examples x 3 choices
    batch = {key: value.reshape(2, 3, -1) for key, value in flat.items()}
    reps = layer_representations(model, [batch], pooling="mean")
    assert reps.shape == (4, 6, 32)
    base = AutoModel.from_config(tiny_config("bert"))
    base.load_state_dict(model.base_model.state_dict())
    torch.testing.assert_close(
        reps, layer_representations(base.eval(), [flat], pooling="mean"), rtol=1e-5, atol=1e-6
    )


def test_previous_mode_is_restored() -> None:
    model, batches = _model(), _batches()
    model.train()
    first = layer_representations(model, batches)
    assert model.training
    model.eval()
    second = layer_representations(model, batches)
    assert not model.training
    torch.testing.assert_close(first, second)  # dropout was off while it ran


def test_offline_minilm_gives_seven_hidden_states_of_width_384() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    model = AutoModel.from_pretrained(minilm_dir())
    texts = ["the film was wonderful", "a dull, lifeless plot", "i would not watch it again"]
    batch = tokenizer(texts, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    reps = layer_representations(model, [batch], pooling="tokens")
    real = batch["attention_mask"].sum().item() - 2 * len(texts)  # [CLS] and [SEP] excluded
    assert reps.shape == (7, real, 384)


@pytest.mark.parametrize("estimator", ["biased", "debiased"])
@pytest.mark.parametrize("pooling", ["cls", "mean", "tokens"])
def test_stream_cka_equals_cka_of_the_stored_representations(estimator, pooling) -> None:
    model, batches = _model(), _batches()
    # At [CLS] the embedding output is the same for every input: CKA is undefined there.
    layers = [1, 2, 3] if pooling == "cls" else None
    kwargs = dict(pooling=pooling, special_token_ids=SPECIAL, layers=layers)
    reps = layer_representations(model, batches, **kwargs)
    streamed = stream_cka(model, batches, estimator=estimator, **kwargs)
    assert streamed.shape == (len(reps),) * 2 and streamed.dtype == torch.float64
    expected = reference_cka_matrix(reps, reps, debiased=estimator == "debiased")
    torch.testing.assert_close(streamed, expected, rtol=0, atol=EXACT)


@pytest.mark.parametrize("estimator", ["biased", "debiased"])
def test_stream_cka_compares_two_models_on_identical_inputs(estimator) -> None:
    model_a, model_b, batches = _model(seed=0), _model(seed=1), _batches()
    streamed = stream_cka(model_a, batches, model_b=model_b, estimator=estimator, pooling="mean")
    reps_a = layer_representations(model_a, batches, pooling="mean")
    reps_b = layer_representations(model_b, batches, pooling="mean")
    expected = reference_cka_matrix(reps_a, reps_b, debiased=estimator == "debiased")
    torch.testing.assert_close(streamed, expected, rtol=0, atol=EXACT)
    assert not torch.allclose(streamed.diagonal(), torch.ones(4, dtype=torch.float64))


def test_stream_cka_with_sampled_tokens_uses_the_same_sample_as_layer_representations() -> None:
    model, batches = _model(), _batches()
    kwargs = dict(pooling="tokens", special_token_ids=SPECIAL, max_rows=12, seed=5)
    reps = layer_representations(model, batches, **kwargs)
    streamed = stream_cka(model, batches, **kwargs)
    torch.testing.assert_close(streamed, reference_cka_matrix(reps, reps), rtol=0, atol=EXACT)


def test_stream_cka_minibatch_estimator_sums_per_batch_hsic() -> None:
    model, batches = _model(), _batches(left=False)
    batches = [padded_batch([10, 6, 3, 8, 5], seed=s) for s in range(3)]
    streamed = stream_cka(model, batches, estimator="minibatch", pooling="mean")
    per_batch = [layer_representations(model, [b], pooling="mean") for b in batches]
    expected = reference_minibatch_cka(per_batch)
    torch.testing.assert_close(streamed, expected, rtol=0, atol=EXACT)


def test_stream_cka_rejects_an_unknown_estimator() -> None:
    with pytest.raises(ValueError, match="unknown estimator 'rbf'"):
        stream_cka(_model(), _batches(), estimator="rbf")

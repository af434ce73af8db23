"""keep_first_layers: the truncated model computes the full model's hidden_states[k] and feeds it
to the original head; the original model is untouched; save/load round-trips. truncation_knee on
curves whose knee is known by construction."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_models import DECODERS, minilm_dir, padded_batch, tiny_config
from transformers import AutoModelForSequenceClassification, T5Config, T5Model

from layersim.models.truncate import (
    SUPPORTED_MODEL_TYPES,
    drop_layers,
    fewest_layers,
    keep_first_layers,
    num_layers,
    truncation_knee,
)

ARCHITECTURES = [
    "bert", "roberta", "electra", "deberta-v2", "distilbert", "albert", "mpnet", "gpt2",
    "llama", "mistral", "qwen2",
]  # fmt: skip


def _model(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(model_type)).eval()


def _final_norm(model: torch.nn.Module) -> torch.nn.Module:
    base = model.base_model
    return base.ln_f if model.config.model_type == "gpt2" else base.norm


def _expected_last_hidden(model, hidden_states, k: int) -> torch.Tensor:
    """hidden_states[k]; decoders apply their final norm to it (HF's last entry already has it)."""
    if model.config.model_type in DECODERS and k < len(hidden_states) - 1:
        return _final_norm(model)(hidden_states[k])
    return hidden_states[k]


def test_every_listed_architecture_is_supported() -> None:
    assert set(ARCHITECTURES) <= set(SUPPORTED_MODEL_TYPES)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_truncated_output_equals_hidden_state_k(model_type: str) -> None:
    model = _model(model_type)
    batch = padded_batch([10, 7, 3], left=model_type in DECODERS)
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
        assert num_layers(model) == len(hidden) - 1 == 3
        first_k = 1 if model_type == "deberta-v2" else 0
        for k in range(first_k, 4):
            truncated = keep_first_layers(model, k).eval()
            assert num_layers(truncated) == k
            assert truncated.config.num_hidden_layers == k
            last = truncated.base_model(**batch).last_hidden_state
            expected = _expected_last_hidden(model, hidden, k)
            torch.testing.assert_close(last[real], expected[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "electra", "albert"])
def test_truncated_logits_are_the_original_head_applied_to_hidden_state_k(model_type) -> None:
    model = _model(model_type)
    batch = padded_batch([9, 4])
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
        for k in range(4):
            logits = keep_first_layers(model, k)(**batch).logits
            if model_type in ("roberta", "electra"):  # head reads token 0 itself
                by_hand = model.classifier(hidden[k])
            else:  # BERT / ALBERT: pooler on token 0, then the classifier
                by_hand = model.classifier(
                    model.base_model.pooler(hidden[k][:, 0]).tanh()
                    if model_type == "albert"
                    else model.base_model.pooler(hidden[k])
                )
            torch.testing.assert_close(logits, by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_original_is_unchanged_and_head_weights_are_kept(model_type: str) -> None:
    model = _model(model_type)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    config_before = model.config.to_dict()
    truncated = keep_first_layers(model, 1)
    assert model.config.to_dict() == config_before
    assert num_layers(model) == 3
    after = model.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    # Every tensor the truncated model has is the original's value (same name, same numbers),
    # head included; only the dropped layers' tensors are missing.
    kept = truncated.state_dict()
    if model_type == "albert":  # one shared layer: nothing to drop, only fewer repetitions
        assert set(kept) == set(before)
    else:
        assert set(kept) < set(before)
    head = [n for n in kept if not n.startswith(model.base_model_prefix + ".")]
    assert head, "the task head is missing"
    for name, tensor in kept.items():
        assert torch.equal(tensor, before[name]), name
        assert tensor.data_ptr() != after[name].data_ptr(), f"{name} shares storage"


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_save_and_load_round_trip(model_type: str, tmp_path) -> None:
    model = _model(model_type)
    truncated = keep_first_layers(model, 2).eval()
    truncated.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert num_layers(loaded) == 2
    batch = padded_batch([8, 5], left=model_type in DECODERS)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, truncated(**batch).logits)


def test_offline_minilm_truncation_matches_hidden_states() -> None:
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2).eval()
    batch = padded_batch([12, 5, 9], seq=12)
    batch["input_ids"] = batch["input_ids"] + 1000  # ordinary word pieces of its vocabulary
    batch["input_ids"][batch["attention_mask"] == 0] = 0
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
        assert num_layers(model) == 6
        for k in (0, 2, 6):
            last = keep_first_layers(model, k).base_model(**batch).last_hidden_state
            real = batch["attention_mask"].bool()
            torch.testing.assert_close(last[real], hidden[k][real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [-1, 4, 2.0, True, "1"])
def test_k_out_of_range_is_rejected(k) -> None:
    with pytest.raises(ValueError, match="k must be an integer from 0 to 3"):
        keep_first_layers(_model("bert"), k)


def test_unsupported_architecture_lists_the_supported_ones() -> None:
    model = T5Model(T5Config(vocab_size=50, d_model=16, d_ff=32, num_layers=2, num_heads=2, d_kv=8))
    with pytest.raises(ValueError, match="supported model types: albert, bert"):
        keep_first_layers(model, 1)
    with pytest.raises(ValueError, match="'t5'"):
        num_layers(model)


def test_albert_with_several_layer_groups_is_refused() -> None:
    config = tiny_config("albert")
    config.num_hidden_groups = 3
    model = AutoModelForSequenceClassification.from_config(config)
    with pytest.raises(ValueError, match="num_hidden_groups == 1"):
        keep_first_layers(model, 1)


def test_deberta_with_zero_layers_says_why() -> None:
    with pytest.raises(ValueError, match="DeBERTa-v2 cannot run with 0 layers"):
        keep_first_layers(_model("deberta-v2"), 0)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_fewest_layers_is_the_smallest_k_that_runs(model_type: str) -> None:
    model = _model(model_type)
    fewest = fewest_layers(model)
    batch = padded_batch([6, 4], left=model_type in DECODERS)
    with torch.no_grad():
        keep_first_layers(model, fewest)(**batch)  # runs
    if fewest > 0:
        with pytest.raises(ValueError):
            keep_first_layers(model, fewest - 1)
    assert fewest == (1 if model_type == "deberta-v2" else 0)


def test_importing_truncate_loads_neither_torch_nor_transformers() -> None:
    # claims and the book pages use truncation_knee; they should not pay for torch's import
    code = (
        "import sys, layersim.models.truncate; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------
# Truncation knee (claim C6)
# ----------------------------------------------------------------------------


def test_knee_of_a_monotone_curve() -> None:
    kept = list(range(7))
    acc = [0.50, 0.55, 0.70, 0.85, 0.895, 0.90, 0.90]
    assert truncation_knee(kept, acc) == 4
    assert truncation_knee(kept, acc, tolerance=0.05) == 3
    assert truncation_knee(kept, acc, tolerance=0.0) == 5
    assert truncation_knee(kept[::-1], acc[::-1]) == 4  # order does not matter


def test_knee_of_a_noisy_curve_is_where_it_stays_within_tolerance() -> None:
    kept = list(range(7))
    acc = [0.50, 0.91, 0.60, 0.80, 0.893, 0.905, 0.90]  # lucky k=1, and k=5 beats the full model
    assert truncation_knee(kept, acc) == 4
    # repeated depths (seeds) are averaged before the knee is found
    assert truncation_knee([0, 0, 1, 1, 2, 2], [0.5, 0.5, 0.9, 0.7, 0.8, 0.8]) == 1
    assert truncation_knee([0, 0, 1, 1, 2, 2], [0.5, 0.5, 0.9, 0.6, 0.8, 0.8]) == 2


def test_knee_relative_tolerance_and_lower_is_better() -> None:
    kept = [0, 1, 2, 3]
    assert truncation_knee(kept, [10.0, 48.0, 49.0, 50.0], tolerance=0.05, relative=True) == 1
    assert truncation_knee(kept, [10.0, 48.0, 49.0, 50.0], tolerance=1.0) == 2
    loss = [2.0, 0.6, 0.52, 0.5]
    assert truncation_knee(kept, loss, tolerance=0.05, higher_is_better=False) == 2
    assert truncation_knee(kept, [0.9, 0.1, 0.1, 0.1], higher_is_better=False) == 1


@pytest.mark.parametrize(
    ("kept", "values", "kwargs", "match"),
    [
        ([0, 1, 2], [0.1, 0.2], {}, "same length"),
        ([2, 2], [0.1, 0.2], {}, "two distinct depths"),
        ([0, -1, 2], [0.1, 0.2, 0.3], {}, "non-negative"),
        ([0, 1.5, 2], [0.1, 0.2, 0.3], {}, "integers"),
        ([0, 1, 2], [0.1, np.nan, 0.3], {}, "finite"),
        ([0, 1, 2], [0.1, 0.2, 0.3], {"tolerance": -0.1}, "tolerance"),
    ],
)
def test_bad_knee_inputs_raise(kept, values, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        truncation_knee(kept, values, **kwargs)


def _identity_hooks(model, layers) -> list:
    """Make the given layers (numbered 1..L) pass their input through unchanged."""

    def identity(_module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    from layersim.models.truncate import _layer_list, _stack

    module_list = _layer_list(model, _stack(model))
    return [module_list[i - 1].register_forward_hook(identity, with_kwargs=True) for i in layers]


@pytest.mark.parametrize("model_type", [t for t in ARCHITECTURES if t != "albert"])
@pytest.mark.parametrize("dropped", [(2,), (1, 3), (1,)])
def test_dropping_layers_equals_running_them_as_the_identity(model_type, dropped) -> None:
    model = _model(model_type)
    batch = padded_batch([10, 7, 3], left=model_type in DECODERS)
    real = batch["attention_mask"].bool()
    pruned = drop_layers(model, dropped).eval()
    assert num_layers(pruned) == pruned.config.num_hidden_layers == 3 - len(dropped)
    with torch.no_grad():
        got = pruned(**batch, output_hidden_states=True)
        hooks = _identity_hooks(model, dropped)
        try:
            expected = model(**batch, output_hidden_states=True)
        finally:
            for hook in hooks:
                hook.remove()
        last, want = got.hidden_states[-1], expected.hidden_states[-1]
        torch.testing.assert_close(last[real], want[real], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.logits, expected.logits, rtol=1e-5, atol=1e-5)
        original = model(**batch).logits  # the original is untouched (no hook, all layers)
        assert not torch.allclose(original, got.logits)


def test_dropping_the_top_layers_is_keeping_the_first(tmp_path) -> None:
    model = _model("llama")
    batch = padded_batch([9, 4], left=True)
    with torch.no_grad():
        top = drop_layers(model, [3, 2])(**batch).logits
        first = keep_first_layers(model, 1)(**batch).logits
    torch.testing.assert_close(top, first)
    albert = _model("albert")
    assert drop_layers(albert, [2]).config.num_hidden_layers == 2  # shared weights: any two


@pytest.mark.parametrize("model_type", ["bert", "qwen2"])
def test_dropped_models_round_trip_through_save_and_load(tmp_path, model_type) -> None:
    pruned = drop_layers(_model(model_type), [2]).eval()
    pruned.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    batch = padded_batch([8, 5], left=model_type in DECODERS)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, pruned(**batch).logits)
    assert loaded.config.num_hidden_layers == 2


@pytest.mark.parametrize("layers", [[0], [4], [2, 2], [1.5], [True]])
def test_bad_layer_sets_are_refused(layers) -> None:
    with pytest.raises(ValueError, match="layers to drop"):
        drop_layers(_model("bert"), layers)

"""layersim.models.architectures, the one table of model families, against the models
themselves: the layer stack it names holds the model's layers, the embedding module it names
outputs hidden state 0, and the decoders are those whose hidden states see only earlier tokens."""

from __future__ import annotations

import pytest
import torch
from tiny_models import DECODERS, padded_batch, tiny_config
from transformers import AutoModelForSequenceClassification

from layersim.models.architectures import ARCHITECTURES, architecture

TINY_TYPES = ("bert", "roberta", "electra", "deberta-v2", "distilbert", "albert", "mpnet",
              "gpt2", "llama", "mistral", "qwen2")  # fmt: skip


def _model(model_type: str):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(model_type)).eval()


@pytest.mark.parametrize("model_type", TINY_TYPES)
def test_the_table_says_where_the_layers_and_the_embedding_output_are(model_type: str) -> None:
    model = _model(model_type)
    entry = architecture(model)
    depth = model.config.num_hidden_layers
    if entry.shared:
        assert model_type == "albert"
    else:
        stack = model.base_model
        for name in entry.layers.split("."):
            stack = getattr(stack, name)
        assert isinstance(stack, torch.nn.ModuleList) and len(stack) == depth
    batch = padded_batch([10, 7])
    with torch.inference_mode():
        hidden = model(**batch, output_hidden_states=True).hidden_states
    assert len(hidden) == depth + 1
    module = entry.embedding_module(model)
    assert (module is None) == (model_type in ("deberta-v2", "albert", "gpt2"))
    if module is not None:
        outputs = []
        handle = module.register_forward_hook(lambda _m, _i, out: outputs.append(out))
        with torch.inference_mode():
            model(**batch)
        handle.remove()
        torch.testing.assert_close(outputs[0], hidden[0])


@pytest.mark.parametrize("model_type", TINY_TYPES)
def test_decoders_are_the_models_whose_states_see_only_earlier_tokens(model_type: str) -> None:
    model = _model(model_type)
    batch = padded_batch([10, 10])
    changed = {key: value.clone() for key, value in batch.items()}
    changed["input_ids"][:, -1] = 5 if int(batch["input_ids"][0, -1]) != 5 else 6
    with torch.inference_mode():
        before = model(**batch, output_hidden_states=True).hidden_states[-1]
        after = model(**changed, output_hidden_states=True).hidden_states[-1]
    first_moved = not torch.allclose(before[:, 0], after[:, 0])
    assert architecture(model).decoder == (not first_moved)
    assert architecture(model).decoder == (model_type in DECODERS)


def test_every_tiny_architecture_is_in_the_table_and_others_are_refused() -> None:
    assert set(TINY_TYPES) <= set(ARCHITECTURES)
    with pytest.raises(ValueError, match="does not support model type 't5'.*bert"):
        architecture(type("Config", (), {"model_type": "t5"})())

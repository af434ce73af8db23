"""Top-layer truncation: keep the first k transformer layers of a model and its unchanged head.

This is the paper's redundancy experiment (claim C5): a fine-tuned model whose top layers are
dropped, with the truncated output fed to the task head that was trained on the full depth, and no
further tuning. `keep_first_layers` returns a new model; the original is never modified.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel

__all__ = ["SUPPORTED_MODEL_TYPES", "keep_first_layers", "num_layers"]


@dataclass(frozen=True)
class _Stack:
    """Where an architecture keeps its layer stack, relative to `model.base_model`."""

    layers_attr: str  # dotted path to the nn.ModuleList of layers; "" for ALBERT's shared stack
    shared: bool = False  # ALBERT: one set of weights applied num_hidden_layers times


_STACKS: dict[str, _Stack] = {
    "bert": _Stack("encoder.layer"),
    "roberta": _Stack("encoder.layer"),
    "xlm-roberta": _Stack("encoder.layer"),
    "electra": _Stack("encoder.layer"),
    "deberta-v2": _Stack("encoder.layer"),
    "distilbert": _Stack("transformer.layer"),
    "albert": _Stack("", shared=True),
    "gpt2": _Stack("h"),
    "llama": _Stack("layers"),
    "mistral": _Stack("layers"),
    "qwen2": _Stack("layers"),
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_STACKS))


def _stack(model: PreTrainedModel) -> _Stack:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in _STACKS:
        raise ValueError(
            f"layer truncation does not support model type {model_type!r}; supported model types: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}. Pass a Hugging Face model of one of these."
        )
    if model_type == "albert":
        config = model.config
        if config.num_hidden_groups != 1 or config.inner_group_num != 1:
            # With several groups the group of layer i depends on num_hidden_layers, so keeping
            # k layers would silently re-map weights; every released ALBERT uses one group.
            raise ValueError(
                "ALBERT truncation needs num_hidden_groups == 1 and inner_group_num == 1 "
                f"(this model has {config.num_hidden_groups} and {config.inner_group_num})"
            )
    return _STACKS[model_type]


def _layer_list(model: PreTrainedModel, stack: _Stack) -> nn.ModuleList:
    module = model.base_model
    for name in stack.layers_attr.split("."):
        module = getattr(module, name)
    return module


def num_layers(model: PreTrainedModel) -> int:
    """Number of transformer layers L of a supported model (hidden states are L + 1).

    For ALBERT this is the number of times the shared layer is applied.
    """
    stack = _stack(model)
    if stack.shared:
        return int(model.config.num_hidden_layers)
    return len(_layer_list(model, stack))


def keep_first_layers(model: PreTrainedModel, k: int) -> PreTrainedModel:
    """A copy of `model` made of its embeddings, its first `k` layers and its unchanged head.

    The copy's last hidden state equals the full model's ``hidden_states[k]`` (for pre-LayerNorm
    decoders, GPT-2 and the Llama family, after the model's final norm, which is kept), and that
    is what the task head receives. ``k = 0`` keeps the embeddings alone; ``k = L`` is an exact
    copy. The copy's config says ``num_hidden_layers = k``, so ``save_pretrained`` and
    ``from_pretrained`` round-trip it. The original model is not modified.

    Raises
    ------
    ValueError
        If the architecture is not supported (the message lists the supported ones) or `k` is
        not an integer in ``0..L``.
    """
    total = num_layers(model)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= total:
        raise ValueError(f"k must be an integer from 0 to {total} (the model's layers); got {k!r}")
    stack = _stack(model)
    if k == 0 and model.config.model_type == "deberta-v2":
        # transformers' DeBERTa-v2 encoder reads its last layer's output even when it has none.
        raise ValueError("DeBERTa-v2 cannot run with 0 layers in transformers; use k >= 1")
    truncated = copy.deepcopy(model)
    if not stack.shared:
        layers = _layer_list(truncated, stack)
        del layers[k:]
    config = truncated.config
    config.num_hidden_layers = k  # attribute_map redirects this to n_layer / n_layers
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = list(config.layer_types[:k])
    return truncated

"""What differs between model families: encoders read the first token, decoders the last.

An encoder (BERT, RoBERTa, MPNet, ...) sees the whole input at every position, and its task head
reads the first token (``[CLS]`` / ``<s>``); the paper pools that token. A decoder (GPT-2, the
Llama family) sees only the tokens before each position, so its first token knows nothing of the
rest of the input: its sequence-classification head reads the last real token, and so must the
representations compared by CKA. :func:`natural_pooling` gives the pooling that matches a model's
head, which is what every step uses unless told otherwise.

transformers has no multiple-choice head for decoders. :func:`register_decoder_heads` adds one per
decoder family (``LlamaForMultipleChoice``, ...): the sequence-classification model with one
output scores each (question, choice) sequence at its last token, and a softmax over the choices
gives the answer, the same head as BERT's multiple choice. It is registered with
``AutoModelForMultipleChoice``, so ``from_pretrained`` finds it again (importing this module
registers it).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoModelForMultipleChoice,
    LlamaConfig,
    LlamaForSequenceClassification,
    MistralConfig,
    MistralForSequenceClassification,
    Qwen2Config,
    Qwen2ForSequenceClassification,
)
from transformers.modeling_outputs import MultipleChoiceModelOutput

from layersim.models.architectures import ARCHITECTURES, model_type_of

__all__ = [
    "DECODER_TYPES",
    "is_decoder",
    "natural_pooling",
    "register_decoder_heads",
]

#: Model types whose layers attend only to earlier tokens (from :data:`ARCHITECTURES`).
DECODER_TYPES: tuple[str, ...] = tuple(
    name for name, entry in ARCHITECTURES.items() if entry.decoder
)


def is_decoder(model_or_config: Any) -> bool:
    """Whether a model (or config) is a causal decoder (:data:`DECODER_TYPES`)."""
    return model_type_of(model_or_config) in DECODER_TYPES


def natural_pooling(model_or_config: Any) -> str:
    """The pooling that reads what the model's task head reads: ``"last"`` (the last real token)
    for a decoder, ``"cls"`` (the first token) for an encoder."""
    return "last" if is_decoder(model_or_config) else "cls"


def _multiple_choice_head(base: type) -> type:
    """A multiple-choice model built on a decoder's sequence-classification model."""

    class DecoderForMultipleChoice(base):
        """One score per (question, choice) sequence, read at its last real token; the logits
        are ``(batch, choices)`` and the loss is the cross-entropy over choices."""

        def __init__(self, config: Any) -> None:
            config.num_labels = 1
            super().__init__(config)

        def forward(
            self,
            input_ids: torch.Tensor | None = None,
            attention_mask: torch.Tensor | None = None,
            labels: torch.Tensor | None = None,
            inputs_embeds: torch.Tensor | None = None,
            **kwargs: Any,
        ) -> MultipleChoiceModelOutput:
            shaped = input_ids if input_ids is not None else inputs_embeds
            if shaped is None or shaped.dim() < 3:
                raise ValueError(
                    "a multiple-choice model takes input_ids of shape (batch, choices, tokens); "
                    "encode the task with layersim.tasks.encode and collate with tasks.collator"
                )
            choices = shaped.shape[1]

            def flat(x: torch.Tensor | None, dims: int) -> torch.Tensor | None:
                return None if x is None else x.reshape(-1, *x.shape[2 : 2 + dims])

            kwargs.pop("token_type_ids", None)  # decoders have no segments
            output = super().forward(
                input_ids=flat(input_ids, 1),
                attention_mask=flat(attention_mask, 1),
                inputs_embeds=flat(inputs_embeds, 2),
                **kwargs,
            )
            logits = output.logits.reshape(-1, choices)
            loss = None
            if labels is not None:
                loss = torch.nn.functional.cross_entropy(logits, labels.to(logits.device))
            return MultipleChoiceModelOutput(
                loss=loss,
                logits=logits,
                hidden_states=output.hidden_states,
                attentions=output.attentions,
            )

    name = base.__name__.replace("ForSequenceClassification", "ForMultipleChoice")
    DecoderForMultipleChoice.__name__ = DecoderForMultipleChoice.__qualname__ = name
    return DecoderForMultipleChoice


_HEADS = {
    config: _multiple_choice_head(base)
    for config, base in (
        (LlamaConfig, LlamaForSequenceClassification),
        (MistralConfig, MistralForSequenceClassification),
        (Qwen2Config, Qwen2ForSequenceClassification),
    )
}


def register_decoder_heads() -> None:
    """Register the decoders' multiple-choice heads with ``AutoModelForMultipleChoice``."""
    for config, head in _HEADS.items():
        AutoModelForMultipleChoice.register(config, head, exist_ok=True)


register_decoder_heads()

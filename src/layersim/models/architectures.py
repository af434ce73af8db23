"""One table of the model families layersim supports: what each needs to be read and cut.

Every module that depends on the architecture reads it from :data:`ARCHITECTURES`, keyed by the
transformers ``model_type``: where the layer stack is (:mod:`.truncate` keeps or drops layers
there), which module outputs hidden state 0 (:mod:`.layer_cache` starts pruned models from it),
whether the model is a causal decoder (:mod:`.families`: read at the last token, a multiple-choice
head per decoder), and the fewest layers its encoder can run with. Adding a family is one row
here (and a tiny config in ``tests/tiny_models.py`` so the exactness tests cover it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ARCHITECTURES", "SUPPORTED_MODEL_TYPES", "Architecture", "architecture"]


@dataclass(frozen=True)
class Architecture:
    """What layersim needs to know about one transformers model type.

    Attributes
    ----------
    layers
        Dotted path from ``model.base_model`` to the ``nn.ModuleList`` of layers; empty for
        ALBERT, whose one shared layer is applied ``num_hidden_layers`` times.
    shared
        ALBERT: one set of layer weights applied at every depth.
    decoder
        The layers attend only to earlier tokens (the task head reads the last real token).
    embedding_output
        Attributes of ``model.base_model`` whose output is hidden state 0 and the first layer's
        input, the first one present (ELECTRA projects its embeddings when they are narrower than
        its layers); empty where no single module is (the layer cache then runs pruned models in
        full).
    fewest_layers
        The smallest number of layers the model can run with (DeBERTa-v2's encoder needs one).
    """

    layers: str
    shared: bool = False
    decoder: bool = False
    embedding_output: tuple[str, ...] = ()
    fewest_layers: int = 0

    def embedding_module(self, model: Any) -> Any | None:
        """The module of `model` whose output is hidden state 0 (None where there is none)."""
        for name in self.embedding_output:
            module = getattr(model.base_model, name, None)
            if module is not None:
                return module
        return None


_ENCODER = Architecture("encoder.layer", embedding_output=("embeddings",))
_LLAMA_LIKE = Architecture("layers", decoder=True, embedding_output=("embed_tokens",))

#: The supported model types. MPNet's relative position bias is computed once in the encoder,
#: outside the layer list, so keeping or dropping layers keeps it. No single module outputs
#: hidden state 0 for ALBERT (its shared stack), DeBERTa-v2 (relative positions) and GPT-2 (an
#: embedding sum).
ARCHITECTURES: dict[str, Architecture] = {
    "bert": _ENCODER,
    "roberta": _ENCODER,
    "xlm-roberta": _ENCODER,
    "electra": Architecture("encoder.layer", embedding_output=("embeddings_project", "embeddings")),
    "mpnet": _ENCODER,
    "deberta-v2": Architecture("encoder.layer", fewest_layers=1),
    "distilbert": Architecture("transformer.layer", embedding_output=("embeddings",)),
    "albert": Architecture("", shared=True),
    "gpt2": Architecture("h", decoder=True),
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(ARCHITECTURES))


def model_type_of(model_or_config: Any) -> str | None:
    """The transformers ``model_type`` of a model or a config (None when it has none)."""
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", None)


def architecture(model_or_config: Any, *, what: str = "layersim") -> Architecture:
    """The :class:`Architecture` of a model or config; a ``ValueError`` naming the supported
    model types when it is not one of them (`what` says what needed it)."""
    model_type = model_type_of(model_or_config)
    if model_type not in ARCHITECTURES:
        raise ValueError(
            f"{what} does not support model type {model_type!r}; supported model types: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}. Pass a Hugging Face model of one of these."
        )
    return ARCHITECTURES[model_type]

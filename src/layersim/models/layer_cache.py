"""Score pruned models without recomputing the layers they share with the full model.

Dropping a set of layers whose lowest is ``m`` leaves layers ``1..m-1`` as they were, so a pruned
model's input to its first changed layer is the full model's hidden state ``m - 1``. The full
model runs once over a split with all hidden states kept (:func:`cached_hidden_states`); a model
pruned of layers ``1..m-1`` as well then starts from that cached state, fed in place of its
embedding output (:func:`starting_from`), and runs only its kept layers above ``m``. Dropping the
top ``n`` layers then costs no layer at all, only the head. The result is the same computation as
running the pruned model from its input (tests compare the two).

Supported where the embedding output is one module's output that goes straight into layer 1
(:func:`embedding_output_module`): BERT, RoBERTa, XLM-R, ELECTRA, DistilBERT, MPNet (whose
relative position bias depends only on the sequence length) and the Llama family (Llama,
Mistral, Qwen2: token embeddings, with the rotary positions computed beside them). In the Llama
family the last hidden state is the one after the final norm, so only states ``0..L-1`` may be fed
back (a pruned model always starts below its lowest dropped layer, so it never needs state
``L``). Other architectures (ALBERT's shared stack, DeBERTa-v2's relative positions, GPT-2's
embedding sum) get ``None`` there and are scored by running the pruned model in full.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from layersim.models import architectures
from layersim.tasks import Task, collator

__all__ = [
    "cached_hidden_states",
    "embedding_output_module",
    "hidden_state_batches",
    "starting_from",
]


def embedding_output_module(model: nn.Module) -> nn.Module | None:
    """The module whose output is hidden state 0 and the first layer's input, or None where the
    architecture has no such single module (see the module docstring)."""
    entry = architectures.ARCHITECTURES.get(architectures.model_type_of(model))
    return entry.embedding_module(model) if entry is not None else None


def batches(task: Task, tokenizer: Any, encoded: Any, batch_size: int) -> Iterator[dict]:
    """The split's examples collated in order, `batch_size` at a time (labels included)."""
    collate = collator(task, tokenizer)
    for start in range(0, len(encoded), batch_size):
        yield collate([encoded[i] for i in range(start, min(start + batch_size, len(encoded)))])


def hidden_state_batches(
    model: nn.Module,
    tokenizer: Any,
    task: Task,
    encoded: Any,
    *,
    batch_size: int,
    with_outputs: bool = False,
) -> Iterator[tuple[dict, Any]]:
    """Per batch of :func:`batches`, as it is computed: the collated batch and the model's stacked
    hidden states, ``(L + 1, rows, seq, d)`` float32 on the CPU (multiple choice: one row per
    choice); with `with_outputs`, ``(hidden states, logits as a numpy array)`` instead of the
    hidden states. One batch of states is in memory at a time (unless the caller keeps them)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for batch in batches(task, tokenizer, encoded, batch_size):
            inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            with torch.no_grad():  # not inference_mode: the batches are returned to the caller
                output = model(**inputs, output_hidden_states=True)
            hidden = torch.stack([h.float().cpu() for h in output.hidden_states])
            logits = output.logits.float().cpu().numpy()
            yield batch, ((hidden, logits) if with_outputs else hidden)
    finally:
        model.train(was_training)


def cached_hidden_states(
    model: nn.Module,
    tokenizer: Any,
    task: Task,
    encoded: Any,
    *,
    batch_size: int,
    with_outputs: bool = False,
) -> list[tuple[dict, Any]]:
    """:func:`hidden_state_batches`, all kept: per batch, the collated batch and the model's
    stacked hidden states (with `with_outputs`, ``(hidden states, logits)``)."""
    return list(
        hidden_state_batches(
            model, tokenizer, task, encoded, batch_size=batch_size, with_outputs=with_outputs
        )
    )


@contextlib.contextmanager
def starting_from(model: nn.Module, states: Sequence[torch.Tensor]) -> Iterator[None]:
    """Within the block, the model's i-th forward pass uses ``states[i]`` as its embedding output.

    Raises
    ------
    ValueError
        If the architecture has no single embedding-output module.
    """
    module = embedding_output_module(model)
    if module is None:
        raise ValueError(
            f"{type(model).__name__} has no single embedding output to start from; run the pruned "
            "model in full instead"
        )
    feed = iter(states)

    def replace(_module: nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        state = next(feed)
        if state.shape != output.shape:
            raise ValueError(
                f"cached state of shape {tuple(state.shape)} for an embedding output of shape "
                f"{tuple(output.shape)}: cache and score the same examples in the same batches"
            )
        return state.to(device=output.device, dtype=output.dtype)

    handle = module.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()

"""Per-layer representations of a Hugging Face model, pooled per example or sampled per token.

`layer_representations` returns them as one (layers, rows, width) tensor; `stream_cka` feeds each
batch straight into `layersim.cka` accumulators, so a comparison over a million tokens holds only
one batch of activations at a time. Both run under `torch.no_grad()` in eval mode and restore the
models' previous mode afterwards.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from layersim import cka

__all__ = [
    "POOLINGS",
    "layer_representations",
    "pool_hidden_states",
    "real_token_mask",
    "stream_cka",
]

Pooling = Literal["cls", "first", "mean", "last", "tokens"]
POOLINGS: tuple[str, ...] = ("cls", "first", "mean", "last", "tokens")
Estimator = Literal["biased", "debiased", "minibatch"]
# Batch keys that describe the inputs but are not model inputs.
_NON_INPUT_KEYS = ("labels", "label", "special_tokens_mask", "offset_mapping", "idx")


def layer_representations(
    model: nn.Module,
    batches: Iterable[Mapping[str, Tensor]],
    *,
    pooling: Pooling = "cls",
    layers: Sequence[int] | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    special_token_ids: Iterable[int] | None = None,
    autocast: bool = False,
    progress: bool = False,
) -> Tensor:
    """Hidden states of every layer, pooled: an (L + 1, n, d) float32 tensor on the CPU.

    Row 0 along the first axis is the embedding output and row ``l`` the output of layer ``l``,
    exactly as in ``model(..., output_hidden_states=True).hidden_states``.

    Parameters
    ----------
    model
        A Hugging Face model (any head, or none) that returns ``hidden_states``.
    batches
        Tokenizer outputs (``input_ids``, ``attention_mask``, ...), each a mapping of tensors of
        shape (batch, seq), or (batch, choices, seq) for multiple choice: then every
        (example, choice) contributes one row. Keys such as ``labels`` are ignored.
    pooling
        ``"cls"`` / ``"first"``: position 0 (the paper's default). ``"mean"``: mean over real
        tokens (padding never counted). ``"last"``: last real token, for left or right padding
        (what decoders need). ``"tokens"``: individual real, non-special tokens; special tokens
        come from a ``special_tokens_mask`` in the batch (tokenize with
        ``return_special_tokens_mask=True``) or from `special_token_ids`.
    layers
        Indices into the hidden states to keep (default: all L + 1).
    max_rows
        For the pooled modes, the first `max_rows` examples; for ``"tokens"``, a uniform sample
        without replacement of `max_rows` tokens, drawn with `seed` (deterministic for a given
        seed and batch order). Asking for more rows than the batches hold raises ``ValueError``.
    autocast
        Run the forward pass in bfloat16 autocast when the model is on a CUDA device.
    """
    models = (model,)
    rows = _pooled_rows(
        models, batches, pooling, layers, max_rows, seed, special_token_ids, autocast, progress
    )
    if pooling == "tokens" and max_rows is not None:
        return _reservoir_sample(rows, max_rows, seed)[0]
    parts = [part.cpu() for (part,) in rows]
    if not parts:
        raise ValueError("no batches were given: pass an iterable of tokenizer outputs")
    return torch.cat(parts, dim=1)


def pool_hidden_states(
    hidden: Tensor,
    batch: Mapping[str, Tensor],
    pooling: Pooling = "cls",
    *,
    special_token_ids: Iterable[int] | None = None,
) -> Tensor:
    """One batch's stacked hidden states ``(layers, rows, seq, d)`` pooled as
    :func:`layer_representations` pools them: ``(layers, pooled rows, d)``.

    For hidden states computed elsewhere (e.g. cached once and read several ways); `batch` is the
    tokenizer output they were computed from, `pooling` and `special_token_ids` as there.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    special_ids = None
    if special_token_ids is not None:
        special_ids = torch.tensor(sorted(set(special_token_ids)))
    mask, special = _masks(batch, pooling, special_ids)
    if hidden.shape[1:3] != mask.shape:
        raise ValueError(
            f"hidden states of shape {tuple(hidden.shape)} do not match the batch's "
            f"{tuple(mask.shape)} (rows, seq): pass the batch they were computed from"
        )
    return _pool(hidden, mask, special, pooling)


def real_token_mask(batch: Mapping[str, Tensor], special_token_ids: Iterable[int]) -> Tensor:
    """``(rows, seq)`` boolean mask of the tokens ``"tokens"`` pooling keeps: not padding and not
    special (multiple choice: one row per (example, choice))."""
    special_ids = torch.tensor(sorted(set(special_token_ids)))
    mask, special = _masks(batch, "tokens", special_ids)
    return mask & ~special


def stream_cka(
    model_a: nn.Module,
    batches: Iterable[Mapping[str, Tensor]],
    *,
    model_b: nn.Module | None = None,
    pooling: Pooling = "cls",
    estimator: Estimator = "biased",
    layers: Sequence[int] | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    special_token_ids: Iterable[int] | None = None,
    autocast: bool = False,
    progress: bool = False,
) -> Tensor:
    """Layer-by-layer CKA computed on the fly: an (La, Lb) float64 tensor.

    Each batch's pooled representations go straight into a `layersim.cka` accumulator and are
    dropped, so memory does not grow with the number of rows. Without `model_b` the matrix
    compares `model_a`'s layers with each other; with it, `model_a`'s layers (rows) with
    `model_b`'s (columns) on identical inputs, e.g. a pretrained model against its fine-tuned
    version. Arguments are as in `layer_representations`.

    `estimator` is ``"biased"`` (linear CKA as in the paper), ``"debiased"`` (unbiased HSIC), both
    exactly equal to `layersim.cka.cka_matrix` on the stored representations, or ``"minibatch"``
    (Nguyen et al. 2021's average over batches: a different estimator that depends on the batch
    size). Token pooling with `max_rows` samples uniformly over all batches, which needs the
    sample in memory (max_rows rows) before the CKA is computed.
    """
    if estimator not in ("biased", "debiased", "minibatch"):
        raise ValueError(
            f"unknown estimator {estimator!r}; choose 'biased', 'debiased' or 'minibatch'"
        )
    models = (model_a,) if model_b is None else (model_a, model_b)
    rows = _pooled_rows(
        models, batches, pooling, layers, max_rows, seed, special_token_ids, autocast, progress
    )
    if pooling == "tokens" and max_rows is not None:
        if estimator == "minibatch":
            raise ValueError(
                "the minibatch estimator needs batches; token sampling with "
                "max_rows pools them. Use max_rows=None or another estimator."
            )
        sample = _reservoir_sample(rows, max_rows, seed)
        return cka.cka_matrix(
            sample[0], sample[1] if model_b is not None else None, debiased=estimator == "debiased"
        )
    if estimator == "minibatch":
        accumulator = cka.MinibatchCKA()
    else:
        accumulator = cka.CKAAccumulator(debiased=estimator == "debiased")
    seen = False
    for parts in rows:
        accumulator.update(parts[0], parts[1] if model_b is not None else None)
        seen = True
    if not seen:
        raise ValueError("no batches were given: pass an iterable of tokenizer outputs")
    return accumulator.compute()


def _pooled_rows(
    models: tuple[nn.Module, ...],
    batches: Iterable[Mapping[str, Tensor]],
    pooling: str,
    layers: Sequence[int] | None,
    max_rows: int | None,
    seed: int,
    special_token_ids: Iterable[int] | None,
    autocast: bool,
    progress: bool,
) -> Iterator[tuple[Tensor, ...]]:
    """Per batch, one (layers, rows, d) float32 tensor per model (on its device), same rows.

    For ``"tokens"`` with `max_rows`, each yielded tuple also ends with the rows' sampling keys.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise ValueError(f"max_rows must be a positive integer or None; got {max_rows!r}")
    special_ids = None
    if special_token_ids is not None:
        special_ids = torch.tensor(sorted(set(special_token_ids)))
    keys = torch.Generator().manual_seed(seed)
    taken = 0
    with _inference(models):
        for batch in tqdm(batches, desc="batches", unit="batch", disable=not progress):
            mask, special = _masks(batch, pooling, special_ids)
            outputs = [_hidden_states(model, batch, layers, autocast) for model in models]
            for i, hidden in enumerate(outputs[1:], start=1):
                if hidden.shape[:3] != outputs[0].shape[:3]:
                    raise ValueError(
                        f"model {i} returned hidden states of shape {tuple(hidden.shape)}, model 0 "
                        f"{tuple(outputs[0].shape)}: compare models with the same number of layers"
                        " (or select them with layers=) on the same inputs"
                    )
            pooled = [_pool(hidden, mask, special, pooling) for hidden in outputs]
            if pooling == "tokens" and max_rows is not None:
                yield (*pooled, torch.rand(pooled[0].shape[1], generator=keys))
                continue
            if max_rows is not None:
                pooled = [p[:, : max_rows - taken] for p in pooled]
            taken += pooled[0].shape[1]
            yield tuple(pooled)
            if max_rows is not None and taken >= max_rows:
                return
    if max_rows is not None and pooling != "tokens":
        raise ValueError(
            f"asked for max_rows={max_rows} but the batches hold only {taken} examples; "
            "pass max_rows=None to use all of them"
        )


def _reservoir_sample(
    rows: Iterator[tuple[Tensor, ...]], max_rows: int, seed: int
) -> tuple[Tensor, ...]:
    """A uniform sample of `max_rows` rows: those with the smallest random keys.

    Keeps at most `max_rows` + one batch of rows in memory; sorted back into input order.
    """
    kept: list[Tensor] | None = None
    kept_keys = torch.empty(0)
    kept_order = torch.empty(0, dtype=torch.long)
    offset = 0
    for *parts, keys in rows:
        order = torch.arange(offset, offset + keys.numel())
        offset += keys.numel()
        parts = (
            parts
            if kept is None
            else [torch.cat([k, p], 1) for k, p in zip(kept, parts, strict=True)]
        )
        keys, order = torch.cat([kept_keys, keys]), torch.cat([kept_order, order])
        best = torch.argsort(keys)[:max_rows]
        kept = [p[:, best.to(p.device)] for p in parts]
        kept_keys, kept_order = keys[best], order[best]
    if offset < max_rows:
        raise ValueError(
            f"asked for max_rows={max_rows} tokens but the batches hold only {offset} real, "
            "non-special tokens; pass max_rows=None to use all of them"
        )
    in_input_order = torch.argsort(kept_order)
    return tuple(p[:, in_input_order.to(p.device)].cpu() for p in kept)


@contextlib.contextmanager
def _inference(models: tuple[nn.Module, ...]) -> Iterator[None]:
    """Eval mode and no gradients for the duration; each model's previous mode restored after."""
    previous = [model.training for model in models]
    try:
        for model in models:
            model.eval()
        with torch.no_grad():
            yield
    finally:
        for model, was_training in zip(models, previous, strict=True):
            model.train(was_training)


def _model_inputs(model: nn.Module, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The batch's tensors that `model.forward` accepts, on the model's device, 2-D unless the
    model is a multiple-choice model (which flattens choices itself)."""
    device = next(model.parameters()).device
    params = inspect.signature(model.forward).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    multiple_choice = type(model).__name__.endswith("ForMultipleChoice")
    inputs = {}
    for key, value in batch.items():
        if key in _NON_INPUT_KEYS or not isinstance(value, Tensor):
            continue
        if not takes_any and key not in params:
            continue
        if value.dim() == 3 and not multiple_choice:
            value = value.reshape(-1, value.shape[-1])
        inputs[key] = value.to(device)
    return inputs


def _hidden_states(
    model: nn.Module, batch: Mapping[str, Tensor], layers: Sequence[int] | None, autocast: bool
) -> Tensor:
    """Stacked hidden states, (layers, rows, seq, d) in float32."""
    inputs = _model_inputs(model, batch)
    device = next(model.parameters()).device
    use_autocast = autocast and device.type == "cuda"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
        output = model(**inputs, output_hidden_states=True)
    hidden = getattr(output, "hidden_states", None)
    if not hidden:
        raise ValueError(
            f"{type(model).__name__} returned no hidden_states; pass a Hugging Face transformer "
            "that supports output_hidden_states=True"
        )
    if layers is not None:
        bad = [i for i in layers if not -len(hidden) <= i < len(hidden)]
        if bad:
            raise ValueError(
                f"layers {bad} out of range: the model has {len(hidden)} hidden "
                f"states (embeddings + {len(hidden) - 1} layers)"
            )
        hidden = [hidden[i] for i in layers]
    return torch.stack([h.float() for h in hidden])


def _masks(
    batch: Mapping[str, Tensor], pooling: str, special_ids: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """(rows, seq) boolean masks of real tokens and (for token pooling) of special tokens."""
    if "input_ids" not in batch:
        raise ValueError(f"each batch needs input_ids; got keys {sorted(batch)}")
    input_ids = batch["input_ids"]
    input_ids = input_ids.reshape(-1, input_ids.shape[-1])
    mask = batch.get("attention_mask")
    mask = torch.ones_like(input_ids, dtype=torch.bool) if mask is None else mask
    mask = mask.reshape(-1, mask.shape[-1]).bool().cpu()
    empty = (~mask.any(dim=1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"rows {empty.tolist()} of a batch have no real tokens (all padding)")
    if pooling != "tokens":
        return mask, None
    if "special_tokens_mask" in batch:
        special = batch["special_tokens_mask"]
        special = special.reshape(-1, special.shape[-1]).bool().cpu()
    elif special_ids is not None:
        special = torch.isin(input_ids.cpu(), special_ids)
    else:
        raise ValueError(
            "token pooling must know the special tokens: tokenize with "
            "return_special_tokens_mask=True or pass special_token_ids=tokenizer.all_special_ids"
        )
    return mask, special


def _pool(hidden: Tensor, mask: Tensor, special: Tensor | None, pooling: str) -> Tensor:
    """(layers, rows, seq, d) hidden states -> (layers, pooled rows, d), on their device."""
    mask = mask.to(hidden.device)
    if pooling in ("cls", "first"):
        pooled = hidden[:, :, 0]
    elif pooling == "mean":
        weights = mask.to(hidden.dtype)[None, :, :, None]
        pooled = (hidden * weights).sum(2) / weights.sum(2)
    elif pooling == "last":
        positions = torch.arange(mask.shape[1], device=hidden.device)
        last = torch.where(mask, positions, -1).amax(dim=1)
        pooled = hidden[:, torch.arange(mask.shape[0], device=hidden.device), last]
    else:  # tokens
        keep = mask & ~special.to(hidden.device)
        pooled = hidden[:, keep]
    return pooled

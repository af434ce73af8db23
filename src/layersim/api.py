"""The three things people come for, in a few lines each.

>>> import layersim
>>> result = layersim.layer_cka("minilm-l6", sentences)  # doctest: +SKIP
>>> result.matrix, result.layers, result.to_frame()      # doctest: +SKIP
>>> result.plot()                                         # doctest: +SKIP

* :func:`layer_cka`: CKA between every pair of layers of a model (or between two models) on your
  sentences: a model name, directory or object, raw strings (or pairs, or tokenized batches),
  a labelled :class:`LayerCKA` back;
* :func:`layersim.cka_matrix`: the same for features you already have (torch or NumPy);
* :func:`layersim.keep_first_layers` / :func:`layersim.drop_layers`: a copy of a model without
  some of its layers, with its head.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor

__all__ = ["LayerCKA", "SmallSampleWarning", "layer_cka"]

#: Inputs below which the biased estimator's floor for unrelated representations is large
#: compared with the differences between layers (:func:`layer_cka` warns).
FEW_INPUTS = 100


class SmallSampleWarning(UserWarning):
    """Too few inputs for the estimator to separate layers from its own bias."""


@dataclass(frozen=True)
class LayerCKA:
    """A layer-by-layer CKA matrix with what it was computed from.

    Attributes
    ----------
    matrix : Tensor
        ``(len(layers), len(other_layers))`` float64 CKA values.
    layers, other_layers : list of int
        Hidden-state indices of the rows and the columns (0 is the embedding output).
    estimator, pooling : str
        ``biased`` or ``debiased``; how each input became one vector per layer.
    n : int
        The number of inputs compared (each (question, choice) of multiple choice is one).
    model, other : str
        The names of the two models (the same for a model against itself).
    """

    matrix: Tensor
    layers: list[int]
    other_layers: list[int]
    estimator: str
    pooling: str
    n: int
    model: str
    other: str

    def to_frame(self) -> pd.DataFrame:
        """One row per pair of layers: ``layer_a, layer_b, cka`` and the settings."""
        values = self.matrix.detach().cpu().double().numpy()
        return pd.DataFrame(
            [
                {"model": self.model, "other": self.other, "layer_a": a, "layer_b": b,
                 "cka": float(values[i, j]), "estimator": self.estimator,
                 "pooling": self.pooling, "n": self.n}
                for i, a in enumerate(self.layers)
                for j, b in enumerate(self.other_layers)
            ]
        )  # fmt: skip

    def plot(self, *, size: int = 260) -> Any:
        """The matrix as an altair heatmap (layer 1 at the bottom left)."""
        try:
            from layersim.book import plots
        except ImportError as error:
            raise ImportError(
                f"plot() draws with altair, which is not installed ({error}): pip install altair, "
                "or install layersim with its pipeline extra"
            ) from None
        if self.layers != self.other_layers:
            raise ValueError("plot() draws a model against itself; use to_frame() for two models")
        title = self.model if self.model == self.other else f"{self.model} × {self.other}"
        return plots.matrix_heatmap(self.matrix, layers=self.layers, title=title, size=size)

    def _repr_html_(self) -> str:  # a table in Jupyter when the result ends a cell
        frame = pd.DataFrame(
            self.matrix.detach().cpu().double().numpy(),
            index=[f"layer {i}" for i in self.layers],
            columns=[f"layer {j}" for j in self.other_layers],
        )
        return (
            f"<p>{self.estimator} CKA, {self.pooling} pooling, n = {self.n}</p>"
            + frame.round(3).to_html()
        )


def _name(model: Any) -> str:
    if isinstance(model, str):
        return model
    config = getattr(model, "config", None)
    return str(getattr(config, "_name_or_path", "") or type(model).__name__)


def _load(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """A model object and its tokenizer from a name, directory or object."""
    if isinstance(model, str):
        from transformers import AutoModel, AutoTokenizer

        from layersim.pipeline import presets

        source = presets.resolve_model(model)
        network = AutoModel.from_config(source) if not isinstance(source, str) else None
        network = network or AutoModel.from_pretrained(source)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(presets.resolve_tokenizer(model))
            if tokenizer.pad_token is None and tokenizer.eos_token is not None:
                tokenizer.pad_token = tokenizer.eos_token  # decoders such as GPT-2 have none
        return network, tokenizer
    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"model must be a model name (e.g. 'minilm-l6'), a directory or a transformers model; "
            f"got {type(model).__name__}"
        )
    return model, tokenizer


def _batches(texts: Any, tokenizer: Any, batch_size: int, max_length: int) -> Iterable[Mapping]:
    """Batches of model inputs from strings, (first, second) pairs, a tokenizer's output or an
    iterable of such batches (e.g. a DataLoader)."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not one string: pass [text]")
    if isinstance(texts, Mapping):  # one tokenizer output
        if not isinstance(texts.get("input_ids"), Tensor):
            raise ValueError(
                "a tokenizer output must hold tensors: call the tokenizer with "
                "return_tensors='pt' and padding=True"
            )
        return [texts]
    iterator = iter(texts)
    first = next(iterator, None)
    if first is None:
        raise ValueError("texts is empty: pass the sentences (or batches) to compare on")
    if isinstance(first, Mapping):
        return itertools.chain(
            [first], iterator
        )  # batches: checked as they come (layersim.models.reps)
    if not isinstance(first, (str, tuple, list)):
        raise ValueError(
            f"texts must hold strings, (first, second) pairs or tokenized batches; its first item "
            f"is a {type(first).__name__}"
        )
    if tokenizer is None:
        raise ValueError(
            "raw text needs a tokenizer: pass tokenizer=..., or the model by name or directory"
        )
    items = [first, *iterator]
    out = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        pairs = [t for t in chunk if not isinstance(t, str)]
        if pairs and len(pairs) != len(chunk):
            raise ValueError("texts mix single strings and pairs; pass one kind")
        first_texts = [t[0] for t in chunk] if pairs else chunk
        second_texts = [t[1] for t in chunk] if pairs else None
        out.append(tokenizer(first_texts, second_texts, padding=True, truncation=True,
                             max_length=max_length, return_tensors="pt"))  # fmt: skip
    return out


def layer_cka(
    model: Any,
    texts: Any,
    *,
    tokenizer: Any = None,
    other: Any = None,
    pooling: str = "mean",
    estimator: str = "biased",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
    max_length: int = 128,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> LayerCKA:
    """CKA between every pair of layers of `model` on `texts` (or between `model`'s layers and
    `other`'s on the same inputs).

    Parameters
    ----------
    model, other
        A model name (``minilm-l6``, ``mpnet-base``, ``smollm2-135m``, a Hub id), a local
        directory, or a loaded transformers model.
    texts
        A list of strings, a list of ``(first, second)`` pairs, a tokenizer's output (tensors),
        or an iterable of tokenized batches such as a DataLoader.
    tokenizer
        Needed for raw text when `model` is an object (a name or directory brings its own).
    pooling
        ``mean`` (default: every real token), ``cls`` (the first token, the paper's), ``last``
        (a decoder's last token) or ``tokens``. With ``cls`` or ``last`` the embedding output is
        left out by default: it is the same vector for every input.
    estimator
        ``biased`` (the paper's) or ``debiased``.
    layers
        Hidden-state indices to compare (default: all that vary across inputs).
    batch_size, max_length, device, progress
        Batches for the forward pass, truncation of raw text, where the models run (default:
        where they are), a progress bar.

    Returns
    -------
    LayerCKA
        The matrix with its layers, settings and ``n``; ``.to_frame()``, ``.plot()``.

    Warns
    -----
    SmallSampleWarning
        Fewer than :data:`FEW_INPUTS` inputs: the biased estimator's value for unrelated layers
        is then large, and differences between layers are hard to read.
    """
    from layersim.models import reps, truncate

    network, tokenizer = _load(model, tokenizer)
    second = None
    if other is not None:
        second, _ = _load(other, tokenizer)
    if device is not None:
        network = network.to(device)
        second = second.to(device) if second is not None else None
    batches = _batches(texts, tokenizer, batch_size, max_length)
    if layers is None:
        first = 1 if pooling in ("cls", "first", "last") else 0
        depth = truncate.num_layers(network) if _supported(network) else None
        layers = list(range(first, depth + 1)) if depth is not None else None
    special = getattr(tokenizer, "all_special_ids", None)
    seen = [0]

    def counted(batches: Iterable[Mapping]) -> Iterable[Mapping]:
        for batch in batches:
            seen[0] += int(batch["input_ids"].shape[0])
            yield batch

    matrix = reps.stream_cka(
        network, counted(batches), model_b=second, pooling=pooling, estimator=estimator,
        layers=layers, special_token_ids=special, progress=progress,
    )  # fmt: skip
    if seen[0] < FEW_INPUTS:
        warnings.warn(
            f"only {seen[0]} inputs: with so few, {estimator} CKA of unrelated layers is far from "
            "0 and differences between layers are hard to read; use hundreds of inputs",
            SmallSampleWarning,
            stacklevel=2,
        )
    rows = list(layers) if layers is not None else list(range(matrix.shape[0]))
    columns = list(layers) if layers is not None else list(range(matrix.shape[1]))
    return LayerCKA(
        matrix=matrix, layers=rows, other_layers=columns, estimator=estimator, pooling=pooling,
        n=seen[0], model=_name(model), other=_name(other if other is not None else model),
    )  # fmt: skip


def _supported(network: Any) -> bool:
    from layersim.models import truncate

    model_type = getattr(getattr(network, "config", None), "model_type", None)
    return model_type in truncate.SUPPORTED_MODEL_TYPES

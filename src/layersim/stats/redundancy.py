"""Layer-redundancy signals next to CKA: which layers each would drop for a budget of n layers.

All signals read the hidden states ``h_0 .. h_L`` of one forward pass (shape ``(L + 1, tokens,
width)``, the non-padding tokens of the inputs, stacked) and number layers as hidden states:
layer l maps ``h_{l-1}`` to ``h_l``. Each signal's choice for a budget n is a set of n layers
for :func:`layersim.models.truncate.drop_layers`.

* **top-k** (the baseline, and the paper's truncation): drop the last n layers.
* **block influence** (Men et al. 2024, ShortGPT): ``BI_l = 1 - mean_t cos(h_{l-1,t}, h_{l,t})``;
  drop the n layers of lowest BI.
* **angular distance** (Gromov et al. 2024): ``d(l, n) = mean_t arccos(cos(h_{l,t}, h_{l+n,t})) /
  pi``; drop the block ``l+1 .. l+n`` of the smallest distance (Gromov et al. average over the
  last token of decoder inputs; an encoder has no such token, so every token counts here).
* **CKA** (the paper's measurement): linear CKA between ``h_{l-1}`` and ``h_l`` over pooled inputs
  (:func:`layersim.cka.cka_matrix`); drop the n layers whose output is most similar to their
  input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "BUDGET_POINTS",
    "SIGNALS",
    "SIGNAL_LABELS",
    "budget_grid",
    "angular_distances",
    "block_influence",
    "choose_layers",
    "cka_with_last",
    "consecutive_cka",
]

SIGNALS: tuple[str, ...] = ("top_k", "block_influence", "angular_distance", "cka")
#: Readable names of the signals (``layer_drop``'s and ``layer_signals``' spellings).
SIGNAL_LABELS: dict[str, str] = {
    "top_k": "top-k (the paper's truncation)",
    "block_influence": "block influence",
    "angular_distance": "angular distance",
    "cka": "consecutive CKA",
    "consecutive_cka": "consecutive CKA",
    "cka_with_last": "CKA with the last layer",
    "single": "one layer alone",
}


def _check_states(states: Tensor) -> Tensor:
    if not isinstance(states, Tensor) or states.ndim != 3 or states.shape[0] < 2:
        raise ValueError(
            "hidden states must be a tensor of shape (L + 1, tokens, width) with L >= 1 "
            f"(stack the model's hidden_states over its non-padding tokens); got "
            f"{getattr(states, 'shape', type(states).__name__)}"
        )
    if not torch.isfinite(states).all():
        raise ValueError("hidden states contain NaN or infinite values")
    return states.to(torch.float64)


def _cosines(a: Tensor, b: Tensor) -> Tensor:
    """Cosine of each token's pair of vectors (a zero vector has cosine 0 with anything)."""
    norms = a.norm(dim=-1) * b.norm(dim=-1)
    dots = (a * b).sum(-1)
    return torch.where(norms > 0, dots / norms.clamp(min=1e-300), torch.zeros_like(dots))


def block_influence(states: Tensor) -> Tensor:
    """``BI_l`` for layers 1..L (index l - 1 of the result): one minus the mean cosine
    between each token's input and output of the layer."""
    states = _check_states(states)
    return 1.0 - _cosines(states[:-1], states[1:]).mean(-1)


def angular_distances(states: Tensor, n: int) -> Tensor:
    """``d(l, n)`` for l = 0..L-n: the mean angle, in units of pi, between each token's hidden
    states l and l + n."""
    states = _check_states(states)
    depth = states.shape[0] - 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= depth:
        raise ValueError(f"n must be an integer from 1 to {depth} (the layers); got {n!r}")
    cosines = _cosines(states[: depth + 1 - n], states[n:]).clamp(-1.0, 1.0)
    return (torch.arccos(cosines) / math.pi).mean(-1)


def _linear_cka_or_nan(x: Tensor, y: Tensor) -> float:
    from layersim.cka import linear_cka

    try:
        return float(linear_cka(x, y))
    except ValueError:  # a constant representation has no defined CKA
        return math.nan


def consecutive_cka(pooled: Tensor) -> Tensor:
    """Linear CKA between ``h_{l-1}`` and ``h_l`` for layers 1..L, from pooled rows
    ``(L + 1, inputs, width)`` (a constant layer, e.g. a first-token embedding, gets NaN)."""
    pooled = _check_states(pooled)
    values = [_linear_cka_or_nan(pooled[i - 1], pooled[i]) for i in range(1, pooled.shape[0])]
    return torch.tensor(values, dtype=torch.float64)


def cka_with_last(pooled: Tensor) -> Tensor:
    """Linear CKA between ``h_l`` and the last hidden state ``h_L`` for layers 1..L, from pooled
    rows ``(L + 1, inputs, width)`` (a constant layer gets NaN)."""
    pooled = _check_states(pooled)
    values = [_linear_cka_or_nan(pooled[i], pooled[-1]) for i in range(1, pooled.shape[0])]
    return torch.tensor(values, dtype=torch.float64)


#: Deepest model whose every budget is scored; deeper ones get about this many budgets.
BUDGET_POINTS = 6


def budget_grid(depth: int, *, points: int = BUDGET_POINTS) -> list[int]:
    """The budgets (numbers of layers dropped) scored for a model of `depth` layers: every
    ``0..depth`` up to `points` layers, else every ``ceil(depth / points)``-th (always 0 and
    ``depth``): MiniLM's 6 layers at every budget, a 12-layer model at 0, 2, ..., 12, a 30-layer
    one at 0, 5, ..., 30. Scoring every budget costs about ``depth²`` pruned passes, which a
    2-core CPU cannot give a 30-layer model."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive number of layers; got {depth!r}")
    step = max(1, math.ceil(depth / points))
    return sorted(set(range(0, depth + 1, step)) | {depth})


def choose_layers(signal: str, n: int, *, depth: int, scores: Tensor | None = None) -> list[int]:
    """The n layers (1..depth) a signal drops.

    Parameters
    ----------
    signal : str
        One of :data:`SIGNALS`.
    n : int
        The budget, 0..depth.
    depth : int
        The model's layers L.
    scores : Tensor, optional
        ``block_influence``: its per-layer values; ``cka``: :func:`consecutive_cka`;
        ``angular_distance``: :func:`angular_distances` for this n. Not used by ``top_k``.

    Returns
    -------
    list of int
        Sorted layer numbers.
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}; signals: {', '.join(SIGNALS)}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= depth:
        raise ValueError(f"the budget must be an integer from 0 to {depth}; got {n!r}")
    if n == 0:
        return []
    if signal == "top_k":
        return list(range(depth - n + 1, depth + 1))
    if scores is None:
        raise ValueError(f"signal {signal!r} needs its scores")
    scores = torch.as_tensor(scores, dtype=torch.float64)
    if signal == "angular_distance":
        if len(scores) != depth - n + 1:
            raise ValueError(f"angular distances for n = {n} must have {depth - n + 1} entries")
        start = int(torch.argmin(scores))  # the block from hidden state `start` to start + n
        return list(range(start + 1, start + n + 1))
    if len(scores) != depth:
        raise ValueError(f"{signal} scores must have one entry per layer ({depth})")
    # Lowest block influence, or highest CKA (a NaN never counts as redundant), first.
    key = scores if signal == "block_influence" else -torch.nan_to_num(scores, nan=-math.inf)
    order = torch.argsort(key, stable=True)
    return sorted(int(i) + 1 for i in order[:n])

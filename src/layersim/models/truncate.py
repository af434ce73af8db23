"""Top-layer truncation: keep the first k transformer layers of a model and its unchanged head.

This is the paper's redundancy experiment (claim C5): a fine-tuned model whose top layers are
dropped, with the truncated output fed to the task head that was trained on the full depth, and no
further tuning. :func:`keep_first_layers` returns a new model; the original is never modified.
:func:`truncation_knee` reads the resulting curve (metric against layers kept): the fewest layers
that keep the full model's metric, which claim C6 compares with the CKA block boundary.

Importing this module loads neither torch nor transformers (it only handles models it is given),
so the claims and the book can use :func:`truncation_knee` cheaply.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from layersim.models import architectures

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "drop_layers",
    "fewest_layers",
    "keep_first_layers",
    "num_layers",
    "truncation_knee",
]


SUPPORTED_MODEL_TYPES: tuple[str, ...] = architectures.SUPPORTED_MODEL_TYPES


def _stack(model: PreTrainedModel) -> architectures.Architecture:
    stack = architectures.architecture(model, what="layer truncation")
    if stack.shared:
        config = model.config
        if config.num_hidden_groups != 1 or config.inner_group_num != 1:
            # With several groups the group of layer i depends on num_hidden_layers, so keeping
            # k layers would silently re-map weights; every released ALBERT uses one group.
            raise ValueError(
                "ALBERT truncation needs num_hidden_groups == 1 and inner_group_num == 1 "
                f"(this model has {config.num_hidden_groups} and {config.inner_group_num})"
            )
    return stack


def _layer_list(model: PreTrainedModel, stack: architectures.Architecture) -> nn.ModuleList:
    module = model.base_model
    for name in stack.layers.split("."):
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


def fewest_layers(model: PreTrainedModel) -> int:
    """The smallest k that :func:`keep_first_layers` accepts for `model`: 0 (the embeddings
    alone), except 1 for DeBERTa-v2, whose transformers encoder cannot run without a layer."""
    return _stack(model).fewest_layers


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
    if k < fewest_layers(model):
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


def drop_layers(model: PreTrainedModel, layers: Sequence[int]) -> PreTrainedModel:
    """A copy of `model` without the given layers: the others run in order, same head.

    Layers are numbered as hidden states, 1..L (layer l produces hidden state l), so dropping
    layer l passes hidden state l - 1 on to layer l + 1, as if layer l were the identity.
    Dropping the top layers ``k+1..L`` is :func:`keep_first_layers` ``(model, k)``. ALBERT
    applies one shared layer L times, so dropping any m of its layers is keeping ``L - m``. The
    copy's config (``num_hidden_layers``, decoders' ``layer_types``) and the decoders' layer
    indices (KV cache slots) are renumbered, so ``save_pretrained`` / ``from_pretrained``
    round-trip it. The original model is not modified.

    Raises
    ------
    ValueError
        For an unsupported architecture, layer numbers outside ``1..L`` or repeated, or a set
        that leaves fewer layers than the architecture can run with (DeBERTa-v2: one).
    """
    total = num_layers(model)
    chosen = list(layers)
    if any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in chosen) or any(
        not 1 <= int(i) <= total for i in chosen
    ):
        raise ValueError(f"layers to drop must be integers from 1 to {total}; got {chosen!r}")
    drop = {int(i) for i in chosen}
    if len(drop) != len(chosen):
        raise ValueError(f"layers to drop must not repeat; got {chosen!r}")
    keep = [i for i in range(1, total + 1) if i not in drop]
    stack = _stack(model)
    if stack.shared or keep == list(range(1, len(keep) + 1)):
        return keep_first_layers(model, len(keep))
    if len(keep) < fewest_layers(model):
        raise ValueError("DeBERTa-v2 cannot run with 0 layers in transformers; keep one")
    pruned = copy.deepcopy(model)
    module_list = _layer_list(pruned, stack)
    kept_modules = [module_list[i - 1] for i in keep]
    for index in sorted(range(len(module_list)), reverse=True):
        del module_list[index]
    for new_index, module in enumerate(kept_modules):
        module_list.append(module)
        for sub in module.modules():  # decoders index their KV cache by layer_idx
            if hasattr(sub, "layer_idx"):
                sub.layer_idx = new_index
    config = pruned.config
    config.num_hidden_layers = len(keep)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[i - 1] for i in keep]
    return pruned


def truncation_knee(
    layers_kept: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    tolerance: float = 0.01,
    relative: bool = False,
    higher_is_better: bool = True,
) -> int:
    """Smallest number of kept layers from which on the metric stays within `tolerance` of the
    full model's.

    The full model is the largest entry of `layers_kept`. A truncated model "keeps" the metric
    when it is at most `tolerance` worse than the full model (being better always counts). The
    knee is the smallest ``k`` such that every ``k' >= k`` keeps it, so a lucky shallow model
    followed by worse deeper ones does not count: the answer is a depth one can safely truncate
    to. Repeated entries of `layers_kept` (several seeds) are averaged first, which is the way to
    tame noise; a single noisy dip near the top pushes the knee up (conservative).

    For claim C6: a model keeping ``k`` layers outputs hidden state ``k``, so a CKA boundary ``b``
    (first hidden state of the late block) predicts a knee at ``k = b``.

    Parameters
    ----------
    layers_kept
        Numbers of layers kept (non-negative integers, e.g. ``0 .. L``), any order.
    values
        The metric for each entry of `layers_kept`.
    tolerance
        Allowed loss (>= 0). Absolute, in metric units (default 0.01: one accuracy point on a
        0–1 scale), or with `relative` a fraction of ``|full value|``.
    relative
        Interpret `tolerance` relative to the full model's value.
    higher_is_better
        False for losses and errors, where "worse" means larger.

    Returns
    -------
    int
        The knee, an entry of `layers_kept` (the full depth if nothing shallower keeps the metric).

    Raises
    ------
    ValueError
        For mismatched lengths, fewer than 2 distinct depths, negative or non-integer depths,
        non-finite values or a negative tolerance.
    """
    k = np.asarray(layers_kept)
    v = np.asarray(values, dtype=np.float64)
    if k.ndim != 1 or v.ndim != 1 or len(k) != len(v):
        raise ValueError(
            f"layers_kept and values must be 1-D of the same length; got shapes {k.shape} and "
            f"{v.shape}"
        )
    if not (np.issubdtype(k.dtype, np.integer) or (k.dtype.kind == "f" and np.all(k == k // 1))):
        raise ValueError(f"layers_kept must be integers; got {k.tolist()}")
    k = k.astype(np.int64)
    if (k < 0).any():
        raise ValueError(f"layers_kept must be non-negative; got {k.tolist()}")
    if not np.isfinite(v).all():
        raise ValueError(
            f"values must be finite; got {v.tolist()} (drop failed evaluations before calling)"
        )
    if not (isinstance(tolerance, numbers.Real) and math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    depths, inverse = np.unique(k, return_inverse=True)
    if len(depths) < 2:
        raise ValueError(
            f"need at least two distinct depths to find a knee; got layers_kept={k.tolist()}"
        )
    mean = np.bincount(inverse, weights=v) / np.bincount(inverse)
    full = mean[-1]
    allowed = tolerance * abs(full) if relative else tolerance
    loss = (full - mean) if higher_is_better else (mean - full)
    keeps = loss <= allowed + 1e-12 * max(1.0, abs(full))
    # The last depth always keeps (loss 0): find the start of the final run of keeping depths.
    failing = np.flatnonzero(~keeps)
    start = 0 if len(failing) == 0 else failing[-1] + 1
    return int(depths[start])

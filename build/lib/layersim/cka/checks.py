"""Input checks shared by every CKA estimator.

Turns the accepted input forms (an ``(L, n, d)`` tensor or a sequence of ``(n, d_l)``
tensors) into lists of layers with labels such as ``xs[2]``, and rejects bad input with a
:class:`ValueError` that says what is wrong, in which layer, and what to do: wrong type or
number of dimensions, a non-floating dtype, no features, mismatched devices or row counts,
too few rows, NaN or Inf, and (where CKA would be 0/0) a constant layer.  The per-column
minimum and maximum found on the way are returned, because they bound the centred values
and so tell :mod:`layersim.cka.numerics` whether a layer needs rescaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: A stack of layer representations: an ``(L, n, d)`` tensor or a sequence of
#: ``(n, d_l)`` tensors (widths may differ between layers).
Layers = Tensor | Sequence[Tensor]

#: One group of layers as :func:`as_layers` returns it: the layers, their labels and the
#: ``(L, n, d)`` tensor they came from, if they came from one.
LayerGroup = tuple[list[Tensor], list[str], Tensor | None]

KERNELS = ("linear", "rbf")
PRECISIONS = ("exact", "fast")
METHODS = ("auto", "gram", "feature")


def check_choice(value: object, name: str, options: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"unknown {name} {value!r}; expected one of {', '.join(repr(o) for o in options)}."
        )


def as_layers(xs: Layers, name: str) -> LayerGroup:
    """Turn an (L, n, d) tensor or a sequence of (n, d) tensors into a list + labels.

    The third item is the (L, n, d) tensor itself when one was given (batched fast paths).
    NumPy arrays are taken as tensors (no copy where the dtype allows).
    """
    stacked = None
    xs = as_tensor(xs)
    if isinstance(xs, Tensor):
        if xs.ndim != 3:
            hint = " For a single layer use linear_cka(x, y) or pass [x]." if xs.ndim == 2 else ""
            raise ValueError(
                f"{name} must be a 3-D tensor (L, n, d) or a sequence of 2-D (n, d_l) "
                f"tensors; got a {xs.ndim}-D tensor of shape {tuple(xs.shape)}.{hint}"
            )
        layers = list(xs.unbind(0))
        stacked = xs
    elif isinstance(xs, Sequence) and not isinstance(xs, (str, bytes)):
        layers = [as_tensor(x) for x in xs]
    else:
        raise ValueError(
            f"{name} must be a 3-D tensor (L, n, d) or a sequence of 2-D (n, d_l) tensors; "
            f"got {type(xs).__name__}."
        )
    if len(layers) == 0:
        raise ValueError(f"{name} holds no layers; pass at least one (n, d) tensor.")
    labels = [f"{name}[{i}]" for i in range(len(layers))]
    for x, label in zip(layers, labels, strict=True):
        if not isinstance(x, Tensor):
            raise ValueError(f"{label} must be a torch.Tensor; got {type(x).__name__}.")
        if x.ndim != 2:
            raise ValueError(
                f"{label} must be 2-D (n examples, d features); got shape {tuple(x.shape)}. "
                "Flatten feature maps first, e.g. x.reshape(x.shape[0], -1)."
            )
    return layers, labels, stacked


def as_tensor(x: object) -> object:
    """A NumPy array as a tensor; anything else unchanged."""
    if type(x).__module__ == "numpy" and hasattr(x, "__array_interface__"):
        return torch.as_tensor(x)
    return x


def check_pair(x: object, y: object, names: tuple[str, str]) -> None:
    """Both arguments of a pair function (linear_cka, rbf_cka) must be 2-D tensors."""
    for t, label in ((x, names[0]), (y, names[1])):
        if not isinstance(t, Tensor) or t.ndim != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(
                f"{label} must be a 2-D tensor (n examples, d features); got {shape}. "
                "Flatten feature maps first, e.g. x.reshape(x.shape[0], -1)."
            )


def check_tensor(x: Tensor, label: str) -> None:
    if not x.is_floating_point():
        raise ValueError(
            f"{label} has dtype {x.dtype}; CKA needs a floating-point tensor. "
            "Convert it with .float()."
        )
    if x.shape[1] == 0:
        raise ValueError(f"{label} has shape {tuple(x.shape)} with no features (d = 0).")


def _column_ranges(x: Tensor, label: str) -> tuple[Tensor, Tensor]:
    """Per-column min and max; raises if the layer holds NaN or Inf."""
    lo, hi = torch.amin(x, dim=0), torch.amax(x, dim=0)  # NaN propagates; faster than aminmax
    if not bool(torch.isfinite(lo).all() & torch.isfinite(hi).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{label} contains NaN or Inf ({bad} non-finite values in shape {tuple(x.shape)}). "
            "Check the model for overflow (e.g. float16 activations) or drop those examples."
        )
    return lo, hi


def constant_error(label: str) -> ValueError:
    return ValueError(
        f"{label} is constant: every row (example) is identical, so its centred "
        "representation is zero and CKA is undefined (0/0). Remove this layer or check "
        "that its activations vary across examples."
    )


def _check_devices_and_rows(groups: Sequence[LayerGroup], context: str) -> None:
    first_x, first_label = groups[0][0][0], groups[0][1][0]
    n, device = first_x.shape[0], first_x.device
    for layers, labels, _ in groups:
        for x, label in zip(layers, labels, strict=True):
            check_tensor(x, label)
            if x.device != device:
                raise ValueError(
                    f"{label} is on {x.device} but {first_label} is on {device}; move all "
                    "layers to one device."
                )
            if x.shape[0] != n:
                raise ValueError(
                    f"{label} has {x.shape[0]} rows but {first_label} has {n} rows{context}; "
                    "every layer must hold the same examples, one per row, in the same order."
                )


def _stacked_ranges(
    layers: list[Tensor], labels: list[str], stacked: Tensor, check_constant: bool
) -> list[tuple[Tensor, Tensor]]:
    """Column ranges of an (L, n, d) tensor: two batched reductions instead of two per layer."""
    lo_all, hi_all = torch.amin(stacked, dim=1), torch.amax(stacked, dim=1)
    finite = torch.isfinite(lo_all).all(1) & torch.isfinite(hi_all).all(1)
    if not bool(finite.all()):
        i = int(torch.nonzero(~finite)[0])
        _column_ranges(layers[i], labels[i])  # raises, naming the layer
    if check_constant:
        const = (lo_all == hi_all).all(1)
        if bool(const.any()):
            raise constant_error(labels[int(torch.nonzero(const)[0])])
    return list(zip(lo_all.unbind(0), hi_all.unbind(0), strict=True))


@torch.no_grad()
def validate(
    groups: Sequence[LayerGroup],
    *,
    min_rows: int,
    debiased: bool,
    check_constant: bool,
    context: str = "",
) -> list[list[tuple[Tensor, Tensor]]]:
    """Check dtype, rows, finiteness and (optionally) constancy of every layer.

    ``context`` (e.g. ``" (update #3)"``) is added to row-count messages.  Returns the
    per-column (min, max) of every layer, group by group.
    """
    _check_devices_and_rows(groups, context)
    first_x = groups[0][0][0]
    n = first_x.shape[0]
    if n < min_rows:
        which = "debiased CKA (the unbiased HSIC estimator)" if debiased else "CKA"
        fix = "" if not debiased else " or use debiased=False"
        raise ValueError(
            f"{which} needs at least {min_rows} rows (examples){context}; got n = {n} "
            f"(shape {tuple(first_x.shape)}). Pass more examples{fix}."
        )
    ranges: list[list[tuple[Tensor, Tensor]]] = []
    for layers, labels, stacked in groups:
        if stacked is not None:
            ranges.append(_stacked_ranges(layers, labels, stacked, check_constant))
            continue
        ranges.append([])
        for x, label in zip(layers, labels, strict=True):
            lo, hi = _column_ranges(x, label)
            if check_constant and bool(torch.equal(lo, hi)):
                raise constant_error(label)
            ranges[-1].append((lo, hi))
    return ranges

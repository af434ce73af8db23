"""The classroom lab's "check your answer" cells: compare a student's reading with what the
measurement says, and say what to look at when they differ.

Each check returns a :class:`Check` whose text is printed in the lab notebook (``book/lab.md``):
a tick and the reason when the answer is within the stated tolerance, otherwise what the right
answer is and how to read it off the figure. Nothing here measures; the lab computes with the
library and hands the results in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from layersim.stats.block_intervals import BlockBootstrap
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = ["Check", "check_blocks", "check_boundary", "check_knee", "check_number"]


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``ok`` and the text to show."""

    ok: bool
    text: str

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:  # shown as Markdown when a cell ends with a check
        return self.text


#: What a check says before the student has answered.
PLACEHOLDER = Check(False, "✘ replace the placeholder (None) with your answer, then run again.")


def _verdict(ok: bool, text: str, hint: str) -> Check:
    return Check(True, f"✔ {text}") if ok else Check(False, f"✘ {text} {hint}")


def check_number(name: str, guess: float, truth: float, *, tolerance: float) -> Check:
    """A number read off a figure or table, right within `tolerance`."""
    if guess is None or (isinstance(guess, float) and math.isnan(guess)):
        return PLACEHOLDER
    off = abs(float(guess) - float(truth))
    return _verdict(
        off <= tolerance,
        f"{name}: you said {guess:g}, the measurement gives {truth:.3g}",
        f"(off by {off:.3g}; within {tolerance:g} counts). Look again at the figure above.",
    )


def check_blocks(
    guess: bool, bootstrap: BlockBootstrap, *, threshold: float = DEFAULT_EXCESS_THRESHOLD
) -> Check:
    """Does the matrix show two blocks? The library's verdict: the lower end of the bootstrap
    interval of ``excess`` above `threshold`."""
    if guess is None:
        return PLACEHOLDER
    low, high = bootstrap.excess_interval
    truth = low > threshold
    return _verdict(
        bool(guess) == truth,
        f"two blocks: you said {'yes' if guess else 'no'}; excess "
        f"{bootstrap.estimate.excess:.3f} with interval [{low:.3f}, {high:.3f}], so "
        f"{'yes' if truth else 'no'} (the lower end must clear {threshold:g}).",
        "A bright square in each corner of the diagonal is not enough: the layers inside a block "
        "must be more alike than layers as far apart across the boundary.",
    )


def check_boundary(guess: int, bootstrap: BlockBootstrap, layers: Sequence[int]) -> Check:
    """The first layer of the late block, as a hidden-state index (`layers` maps the matrix's
    rows to hidden states); one layer off counts as right when the bootstrap often chose it."""
    if guess is None:
        return PLACEHOLDER
    truth = int(layers[bootstrap.estimate.boundary])
    counts = {int(layers[b]): c for b, c in bootstrap.boundary_counts.items() if b < len(layers)}
    share = counts.get(int(guess), 0) / max(1, sum(counts.values()))
    ok = int(guess) == truth or (abs(int(guess) - truth) == 1 and share >= 0.25)
    return _verdict(
        ok,
        f"first layer of the late block: you said {guess}, the best split is at layer {truth} "
        f"(the bootstrap agrees on it in {bootstrap.boundary_agreement:.0%} of its samples).",
        "Find where the dark band between the two bright squares starts.",
    )


def check_knee(
    guess: int, layers_kept: Sequence[int], values: Sequence[float], *, tolerance: float = 0.01
) -> Check:
    """The fewest layers to keep with the metric within `tolerance` of the full model's
    (:func:`layersim.models.truncate.truncation_knee`)."""
    from layersim.models.truncate import truncation_knee

    if guess is None:
        return PLACEHOLDER

    truth = truncation_knee(layers_kept, values, tolerance=tolerance)
    return _verdict(
        int(guess) == truth,
        f"layers to keep: you said {guess}, the curve keeps the metric from {truth} layers on "
        f"(within {tolerance:g} of the full model, and at every depth above).",
        "Read the curve from the right: the knee is the last point where it drops below the full "
        "model's value by more than the tolerance, plus one.",
    )

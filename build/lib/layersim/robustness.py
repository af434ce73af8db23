"""How robust is the block verdict (E4): claim C1 under other reasonable measurement choices.

The paper measures block structure one way: biased linear CKA of the first token's hidden state
on the task's own validation inputs. :func:`choice_rows` re-reads one fine-tuned model's hidden
states under the other choices a careful reader would try:

* the number of inputs ``n`` (:data:`SIZES`; the first ``n`` of one seeded set, so the sizes are
  nested and only ``n`` changes);
* the biased or the debiased (unbiased-HSIC) estimator; the debiased one gets a half-sampling
  interval (:func:`layersim.blocks.bootstrap_blocks` with ``resample="half"``), since a bootstrap
  repeats inputs, which that estimator cannot take;
* the pooling: the model's own (``cls``, the first token, for an encoder; ``last``, the last real
  token, for a decoder: what its task head reads), ``mean`` (all real tokens) and ``tokens``: one
  real, non-special token drawn at random from each input, which keeps the rows independent (all
  tokens of a sentence are not) and the interval valid, at the cost of fewer rows than tokens;
* for the movie-review models, inputs from other domains (:data:`OTHER_DOMAINS`).

The verdict under each choice is C1's (the lower end of the interval of ``excess`` above the
threshold), and the boundary is reported with it. The rest are pure functions of the table
:func:`layersim.steps.robustness_tables` writes: :func:`agreement_table` changes one choice at a
time from the paper's and counts the runs whose verdict and boundary stay, and
:func:`scorecard_row` is the scorecard's E4 row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import blocks
from .blocks import DEFAULT_EXCESS_THRESHOLD
from .claims import _row
from .reps import pool_hidden_states, real_token_mask
from .tasks import DOMAIN_TASKS

__all__ = [
    "ESTIMATORS",
    "HEADLINE",
    "MIN_AGREEMENT",
    "OTHER_DOMAINS",
    "OWN_POOLINGS",
    "POOLINGS",
    "QUESTION",
    "SIZES",
    "agreement_table",
    "choice_rows",
    "pooled_states",
    "scorecard_row",
    "sizes_for",
    "verdict_table",
]

POOLINGS = ("cls", "mean", "tokens")
ESTIMATORS = ("biased", "debiased")
SIZES = (100, 250, 500, 1000)
#: The paper's choice; ``n`` is the largest size a run has. Its pooling is the model's own:
#: ``cls`` for an encoder, ``last`` for a decoder (:data:`OWN_POOLINGS`).
HEADLINE = {"inputs": "validation", "pooling": "cls", "estimator": "biased"}
#: The poolings that count as the paper's: each model's own (first token, or last for decoders).
OWN_POOLINGS = ("cls", "last")
#: Inputs from other domains for the models fine-tuned on movie-review sentences.
OTHER_DOMAINS: dict[str, tuple[str, ...]] = {
    "movie_polarity": DOMAIN_TASKS,
    "movie_rating": DOMAIN_TASKS,
}
#: Share of runs whose verdict must stay for a choice to count as harmless.
MIN_AGREEMENT = 0.8
QUESTION = (
    "Does the block verdict of C1 survive other reasonable choices: fewer inputs, the debiased "
    "estimator, mean or token pooling, inputs from other domains?"
)
_RUN = ["preset", "model", "task", "seed"]
_CHOICE = ["inputs", "pooling", "estimator", "n"]


def sizes_for(available: int, sizes: Sequence[int] = SIZES) -> list[int]:
    """The sizes of `sizes` that `available` inputs allow, and `available` itself when it falls
    short of the largest (a small validation split is used whole)."""
    if available < 8:
        raise ValueError(f"{available} inputs are too few for a verdict; use at least hundreds")
    chosen = [int(n) for n in sizes if n <= available]
    if available < max(sizes) and available not in chosen:
        chosen.append(int(available))
    return chosen


def pooled_states(
    cache: Sequence[tuple[dict, torch.Tensor]],
    special_token_ids: Sequence[int],
    *,
    seed: int,
    own: str = "cls",
) -> dict[str, tuple[list[int], torch.Tensor]]:
    """The model's own pooling `own` (``cls`` or, for a decoder, ``last``), ``mean`` and
    ``tokens``, each as ``(hidden-state indices, (layers, rows, d))``.

    `cache` is :func:`layersim.layer_cache.cached_hidden_states` (per batch: the batch and its
    ``(L + 1, rows, seq, d)`` states). The own pooling starts at layer 1 (the embedding output of
    the first token, or of a decoder's end marker, is the same for every input); ``tokens``
    draws one real, non-special token per row with a ``numpy`` generator seeded by `seed`.
    """
    if own not in OWN_POOLINGS:
        raise ValueError(
            f"own must be one of {OWN_POOLINGS} (the model's own pooling); got {own!r}"
        )
    rng = np.random.default_rng(seed)
    cls, mean, tokens = [], [], []
    for batch, hidden in cache:
        cls.append(pool_hidden_states(hidden, batch, own))
        mean.append(pool_hidden_states(hidden, batch, "mean"))
        mask = real_token_mask(batch, special_token_ids)
        if not bool(mask.any(dim=1).all()):
            raise ValueError("an input has no real, non-special token to draw for token pooling")
        drawn = [int(rng.choice(np.flatnonzero(row.numpy()))) for row in mask]
        tokens.append(hidden[:, torch.arange(len(drawn)), torch.tensor(drawn)])
    depth = cache[0][1].shape[0] - 1
    return {
        own: (list(range(1, depth + 1)), torch.cat(cls, 1)[1:]),
        "mean": (list(range(depth + 1)), torch.cat(mean, 1)),
        "tokens": (list(range(depth + 1)), torch.cat(tokens, 1)),
    }


def choice_rows(
    states: dict[str, tuple[list[int], torch.Tensor]],
    *,
    sizes: Sequence[int],
    estimators: Sequence[str] = ESTIMATORS,
    n_boot: int = 50,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Block statistics for every (pooling, estimator, n): ``excess`` and ``contrast`` at the best
    split with their 95% interval (:func:`layersim.blocks.bootstrap_blocks`; bootstrap for the
    biased estimator, half-sampling for the debiased one), and the boundary (first hidden state
    of the late block), on the first ``n`` rows.

    Returns
    -------
    list of dict
        ``pooling, estimator, n, statistic, value, lower, upper, boundary``.
    """
    rows = []
    for pooling, (layers, x) in states.items():
        for n in sizes:
            if n > x.shape[1]:
                raise ValueError(f"n = {n} but only {x.shape[1]} rows were pooled ({pooling})")
            for estimator in estimators:
                boot = blocks.bootstrap_blocks(
                    x[:, :n], n_boot=n_boot, seed=seed, debiased=estimator == "debiased",
                    resample="half" if estimator == "debiased" else "bootstrap",
                )  # fmt: skip
                split = boot.estimate
                found = {"excess": (split.excess, *boot.excess_interval),
                         "contrast": (split.contrast, *boot.contrast_interval)}  # fmt: skip
                rows += [
                    {"pooling": pooling, "estimator": estimator, "n": int(n),
                     "statistic": statistic, "value": float(value), "lower": float(low),
                     "upper": float(high), "boundary": int(layers[split.boundary])}
                    for statistic, (value, low, high) in found.items()
                ]  # fmt: skip
    return rows


def verdict_table(
    robustness: pd.DataFrame, *, threshold: float = DEFAULT_EXCESS_THRESHOLD
) -> pd.DataFrame:
    """Per run and choice: ``excess`` with its interval, ``boundary`` and ``blocks`` (the lower
    end above `threshold`), and ``headline`` marking the paper's choice at the run's largest
    ``n`` on its own validation inputs."""
    excess = robustness[robustness["statistic"] == "excess"]
    frame = excess[[*_RUN, *_CHOICE, "value", "lower", "upper", "boundary"]].rename(
        columns={"value": "excess"}
    )
    frame = frame.assign(blocks=frame["lower"] > threshold)
    own = frame["inputs"] == "validation"
    largest = frame[own].groupby(_RUN)["n"].max().rename("largest")
    frame = frame.join(largest, on=_RUN)
    is_headline = own & (frame["n"] == frame["largest"])
    for column, value in HEADLINE.items():
        is_headline &= _is_paper(frame, column, value)
    return frame.assign(headline=is_headline).drop(columns="largest").reset_index(drop=True)


def _is_paper(frame: pd.DataFrame, column: str, value: str) -> pd.Series:
    """Rows at the paper's choice in `column`; for the pooling, each model's own."""
    if column == "pooling":
        return frame[column].isin(OWN_POOLINGS)
    return frame[column] == value


def _alternatives(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The rows that change exactly one choice from the headline (``factor``, ``level``)."""
    own = verdicts["inputs"] == "validation"
    largest = verdicts.groupby([*_RUN, "inputs"])["n"].transform("max")
    at_paper = {c: _is_paper(verdicts, c, v) for c, v in HEADLINE.items() if c != "inputs"}
    parts = []
    for factor in ("pooling", "estimator"):
        others = [m for c, m in at_paper.items() if c != factor]
        keep = own & (verdicts["n"] == largest) & ~at_paper[factor] & np.logical_and.reduce(others)
        parts.append(verdicts[keep].assign(factor=factor, level=verdicts[factor]))
    paper = np.logical_and.reduce(list(at_paper.values()))
    smaller = own & paper & (verdicts["n"] < largest)
    parts.append(verdicts[smaller].assign(factor="n", level=verdicts["n"].astype(str)))
    other = ~own & paper & (verdicts["n"] == largest)
    parts.append(verdicts[other].assign(factor="inputs", level=verdicts["inputs"]))
    return pd.concat(parts, ignore_index=True)


def agreement_table(
    robustness: pd.DataFrame, *, threshold: float = DEFAULT_EXCESS_THRESHOLD
) -> pd.DataFrame:
    """One choice changed at a time from the paper's: per (factor, level), how many runs, the
    share whose verdict stays (``agree``), the share with blocks under the change, and the share
    whose boundary stays among runs that have blocks both ways (``same_boundary``).

    Columns: ``factor, level, runs, blocks, agree, same_boundary``.
    """
    verdicts = verdict_table(robustness, threshold=threshold)
    headline = verdicts[verdicts["headline"]].set_index(_RUN)[["blocks", "boundary"]]
    headline = headline.rename(columns=lambda column: f"{column}_paper")
    changed = _alternatives(verdicts).join(headline, on=_RUN)
    changed = changed[changed["blocks_paper"].notna()]
    rows = []
    for (factor, level), group in changed.groupby(["factor", "level"], sort=False):
        both = group[group["blocks"] & group["blocks_paper"].astype(bool)]
        rows.append({
            "factor": factor, "level": level, "runs": len(group),
            "blocks": float(group["blocks"].mean()),
            "agree": float((group["blocks"] == group["blocks_paper"].astype(bool)).mean()),
            "same_boundary": float((both["boundary"] == both["boundary_paper"]).mean())
            if len(both) else math.nan,
        })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["factor", "level", "runs", "blocks", "agree", "same_boundary"]
    )


def scorecard_row(
    robustness: pd.DataFrame,
    *,
    threshold: float = DEFAULT_EXCESS_THRESHOLD,
    min_agreement: float = MIN_AGREEMENT,
    sizes_from: int = 250,
) -> pd.DataFrame:
    """The scorecard's E4 row: the lowest share of runs whose verdict stays when one choice
    changes (sizes below `sizes_from` inputs are shown in the book but not held against the
    verdict). "yes" when every change keeps at least `min_agreement` of the verdicts; otherwise
    "no" with the changes that do not."""
    table = agreement_table(robustness, threshold=threshold)
    small = (table["factor"] == "n") & (pd.to_numeric(table["level"], errors="coerce") < sizes_from)
    counted = table[~small]
    if counted.empty:
        estimate, verdict, evidence = math.nan, "not testable: no run with other choices", ""
    else:
        estimate = float(counted["agree"].min())
        fragile = counted[counted["agree"] < min_agreement]
        verdict = (
            "yes" if fragile.empty
            else "no: " + ", ".join(f"{f} {lv}" for f, lv in zip(fragile["factor"],
                                                                  fragile["level"], strict=True))
        )  # fmt: skip
        evidence = "; ".join(
            f"{f} {lv}: {a:.0%} of {r} runs agree" + (" (too few inputs, not counted)" if s else "")
            for f, lv, a, r, s in zip(table["factor"], table["level"], table["agree"],
                                      table["runs"], small, strict=True)
        )  # fmt: skip
    row = _row("E4", "lowest share of runs whose block verdict stays under one change",
               estimate, (math.nan, math.nan), verdict, evidence)  # fmt: skip
    row["statement"] = QUESTION
    return pd.DataFrame([row])

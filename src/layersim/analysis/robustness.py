"""How robust is the block verdict (E4): claim C1 under other reasonable measurement choices.

The choices are those of :mod:`layersim.pipeline.steps.robustness_choices`. The verdict under
each choice is C1's (the lower end of the interval of ``excess`` above the threshold), and the
boundary is reported with it. Pure functions of the table
:func:`layersim.pipeline.steps.robustness_tables` writes: :func:`agreement_table` changes one
choice at a time from the paper's and counts the runs whose verdict and boundary stay, and
:func:`scorecard_row` is the scorecard's E4 row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layersim.analysis.verdicts import verdict_row
from layersim.pipeline.steps.robustness_choices import HEADLINE, OWN_POOLINGS
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = ["MIN_AGREEMENT", "QUESTION", "agreement_table", "scorecard_row", "verdict_table"]


#: Share of runs whose verdict must stay for a choice to count as harmless.
MIN_AGREEMENT = 0.8


QUESTION = (
    "Does the block verdict of C1 survive other reasonable choices: fewer inputs, the debiased "
    "estimator, mean or token pooling, inputs from other domains?"
)


RUN_COLUMNS = ["preset", "model", "task", "seed"]


_CHOICE = ["inputs", "pooling", "estimator", "n"]


def verdict_table(
    robustness: pd.DataFrame, *, threshold: float = DEFAULT_EXCESS_THRESHOLD
) -> pd.DataFrame:
    """Per run and choice: ``excess`` with its interval, ``boundary`` and ``blocks`` (the lower
    end above `threshold`), and ``headline`` marking the paper's choice at the run's largest
    ``n`` on its own validation inputs."""
    excess = robustness[robustness["statistic"] == "excess"]
    frame = excess[[*RUN_COLUMNS, *_CHOICE, "value", "lower", "upper", "boundary"]].rename(
        columns={"value": "excess"}
    )
    frame = frame.assign(blocks=frame["lower"] > threshold)
    own = frame["inputs"] == "validation"
    largest = frame[own].groupby(RUN_COLUMNS)["n"].max().rename("largest")
    frame = frame.join(largest, on=RUN_COLUMNS)
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
    largest = verdicts.groupby([*RUN_COLUMNS, "inputs"])["n"].transform("max")
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
    headline = verdicts[verdicts["headline"]].set_index(RUN_COLUMNS)[["blocks", "boundary"]]
    headline = headline.rename(columns=lambda column: f"{column}_paper")
    changed = _alternatives(verdicts).join(headline, on=RUN_COLUMNS)
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
    row = verdict_row("E4", "lowest share of runs whose block verdict stays under one change",
               estimate, (math.nan, math.nan), verdict, evidence)  # fmt: skip
    row["statement"] = QUESTION
    return pd.DataFrame([row])

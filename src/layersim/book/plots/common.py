"""What the charts share: titles of kinds, conditions, poolings and estimators, the CKA colour
scale, column checks and panel labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

__all__ = ["KIND_TITLES"]


#: How the three kinds of CKA matrix are named in chart headers.
KIND_TITLES = {
    "finetuned": "fine-tuned",
    "pretrained": "pretrained",
    "pretrained_vs_finetuned": "pretrained × fine-tuned",
}


RUN_COLUMNS = ["preset", "model", "task"]


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} needs a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what}: the frame lacks columns {missing}; pass the table from "
            f"layersim.results.load (columns present: {list(frame.columns)})"
        )
    if frame.empty:
        raise ValueError(f"{what}: the frame is empty; are there finished runs in results/?")


def cka_color(floor: float | None = None) -> alt.Color:
    """CKA on a fixed 0-1 scale, so that panels and charts compare; with `floor` (the biased
    estimator's value for unrelated representations, :func:`layersim.cka.unrelated_floor`) the
    legend says where "unrelated" sits."""
    title = "CKA" if floor is None else f"CKA (unrelated ≈ {floor:.2f})"
    return alt.Color("cka:Q", title=title, scale=alt.Scale(domain=[0, 1], scheme="viridis"))


def seeds_label(values: pd.Series) -> str:
    return ", ".join(str(s) for s in sorted(set(values)))


#: How the tables' internal names read in legends and headers.
CONDITION_TITLES = {"unchanged": "unchanged head (the paper's)", "refit": "re-fitted linear head"}


POOLING_TITLES = {"cls": "first token (the paper's)", "first": "first token (the paper's)",
                  "last": "last token (decoder's own)", "mean": "mean of tokens",
                  "tokens": "one random token"}  # fmt: skip


ESTIMATOR_TITLES = {"biased": "biased (the paper's)", "debiased": "debiased"}


def panel_labels(frame: pd.DataFrame) -> pd.Series:
    """Facet titles ``model · task (metric)``: the metric on the y axis of each panel."""
    label = frame["model"] + " · " + frame["task"]
    if "metric" in frame.columns:
        label = label + " (" + frame["metric"].astype(str) + ")"
    return label


def metric_title(frame: pd.DataFrame) -> str:
    """The y axis title: the metric when every panel shows the same one."""
    metrics = sorted(frame["metric"].unique()) if "metric" in frame.columns else []
    return f"validation {metrics[0]}" if len(metrics) == 1 else "validation metric (in the title)"


def only_rows(frame: pd.DataFrame, column: str, value: object, what: str) -> pd.DataFrame:
    """Rows with ``column == value``, or a clear error listing what there is."""
    if value is None:
        return frame
    selected = frame[frame[column] == value]
    if selected.empty:
        raise ValueError(
            f"{what}: no rows with {column}={value!r}; present: {sorted(frame[column].unique())}"
        )
    return selected

"""Across seeds and tasks (E5): agreement by layer, the rectangular matrices and how tasks part."""

from __future__ import annotations

import altair as alt
import pandas as pd

from layersim.book.plots.common import cka_color, only_rows, require_columns

__all__ = ["across_agreement", "across_heatmaps", "task_agreement"]


_COMPARISON_TITLES = {
    "seeds": "two seeds, same task",
    "tasks": "two tasks, same seed",
    "pretrained": "pretrained × fine-tuned",
}


def across_agreement(agreement: pd.DataFrame) -> alt.FacetChart:
    """Same-layer CKA against depth, one line per comparison (mean over pairs) with a band from
    the lowest to the highest pair, one panel per model.

    `agreement` is :func:`layersim.analysis.across.agreement_table`.
    """
    require_columns(
        agreement,
        ["model", "comparison", "layer", "pairs", "mean", "lowest", "highest"],
        "across_agreement",
    )
    frame = agreement.assign(
        comparison=agreement["comparison"].map(_COMPARISON_TITLES).fillna(agreement["comparison"])
    )
    order = [t for c, t in _COMPARISON_TITLES.items() if c in set(agreement["comparison"])]
    x = alt.X("layer:O", title="layer (the same in both models)")
    color = alt.Color("comparison:N", title=None, sort=order)
    tooltip = [alt.Tooltip("comparison:N"), alt.Tooltip("layer:O"), alt.Tooltip("pairs:Q"),
               alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("lowest:Q", format=".4f"),
               alt.Tooltip("highest:Q", format=".4f")]  # fmt: skip
    band = alt.Chart().mark_area(opacity=0.2).encode(x=x, y="lowest:Q", y2="highest:Q", color=color)
    line = alt.Chart().mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title="CKA of the same layer", scale=alt.Scale(domain=[0, 1])),
        color=color, tooltip=tooltip,
    )  # fmt: skip
    return (
        alt.layer(band, line, data=frame)
        .properties(width=320, height=220)
        .facet(column=alt.Column("model:N", title=None))
    )


def across_heatmaps(across: pd.DataFrame, *, estimator: str = "biased") -> alt.FacetChart:
    """The rectangular CKA matrices (layer of one model × layer of the other), mean over the
    pairs of each comparison; rows the first model of a pair (the pretrained one for
    ``pretrained``). `across` is the ``across`` table."""
    require_columns(
        across,
        ["model", "comparison", "run_a", "layer_a", "layer_b", "cka", "estimator", "n"],
        "across_heatmaps",
    )
    frame = only_rows(across, "estimator", estimator, "across_heatmaps")
    mean = (
        frame.groupby(["model", "comparison", "layer_a", "layer_b"], sort=False)
        .agg(cka=("cka", "mean"), cka_sd=("cka", "std"), pairs=("cka", "size"), n=("n", "max"))
        .reset_index()
    )
    mean["cka_sd"] = mean["cka_sd"].fillna(0.0)
    mean["comparison"] = mean["comparison"].map(_COMPARISON_TITLES).fillna(mean["comparison"])
    layers = sorted(set(mean["layer_a"]) | set(mean["layer_b"]))
    heat = (
        alt.Chart(mean)
        .mark_rect()
        .encode(
            x=alt.X("layer_b:O", title="layer (second model)", sort=layers),
            y=alt.Y("layer_a:O", title="layer (first model)", sort=list(reversed(layers))),
            color=cka_color(),
            tooltip=[
                alt.Tooltip("comparison:N"),
                alt.Tooltip("layer_a:O", title="first model"),
                alt.Tooltip("layer_b:O", title="second model"),
                alt.Tooltip("cka:Q", title="CKA (mean over pairs)", format=".4f"),
                alt.Tooltip("cka_sd:Q", title="sd over pairs", format=".4f"),
                alt.Tooltip("pairs:Q"),
                alt.Tooltip("n:Q", title="inputs"),
            ],
        )  # fmt: skip
        .properties(width=16 * len(layers), height=16 * len(layers))
    )
    order = [t for c, t in _COMPARISON_TITLES.items() if c in set(frame["comparison"])]
    return heat.facet(
        row=alt.Row("model:N", title=None),
        column=alt.Column("comparison:N", title=None, sort=order),
    )


def task_agreement(diagonals: pd.DataFrame) -> alt.FacetChart:
    """Which tasks' models agree: per layer, a task × task grid of same-layer CKA (mean over
    seeds); the diagonal cells are two seeds of one task. `diagonals` is
    :func:`layersim.analysis.across.diagonal`."""
    require_columns(diagonals, ["model", "comparison", "task_a", "task_b", "layer", "cka"],
             "task_agreement")  # fmt: skip
    pairs = diagonals[diagonals["comparison"].isin(["seeds", "tasks"])]
    both = pd.concat([pairs, pairs.rename(columns={"task_a": "task_b", "task_b": "task_a"})])
    both = both.drop_duplicates(["model", "run_a", "run_b", "layer", "task_a", "task_b"])
    mean = both.groupby(["model", "layer", "task_a", "task_b"]).agg(
        cka=("cka", "mean"), pairs=("cka", "size")
    ).reset_index()  # fmt: skip
    names = sorted(set(mean["task_a"]))
    heat = (
        alt.Chart(mean)
        .mark_rect()
        .encode(
            x=alt.X("task_b:N", title=None, sort=names),
            y=alt.Y("task_a:N", title=None, sort=names),
            color=cka_color(),
            tooltip=[
                alt.Tooltip("layer:O"),
                alt.Tooltip("task_a:N"),
                alt.Tooltip("task_b:N"),
                alt.Tooltip("cka:Q", title="same-layer CKA (mean)", format=".4f"),
                alt.Tooltip("pairs:Q"),
            ],
        )  # fmt: skip
        .properties(width=14 * len(names), height=14 * len(names))
    )
    return heat.facet(
        row=alt.Row("model:N", title=None),
        column=alt.Column("layer:O", title="layer"),
    )

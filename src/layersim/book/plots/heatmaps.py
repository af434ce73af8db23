"""CKA matrices as heatmaps: per run kind, per model, one matrix, the landing page's headline
figure, the diagonal of a cross matrix and the block statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from layersim.book.plots.common import (
    KIND_TITLES,
    RUN_COLUMNS,
    cka_color,
    only_rows,
    require_columns,
    seeds_label,
)

__all__ = [
    "block_statistics",
    "cka_heatmaps",
    "cross_diagonal",
    "headline",
    "matrix_heatmap",
    "model_heatmaps",
]


def cka_heatmaps(
    cka: pd.DataFrame,
    *,
    estimator: str = "biased",
    kinds: Sequence[str] = ("finetuned", "pretrained", "pretrained_vs_finetuned"),
    row: str = "task",
    column: str = "kind",
    cell_size: int = 16,
    floor: float | None = None,
) -> alt.FacetChart:
    """A grid of layer × layer CKA heatmaps, averaged over seeds.

    Parameters
    ----------
    cka
        The ``cka`` table (:func:`layersim.results.load`), any number of runs.
    estimator
        ``"biased"`` (the paper's) or ``"debiased"``.
    kinds
        Which matrices to draw (see :data:`KIND_TITLES`), in this order.
    row, column
        Columns of the table that lay out the grid (``task``, ``model``, ``kind``).
    cell_size
        Pixels per layer.
    floor
        The biased estimator's value for unrelated representations, named in the legend.

    Returns
    -------
    altair.FacetChart
        Rows ``layer_a`` (for ``pretrained_vs_finetuned``: the pretrained layer) from the bottom
        up, columns ``layer_b``; colour CKA on a fixed 0–1 scale so panels compare.
    """
    require_columns(
        cka, [*RUN_COLUMNS, "seed", "kind", "layer_a", "layer_b", "cka", "estimator", "n"], "cka"
    )
    frame = only_rows(cka, "estimator", estimator, "cka_heatmaps")
    frame = frame[frame["kind"].isin(list(kinds))]
    if frame.empty:
        raise ValueError(f"cka_heatmaps: no rows of kinds {list(kinds)}")
    keys = [*RUN_COLUMNS, "kind", "layer_a", "layer_b"]
    mean = (
        frame.groupby(keys, sort=False)
        .agg(
            cka=("cka", "mean"),
            cka_sd=("cka", "std"),
            seeds=("seed", seeds_label),
            n=("n", "max"),
        )
        .reset_index()
    )
    mean["cka_sd"] = mean["cka_sd"].fillna(0.0)
    mean["kind"] = mean["kind"].map(KIND_TITLES).fillna(mean["kind"])
    order = [KIND_TITLES.get(k, k) for k in kinds]
    layers = sorted(set(mean["layer_a"]) | set(mean["layer_b"]))
    size = cell_size * len(layers)
    heat = (
        alt.Chart(mean)
        .mark_rect()
        .encode(
            x=alt.X("layer_b:O", title="layer", sort=layers),
            y=alt.Y("layer_a:O", title="layer", sort=list(reversed(layers))),
            color=cka_color(floor),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("task:N"),
                alt.Tooltip("kind:N", title="matrix"),
                alt.Tooltip("layer_a:O", title="layer (row)"),
                alt.Tooltip("layer_b:O", title="layer (column)"),
                alt.Tooltip("cka:Q", title="CKA (mean over seeds)", format=".4f"),
                alt.Tooltip("cka_sd:Q", title="sd over seeds", format=".4f"),
                alt.Tooltip("seeds:N"),
                alt.Tooltip("n:Q", title="inputs"),
            ],
        )
        .properties(width=size, height=size)
    )
    sort_of = {"kind": order}
    return heat.facet(
        row=alt.Row(f"{row}:N", title=None, sort=sort_of.get(row, "ascending")),
        column=alt.Column(f"{column}:N", title=None, sort=sort_of.get(column, "ascending")),
    ).resolve_scale(x="independent", y="independent")


def model_heatmaps(
    cka: pd.DataFrame,
    *,
    kinds: Sequence[str] = ("pretrained", "finetuned"),
    estimator: str = "biased",
    size: int = 200,
    models: Sequence[str] | None = None,
) -> alt.VConcatChart:
    """Models of different depths side by side: per task (rows) and kind, one heatmap per model,
    each drawn `size` pixels wide whatever its number of layers (mean over seeds), so that a
    6-, a 12- and a 30-layer model read on one scale. `models` orders the columns."""
    require_columns(cka, [*RUN_COLUMNS, "seed", "kind", "layer_a", "layer_b", "cka", "estimator"],
             "model_heatmaps")  # fmt: skip
    frame = only_rows(cka, "estimator", estimator, "model_heatmaps")
    frame = frame[frame["kind"].isin(list(kinds))]
    mean = (
        frame.groupby(["model", "task", "kind", "layer_a", "layer_b"], sort=False)
        .agg(cka=("cka", "mean"), seeds=("seed", seeds_label))
        .reset_index()
    )
    order = list(models) if models is not None else list(dict.fromkeys(mean["model"]))
    rows = []
    for task in dict.fromkeys(mean["task"]):
        for kind in kinds:
            panels = []
            for model in order:
                data = mean[(mean["task"] == task) & (mean["kind"] == kind)
                            & (mean["model"] == model)]  # fmt: skip
                if data.empty:
                    continue
                layers = sorted(set(data["layer_a"]))
                every = max(1, round(len(layers) / 6))  # about six labels per axis
                ticks = [v for v in layers if v % every == 0 or v == layers[-1]]
                axis = {"values": ticks, "labelAngle": 0}
                panels.append(
                    alt.Chart(data, title=f"{model} · {KIND_TITLES.get(kind, kind)} · {task}")
                    .mark_rect()
                    .encode(
                        x=alt.X("layer_b:O", title="layer", sort=layers, axis=alt.Axis(**axis)),
                        y=alt.Y(
                            "layer_a:O",
                            title="layer",
                            sort=list(reversed(layers)),
                            axis=alt.Axis(**axis),
                        ),
                        color=cka_color(),
                        tooltip=[
                            alt.Tooltip("model:N"),
                            alt.Tooltip("task:N"),
                            alt.Tooltip("layer_a:O", title="layer (row)"),
                            alt.Tooltip("layer_b:O", title="layer (column)"),
                            alt.Tooltip("cka:Q", title="CKA (mean over seeds)", format=".4f"),
                            alt.Tooltip("seeds:N"),
                        ],
                    )  # fmt: skip
                    .properties(width=size, height=size)
                )
            if panels:
                rows.append(alt.hconcat(*panels))
    if not rows:
        raise ValueError(f"model_heatmaps: no rows of kinds {list(kinds)}")
    return alt.vconcat(*rows)


def matrix_heatmap(
    matrix: Any, *, layers: Sequence[int], title: str = "", size: int = 220
) -> alt.Chart:
    """One CKA matrix held in memory (a tensor or array from :func:`layersim.cka.cka_matrix`) as
    a heatmap, its rows and columns labelled by the hidden-state indices `layers`."""
    values = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, float)
    if values.shape != (len(layers), len(layers)):
        raise ValueError(
            f"matrix_heatmap: a {values.shape} matrix for {len(layers)} layers; pass the layers "
            "the matrix was computed on"
        )
    frame = pd.DataFrame(
        [{"layer_a": a, "layer_b": b, "cka": values[i, j]}
         for i, a in enumerate(layers) for j, b in enumerate(layers)]
    )  # fmt: skip
    return (
        alt.Chart(frame, title=title)
        .mark_rect()
        .encode(
            x=alt.X("layer_b:O", title="layer", sort=list(layers), axis=alt.Axis(labelAngle=0)),
            y=alt.Y("layer_a:O", title="layer", sort=list(reversed(layers))),
            color=cka_color(),
            tooltip=[
                alt.Tooltip("layer_a:O", title="layer (row)"),
                alt.Tooltip("layer_b:O", title="layer (column)"),
                alt.Tooltip("cka:Q", title="CKA", format=".4f"),
            ],
        )  # fmt: skip
        .properties(width=size, height=size)
    )


def headline(
    cka: pd.DataFrame,
    *,
    task: str,
    tasks: Sequence[str] | None = None,
    size: int = 200,
    floor: float | None = None,
) -> alt.HConcatChart:
    """The landing page's figure: the pretrained and the fine-tuned CKA matrix of one task side by
    side (biased CKA, mean over seeds), and the same-layer CKA between the two models for every
    task of `tasks` (thin lines) with their mean (thick)."""
    require_columns(
        cka, [*RUN_COLUMNS, "seed", "kind", "layer_a", "layer_b", "cka", "estimator"], "headline"
    )
    frame = only_rows(cka, "estimator", "biased", "headline")
    one = only_rows(frame, "task", task, "headline")
    mean = (
        one.groupby(["kind", "layer_a", "layer_b"], sort=False)
        .agg(cka=("cka", "mean"), seeds=("seed", seeds_label))
        .reset_index()
    )
    layers = sorted(set(mean["layer_a"]))
    panels = []
    for kind in ("pretrained", "finetuned"):
        panels.append(
            alt.Chart(mean[mean["kind"] == kind], title=f"{KIND_TITLES[kind]} · {task}")
            .mark_rect()
            .encode(
                x=alt.X("layer_b:O", title="layer", sort=layers, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("layer_a:O", title="layer", sort=list(reversed(layers))),
                color=cka_color(floor),
                tooltip=[
                    alt.Tooltip("layer_a:O", title="layer (row)"),
                    alt.Tooltip("layer_b:O", title="layer (column)"),
                    alt.Tooltip("cka:Q", title="CKA (mean over seeds)", format=".4f"),
                    alt.Tooltip("seeds:N"),
                ],
            )  # fmt: skip
            .properties(width=size, height=size)
        )
    cross = frame[(frame["kind"] == "pretrained_vs_finetuned")
                  & (frame["layer_a"] == frame["layer_b"])]  # fmt: skip
    if tasks is not None:
        cross = cross[cross["task"].isin(list(tasks))]
    per_task = cross.groupby(["task", "layer_a"], sort=False)["cka"].mean().reset_index()
    x = alt.X("layer_a:O", title="layer", axis=alt.Axis(labelAngle=0))
    y = alt.Y("cka:Q", title="CKA(pretrained, fine-tuned), same layer",
              scale=alt.Scale(domain=[0, 1]))  # fmt: skip
    thin = alt.Chart(per_task).mark_line(opacity=0.35, color="gray").encode(
        x=x, y=y, detail="task:N",
        tooltip=[alt.Tooltip("task:N"), alt.Tooltip("layer_a:O", title="layer"),
                 alt.Tooltip("cka:Q", title="CKA (mean over seeds)", format=".4f")],
    )  # fmt: skip
    thick = alt.Chart(per_task).mark_line(point=True, strokeWidth=3).encode(
        x=x, y="mean(cka):Q",
        tooltip=[alt.Tooltip("layer_a:O", title="layer"),
                 alt.Tooltip("mean(cka):Q", title="mean over tasks", format=".4f")],
    )  # fmt: skip
    line = alt.layer(thin, thick).properties(
        width=size, height=size, title="how far fine-tuning moved each layer"
    )
    return alt.hconcat(*panels, line).resolve_scale(color="independent")


def cross_diagonal(cka: pd.DataFrame, *, estimator: str = "biased") -> alt.Chart:
    """How much fine-tuning changed each layer: CKA(pretrained layer l, fine-tuned layer l).

    One line per (model, task), mean over seeds; 1 means the layer's representation is unchanged
    up to rotation and scale.
    """
    require_columns(
        cka, [*RUN_COLUMNS, "seed", "kind", "layer_a", "layer_b", "cka", "estimator"], "cka"
    )
    frame = only_rows(cka, "estimator", estimator, "cross_diagonal")
    frame = only_rows(frame, "kind", "pretrained_vs_finetuned", "cross_diagonal")
    frame = frame[frame["layer_a"] == frame["layer_b"]]
    frame = (
        frame.groupby(["model", "task", "layer_a"], sort=False)
        .agg(cka=("cka", "mean"), seeds=("seed", seeds_label))
        .reset_index()
    )
    frame["run"] = frame["model"] + " · " + frame["task"]
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("layer_a:O", title="layer"),
            y=alt.Y("cka:Q", title="CKA(pretrained, fine-tuned)", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("run:N", title="model · task"),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("task:N"),
                alt.Tooltip("layer_a:O", title="layer"),
                alt.Tooltip("cka:Q", title="CKA (mean over seeds)", format=".4f"),
                alt.Tooltip("seeds:N"),
            ],
        )
        .properties(width=420, height=240)
    )


def block_statistics(
    blocks: pd.DataFrame,
    *,
    statistic: str = "excess",
    estimator: str = "biased",
    threshold: float | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """One point per run with its bootstrap interval, fine-tuned against pretrained, per task.

    Parameters
    ----------
    blocks
        The ``blocks`` table.
    statistic
        ``excess`` (the decision statistic of :mod:`layersim.stats.blocks`) or ``contrast``.
    estimator
        Which CKA estimator's matrices.
    threshold
        Draw a dashed rule at this value (the verdict threshold).

    Returns
    -------
    altair chart, faceted by model when there are several.
    """
    require_columns(
        blocks,
        [
            *RUN_COLUMNS,
            "seed",
            "kind",
            "estimator",
            "statistic",
            "value",
            "lower",
            "upper",
            "boundary",
        ],
        "blocks",
    )
    frame = only_rows(blocks, "estimator", estimator, "block_statistics")
    frame = only_rows(frame, "statistic", statistic, "block_statistics").copy()
    frame["kind"] = frame["kind"].map(KIND_TITLES).fillna(frame["kind"])
    frame["seed"] = frame["seed"].astype(str)
    y = alt.Y("task:N", title=None)
    offset = alt.YOffset("kind:N", sort=list(KIND_TITLES.values()))
    color = alt.Color("kind:N", title="matrix", sort=list(KIND_TITLES.values()))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("task:N"),
        alt.Tooltip("kind:N", title="matrix"),
        alt.Tooltip("seed:N"),
        alt.Tooltip("value:Q", title=statistic, format=".4f"),
        alt.Tooltip("lower:Q", title="interval low", format=".4f"),
        alt.Tooltip("upper:Q", title="interval high", format=".4f"),
        alt.Tooltip("boundary:Q", title="boundary (first late layer)"),
    ]
    base = alt.Chart(frame).encode(y=y, yOffset=offset, color=color, tooltip=tooltip)
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lower:Q", title=f"{statistic} (CKA units)"), x2="upper:Q"
    )
    points = base.mark_point(filled=True, size=50).encode(x="value:Q")
    layers: list[alt.Chart] = [bars, points]
    if threshold is not None:
        rule = pd.DataFrame({"threshold": [float(threshold)]})
        layers.append(
            alt.Chart(rule)
            .mark_rule(strokeDash=[4, 4], color="gray")
            .encode(x="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="threshold")])
        )
    chart = alt.layer(*layers).properties(width=360)
    if frame["model"].nunique() > 1:
        return chart.facet(row=alt.Row("model:N", title=None))
    return chart

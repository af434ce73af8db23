"""Charts of the results tables (altair), and their offline HTML for the book.

Every function takes the tidy frames of :func:`layersim.results.load` and returns an altair chart;
nothing here reads files or computes statistics beyond averaging over seeds. Tooltips carry the
exact numbers (CKA to four decimals, layer pair, task, model, seeds), so a reader can hover
instead of squinting at a colour scale.

Offline rendering
-----------------
altair's default HTML loads vega, vega-lite and vega-embed from a CDN, so charts are blank without
network. :func:`offline_html` instead emits a ``div.layersim-chart`` that (a) contains a static SVG
drawn by ``vl_convert`` (the fallback: the figure is there even with JavaScript off), and (b) calls
``window.vegaEmbed`` from a bundle the book serves itself (:func:`write_javascript_bundle`, loaded
as ``_static/vega-bundle.js``), replacing the fallback by the interactive chart once it renders.
:func:`enable_offline_renderer` makes that altair's renderer, so a chart is shown by just being a
cell's last expression.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "KIND_TITLES",
    "across_agreement",
    "across_heatmaps",
    "block_statistics",
    "cka_heatmaps",
    "cross_diagonal",
    "curve",
    "depth_boundaries",
    "depth_truncation_curves",
    "enable_offline_renderer",
    "headline",
    "matrix_heatmap",
    "model_heatmaps",
    "offline_html",
    "progress_curves",
    "robustness_curves",
    "signal_choices",
    "task_agreement",
    "truncation_curves",
    "write_javascript_bundle",
]

#: How the three kinds of CKA matrix are named in chart headers.
KIND_TITLES = {
    "finetuned": "fine-tuned",
    "pretrained": "pretrained",
    "pretrained_vs_finetuned": "pretrained × fine-tuned",
}
_RUN = ["preset", "model", "task"]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
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


def _cka_color(floor: float | None = None) -> alt.Color:
    """CKA on a fixed 0-1 scale, so that panels and charts compare; with `floor` (the biased
    estimator's value for unrelated representations, :func:`layersim.cka.unrelated_floor`) the
    legend says where "unrelated" sits."""
    title = "CKA" if floor is None else f"CKA (unrelated ≈ {floor:.2f})"
    return alt.Color("cka:Q", title=title, scale=alt.Scale(domain=[0, 1], scheme="viridis"))


def _seeds(values: pd.Series) -> str:
    return ", ".join(str(s) for s in sorted(set(values)))


#: How the tables' internal names read in legends and headers.
CONDITION_TITLES = {"unchanged": "unchanged head (the paper's)", "refit": "re-fitted linear head"}
POOLING_TITLES = {"cls": "first token (the paper's)", "first": "first token (the paper's)",
                  "last": "last token (decoder's own)", "mean": "mean of tokens",
                  "tokens": "one random token"}  # fmt: skip
ESTIMATOR_TITLES = {"biased": "biased (the paper's)", "debiased": "debiased"}


def _panel(frame: pd.DataFrame) -> pd.Series:
    """Facet titles ``model · task (metric)``: the metric on the y axis of each panel."""
    label = frame["model"] + " · " + frame["task"]
    if "metric" in frame.columns:
        label = label + " (" + frame["metric"].astype(str) + ")"
    return label


def _metric_title(frame: pd.DataFrame) -> str:
    """The y axis title: the metric when every panel shows the same one."""
    metrics = sorted(frame["metric"].unique()) if "metric" in frame.columns else []
    return f"validation {metrics[0]}" if len(metrics) == 1 else "validation metric (in the title)"


def _one(frame: pd.DataFrame, column: str, value: object, what: str) -> pd.DataFrame:
    """Rows with ``column == value``, or a clear error listing what there is."""
    if value is None:
        return frame
    selected = frame[frame[column] == value]
    if selected.empty:
        raise ValueError(
            f"{what}: no rows with {column}={value!r}; present: {sorted(frame[column].unique())}"
        )
    return selected


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
    _require(cka, [*_RUN, "seed", "kind", "layer_a", "layer_b", "cka", "estimator", "n"], "cka")
    frame = _one(cka, "estimator", estimator, "cka_heatmaps")
    frame = frame[frame["kind"].isin(list(kinds))]
    if frame.empty:
        raise ValueError(f"cka_heatmaps: no rows of kinds {list(kinds)}")
    keys = [*_RUN, "kind", "layer_a", "layer_b"]
    mean = (
        frame.groupby(keys, sort=False)
        .agg(
            cka=("cka", "mean"),
            cka_sd=("cka", "std"),
            seeds=("seed", _seeds),
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
            color=_cka_color(floor),
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
    _require(cka, [*_RUN, "seed", "kind", "layer_a", "layer_b", "cka", "estimator"],
             "model_heatmaps")  # fmt: skip
    frame = _one(cka, "estimator", estimator, "model_heatmaps")
    frame = frame[frame["kind"].isin(list(kinds))]
    mean = (
        frame.groupby(["model", "task", "kind", "layer_a", "layer_b"], sort=False)
        .agg(cka=("cka", "mean"), seeds=("seed", _seeds))
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
                        color=_cka_color(),
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


def depth_truncation_curves(relative: pd.DataFrame, *, models: Sequence[str] | None = None):
    """The main metric against the share of layers kept, one line per model (mean over seeds,
    seeds as points), one panel per task. `relative` is
    :func:`layersim.depth.relative_truncation`."""
    _require(relative, ["model", "task", "seed", "layers_kept", "kept_fraction", "metric",
                        "value", "layers"], "depth_truncation_curves")  # fmt: skip
    order = list(models) if models is not None else list(dict.fromkeys(relative["model"]))
    x = alt.X("kept_fraction:Q", title="share of layers kept (k / L)",
              scale=alt.Scale(domain=[0, 1]))  # fmt: skip
    color = alt.Color("model:N", title="model", sort=order)
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("task:N"), alt.Tooltip("metric:N"),
               alt.Tooltip("layers_kept:Q", title="layers kept"),
               alt.Tooltip("layers:Q", title="of")]  # fmt: skip
    line = alt.Chart().mark_line().encode(
        x=x, y=alt.Y("mean(value):Q", title="validation metric"), color=color,
        tooltip=[*tooltip, alt.Tooltip("mean(value):Q", title="mean over seeds", format=".4f")],
    )  # fmt: skip
    points = alt.Chart().mark_point(opacity=0.5, size=20).encode(
        x=x, y="value:Q", color=color,
        tooltip=[*tooltip, alt.Tooltip("seed:N"), alt.Tooltip("value:Q", format=".4f")],
    )  # fmt: skip
    return (
        alt.layer(line, points, data=relative.assign(seed=relative["seed"].astype(str)))
        .properties(width=300, height=200)
        .facet(column=alt.Column("task:N", title=None))
    )


def depth_boundaries(runs: pd.DataFrame, *, models: Sequence[str] | None = None) -> alt.Chart:
    """Where the late block starts, as a share of the depth: one point per fine-tuned run
    (filled when the run has two blocks), per model and task. `runs` is
    :func:`layersim.depth.run_depths`."""
    _require(runs, ["model", "task", "seed", "boundary", "layers", "boundary_fraction",
                    "blocks", "excess"], "depth_boundaries")  # fmt: skip
    order = list(models) if models is not None else list(dict.fromkeys(runs["model"]))
    frame = runs.assign(
        seed=runs["seed"].astype(str),
        verdict=np.where(runs["blocks"].astype(bool), "two blocks", "no blocks"),
    )
    return (
        alt.Chart(frame)
        .mark_point(size=70)
        .encode(
            x=alt.X(
                "boundary_fraction:Q",
                title="first layer of the late block, as a share of L",
                scale=alt.Scale(domain=[0, 1]),
            ),
            y=alt.Y("model:N", title=None, sort=order),
            yOffset=alt.YOffset("task:N"),
            color=alt.Color("task:N", title="task"),
            shape=alt.Shape("verdict:N", title=None),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("task:N"),
                alt.Tooltip("seed:N"),
                alt.Tooltip("boundary:Q", title="boundary (layer)"),
                alt.Tooltip("layers:Q", title="of"),
                alt.Tooltip("excess:Q", format=".3f"),
                alt.Tooltip("verdict:N"),
            ],
        )  # fmt: skip
        .properties(width=420, height=60 * len(order))
    )


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
            color=_cka_color(),
            tooltip=[
                alt.Tooltip("layer_a:O", title="layer (row)"),
                alt.Tooltip("layer_b:O", title="layer (column)"),
                alt.Tooltip("cka:Q", title="CKA", format=".4f"),
            ],
        )  # fmt: skip
        .properties(width=size, height=size)
    )


def curve(xs: Sequence[float], ys: Sequence[float], *, x: str, y: str) -> alt.Chart:
    """A line with points of `ys` against `xs`, axes titled `x` and `y`."""
    if len(xs) != len(ys) or not len(xs):
        raise ValueError(f"curve: {len(xs)} x values and {len(ys)} y values; pass as many of each")
    frame = pd.DataFrame({"x": list(xs), "y": list(ys)})
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("x:Q", title=x, axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("y:Q", title=y),
            tooltip=[alt.Tooltip("x:Q", title=x), alt.Tooltip("y:Q", title=y, format=".4f")],
        )
        .properties(width=360, height=220)
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
    _require(cka, [*_RUN, "seed", "kind", "layer_a", "layer_b", "cka", "estimator"], "headline")
    frame = _one(cka, "estimator", "biased", "headline")
    one = _one(frame, "task", task, "headline")
    mean = (
        one.groupby(["kind", "layer_a", "layer_b"], sort=False)
        .agg(cka=("cka", "mean"), seeds=("seed", _seeds))
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
                color=_cka_color(floor),
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
    _require(cka, [*_RUN, "seed", "kind", "layer_a", "layer_b", "cka", "estimator"], "cka")
    frame = _one(cka, "estimator", estimator, "cross_diagonal")
    frame = _one(frame, "kind", "pretrained_vs_finetuned", "cross_diagonal")
    frame = frame[frame["layer_a"] == frame["layer_b"]]
    frame = (
        frame.groupby(["model", "task", "layer_a"], sort=False)
        .agg(cka=("cka", "mean"), seeds=("seed", _seeds))
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
        ``excess`` (the decision statistic of :mod:`layersim.blocks`) or ``contrast``.
    estimator
        Which CKA estimator's matrices.
    threshold
        Draw a dashed rule at this value (the verdict threshold).

    Returns
    -------
    altair chart, faceted by model when there are several.
    """
    _require(
        blocks,
        [*_RUN, "seed", "kind", "estimator", "statistic", "value", "lower", "upper", "boundary"],
        "blocks",
    )
    frame = _one(blocks, "estimator", estimator, "block_statistics")
    frame = _one(frame, "statistic", statistic, "block_statistics").copy()
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


def truncation_curves(
    truncation: pd.DataFrame,
    *,
    metric: str | None = None,
    boundaries: pd.DataFrame | None = None,
    majority: pd.DataFrame | None = None,
    columns: int = 4,
) -> alt.FacetChart:
    """The metric against the number of layers kept, one panel per (model, task).

    Parameters
    ----------
    truncation
        The ``truncation`` table.
    metric
        Which metric to draw when a task reports several (default: each task's first, the one
        named first in its results, e.g. ``accuracy``).
    boundaries
        Optional frame with columns ``model, task, boundary`` (e.g. the fine-tuned CKA block
        boundary averaged over seeds): drawn as a vertical rule, where claim C6 expects the curve
        to recover.
    majority
        Optional frame with columns ``model, task, majority`` (e.g.
        :func:`layersim.claims.learned_table`): the metric of always answering the majority
        class, drawn as a grey horizontal rule.
    columns
        Panels per row.

    Returns
    -------
    altair.FacetChart
        Mean over seeds as a line, each seed as a point; with a ``condition`` column (e.g.
        :func:`layersim.dropping.top_k_curves`: unchanged and re-fitted head) one coloured line
        per condition.
    """
    _require(truncation, [*_RUN, "seed", "layers_kept", "metric", "value"], "truncation")
    frame = truncation
    if metric is not None:
        frame = _one(frame, "metric", metric, "truncation_curves")
    else:  # each (model, task)'s first metric
        first = frame.groupby(["model", "task"], sort=False)["metric"].transform("first")
        frame = frame[frame["metric"] == first]
    frame = frame.copy()
    frame["panel"] = _panel(frame)
    frame["seed"] = frame["seed"].astype(str)
    if "condition" in frame.columns:
        frame["condition"] = frame["condition"].map(CONDITION_TITLES).fillna(frame["condition"])
    x = alt.X("layers_kept:Q", title="layers kept", axis=alt.Axis(tickMinStep=1))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("task:N"),
        alt.Tooltip("layers_kept:Q", title="layers kept"),
        alt.Tooltip("metric:N"),
    ]
    by_condition = {}
    if "condition" in frame.columns:
        by_condition = {"color": alt.Color("condition:N", title="task head")}
        tooltip.append(alt.Tooltip("condition:N", title="task head"))
    # One data set for all layers (facets need that); each layer keeps its own rows.
    has_value = "isValid(datum.value)"
    points = (
        alt.Chart()
        .transform_filter(has_value)
        .mark_point(opacity=0.6)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=_metric_title(frame)),
            shape=alt.Shape("seed:N"),
            tooltip=[*tooltip, alt.Tooltip("seed:N"), alt.Tooltip("value:Q", format=".4f")],
            **by_condition,
        )
    )
    line = (
        alt.Chart()
        .transform_filter(has_value)
        .mark_line()
        .encode(
            x=x,
            y="mean(value):Q",
            tooltip=[*tooltip, alt.Tooltip("mean(value):Q", title="mean", format=".4f")],
            **by_condition,
        )
    )
    layers: list[alt.Chart] = [line, points]
    data = frame
    panels = frame[["model", "task", "panel"]].drop_duplicates()
    if majority is not None:
        _require(majority, ["model", "task", "majority"], "majority")
        marks = majority[["model", "task", "majority"]].merge(panels, on=["model", "task"])
        data = pd.concat([data, marks[["panel", "majority"]]], ignore_index=True)
        layers.append(
            alt.Chart()
            .transform_filter("isValid(datum.majority)")
            .mark_rule(strokeDash=[2, 2], color="gray")
            .encode(y="majority:Q",
                    tooltip=[alt.Tooltip("majority:Q", title="majority class", format=".4f")])
        )  # fmt: skip
    if boundaries is not None:
        _require(boundaries, ["model", "task", "boundary"], "boundaries")
        marks = boundaries[["model", "task", "boundary"]].merge(panels, on=["model", "task"])
        data = pd.concat([data, marks[["panel", "boundary"]]], ignore_index=True)
        layers.append(
            alt.Chart()
            .transform_filter("isValid(datum.boundary)")
            .mark_rule(strokeDash=[5, 3], color="firebrick")
            .encode(
                x="boundary:Q",
                tooltip=[alt.Tooltip("boundary:Q", title="CKA boundary (first late layer)")],
            )
        )
    return (
        alt.layer(*layers, data=data)
        .properties(width=220, height=140)
        .facet(facet=alt.Facet("panel:N", title=None), columns=columns)
    )


def signal_choices(
    layer_drop: pd.DataFrame, *, condition: str = "unchanged", columns: int = 3
) -> alt.FacetChart:
    """The metric of each signal's choice of layers against the budget, one panel per (model,
    task): which signal's choice keeps the most.

    Parameters
    ----------
    layer_drop
        The ``layer_drop`` table, one metric per task (e.g.
        :func:`layersim.dropping.main_metric_rows`); rows of layers dropped alone are left out.
    condition
        ``unchanged`` (the fine-tuned head, the paper's condition) or ``refit``.
    columns
        Panels per row.

    Returns
    -------
    altair.FacetChart
        Mean over seeds as a line per signal, each seed as a point.
    """
    _require(layer_drop, [*_RUN, "seed", "signal", "budget", "layers", "condition", "value"],
             "signal_choices")  # fmt: skip
    from .redundancy import SIGNAL_LABELS

    frame = _one(layer_drop, "condition", condition, "signal_choices")
    frame = frame[frame["signal"] != "single"].copy()
    frame["panel"] = _panel(frame)
    frame["seed"] = frame["seed"].astype(str)
    frame["signal"] = frame["signal"].map(SIGNAL_LABELS).fillna(frame["signal"])
    x = alt.X("budget:Q", title="layers dropped", axis=alt.Axis(tickMinStep=1))
    color = alt.Color("signal:N", title="which layers go")
    tooltip = [alt.Tooltip("task:N"), alt.Tooltip("signal:N"), alt.Tooltip("budget:Q")]
    line = alt.Chart().mark_line().encode(
        x=x, y=alt.Y("mean(value):Q", title=_metric_title(frame)), color=color,
        tooltip=[*tooltip, alt.Tooltip("mean(value):Q", title="mean", format=".4f")],
    )  # fmt: skip
    points = alt.Chart().mark_point(opacity=0.5).encode(
        x=x, y="value:Q", color=color, shape=alt.Shape("seed:N"),
        tooltip=[*tooltip, alt.Tooltip("seed:N"), alt.Tooltip("layers:N", title="dropped"),
                 alt.Tooltip("value:Q", format=".4f")],
    )  # fmt: skip
    return (
        alt.layer(line, points, data=frame)
        .properties(width=220, height=140)
        .facet(facet=alt.Facet("panel:N", title=None), columns=columns)
    )


def progress_curves(frame: pd.DataFrame, *, threshold: float | None = None) -> alt.FacetChart:
    """Block excess and the task metric against the share of fine-tuning done, one column per
    (model, task): does the late block form before, with or after the metric saturates?

    Parameters
    ----------
    frame
        The ``progress`` table with ``fraction`` (:func:`layersim.formation.with_fractions`),
        the ``excess`` rows and one metric per task (e.g. each task's main metric).
    threshold
        Optional excess threshold of the block verdict, drawn as a dashed rule.

    Returns
    -------
    altair.FacetChart
        Rows "block excess" (each seed's bootstrap interval as a bar) and "metric"; mean over
        seeds as a line, each seed as a point.
    """
    _require(frame, [*_RUN, "seed", "fraction", "statistic", "value", "lower", "upper"],
             "progress_curves")  # fmt: skip
    data = frame.copy()
    data["quantity"] = np.where(data["statistic"] == "excess", "block excess", "metric")
    data["panel"] = data["model"] + " · " + data["task"]
    data["seed"] = data["seed"].astype(str)
    x = alt.X("fraction:Q", title="share of fine-tuning done", axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("task:N"), alt.Tooltip("statistic:N"),
               alt.Tooltip("fraction:Q", format=".0%", title="training done")]  # fmt: skip
    line = alt.Chart().mark_line().encode(
        x=x, y=alt.Y("mean(value):Q", title=None),
        tooltip=[*tooltip, alt.Tooltip("mean(value):Q", title="mean", format=".4f")],
    )  # fmt: skip
    points = alt.Chart().mark_point(opacity=0.6).encode(
        x=x, y="value:Q", shape=alt.Shape("seed:N"),
        tooltip=[*tooltip, alt.Tooltip("seed:N"), alt.Tooltip("value:Q", format=".4f"),
                 alt.Tooltip("lower:Q", format=".4f"), alt.Tooltip("upper:Q", format=".4f")],
    )  # fmt: skip
    bars = alt.Chart().transform_filter("isValid(datum.lower)").mark_rule(opacity=0.4).encode(
        x=x, y="lower:Q", y2="upper:Q"
    )  # fmt: skip
    layers: list[alt.Chart] = [bars, line, points]
    if threshold is not None:
        data["threshold"] = np.where(data["quantity"] == "block excess", threshold, np.nan)
        layers.append(
            alt.Chart().transform_filter("isValid(datum.threshold)")
            .mark_rule(strokeDash=[5, 3], color="firebrick").encode(y="threshold:Q")
        )  # fmt: skip
    return (
        alt.layer(*layers, data=data)
        .properties(width=200, height=120)
        .facet(row=alt.Row("quantity:N", title=None), column=alt.Column("panel:N", title=None))
        .resolve_scale(y="independent")
    )


def robustness_curves(
    verdicts: pd.DataFrame, *, threshold: float | None = None, x: str = "n"
) -> alt.FacetChart:
    """Block excess under each (pooling, estimator), one panel per (model, task): against the
    number of inputs (``x="n"``, log scale) or against the set of inputs (``x="inputs"``).

    Parameters
    ----------
    verdicts
        :func:`layersim.robustness.verdict_table`, restricted to the rows to show (e.g. the own
        validation inputs for ``x="n"``, one ``n`` per set of inputs for ``x="inputs"``).
    threshold
        Optional excess threshold of the block verdict, drawn as a dashed rule.
    x
        ``"n"`` or ``"inputs"``.

    Returns
    -------
    altair.FacetChart
        Colour: pooling; dash: estimator (both in words). Mean over seeds as a line, each seed
        as a point with its interval as a bar.
    """
    _require(verdicts, [*_RUN, "seed", "inputs", "pooling", "estimator", "n", "excess", "lower",
                        "upper", "boundary"], "robustness_curves")  # fmt: skip
    if x not in ("n", "inputs"):
        raise ValueError(f"x must be 'n' or 'inputs'; got {x!r}")
    frame = verdicts.copy()
    frame["panel"] = frame["model"] + " · " + frame["task"]
    frame["pooling"] = frame["pooling"].map(POOLING_TITLES).fillna(frame["pooling"])
    frame["estimator"] = frame["estimator"].map(ESTIMATOR_TITLES).fillna(frame["estimator"])
    frame["choice"] = frame["pooling"] + " · " + frame["estimator"]
    frame["seed"] = frame["seed"].astype(str)
    axis = (
        alt.X("n:Q", title="inputs compared", scale=alt.Scale(type="log"))
        if x == "n"
        else alt.X("inputs:N", title=None, sort=sorted(frame["inputs"].unique(),
                                                    key=lambda v: (v != "validation", v)))
    )  # fmt: skip
    color = alt.Color("pooling:N", title="pooling")
    dash = alt.StrokeDash("estimator:N", title="estimator")
    tooltip = [alt.Tooltip("task:N"), alt.Tooltip("inputs:N"), alt.Tooltip("pooling:N"),
               alt.Tooltip("estimator:N"), alt.Tooltip("n:Q")]  # fmt: skip
    line = alt.Chart().mark_line().encode(
        x=axis, y=alt.Y("mean(excess):Q", title="block excess"), color=color, strokeDash=dash,
        detail="choice:N",
        tooltip=[*tooltip, alt.Tooltip("mean(excess):Q", title="mean", format=".4f")],
    )  # fmt: skip
    points = alt.Chart().mark_point(opacity=0.5).encode(
        x=axis, y="excess:Q", color=color,  # the estimator is the line's dash: one legend
        tooltip=[*tooltip, alt.Tooltip("seed:N"), alt.Tooltip("excess:Q", format=".4f"),
                 alt.Tooltip("lower:Q", format=".4f"), alt.Tooltip("upper:Q", format=".4f"),
                 alt.Tooltip("boundary:Q", title="boundary")],
    )  # fmt: skip
    bars = (
        alt.Chart().mark_rule(opacity=0.25).encode(x=axis, y="lower:Q", y2="upper:Q", color=color)
    )
    layers: list[alt.Chart] = [bars, line, points]
    if threshold is not None:
        frame["threshold"] = float(threshold)
        layers.append(alt.Chart().mark_rule(strokeDash=[5, 3], color="firebrick")
                      .encode(y="threshold:Q"))  # fmt: skip
    return (
        alt.layer(*layers, data=frame)
        .properties(width=200, height=150)
        .facet(facet=alt.Facet("panel:N", title=None), columns=3)
    )


# --------------------------------------------------------------------------- across models (E5)

_COMPARISON_TITLES = {
    "seeds": "two seeds, same task",
    "tasks": "two tasks, same seed",
    "pretrained": "pretrained × fine-tuned",
}


def across_agreement(agreement: pd.DataFrame) -> alt.FacetChart:
    """Same-layer CKA against depth, one line per comparison (mean over pairs) with a band from
    the lowest to the highest pair, one panel per model.

    `agreement` is :func:`layersim.across.agreement_table`.
    """
    _require(agreement, ["model", "comparison", "layer", "pairs", "mean", "lowest", "highest"],
             "across_agreement")  # fmt: skip
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
    _require(across, ["model", "comparison", "run_a", "layer_a", "layer_b", "cka", "estimator",
                      "n"], "across_heatmaps")  # fmt: skip
    frame = _one(across, "estimator", estimator, "across_heatmaps")
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
            color=_cka_color(),
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
    :func:`layersim.across.diagonal`."""
    _require(diagonals, ["model", "comparison", "task_a", "task_b", "layer", "cka"],
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
            color=_cka_color(),
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


# --------------------------------------------------------------------------- offline rendering


def _vega_lite_version() -> str:
    """The vega-lite version altair writes, as ``vl_convert`` names it (``"6.4"``)."""
    return alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]


def write_javascript_bundle(path: str | Path) -> Path:
    """Write vega, vega-lite and vega-embed as one self-contained script (no network needed).

    Load it as ``<script type="module">``; it sets ``window.vegaEmbed``. Matches the vega-lite
    version of the installed altair.
    """
    import vl_convert

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bundle = vl_convert.javascript_bundle(vl_version=_vega_lite_version())
    path.write_text(bundle, encoding="utf-8")
    return path


# Renders when the bundle is there; leaves the static SVG otherwise (and says why in the console
# only when vega-embed itself fails, which the book's browser test treats as an error).
_SCRIPT = """
(function () {{
  var root = document.getElementById("{id}");
  var spec = {spec};
  function draw() {{
    vegaEmbed(root.querySelector(".layersim-chart-view"), spec,
              {{renderer: "svg", actions: false}})
      .then(function () {{
        var fallback = root.querySelector(".layersim-chart-fallback");
        if (fallback) fallback.remove();
      }})
      .catch(function (error) {{ console.error("layersim chart {id}:", error); }});
  }}
  if (window.vegaEmbed) draw();
  else window.addEventListener("load", function () {{ if (window.vegaEmbed) draw(); }});
}})();
"""


def offline_html(chart: alt.TopLevelMixin | dict) -> str:
    """HTML for a chart that needs no network: a static SVG replaced by the interactive chart.

    See the module's docstring. `chart` is an altair chart or a vega-lite dict.
    """
    import vl_convert

    spec = chart if isinstance(chart, dict) else chart.to_dict()
    svg = vl_convert.vegalite_to_svg(spec, vl_version=_vega_lite_version())
    chart_id = f"layersim-chart-{uuid.uuid4().hex}"
    # "</" would end the script element early; JSON allows "<\/".
    spec_json = json.dumps(spec).replace("</", "<\\/")
    script = _SCRIPT.format(id=chart_id, spec=spec_json)
    return (
        f'<div class="layersim-chart" id="{html.escape(chart_id)}">'
        '<div class="layersim-chart-view"></div>'
        f'<div class="layersim-chart-fallback">{svg}</div>'
        f"<script>{script}</script></div>"
    )


def _offline_renderer(spec: dict, **_metadata: object) -> dict[str, str]:
    return {"text/html": offline_html(spec)}


def enable_offline_renderer() -> None:
    """Make :func:`offline_html` altair's renderer (the book's pages call this)."""
    alt.renderers.register("layersim-offline", _offline_renderer)
    alt.renderers.enable("layersim-offline")

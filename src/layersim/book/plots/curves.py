"""Curves: the metric with the first k layers kept (one model, or models of different depths
on one scale), the boundaries of the late block, the layers each redundancy signal drops, the
blocks along training and the block verdict under other choices.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from layersim.book.plots.common import (
    CONDITION_TITLES,
    ESTIMATOR_TITLES,
    POOLING_TITLES,
    RUN_COLUMNS,
    metric_title,
    only_rows,
    panel_labels,
    require_columns,
)

__all__ = [
    "curve",
    "depth_boundaries",
    "depth_truncation_curves",
    "progress_curves",
    "robustness_curves",
    "signal_choices",
    "truncation_curves",
]


def depth_truncation_curves(relative: pd.DataFrame, *, models: Sequence[str] | None = None):
    """The main metric against the share of layers kept, one line per model (mean over seeds,
    seeds as points), one panel per task. `relative` is
    :func:`layersim.analysis.depth.relative_truncation`."""
    require_columns(relative, ["model", "task", "seed", "layers_kept", "kept_fraction", "metric",
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
    :func:`layersim.analysis.depth.run_depths`."""
    require_columns(runs, ["model", "task", "seed", "boundary", "layers", "boundary_fraction",
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
        :func:`layersim.analysis.run_tables.learned_table`): the metric of always answering the
        majority class, drawn as a grey horizontal rule.
    columns
        Panels per row.

    Returns
    -------
    altair.FacetChart
        Mean over seeds as a line, each seed as a point; with a ``condition`` column (e.g.
        :func:`layersim.analysis.dropping.top_k_curves`: unchanged and re-fitted head) one coloured
        line per condition.
    """
    require_columns(
        truncation, [*RUN_COLUMNS, "seed", "layers_kept", "metric", "value"], "truncation"
    )
    frame = truncation
    if metric is not None:
        frame = only_rows(frame, "metric", metric, "truncation_curves")
    else:  # each (model, task)'s first metric
        first = frame.groupby(["model", "task"], sort=False)["metric"].transform("first")
        frame = frame[frame["metric"] == first]
    frame = frame.copy()
    frame["panel"] = panel_labels(frame)
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
            y=alt.Y("value:Q", title=metric_title(frame)),
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
        require_columns(majority, ["model", "task", "majority"], "majority")
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
        require_columns(boundaries, ["model", "task", "boundary"], "boundaries")
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
        :func:`layersim.analysis.dropping.main_metric_rows`); rows of layers dropped alone are left
        out.
    condition
        ``unchanged`` (the fine-tuned head, the paper's condition) or ``refit``.
    columns
        Panels per row.

    Returns
    -------
    altair.FacetChart
        Mean over seeds as a line per signal, each seed as a point.
    """
    require_columns(
        layer_drop,
        [*RUN_COLUMNS, "seed", "signal", "budget", "layers", "condition", "value"],
        "signal_choices",
    )
    from layersim.stats.redundancy import SIGNAL_LABELS

    frame = only_rows(layer_drop, "condition", condition, "signal_choices")
    frame = frame[frame["signal"] != "single"].copy()
    frame["panel"] = panel_labels(frame)
    frame["seed"] = frame["seed"].astype(str)
    frame["signal"] = frame["signal"].map(SIGNAL_LABELS).fillna(frame["signal"])
    x = alt.X("budget:Q", title="layers dropped", axis=alt.Axis(tickMinStep=1))
    color = alt.Color("signal:N", title="which layers go")
    tooltip = [alt.Tooltip("task:N"), alt.Tooltip("signal:N"), alt.Tooltip("budget:Q")]
    line = alt.Chart().mark_line().encode(
        x=x, y=alt.Y("mean(value):Q", title=metric_title(frame)), color=color,
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
        The ``progress`` table with ``fraction``
        (:func:`layersim.analysis.formation.with_fractions`), the ``excess`` rows and one metric per
        task (e.g. each task's main metric).
    threshold
        Optional excess threshold of the block verdict, drawn as a dashed rule.

    Returns
    -------
    altair.FacetChart
        Rows "block excess" (each seed's bootstrap interval as a bar) and "metric"; mean over
        seeds as a line, each seed as a point.
    """
    require_columns(
        frame,
        [*RUN_COLUMNS, "seed", "fraction", "statistic", "value", "lower", "upper"],
        "progress_curves",
    )
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
        :func:`layersim.analysis.robustness.verdict_table`, restricted to the rows to show (e.g. the
        own validation inputs for ``x="n"``, one ``n`` per set of inputs for ``x="inputs"``).
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
    require_columns(
        verdicts,
        [
            *RUN_COLUMNS,
            "seed",
            "inputs",
            "pooling",
            "estimator",
            "n",
            "excess",
            "lower",
            "upper",
            "boundary",
        ],
        "robustness_curves",
    )
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

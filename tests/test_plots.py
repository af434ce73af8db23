"""layersim.book.plots: the charts carry the right numbers, and render offline."""

from __future__ import annotations

import json
import re

import altair as alt
import pandas as pd
import pytest

from layersim.book import plots


def cka_frame(seeds=(0, 1), layers=(1, 2, 3)) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for kind in ("finetuned", "pretrained", "pretrained_vs_finetuned"):
            for a in layers:
                for b in layers:
                    value = 1.0 if a == b and kind != "pretrained_vs_finetuned" else 0.1 * (a + b)
                    rows.append({
                        "preset": "demo", "model": "m", "task": "t", "seed": seed, "kind": kind,
                        "layer_a": a, "layer_b": b, "cka": value + 0.01 * seed,
                        "estimator": "biased", "pooling": "cls", "n": 100,
                    })  # fmt: skip
    return pd.DataFrame(rows)


def test_heatmap_cells_are_seed_means_with_exact_tooltips() -> None:
    frame = cka_frame()
    chart = plots.cka_heatmaps(frame)
    data = chart.data
    cell = data[(data["kind"] == "fine-tuned") & (data["layer_a"] == 1) & (data["layer_b"] == 2)]
    assert cell["cka"].item() == pytest.approx((0.3 + 0.31) / 2)  # mean of seeds 0 and 1
    assert cell["seeds"].item() == "0, 1"
    spec = chart.to_dict()
    tooltips = spec["spec"]["encoding"]["tooltip"]
    assert {"field": "cka", "format": ".4f"}.items() <= next(
        t for t in tooltips if t["field"] == "cka"
    ).items()
    assert {"model", "task", "layer_a", "layer_b"} <= {t["field"] for t in tooltips}
    assert spec["spec"]["encoding"]["color"]["scale"]["domain"] == [0, 1]


def test_heatmap_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        plots.cka_heatmaps(cka_frame().drop(columns="n"))
    with pytest.raises(ValueError, match="empty"):
        plots.cka_heatmaps(cka_frame().iloc[:0])
    with pytest.raises(ValueError, match="estimator='debias'"):
        plots.cka_heatmaps(cka_frame(), estimator="debias")


def test_cross_diagonal_takes_the_diagonal_of_the_cross_matrix() -> None:
    data = plots.cross_diagonal(cka_frame()).data
    assert list(data["layer_a"]) == [1, 2, 3]
    assert list(data["cka"]) == pytest.approx([0.2 + 0.005, 0.4 + 0.005, 0.6 + 0.005])


def truncation_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "preset": "demo",
                "model": "m",
                "task": "t",
                "seed": s,
                "layers_kept": k,
                "metric": metric,
                "value": 0.5 + 0.1 * k + (0.2 if metric == "f1" else 0),
            }  # fmt: skip
            for s in (0, 1)
            for k in range(4)
            for metric in ("accuracy", "f1")
        ]
    )


def test_truncation_curves_use_the_first_metric_and_draw_the_boundary() -> None:
    boundaries = pd.DataFrame({"model": ["m"], "task": ["t"], "boundary": [2.0]})
    chart = plots.truncation_curves(truncation_frame(), boundaries=boundaries)
    data = chart.data
    assert set(data["metric"].dropna()) == {"accuracy"}
    assert data["boundary"].dropna().tolist() == [2.0]
    assert len(chart.to_dict()["spec"]["layer"]) == 3  # line, points, rule
    only_f1 = plots.truncation_curves(truncation_frame(), metric="f1").data
    assert set(only_f1["metric"]) == {"f1"}


def test_block_statistics_draws_intervals_and_threshold() -> None:
    blocks = pd.DataFrame(
        [
            {
                "preset": "demo",
                "model": "m",
                "task": "t",
                "seed": 0,
                "kind": kind,
                "estimator": "biased",
                "pooling": "cls",
                "statistic": "excess",
                "value": 0.1,
                "lower": 0.05,
                "upper": 0.2,
                "boundary": 3,
            }  # fmt: skip
            for kind in ("finetuned", "pretrained")
        ]
    )
    spec = plots.block_statistics(blocks, threshold=0.05).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
             for layer in spec["layer"]]  # fmt: skip
    assert marks == ["rule", "point", "rule"]


def test_block_statistics_of_a_statistic_without_interval_has_points_and_no_bars() -> None:
    blocks = pd.DataFrame(
        [
            {"preset": "demo", "model": "m", "task": "t", "seed": 0, "kind": kind,
             "estimator": "biased", "pooling": "cls", "statistic": "permutation_p",
             "value": 0.2, "lower": float("nan"), "upper": float("nan"), "boundary": 3}
            for kind in ("finetuned", "pretrained")
        ]
    )  # fmt: skip
    spec = plots.block_statistics(blocks, statistic="permutation_p").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [(row["value"], row["lower"], row["upper"]) for row in rows] == [(0.2, None, None)] * 2
    json.dumps(spec, allow_nan=False)  # empty intervals become null, which vega skips


def test_offline_html_has_a_static_fallback_and_an_escaped_spec() -> None:
    chart = (
        alt.Chart(pd.DataFrame({"x": [1, 2], "y": [3, 4]}))
        .mark_point()
        .encode(x="x", y="y")
        .properties(title="a </script> in a title")
    )
    html = plots.offline_html(chart)
    assert html.startswith('<div class="layersim-chart" id="layersim-chart-')
    assert '<div class="layersim-chart-view"></div>' in html
    fallback = re.search(r'<div class="layersim-chart-fallback">(.*?)</div>', html, re.S)
    assert fallback and fallback.group(1).lstrip().startswith("<svg")
    script = html[html.index("<script>") + len("<script>") : html.rindex("</script>")]
    assert "</script>" not in script  # the title cannot end the script early
    spec = json.loads(re.search(r"var spec = (.*?);\n", script).group(1))
    assert spec["title"] == "a </script> in a title"
    assert plots.offline_html(chart) != html  # every chart gets its own id


def test_offline_renderer_outputs_the_offline_html() -> None:
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x")
    active = alt.renderers.active
    try:
        plots.enable_offline_renderer()
        bundle = chart._repr_mimebundle_()
        html = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]
        assert 'class="layersim-chart"' in html
    finally:
        alt.renderers.enable(active)


def test_javascript_bundle_defines_vega_embed(tmp_path) -> None:
    path = plots.write_javascript_bundle(tmp_path / "static" / "vega-bundle.js")
    text = path.read_text(encoding="utf-8")
    assert "window.vegaEmbed" in text
    assert not re.search(r"""\bimport\s*(\(|[^;]*from\s*)["']https?:""", text)  # no remote import


def test_truncation_curves_colour_each_condition() -> None:
    frame = pd.concat(
        [truncation_frame().assign(condition=c) for c in ("unchanged", "refit")], ignore_index=True
    )
    spec = plots.truncation_curves(frame).to_dict()["spec"]
    assert all(layer["encoding"]["color"]["field"] == "condition" for layer in spec["layer"])


def test_signal_choices_draw_one_line_per_signal_without_single_layers() -> None:
    rows = [
        {"preset": "demo", "model": "m", "task": "t", "seed": seed, "signal": signal,
         "budget": n, "layers": "", "condition": condition, "metric": "accuracy",
         "value": 0.9 - n / 10}
        for seed in (0, 1)
        for signal in ("top_k", "block_influence", "single")
        for n in (0, 1, 2)
        for condition in ("unchanged", "refit")
    ]  # fmt: skip
    chart = plots.signal_choices(pd.DataFrame(rows))
    # legends in words, the metric in each panel's title and on the y axis
    assert set(chart.data["signal"]) == {"top-k (the paper's truncation)", "block influence"}
    assert set(chart.data["condition"]) == {"unchanged"}
    assert set(chart.data["panel"]) == {"m · t (accuracy)"}
    assert chart.to_dict()["spec"]["layer"][0]["encoding"]["y"]["title"] == "validation accuracy"
    assert chart.to_dict()["spec"]["layer"][0]["encoding"]["color"]["field"] == "signal"
    with pytest.raises(ValueError, match="condition='other'"):
        plots.signal_choices(pd.DataFrame(rows), condition="other")


def test_progress_curves_put_excess_and_metric_in_their_own_rows() -> None:
    rows = [
        {"preset": "demo", "model": "m", "task": "t", "seed": seed, "fraction": f,
         "statistic": statistic, "value": f, "lower": f - 0.1 if statistic == "excess" else None,
         "upper": f + 0.1 if statistic == "excess" else None}
        for seed in (0, 1)
        for f in (0.0, 0.5, 1.0)
        for statistic in ("excess", "accuracy")
    ]  # fmt: skip
    chart = plots.progress_curves(pd.DataFrame(rows), threshold=0.05)
    assert set(chart.data["quantity"]) == {"block excess", "metric"}
    assert chart.data.loc[chart.data["quantity"] == "metric", "threshold"].isna().all()
    assert len(chart.to_dict()["spec"]["layer"]) == 4  # interval bars, line, points, threshold


def test_robustness_curves_colour_pooling_and_dash_the_estimator() -> None:
    rows = [
        {"preset": "demo", "model": "m", "task": "t", "seed": seed, "inputs": inputs,
         "pooling": pooling, "estimator": estimator, "n": n, "excess": 0.1, "lower": 0.0,
         "upper": 0.2, "boundary": 3}
        for seed in (0, 1)
        for inputs in ("validation", "tweet_polarity")
        for pooling in ("cls", "mean")
        for estimator in ("biased", "debiased")
        for n in (100, 500)
    ]  # fmt: skip
    chart = plots.robustness_curves(pd.DataFrame(rows), threshold=0.05)
    line = chart.to_dict()["spec"]["layer"][1]["encoding"]
    assert line["color"]["field"] == "pooling" and line["strokeDash"]["field"] == "estimator"
    assert line["x"]["scale"]["type"] == "log"
    by_inputs = plots.robustness_curves(pd.DataFrame(rows), x="inputs").to_dict()["spec"]
    assert by_inputs["layer"][1]["encoding"]["x"]["sort"][0] == "validation"  # own inputs first
    with pytest.raises(ValueError, match="x must be"):
        plots.robustness_curves(pd.DataFrame(rows), x="seed")


def test_headline_puts_both_matrices_beside_the_same_layer_cka() -> None:
    frame = pd.concat([cka_frame(), cka_frame().assign(task="u")])
    chart = plots.headline(frame, task="t", tasks=["t", "u"], size=150)
    spec = chart.to_dict()
    heat_pre, heat_fine, line = spec["hconcat"]
    assert "pretrained" in heat_pre["title"] and "fine-tuned" in heat_fine["title"]
    assert heat_pre["width"] == heat_fine["width"] == 150
    assert heat_pre["encoding"]["color"]["scale"]["domain"] == [0, 1]
    with pytest.raises(ValueError, match="task='v'"):
        plots.headline(frame, task="v")


def test_matrix_heatmap_labels_rows_by_hidden_state() -> None:
    import numpy as np

    chart = plots.matrix_heatmap(np.eye(3), layers=[1, 2, 3], title="x")
    cells = chart.data
    assert (
        len(cells) == 9
        and cells.loc[(cells.layer_a == 2) & (cells.layer_b == 2), "cka"].item() == 1
    )
    with pytest.raises(ValueError, match="pass the layers"):
        plots.matrix_heatmap(np.eye(3), layers=[1, 2])
    line = plots.curve([0, 1, 2], [0.5, 0.7, 0.9], x="layers kept", y="accuracy").to_dict()
    assert line["encoding"]["x"]["title"] == "layers kept"
    with pytest.raises(ValueError, match="as many of each"):
        plots.curve([0, 1], [0.5], x="a", y="b")


def test_truncation_curves_draw_the_majority_class() -> None:
    rows = [
        {"preset": "demo", "model": "m", "task": "t", "seed": 0, "layers_kept": k,
         "metric": "accuracy", "value": v}
        for k, v in enumerate([0.5, 0.6, 0.9])
    ]  # fmt: skip
    majority = pd.DataFrame({"model": ["m"], "task": ["t"], "majority": [0.52]})
    chart = plots.truncation_curves(pd.DataFrame(rows), majority=majority)
    assert chart.data["majority"].dropna().tolist() == [0.52]
    rules = [layer for layer in chart.to_dict()["spec"]["layer"] if layer["mark"]["type"] == "rule"]
    assert rules and rules[0]["encoding"]["y"]["field"] == "majority"


def test_heatmap_legends_say_where_unrelated_layers_sit() -> None:
    spec = plots.cka_heatmaps(cka_frame(), floor=0.277).to_dict()
    assert spec["spec"]["encoding"]["color"]["title"] == "CKA (unrelated ≈ 0.28)"
    assert plots.cka_heatmaps(cka_frame()).to_dict()["spec"]["encoding"]["color"]["title"] == "CKA"

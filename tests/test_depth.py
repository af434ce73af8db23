"""layersim.analysis.depth: models of different depths on one scale, checked on constructed tables
whose shares are known by construction; the charts that draw them."""

from __future__ import annotations

import pandas as pd
import pytest
from test_claims import FULL_DROP_ONE, block_rows, curve_rows

from layersim.analysis import depth, verdicts
from layersim.book import plots

DEEP = [0.5] * 10 + [0.8, 0.9, 0.9]  # 12 layers, knee 11: one top layer can go


def _tables():
    blocks, curves = [], []
    for seed in range(2):  # a 6-layer model: blocks from layer 4, knee 5
        blocks += block_rows("small", "t", seed, lower=0.2, boundary=4)
        curves += curve_rows("small", "t", seed, FULL_DROP_ONE)
    for seed, lower in ((0, 0.2), (1, 0.0)):  # a 12-layer one: blocks in one seed of two
        blocks += block_rows("big", "t", seed, lower=lower, boundary=9)
        curves += curve_rows("big", "t", seed, DEEP)
    return pd.DataFrame(blocks), pd.DataFrame(curves)


def test_the_depth_table_divides_by_each_models_depth() -> None:
    table = depth.depth_table(*_tables()).set_index("model")
    assert list(table.columns) == depth.DEPTH_COLUMNS[1:]
    assert table.loc["small", "layers"] == 6 and table.loc["big", "layers"] == 12
    assert table.loc["small", "share_with_blocks"] == 1.0
    assert (
        table.loc["big", "runs_with_blocks"] == 1 and table.loc["big", "share_with_blocks"] == 0.5
    )
    low, high = verdicts.wilson_interval(1, 2)
    assert (table.loc["big", "share_lower"], table.loc["big", "share_upper"]) == (low, high)
    assert table.loc["small", "boundary_fraction"] == pytest.approx(4 / 6)
    assert table.loc["big", "boundary_fraction"] == pytest.approx(9 / 12)
    assert table.loc["small", "mean_droppable"] == 1 and table.loc["big", "mean_knee"] == 11
    assert table.loc["big", "droppable_fraction"] == pytest.approx(1 / 12)


def test_unlearned_pairs_leave_the_knee_but_not_the_blocks() -> None:
    learned = pd.DataFrame({"model": ["small", "big"], "task": "t", "learned": [True, False]})
    table = depth.depth_table(*_tables(), learned=learned).set_index("model")
    assert table.loc["big", "learned_pairs"] == 0 and pd.isna(table.loc["big", "mean_knee"])
    assert table.loc["big", "runs"] == 2


def test_relative_truncation_puts_every_model_on_zero_to_one() -> None:
    _, curves = _tables()
    frame = depth.relative_truncation(curves)
    big = frame[(frame["model"] == "big") & (frame["seed"] == 0)].set_index("layers_kept")
    assert big["kept_fraction"].tolist() == pytest.approx([k / 12 for k in range(13)])
    assert big.loc[12, "relative"] == 1.0 and big.loc[0, "relative"] == pytest.approx(0.5 / 0.9)


def test_the_depth_charts_carry_the_shares() -> None:
    blocks, curves = _tables()
    runs = depth.run_depths(blocks, curves)
    chart = plots.depth_boundaries(runs, models=["small", "big"]).to_dict()
    assert chart["encoding"]["x"]["field"] == "boundary_fraction"
    lines = plots.depth_truncation_curves(depth.relative_truncation(curves)).to_dict()
    assert lines["spec"]["layer"][0]["encoding"]["x"]["field"] == "kept_fraction"
    cka = pd.DataFrame([
        {"preset": "p", "model": m, "task": "t", "seed": 0, "kind": "finetuned", "layer_a": a,
         "layer_b": b, "cka": 1.0 if a == b else 0.5, "estimator": "biased"}
        for m, n in (("small", 6), ("big", 12)) for a in range(1, n + 1) for b in range(1, n + 1)
    ])  # fmt: skip
    heat = plots.model_heatmaps(cka, kinds=("finetuned",), models=["small", "big"], size=120)
    panels = heat.to_dict()["vconcat"][0]["hconcat"]
    assert [p["width"] for p in panels] == [120, 120]  # one size whatever the depth
    assert "small" in panels[0]["title"] and "big" in panels[1]["title"]

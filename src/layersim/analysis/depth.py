"""Models of different depths side by side: where the blocks fall and how much can go, with
layers counted as fractions of each model's depth.

Pure functions of the results tables (:func:`layersim.results.load`), for the book's chapter
"Across models": MiniLM (6 layers), MPNet (12) and SmolLM2 (30) are compared by the statistics
the claims use (:mod:`layersim.analysis.claims`), per model, with the boundary of the late block,
the knee of the truncation curve and the number of droppable top layers also divided by the depth L,
so that "the last two layers of six" and "the last five of thirty" read on one scale.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layersim.analysis.run_tables import only_learned, pair_table, run_table
from layersim.analysis.verdicts import KNEE_TOLERANCE, main_metric, wilson_interval
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = ["DEPTH_COLUMNS", "depth_table", "relative_truncation", "run_depths"]

#: Columns of :func:`depth_table`.
DEPTH_COLUMNS = [
    "model", "layers", "runs", "runs_with_blocks", "share_with_blocks", "share_lower",
    "share_upper", "mean_excess", "mean_boundary", "boundary_fraction", "learned_pairs",
    "mean_knee", "knee_fraction", "mean_droppable", "droppable_fraction",
]  # fmt: skip


def _depth_of(truncation: pd.DataFrame) -> pd.Series:
    """L per model: the largest number of layers kept."""
    return truncation.groupby("model")["layers_kept"].max().astype(int).rename("layers")


def run_depths(
    blocks: pd.DataFrame, truncation: pd.DataFrame, *, threshold: float = DEFAULT_EXCESS_THRESHOLD
) -> pd.DataFrame:
    """:func:`layersim.analysis.run_tables.run_table` with each model's depth ``layers`` and the
    boundary as a fraction of it (``boundary_fraction``: the first layer of the late block over
    L)."""
    runs = run_table(blocks, threshold=threshold).join(_depth_of(truncation), on="model")
    return runs.assign(boundary_fraction=runs["boundary"] / runs["layers"])


def depth_table(
    blocks: pd.DataFrame,
    truncation: pd.DataFrame,
    *,
    learned: pd.DataFrame | None = None,
    threshold: float = DEFAULT_EXCESS_THRESHOLD,
    tolerance: float = KNEE_TOLERANCE,
) -> pd.DataFrame:
    """One row per model: its depth, how many runs show two blocks (share with a 95% Wilson
    interval), the mean excess, the mean boundary, and over the (model, task) pairs fine-tuning
    learned (all pairs without `learned`) the mean knee and droppable top layers; boundary, knee
    and droppable layers also as fractions of the depth. Columns :data:`DEPTH_COLUMNS`."""
    runs = run_depths(blocks, truncation, threshold=threshold)
    pairs = only_learned(
        pair_table(blocks, truncation, threshold=threshold, tolerance=tolerance), learned
    )
    rows = []
    for model, group in runs.groupby("model", sort=False):
        layers = int(group["layers"].iloc[0])
        hits, total = int(group["blocks"].sum()), len(group)
        low, high = wilson_interval(hits, total)
        mine = pairs[pairs["model"] == model].dropna(subset=["knee"])
        knee = float(mine["knee"].mean()) if len(mine) else math.nan
        droppable = float(mine["droppable"].mean()) if len(mine) else math.nan
        rows.append({
            "model": model, "layers": layers, "runs": total, "runs_with_blocks": hits,
            "share_with_blocks": hits / total, "share_lower": low, "share_upper": high,
            "mean_excess": float(group["excess"].mean()),
            "mean_boundary": float(group["boundary"].mean()),
            "boundary_fraction": float(group["boundary_fraction"].mean()),
            "learned_pairs": len(mine), "mean_knee": knee, "knee_fraction": knee / layers,
            "mean_droppable": droppable, "droppable_fraction": droppable / layers,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=DEPTH_COLUMNS)


def relative_truncation(truncation: pd.DataFrame) -> pd.DataFrame:
    """Each task's main metric against the share of layers kept (``kept_fraction`` = k / L), and
    as a share of the full model's metric of the same run (``relative``; NaN where the full
    model scores 0 or less, as a correlation can)."""
    frames = []
    for (_, task), group in truncation.groupby(["model", "task"], sort=False):
        metric = main_metric(task, list(dict.fromkeys(group["metric"])))
        curve = group[group["metric"] == metric].copy()
        layers = int(curve["layers_kept"].max())
        full = curve[curve["layers_kept"] == layers].set_index("seed")["value"]
        scale = curve["seed"].map(full).to_numpy(dtype=float)
        curve["kept_fraction"] = curve["layers_kept"] / layers
        curve["layers"] = layers
        curve["relative"] = np.where(scale > 0, curve["value"] / np.where(scale > 0, scale, 1),
                                     np.nan)  # fmt: skip
        frames.append(curve)
    return pd.concat(frames, ignore_index=True)

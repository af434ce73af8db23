"""Across seeds and tasks (E5): pure functions of the ``across`` table.

The table compares the layers of every two models of a grid on shared inputs
(:mod:`layersim.pipeline.steps.across_inputs`). :func:`agreement_table` (per comparison and
depth: the diagonal CKA over pairs), :func:`parting_table` (per depth: how much more seeds agree
than tasks, with an interval from a bootstrap over the grid's seeds and tasks,
:func:`grid_bootstrap`), :func:`parting_depth` (the first layer from which on seeds agree more
than tasks by over :data:`PARTING_MARGIN`) and the scorecard's E5 row, :func:`scorecard_row`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layersim.analysis.verdicts import verdict_row
from layersim.pipeline.steps.across_inputs import COMPARISONS, PRETRAINED, split_label
from layersim.stats.blocks import DEFAULT_EXCESS_THRESHOLD

__all__ = [
    "PARTING_MARGIN",
    "QUESTION",
    "agreement_table",
    "diagonal",
    "grid_bootstrap",
    "grid_differences",
    "grid_tasks_and_seeds",
    "parting_depth",
    "parting_table",
    "scorecard_row",
]


#: How much more (in CKA) two seeds of a task must agree than two tasks, at the lower end of the
#: interval, for a layer to count as parted: the margin of the block verdict
#: (:data:`layersim.stats.blocks.DEFAULT_EXCESS_THRESHOLD`), so that a difference too small to
#: matter does not count because many pairs make it certain.
PARTING_MARGIN = DEFAULT_EXCESS_THRESHOLD


QUESTION = (
    "Across seeds and tasks, which layers agree, and from which depth do models fine-tuned on "
    "different tasks part more than seeds do?"
)


def _tasks_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        task_a=frame["run_a"].map(lambda label: split_label(label)[0]),
        task_b=frame["run_b"].map(lambda label: split_label(label)[0]),
    )


def diagonal(
    across: pd.DataFrame, *, estimator: str = "biased", learned: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per pair and depth, CKA of the two models' same layer (``layer``, ``cka``).

    With `learned` (:func:`layersim.analysis.run_tables.learned_table`), only pairs whose fine-tuned
    models are of learned tasks: a model that learned nothing has moved little from the pretrained
    one, so it would agree with the others for the wrong reason."""
    rows = across[(across["estimator"] == estimator) & (across["layer_a"] == across["layer_b"])]
    if rows.empty:
        raise ValueError(f"the across table has no {estimator!r} rows")
    rows = _tasks_of(rows)
    if learned is not None:
        kept = learned.loc[learned["learned"] == True, ["model", "task"]]  # noqa: E712 (NaN: no)
        ok = set(map(tuple, kept.to_numpy()))
        fine = [
            ((m, a) in ok or a == PRETRAINED) and (m, b) in ok
            for m, a, b in zip(rows["model"], rows["task_a"], rows["task_b"], strict=True)
        ]
        rows = rows[np.asarray(fine, dtype=bool)]
    return rows.rename(columns={"layer_a": "layer"}).drop(columns="layer_b")


def agreement_table(diagonals: pd.DataFrame) -> pd.DataFrame:
    """Per (model, comparison, layer): ``pairs``, the ``mean`` diagonal CKA over pairs and its
    ``lowest`` and ``highest`` value."""
    grouped = diagonals.groupby(["model", "comparison", "layer"], sort=True)["cka"]
    table = grouped.agg(pairs="size", mean="mean", lowest="min", highest="max").reset_index()
    rank = table["comparison"].map({name: i for i, name in enumerate(COMPARISONS)})
    return (
        table.assign(rank=rank)
        .sort_values(["model", "rank", "layer"], ignore_index=True)
        .drop(columns="rank")
    )


def grid_bootstrap(
    pairs: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of (mean CKA of the seeds pairs) - (mean of the tasks pairs) from a
    two-way bootstrap of the grid's models.

    Pairs that share a model are not independent, so the pairs are not resampled; the grid is:
    each replicate redraws its tasks and its seeds with replacement (the pigeonhole bootstrap of
    Owen 2007, *Ann. Appl. Stat.* 1(2)) and averages the pairs the redrawn grid holds
    (:func:`grid_differences`). A replicate that drew a single seed (no seeds pair) or a single
    task is skipped. `pairs`: one layer's rows of :func:`diagonal` with comparison ``seeds`` or
    ``tasks``. ``(nan, nan)`` below two seeds or two tasks.
    """
    grid_tasks, grid_seeds = grid_tasks_and_seeds(pairs)
    if len(grid_tasks) < 2 or len(grid_seeds) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    task_counts = rng.multinomial(len(grid_tasks), [1 / len(grid_tasks)] * len(grid_tasks), n_boot)
    seed_counts = rng.multinomial(len(grid_seeds), [1 / len(grid_seeds)] * len(grid_seeds), n_boot)
    differences = grid_differences(pairs, task_counts, seed_counts)
    defined = differences[np.isfinite(differences)]
    if len(defined) < 2:
        return (math.nan, math.nan)
    low, high = np.quantile(defined, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def grid_tasks_and_seeds(pairs: pd.DataFrame) -> tuple[list[str], list[int]]:
    """The sorted tasks and seeds of the runs in `pairs` (``run_a``, ``run_b`` labels)."""
    labels = [split_label(label) for column in ("run_a", "run_b") for label in pairs[column]]
    return sorted({task for task, _ in labels}), sorted({seed for _, seed in labels})


def grid_differences(
    pairs: pd.DataFrame, task_counts: np.ndarray, seed_counts: np.ndarray
) -> np.ndarray:
    """Seeds-minus-tasks mean CKA of redrawn grids: ``task_counts[r, i]`` and
    ``seed_counts[r, j]`` say how often replicate ``r`` drew task i and seed j of
    :func:`grid_tasks_and_seeds`. The redrawn grid holds a seeds pair (task t; seeds s, s')
    ``w_t w_s w_s'`` times and a tasks pair (seed s; tasks t, t') ``w_s w_t w_t'`` times; NaN
    where it holds no pair of one kind."""
    grid_tasks, grid_seeds = grid_tasks_and_seeds(pairs)
    a = [split_label(label) for label in pairs["run_a"]]
    b = [split_label(label) for label in pairs["run_b"]]
    t_a, t_b = ([grid_tasks.index(t) for t, _ in side] for side in (a, b))
    s_a, s_b = ([grid_seeds.index(s) for _, s in side] for side in (a, b))
    w_task, w_seed = np.asarray(task_counts, float), np.asarray(seed_counts, float)
    is_seeds = (pairs["comparison"] == "seeds").to_numpy()
    weights = np.where(
        is_seeds,
        w_task[:, t_a] * w_seed[:, s_a] * w_seed[:, s_b],
        w_seed[:, s_a] * w_task[:, t_a] * w_task[:, t_b],
    )
    values = pairs["cka"].to_numpy(float)

    def mean_of(kind: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):  # no pair of that kind: NaN
            return weights[:, kind] @ values[kind] / weights[:, kind].sum(axis=1)

    return mean_of(is_seeds) - mean_of(~is_seeds)


def parting_table(
    diagonals: pd.DataFrame, *, margin: float = PARTING_MARGIN, seed: int = 0
) -> pd.DataFrame:
    """Per (model, layer): mean diagonal CKA of seed pairs minus that of task pairs
    (``difference``), with the 95% interval of :func:`grid_bootstrap` (over the grid's seeds and
    tasks, not its pairs), and ``parted`` when its lower end is above `margin`."""
    rows = []
    for (model, layer), group in diagonals.groupby(["model", "layer"], sort=True):
        same_task = group.loc[group["comparison"] == "seeds", "cka"].to_numpy(float)
        other_task = group.loc[group["comparison"] == "tasks", "cka"].to_numpy(float)
        if len(same_task) == 0 or len(other_task) == 0:
            continue
        low, high = grid_bootstrap(group[group["comparison"].isin(["seeds", "tasks"])], seed=seed)
        rows.append({
            "model": model, "layer": int(layer),
            "seeds": float(same_task.mean()), "tasks": float(other_task.mean()),
            "difference": float(same_task.mean() - other_task.mean()),
            "lower": low, "upper": high, "parted": bool(not math.isnan(low) and low > margin),
        })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["model", "layer", "seeds", "tasks", "difference", "lower", "upper", "parted"]
    )


def parting_depth(parting: pd.DataFrame) -> float:
    """The first layer from which on every deeper layer has ``parted`` (seeds agree more than
    tasks, by more than the margin); NaN when the last layer has not."""
    ordered = parting.sort_values("layer")
    depth = math.nan
    for layer, parted in zip(ordered["layer"], ordered["parted"], strict=True):
        depth = (layer if math.isnan(depth) else depth) if parted else math.nan
    return float(depth)


def _model_answer(parting: pd.DataFrame, agreement: pd.DataFrame) -> tuple[float, str, str]:
    """One model's parting depth, verdict and evidence."""
    depth = parting_depth(parting)
    first, last = int(parting["layer"].min()), int(parting["layer"].max())
    verdict = (
        f"tasks part from layer {int(depth)} of {last} on (seeds agree more there, by over "
        f"{PARTING_MARGIN:g} CKA)"
        if not math.isnan(depth)
        else f"no depth where seeds agree more than tasks by over {PARTING_MARGIN:g} CKA"
    )

    def at(layer: int) -> str:
        means = agreement[agreement["layer"] == layer].set_index("comparison")["mean"]
        return ", ".join(f"{name} {means[name]:.2f}" for name in COMPARISONS if name in means)

    pairs = agreement.groupby("comparison")["pairs"].max()
    evidence = (
        f"mean same-layer CKA at layer {first}: {at(first)}; at layer {last}: {at(last)} "
        f"({', '.join(f'{pairs[c]} {c} pairs' for c in COMPARISONS if c in pairs)})"
    )
    return depth, verdict, evidence


def scorecard_row(
    across: pd.DataFrame, *, learned: pd.DataFrame | None = None, seed: int = 0
) -> pd.DataFrame:
    """The scorecard's E5 row (biased CKA, the paper's): the depth from which on models of
    different tasks part, i.e. agree less than two seeds of one task do, by more than
    :data:`PARTING_MARGIN` at the lower end of the interval; with the diagonal CKA
    of seeds, tasks and the pretrained model at the first and the last layer as evidence. With
    several models, each model's answer (and no single estimate)."""
    diagonals = diagonal(across, learned=learned)
    parting = parting_table(diagonals, seed=seed)
    agreement = agreement_table(diagonals)
    answers = {
        model: _model_answer(group, agreement[agreement["model"] == model])
        for model, group in parting.groupby("model", sort=True)
    }
    if not answers:
        depth, verdict, evidence = math.nan, "not testable: needs two seeds and two tasks", ""
    elif len(answers) == 1:
        ((depth, verdict, evidence),) = answers.values()
    else:
        depth = math.nan
        verdict = "; ".join(f"{model}: {answer[1]}" for model, answer in answers.items())
        evidence = "; ".join(f"{model}: {answer[2]}" for model, answer in answers.items())
    row = verdict_row("E5", "first layer from which on tasks part", depth, (math.nan, math.nan),
               verdict, evidence)  # fmt: skip
    row["statement"] = QUESTION
    return pd.DataFrame([row])

"""Step 7, robustness (E4): the block statistics of the fine-tuned model under other numbers of
inputs, estimators, poolings and input domains (``robustness``), and its metrics on those inputs
(``robustness_metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from layersim import tasks
from layersim.models import families, layer_cache
from layersim.pipeline import passes, presets
from layersim.pipeline.steps import robustness_choices
from layersim.results import RunKey


def robustness_tables(
    key: RunKey,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    *,
    preset: str | presets.Preset | None = None,
    sizes: Sequence[int] = robustness_choices.SIZES,
    domains: Sequence[str] | None = None,
    domain_examples: int = 500,
    n_boot: int = 50,
    data_dir: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
    record: passes.PassRecord | None = None,
) -> dict[str, pd.DataFrame]:
    """The fine-tuned model's block statistics under every choice of
    :mod:`layersim.analysis.robustness`.

    One forward pass per set of inputs: the run's own validation inputs (up to ``max(sizes)``,
    the same seeded subset as the similarity step's, read at every size of
    :func:`layersim.pipeline.steps.robustness_choices.sizes_for`), and for each of `domains`
    (default:
    :data:`layersim.pipeline.steps.robustness_choices.OTHER_DOMAINS` of the task) up to
    `domain_examples` validation inputs of that task, read at their full number with the paper's
    pooling. The own inputs are pooled three ways; every set is compared with both estimators
    (:func:`layersim.pipeline.steps.robustness_choices.choice_rows`). With `record` (the run's
    :class:`layersim.pipeline.passes.PassRecord` of this model over the seeded ``max(sizes)``
    validation inputs, :func:`validation_record`) the own inputs are read from it instead of a new
    pass.

    Returns
    -------
    dict of pandas.DataFrame
        ``robustness``: one row per (inputs, pooling, estimator, n, statistic): the key columns,
        ``inputs`` (``validation`` or a domain task), ``pooling``, ``estimator``, ``n``,
        ``statistic`` (``excess``, ``contrast``), ``value``, ``lower``, ``upper``, ``boundary``.
        ``robustness_metrics``: the task head's metrics on each set of inputs whose labels are of
        the task's kind (the rows it was pooled from): ``inputs``, ``n``, ``metric``, ``value``.
    """
    task = tasks.get_task(task)
    spec = presets.get_preset(preset, task.name)
    domains = robustness_choices.OTHER_DOMAINS.get(task.name, ()) if domains is None else domains
    own = families.natural_pooling(model)
    sources = {"validation": (task, max(sizes))}
    sources |= {name: (tasks.get_task(name), domain_examples) for name in domains}
    found, scores = [], []
    for name, (source, limit) in tqdm(sources.items(), desc="inputs", disable=not progress):
        if name == "validation" and record is not None:
            depth = record.pooled[own].shape[0] - 1
            states = {own: (list(range(1, depth + 1)), record.pooled[own][1:]),
                      "mean": (list(range(depth + 1)), record.pooled["mean"]),
                      "tokens": (list(range(depth + 1)), record.pooled["tokens"])}  # fmt: skip
            logits, labels = record.logits, record.labels
        else:
            states, logits, labels = _robustness_pass(
                model, tokenizer, source, limit, own, key, spec.max_length, batch_size, data_dir
            )
        rows = states[own][1].shape[1]
        if name == "validation":
            here = robustness_choices.sizes_for(rows, sizes)
        else:  # another domain: the paper's pooling only, at its full number (cost)
            here, states = [rows], {own: states[own]}
        found += [
            {**key.as_dict(), "inputs": name, **row}
            for row in robustness_choices.choice_rows(
                states, sizes=here, n_boot=n_boot, seed=key.seed
            )
        ]
        if (source.kind, source.num_labels) == (task.kind, task.num_labels):
            scores += [
                {**key.as_dict(), "inputs": name, "n": len(labels), "metric": metric,
                 "value": float(value)}
                for metric, value in tasks.compute_metrics(source, logits, labels).items()
            ]  # fmt: skip
    return {"robustness": pd.DataFrame(found), "robustness_metrics": pd.DataFrame(scores)}


def _robustness_pass(
    model: Any, tokenizer: Any, source: tasks.Task, limit: int, own: str, key: RunKey,
    max_length: int, batch_size: int, data_dir: str | None,
) -> tuple[dict, np.ndarray, np.ndarray]:  # fmt: skip
    """The pooled states (:func:`layersim.pipeline.steps.robustness_choices.pooled_states`), logits
    and labels of the seeded `limit` validation inputs of `source`, in split order."""
    raw = tasks.load(source, "validation", limit=limit, data_dir=data_dir, seed=key.seed)
    encoded = tasks.encode(source, tokenizer, raw, max_length=max_length)
    # Run in length order (less padding), then put the rows back: the sizes read prefixes.
    order = tasks.length_order(encoded)
    restore = torch.from_numpy(np.argsort(order))
    cache = layer_cache.cached_hidden_states(
        model, tokenizer, source, encoded.select(order), batch_size=batch_size, with_outputs=True
    )
    pooled = robustness_choices.pooled_states(
        [(b, h) for b, (h, _) in cache], tokenizer.all_special_ids, seed=key.seed, own=own
    )
    states = {pooling: (layers, x[:, restore]) for pooling, (layers, x) in pooled.items()}
    logits = np.concatenate([out for _, (_, out) in cache])[restore.numpy()]
    labels = np.concatenate([b["labels"].numpy() for b, _ in cache])[restore.numpy()]
    return states, logits, labels

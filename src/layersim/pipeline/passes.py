"""One forward pass of a model over the validation inputs, kept for every step that reads it.

The similarity, truncation, baselines and robustness steps all run the fine-tuned (or the
pretrained) model over validation inputs of the same run: similarity and robustness over the
run's seeded subset, truncation and the baselines over the evaluation rows. :func:`run_record`
runs each model once, over the union of those rows (:func:`validation_rows`), and keeps a
:class:`PassRecord` on disk next to the run's model (``passes/<role>.pt``); each step selects its
own rows from it (:meth:`PassRecord.select`). A step whose rows the record does not cover (other
sizes passed as parameters) computes a record of its own rows instead, so a record is a saving,
never a change of what a step computes.

A record holds, per validation row (in split order), for every hidden state ``0..L``: the model's
own pooling (:func:`layersim.models.families.natural_pooling`: the first token, or a decoder's
last), the mean over real tokens, and one real, non-special token drawn per row with
``numpy.random.default_rng([seed, row, choice])`` (so a subset draws what the whole would); the
input of the task head's last linear layer (the probes' features), the logits of the model with
only its first ``k`` layers kept for every ``k`` (:mod:`layersim.models.layer_cache`: one pass of
the full model, then only the head per ``k``), the model's logits and the labels. The forward pass
runs in length order (less padding) and the rows are put back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from layersim import tasks
from layersim.models import families, layer_cache, probe, reps, truncate

__all__ = [
    "FORMAT_VERSION",
    "PassRecord",
    "compute_record",
    "run_record",
    "validation_rows",
]

#: Bump when what a record holds changes: older records are then computed again.
FORMAT_VERSION = 1
#: The robustness step's largest number of inputs
#: (``layersim.pipeline.steps.robustness_choices.SIZES``), spelled out so that this module does not
#: import the analysis.
ROBUSTNESS_INPUTS = 1000


@dataclass(frozen=True)
class PassRecord:
    """What one forward pass of a model over validation rows gave.

    Attributes
    ----------
    rows : numpy array
        Positions in the split, ascending.
    choices : int
        Sequences per row (multiple choice), else 1; pooled states have ``rows × choices`` rows,
        row-major.
    own : str
        The model's own pooling, the key of :attr:`pooled` next to ``mean`` and ``tokens``.
    pooled : dict of str to Tensor
        ``(L + 1, rows × choices, d)`` float32 per pooling.
    head, logits, labels : numpy arrays
        What the head's last linear layer reads (``(rows, [choices,] width)``), the model's
        outputs and the labels.
    layer_logits : dict of int to numpy array, or None
        The outputs with only the first ``k`` layers kept, for each ``k``; None where the
        architecture has no single embedding output to start a head-only model from.
    """

    rows: np.ndarray
    choices: int
    own: str
    pooled: dict[str, torch.Tensor]
    head: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    layer_logits: dict[int, np.ndarray] | None

    def covers(self, rows: Iterable[int]) -> bool:
        """Whether every position of `rows` is in the record."""
        return bool(np.isin(np.asarray(list(rows)), self.rows).all())

    def select(self, rows: Iterable[int]) -> PassRecord:
        """The record of the positions `rows` (ascending, all in the record), in that order."""
        rows = np.asarray(list(rows), dtype=np.int64)
        where = np.searchsorted(self.rows, rows)
        if len(rows) == 0 or (where >= len(self.rows)).any() or (self.rows[where] != rows).any():
            raise ValueError("the record does not hold every requested row; compute a new one")
        sequences = torch.as_tensor(
            (where[:, None] * self.choices + np.arange(self.choices)[None, :]).reshape(-1)
        )
        return replace(
            self,
            rows=rows,
            pooled={k: v.index_select(1, sequences) for k, v in self.pooled.items()},
            head=self.head[where],
            logits=self.logits[where],
            labels=self.labels[where],
            layer_logits=None
            if self.layer_logits is None
            else {k: v[where] for k, v in self.layer_logits.items()},
        )


def validation_rows(size: int, *, similarity: int, eval_limit: int | None, seed: int) -> np.ndarray:
    """The validation positions a run's steps read: the similarity subset (`similarity` rows
    drawn with the run's `seed`), the robustness subset (:data:`ROBUSTNESS_INPUTS`, same seed;
    it contains the former when larger) and the evaluation rows (`eval_limit`, seed 0)."""
    parts = [
        tasks.subset_indices(size, similarity, seed),
        tasks.subset_indices(size, ROBUSTNESS_INPUTS, seed),
        tasks.subset_indices(size, eval_limit, 0),
    ]
    return np.unique(np.concatenate(parts))


def _draw_token(mask: torch.Tensor, seed: int, row: int, choice: int) -> int:
    real = np.flatnonzero(mask.numpy())
    if len(real) == 0:
        raise ValueError("an input has no real, non-special token to draw for token pooling")
    return int(np.random.default_rng([seed, row, choice]).choice(real))


def compute_record(
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    raw: Any,
    rows: np.ndarray,
    *,
    max_length: int,
    batch_size: int = 64,
    seed: int = 0,
) -> PassRecord:
    """Run `model` once over the examples `raw` (the split's positions `rows`) and keep what
    the steps read (see the module docstring)."""
    task = tasks.get_task(task)
    encoded = tasks.encode(task, tokenizer, raw, max_length=max_length)
    order = np.asarray(tasks.length_order(encoded), dtype=np.int64)
    own = families.natural_pooling(model)
    special = tokenizer.all_special_ids
    depth = truncate.num_layers(model)
    first = truncate.fewest_layers(model)
    head_only = None
    if layer_cache.embedding_output_module(model) is not None:
        head_only = truncate.keep_first_layers(model, 0).eval()
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    hook = probe.last_linear(model).register_forward_hook(
        lambda _m, args, _o: captured.append(args[0].detach())
    )
    pooled: dict[str, list] = {own: [], "mean": [], "tokens": []}
    heads, logits, labels = [], [], []
    layer_logits: dict[int, list] = {k: [] for k in range(first, depth + 1)}
    position = 0
    try:
        for batch, (hidden, output) in layer_cache.hidden_state_batches(
            model, tokenizer, task, encoded.select(order), batch_size=batch_size,
            with_outputs=True,
        ):  # fmt: skip
            count = len(batch["labels"])
            split_rows = rows[order[position : position + count]]
            position += count
            choices = hidden.shape[1] // count
            labels.append(batch["labels"].numpy())
            logits.append(output)
            mask = batch["attention_mask"].reshape(hidden.shape[1], -1)
            head = captured[-1].float().cpu()
            if head.dim() == 3:  # a decoder's head scores every position: its last real token
                head = probe.last_real_token(head, mask)
            heads.append(head.reshape(count, *([choices] if choices > 1 else []), -1).numpy())
            captured.clear()
            pooled[own].append(reps.pool_hidden_states(hidden, batch, own))
            pooled["mean"].append(reps.pool_hidden_states(hidden, batch, "mean"))
            real = reps.real_token_mask(batch, special)
            drawn = [_draw_token(real[i], seed, int(split_rows[i // choices]), i % choices)
                     for i in range(hidden.shape[1])]  # fmt: skip
            pooled["tokens"].append(hidden[:, torch.arange(len(drawn)), torch.tensor(drawn)])
            if head_only is not None:
                inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
                for k in range(first, depth):  # a decoder's last state is after its final norm
                    with torch.no_grad(), layer_cache.starting_from(head_only, [hidden[k]]):
                        layer_logits[k].append(head_only(**inputs).logits.float().cpu().numpy())
                layer_logits[depth].append(output)
    finally:
        hook.remove()
    restore = np.argsort(order)
    choices = int(torch.cat(pooled[own], 1).shape[1] // len(order))
    sequences = torch.as_tensor(
        (restore[:, None] * choices + np.arange(choices)[None, :]).reshape(-1)
    )
    return PassRecord(
        rows=np.asarray(rows, dtype=np.int64),
        choices=choices,
        own=own,
        pooled={k: torch.cat(v, 1).index_select(1, sequences) for k, v in pooled.items()},
        head=np.concatenate(heads)[restore],
        logits=np.concatenate(logits)[restore],
        labels=np.concatenate(labels)[restore],
        layer_logits=None
        if head_only is None
        else {k: np.concatenate(v)[restore] for k, v in layer_logits.items()},
    )


def _fingerprint(model_dir: str, task: str, max_length: int, seed: int) -> dict:
    """What a record depends on besides its rows: the weights (path, size, time), the task, the
    encoding and the token draw."""
    weights = [p for p in Path(model_dir).glob("*.safetensors")] if os.path.isdir(model_dir) else []
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(weights)]
    return {
        "format": FORMAT_VERSION,
        "model": os.path.abspath(model_dir) if weights else model_dir,
        "weights": stamp,
        "task": task,
        "max_length": int(max_length),
        "seed": int(seed),
    }


def _save(path: Path, record: PassRecord, fingerprint: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial")
    torch.save({"fingerprint": json.dumps(fingerprint, sort_keys=True),
                "record": {**record.__dict__}}, staging)  # fmt: skip
    os.replace(staging, path)


def _load(path: Path, fingerprint: dict) -> PassRecord | None:
    try:
        content = torch.load(path, weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError):
        return None
    if content.get("fingerprint") != json.dumps(fingerprint, sort_keys=True):
        return None
    return PassRecord(**content["record"])


def run_record(
    path: str | os.PathLike,
    model: Any,
    tokenizer: Any,
    task: str | tasks.Task,
    rows: np.ndarray,
    *,
    model_dir: str,
    max_length: int,
    batch_size: int = 64,
    seed: int = 0,
    data_dir: str | None = None,
    union: np.ndarray | None = None,
) -> PassRecord:
    """The record of `model` (loaded from `model_dir`) over the validation positions `rows`:
    read from `path` when a record of the same weights, task, encoding and seed there covers
    them, else computed over `union` (the rows the run's other steps will ask for; default
    `rows`) and saved there for them."""
    task = tasks.get_task(task)
    fingerprint = _fingerprint(model_dir, task.name, max_length, seed)
    path = Path(path)
    kept = _load(path, fingerprint) if path.is_file() else None
    if kept is not None and kept.covers(rows):
        return kept.select(rows)
    wanted = np.unique(np.concatenate([rows, union if union is not None else rows]))
    raw = tasks.load(task, "validation", data_dir=data_dir).select(wanted)
    record = compute_record(model, tokenizer, task, raw, wanted, max_length=max_length,
                            batch_size=batch_size, seed=seed)  # fmt: skip
    _save(path, record, fingerprint)
    return record.select(rows)

"""After the runs of a grid, across seeds and tasks (E5): the layers of every two fine-tuned models
of the grid, and each with the pretrained model, compared on one shared set of inputs (the grid
table ``across``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from layersim.models import families, reps, truncate
from layersim.pipeline import finetune, presets
from layersim.pipeline.steps import across_inputs
from layersim.pipeline.steps.similarity import compared_layers
from layersim.results import RunKey

__all__ = ["across_table"]


def across_table(
    preset: str | presets.Preset,
    model: str,
    runs: Sequence[RunKey],
    *,
    work_dir: str,
    per_task: int = 100,
    pooling: str | None = None,
    batch_size: int = 64,
    device: Any = "cpu",
    data_dir: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The ``across`` table of a grid: rectangular CKA matrices between its models' layers.

    Every fine-tuned model of `runs` (loaded from ``<run dir under work_dir>/model``) and the
    pretrained model of each seed (`model`: its name or directory, as fine-tuning was given it)
    read the same inputs, :func:`layersim.pipeline.steps.across_inputs.shared_inputs` of the runs'
    tasks (`per_task` validation examples each, at each task's ``max_length``); the pairs are
    :func:`layersim.pipeline.steps.across_inputs.model_pairs`, with the biased and the debiased
    estimator. `pooling` defaults to the model's own
    (:func:`layersim.models.families.natural_pooling`).
    """
    from torch.utils.data import DataLoader
    from transformers import AutoModel, DataCollatorWithPadding

    if not runs:
        raise ValueError("runs is empty; pass the fine-tuned runs of the grid")
    spec = presets.get_preset(preset)
    names = [name for name in spec.tasks if name in {key.task for key in runs}]
    names += sorted({key.task for key in runs} - set(names))
    tokenizer = finetune.load_tokenizer(model)
    lengths = {name: presets.get_preset(spec, name).max_length for name in names}
    inputs = across_inputs.shared_inputs(
        names, tokenizer, per_task=per_task, max_length=lengths, data_dir=data_dir
    )
    loader = DataLoader(inputs.remove_columns("source"), batch_size=batch_size,
                        collate_fn=DataCollatorWithPadding(tokenizer))  # fmt: skip
    device = torch.device(device)

    def load(run: RunKey | int) -> Any:
        """A fine-tuned body from work_dir, or (a seed) the pretrained model it started from."""
        if isinstance(run, RunKey):
            return AutoModel.from_pretrained(run.run_dir(work_dir) / "model")
        return finetune.load_model(model, names[0], seed=run)

    models: dict[str, RunKey | int] = {
        across_inputs.pretrained_label(seed): seed for seed in sorted({key.seed for key in runs})
    }
    models |= {across_inputs.run_label(key.task, key.seed): key for key in runs}
    representations, layers = {}, []
    for label, run in tqdm(models.items(), desc="models", disable=not progress):
        network = load(run).to(device)
        pooling = pooling or families.natural_pooling(network)
        layers = compared_layers(truncate.num_layers(network), pooling)
        representations[label] = reps.layer_representations(
            network, loader, pooling=pooling, layers=layers, autocast=device.type == "cuda",
            special_token_ids=tokenizer.all_special_ids,
        )  # fmt: skip
    pairs = across_inputs.model_pairs([(key.task, key.seed) for key in runs])
    return across_inputs.across_rows(
        spec.name, runs[0].model, representations, pairs, layers=layers, pooling=pooling
    )

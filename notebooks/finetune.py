# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Step 1: fine-tune one model on one task
#
# The first step of a run (preset, model, task, seed): fine-tune the model with
# `transformers.Trainer` through `layersim.pipeline.finetune`, with the preset's hyper-parameters
# unless a parameter below overrides them, and record the validation metric(s) in the results store.
# Run it for one combination by editing the parameters cell, or for a whole grid with
# `python -m layersim run --preset demo`, which executes this notebook with papermill.
# A finished fine-tuning run is reused, and an interrupted one resumes from its last checkpoint.

# %% tags=["remove-cell"]
# In Colab: install layersim from its repository (LAYERSIM_REPOSITORY overrides it, e.g. a fork).
# Elsewhere this cell does nothing: the notebook runs in the environment `make` created.
import importlib.util
import os
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("layersim") is None:
    repository = os.environ.get("LAYERSIM_REPOSITORY", "https://github.com/layersim/layersim")
    package = f"layersim[pipeline,offline] @ git+{repository}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
preset = "demo"  # tiny | demo | synthetic | models | paper | paper-large
model = "minilm-l6"  # a preset model name, a Hugging Face Hub id or a local directory
task = "synth_sentiment"
seed = 0
results_dir = "../results"  # tidy tables + provenance (committed for the demo preset)
work_dir = "../runs"  # checkpoints and executed notebooks (large, not committed)
device = "auto"  # auto | cpu | cuda | cuda:N
epochs = None  # None: the preset's value, for this and the following
learning_rate = None
batch_size = None
max_length = None
train_limit = None
eval_limit = None
# Fractions of training at which the weights are kept (runs/.../model/progress/step-N), for the
# analysis of when the blocks form; () keeps none.
snapshots = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)

# %%
import os

import pandas as pd

from layersim import tasks
from layersim.models import devices
from layersim.pipeline import finetune
from layersim.pipeline.step_run import run_step
from layersim.tasks import real_text

run = run_step(preset, model, task, seed, device=device)
output_dir = run.key.run_dir(work_dir) / "model"
print(
    f"run {run.key}; preset: {run.spec.description}; device: {devices.describe_device(run.device)}"
)

# %% [markdown]
# Fine-tune (or reuse a finished run with the same arguments):

# %%
result = finetune.finetune(
    model,
    task,
    output_dir,
    seed=seed,
    epochs=epochs,
    learning_rate=learning_rate,
    batch_size=batch_size,
    max_length=max_length,
    limit=train_limit if train_limit is not None else run.spec.train_limit,
    eval_limit=eval_limit if eval_limit is not None else run.spec.eval_limit,
    preset=preset,
    snapshots=tuple(snapshots),
)
seconds = run.seconds
print(f"{'reused' if result.reused else 'trained'} in {seconds:.0f} s: {result.metrics}")

# %% [markdown]
# Record the validation metrics as rows of the `metrics` table:

# %%
metrics = pd.DataFrame(
    [{**run.key.as_dict(), "metric": name, "value": float(v)} for name, v in result.metrics.items()]
)
parameters = {
    "model_source": os.path.abspath(model) if os.path.isdir(model) else model,
    "snapshots": list(snapshots), "epochs": epochs, "learning_rate": learning_rate,
    "batch_size": batch_size,
    "max_length": max_length, "train_limit": train_limit, "eval_limit": eval_limit,
    "output_dir": str(output_dir), "reused": result.reused,
    "train_examples": result.record["train_examples"],
    "eval_examples": result.record["eval_examples"],
    # the real-text tasks: which package release, sizes and label balance of every split
    "data": real_text.status().get(task) if tasks.get_task(task).is_packaged else None,
}  # fmt: skip
run.write(results_dir, {"metrics": metrics}, parameters)
metrics

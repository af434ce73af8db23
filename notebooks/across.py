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
# # After the runs of a grid: across seeds and tasks
#
# The paper compares models fine-tuned on different tasks in its appendix (E5 of the design):
# which layers agree across seeds and tasks, and from which depth do they part? Every fine-tuned
# model of one (preset, model) grid, and the pretrained model each seed started from, reads the
# same inputs: an equal share of every task's validation inputs (`layersim.analysis.across`). CKA
# between layer i of one model and layer j of another gives a rectangular matrix per pair: two seeds
# of a task, two tasks at a seed, and the pretrained model against each fine-tuned one. The batch
# runner (`python -m layersim run`) runs this notebook after the runs, over the grid's complete
# runs (again when more of them are done).

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
preset = "demo"
model = "minilm-l6"
results_dir = "../results"
work_dir = "../runs"
device = "auto"
shared_per_task = 100  # validation examples of each task in the shared inputs
batch_size = 64

# %%
from layersim.analysis import across
from layersim.pipeline import batch, steps
from layersim.pipeline.step_run import run_grid_step
from layersim.pipeline.steps import across_inputs

run = run_grid_step(preset, model, device=device)
runs = batch.complete_grid_runs(results_dir, preset, model)
print(f"{len(runs)} runs: {', '.join(across_inputs.run_label(key.task, key.seed) for key in runs)}")

# %% [markdown]
# The rectangular CKA matrices of every pair (first-token pooling, the paper's, or a decoder's
# last token; biased and debiased estimator), as tidy rows:

# %%
table = steps.across_table(
    preset, model, runs, work_dir=work_dir, per_task=shared_per_task, batch_size=batch_size,
    device=run.device, progress=True,
)  # fmt: skip
n = int(table["n"].iloc[0])
print(f"{n} shared inputs, {table[['run_a', 'run_b']].drop_duplicates().shape[0]} pairs")

# %% [markdown]
# Mean same-layer CKA per comparison and depth:

# %%
across.agreement_table(across.diagonal(table)).pivot(
    index="layer", columns="comparison", values="mean"
).round(3)

# %%
run.write(
    results_dir,
    {"across": table},
    {"shared_per_task": shared_per_task, "batch_size": batch_size, "n": n,
     "runs": [across_inputs.run_label(key.task, key.seed) for key in runs]},
)  # fmt: skip

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
# # Step 6: when do the blocks form? (along fine-tuning)
#
# Step 1 saved the weights at fixed fractions of the optimizer steps (`progress/step-N` in the
# run's model directory). At each snapshot, one forward pass over the same validation examples
# gives the CKA matrix of the layers (first-token pooling, biased linear CKA: the paper's
# measurement; a decoder's last token), its block statistics with bootstrap intervals, and the task
# metric: does the late block appear before, with or after the metric saturates (E3)?

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
task = "movie_polarity"
seed = 0
results_dir = "../results"
work_dir = "../runs"
device = "auto"
progress_examples = 300  # validation examples for the matrices and the metric at each snapshot
n_boot = 100  # bootstrap replicates of the block statistics at each snapshot
batch_size = 64

# %%
from layersim.pipeline import finetune, steps
from layersim.pipeline.step_run import run_step

run = run_step(preset, model, task, seed, device=device)

# %% [markdown]
# The snapshots of step 1 (step and total optimizer steps):

# %%
model_dir = run.key.run_dir(work_dir) / "model"
snapshots = finetune.saved_snapshots(model_dir)
tokenizer = finetune.load_tokenizer(str(model_dir))
print(", ".join(f"{step}/{total}" for step, total, _ in snapshots))

# %%
tables = steps.progress_tables(
    run.key, snapshots, tokenizer, task, preset=preset, limit=progress_examples, n_boot=n_boot,
    batch_size=batch_size, device=run.device, progress=True,
)  # fmt: skip
tables["progress"].pivot(index="step", columns="statistic", values="value")

# %%
run.write(
    results_dir,
    tables,
    {"progress_examples": progress_examples, "n_boot": n_boot, "batch_size": batch_size},
)  # fmt: skip

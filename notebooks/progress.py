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
import time

from layersim import devices, finetune, presets, results, steps, tasks

chosen_device = devices.select_device(device)
key = results.RunKey(preset, presets.model_key(model), tasks.get_task(task).name, seed)
start = time.perf_counter()

# %% [markdown]
# The snapshots of step 1 (step and total optimizer steps):

# %%
model_dir = key.run_dir(work_dir) / "model"
snapshots = finetune.saved_snapshots(model_dir)
tokenizer = finetune.load_tokenizer(str(model_dir))
print(", ".join(f"{step}/{total}" for step, total, _ in snapshots))

# %%
tables = steps.progress_tables(
    key, snapshots, tokenizer, task, preset=preset, limit=progress_examples, n_boot=n_boot,
    batch_size=batch_size, device=chosen_device, progress=True,
)  # fmt: skip
tables["progress"].pivot(index="step", columns="statistic", values="value")

# %%
seconds = time.perf_counter() - start
provenance = results.collect_provenance(
    {"progress_examples": progress_examples, "n_boot": n_boot, "batch_size": batch_size},
    devices.describe_device(chosen_device),
    seconds,
)
for name, table in tables.items():
    results.write_table(results_dir, key, name, table, provenance=provenance)
print(f"wrote {sum(map(len, tables.values()))} rows in {seconds:.0f} s")

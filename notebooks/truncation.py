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
# # Step 3: how much do the top layers add? (truncation)
#
# The paper's redundancy test (claim C5): keep only the first k layers of the fine-tuned model,
# feed the output of layer k to the task head that was trained on the full depth, with no further
# tuning, and measure the validation metric, for every k from 0 (embeddings only) to L (the full
# model). `layersim.truncate.keep_first_layers` builds each truncated model; the original is
# left untouched. The validation split is encoded once and every k is scored on it.

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
task = "synth_sentiment"
seed = 0
results_dir = "../results"
work_dir = "../runs"
device = "auto"
eval_limit = None  # validation examples scored (None: the preset's)

# %%
import time

from transformers import AutoConfig

from layersim import devices, finetune, presets, results, steps, tasks, truncate

chosen_device = devices.select_device(device)
key = results.RunKey(preset, presets.model_key(model), tasks.get_task(task).name, seed)
spec = presets.get_preset(preset, task)
eval_limit = eval_limit if eval_limit is not None else spec.eval_limit
start = time.perf_counter()

# %% [markdown]
# The fine-tuned model of step 1, with its task head:

# %%
model_dir = key.run_dir(work_dir) / "model"
head = finetune.load_model(str(model_dir), task, seed=seed).to(chosen_device)
tokenizer = finetune.load_tokenizer(str(model_dir))
depth = truncate.num_layers(head)
print(f"{AutoConfig.from_pretrained(model_dir).model_type}, {depth} layers")

# %% [markdown]
# The metric for every number of kept layers (DeBERTa-v2 cannot run with zero layers in
# transformers, so its curve starts at k = 1):

# %%
rows = steps.evaluation_rows(task, limit=eval_limit)
record = steps.validation_record(
    key,
    "finetuned",
    head,
    tokenizer,
    task,
    rows,
    work_dir=work_dir,
    weights=str(model_dir),
    preset=preset,
)  # the run's shared pass (layersim.passes): computed by the similarity step
curve = steps.truncation_curve(
    key, head, tokenizer, task, limit=eval_limit, preset=preset, progress=True, record=record
)
curve.pivot(index="layers_kept", columns="metric", values="value")

# %%
seconds = time.perf_counter() - start
results.write_table(
    results_dir,
    key,
    "truncation",
    curve,
    provenance=results.collect_provenance(
        {"eval_limit": eval_limit, "main_metric": tasks.get_task(task).metric},
        devices.describe_device(chosen_device),
        seconds,
    ),
)
print(f"wrote {len(curve)} rows in {seconds:.0f} s")

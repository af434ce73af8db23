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
# model). `layersim.models.truncate.keep_first_layers` builds each truncated model; the original is
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
from transformers import AutoConfig

from layersim import tasks
from layersim.models import truncate
from layersim.pipeline import finetune, steps
from layersim.pipeline.step_run import run_step

run = run_step(preset, model, task, seed, device=device)
eval_limit = eval_limit if eval_limit is not None else run.spec.eval_limit

# %% [markdown]
# The fine-tuned model of step 1, with its task head:

# %%
model_dir = run.key.run_dir(work_dir) / "model"
head = finetune.load_model(str(model_dir), task, seed=seed).to(run.device)
tokenizer = finetune.load_tokenizer(str(model_dir))
depth = truncate.num_layers(head)
print(f"{AutoConfig.from_pretrained(model_dir).model_type}, {depth} layers")

# %% [markdown]
# The metric for every number of kept layers (DeBERTa-v2 cannot run with zero layers in
# transformers, so its curve starts at k = 1):

# %%
rows = steps.evaluation_rows(task, limit=eval_limit)
record = steps.validation_record(
    run.key,
    "finetuned",
    head,
    tokenizer,
    task,
    rows,
    work_dir=work_dir,
    weights=str(model_dir),
    preset=preset,
)  # the run's shared pass (layersim.pipeline.passes): computed by the similarity step
curve = steps.truncation_curve(
    run.key, head, tokenizer, task, limit=eval_limit, preset=preset, progress=True, record=record
)
curve.pivot(index="layers_kept", columns="metric", values="value")

# %%
run.write(
    results_dir,
    {"truncation": curve},
    {"eval_limit": eval_limit, "main_metric": tasks.get_task(task).metric},
)  # fmt: skip

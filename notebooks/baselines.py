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
# # Step 4: what is the task worth without fine-tuning? (baselines)
#
# A fine-tuned model has learned a task only if it beats what needs no fine-tuning: always
# answering the most frequent training class, and a linear head fitted on the frozen pretrained
# model's features (what its task head reads, and the mean of its last layer over tokens), on the
# same training subset and the same validation examples as fine-tuning. `layersim.models.probe` fits
# the heads: logistic regression for classes, ridge regression for a score, a shared linear scorer
# for multiple choice.

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
model = "minilm-l6"  # a preset model name, a Hugging Face Hub id or a local directory
task = "movie_polarity"
seed = 0
results_dir = "../results"
work_dir = "../runs"
device = "auto"
batch_size = 64
train_limit = None  # training examples the probes learn from (None: the preset's, as fine-tuning)
eval_limit = None  # validation examples scored (None: the preset's)

# %%
from layersim.pipeline import finetune, steps
from layersim.pipeline.step_run import run_step

run = run_step(preset, model, task, seed, device=device)

# %% [markdown]
# The pretrained model (a new task head; the probes replace its last linear layer), and the
# baselines' validation metrics:

# %%
pretrained = finetune.load_model(model, task, seed=seed).to(run.device)
tokenizer = finetune.load_tokenizer(model)
train_limit = train_limit if train_limit is not None else run.spec.train_limit
eval_limit = eval_limit if eval_limit is not None else run.spec.eval_limit
rows = steps.evaluation_rows(task, limit=eval_limit)
record = steps.validation_record(
    run.key,
    "pretrained",
    pretrained,
    tokenizer,
    task,
    rows,
    work_dir=work_dir,
    weights=model,
    preset=preset,
    batch_size=batch_size,
)  # the run's shared pass (layersim.pipeline.passes): computed by the similarity step
table = steps.baseline_table(
    run.key, pretrained, tokenizer, task, preset=preset, batch_size=batch_size, record=record,
    train_limit=train_limit, eval_limit=eval_limit,
)  # fmt: skip
table.pivot(index="baseline", columns="metric", values="value")

# %%
run.write(
    results_dir,
    {"baselines": table},
    {"batch_size": batch_size, "train_limit": train_limit, "eval_limit": eval_limit},
)  # fmt: skip

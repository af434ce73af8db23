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
# # Step 5: which layers can go? (layer dropping)
#
# The paper drops the top layers and keeps the task head as it was. Two questions it leaves open
# (E1, E2 of the design): is the information still in the remaining layers when the old head fails,
# and which signal best predicts which layers can go? Here every signal of
# `layersim.stats.redundancy` (fixed top-k; block influence, Men et al. 2024; angular distance,
# Gromov et al. 2024; consecutive CKA) names the layers to drop at every budget, and every layer is
# also dropped alone. Each pruned model is scored with its unchanged head (the paper's condition)
# and with a linear head re-fitted on its frozen output (`layersim.models.probe`). The full model
# runs once with all hidden states kept; a pruned model reuses the hidden state below its lowest
# dropped layer (`layersim.models.layer_cache`), so only the layers above it run again.

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
refit_examples = 100  # training examples the re-fitted heads learn from
drop_eval_limit = 150  # validation examples every pruned model is scored on
batch_size = 64

# %%
from layersim import tasks
from layersim.models import truncate
from layersim.pipeline import finetune, steps
from layersim.pipeline.step_run import run_step

run = run_step(preset, model, task, seed, device=device)

# %% [markdown]
# The fine-tuned model of step 1, with its task head:

# %%
model_dir = run.key.run_dir(work_dir) / "model"
head = finetune.load_model(str(model_dir), task, seed=seed).to(run.device)
tokenizer = finetune.load_tokenizer(str(model_dir))
print(f"{truncate.num_layers(head)} layers")

# %% [markdown]
# Each signal's score per layer (block influence and angular distance over tokens; CKA over the
# pooled first token), and the pruned models' metrics:

# %%
tables = steps.layer_drop_tables(
    run.key, head, tokenizer, task, preset=preset, refit_examples=refit_examples,
    eval_limit=drop_eval_limit, batch_size=batch_size, progress=True,
)  # fmt: skip
tables["layer_signals"].pivot(index="layer", columns="signal", values="value")

# %%
drops = tables["layer_drop"]
drops[drops["metric"] == tasks.get_task(task).metric].pivot_table(
    index=["signal", "budget", "layers"], columns="condition", values="value"
)

# %%
run.write(
    results_dir,
    tables,
    {"refit_examples": refit_examples, "drop_eval_limit": drop_eval_limit,
     "batch_size": batch_size},
)  # fmt: skip

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
# # Step 7: how robust is the block verdict? (E4)
#
# The paper measures block structure one way: biased linear CKA of the first token's state on the
# task's validation inputs (for a decoder, the last token's: what its head reads). Here the
# fine-tuned model of step 1 reads its inputs once with all hidden states kept (the run's shared
# pass, `layersim.pipeline.passes`, for its own inputs), and `layersim.analysis.robustness` re-reads
# them under the other reasonable choices: fewer inputs (the first `n` of the same seeded set), the
# debiased estimator (with a half-sampling interval, as a bootstrap repeats inputs), pooling by the
# mean over tokens or by one random token per input, and, for the movie-review models, sentences
# from other domains (tweets, Amazon and New York Times snippets). Each choice gets C1's verdict and
# boundary.

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
sizes = [100, 250, 500, 1000]  # numbers of validation inputs compared (nested subsets)
domain_examples = 500  # inputs from each other domain (movie-review models only)
n_boot = 50  # bootstrap (or half-sampling) replicates per choice
batch_size = 64

# %%
from layersim.analysis import robustness
from layersim.models import truncate
from layersim.pipeline import finetune, steps
from layersim.pipeline.step_run import run_step
from layersim.pipeline.steps import robustness_choices

run = run_step(preset, model, task, seed, device=device)

# %% [markdown]
# The fine-tuned model of step 1:

# %%
model_dir = run.key.run_dir(work_dir) / "model"
head = finetune.load_model(str(model_dir), task, seed=seed).to(run.device)
tokenizer = finetune.load_tokenizer(str(model_dir))
print(f"{truncate.num_layers(head)} layers; other domains: "
      f"{', '.join(robustness_choices.OTHER_DOMAINS.get(task, ())) or 'none'}")  # fmt: skip

# %% [markdown]
# Block excess (with its interval) and boundary under every choice:

# %%
record = steps.validation_record(
    run.key,
    "finetuned",
    head,
    tokenizer,
    task,
    steps.evaluation_rows(task, limit=max(sizes), seed=seed),
    work_dir=work_dir,
    weights=str(model_dir),
    preset=preset,
    batch_size=batch_size,
)  # the run's shared pass (layersim.pipeline.passes): computed by the similarity step
tables = steps.robustness_tables(
    run.key, head, tokenizer, task, preset=preset, sizes=sizes, domain_examples=domain_examples,
    n_boot=n_boot, batch_size=batch_size, progress=True, record=record,
)  # fmt: skip
verdicts = robustness.verdict_table(tables["robustness"])
verdicts.pivot_table(index=["inputs", "n"], columns=["pooling", "estimator"], values="excess")

# %% [markdown]
# The task head's metrics on each set of inputs whose labels it predicts:

# %%
tables["robustness_metrics"].pivot(index="inputs", columns="metric", values="value")

# %%
run.write(
    results_dir,
    tables,
    {"sizes": list(sizes), "domain_examples": domain_examples, "n_boot": n_boot,
     "batch_size": batch_size},
)  # fmt: skip

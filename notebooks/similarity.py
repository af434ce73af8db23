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
# # Step 2: layer-by-layer similarity (CKA)
#
# The paper's main measurement. Both the fine-tuned model from step 1 and the pretrained model it
# started from read the same validation inputs; every layer's output is pooled to one vector per
# input (by default what the task head reads: the first token, `[CLS]` or `<s>`, of an encoder;
# the last real token of a decoder), and linear CKA compares every pair of layers. Three matrices
# come out of one run:
#
# - `finetuned`: the fine-tuned model's layers against each other (claim C1: two blocks);
# - `pretrained`: the same for the pretrained model (claim C3: smooth decay instead);
# - `pretrained_vs_finetuned`: each pretrained layer (rows) against each fine-tuned layer.
#
# Each with the biased estimator (the paper's) and the debiased one. With first-token pooling the
# embedding output is the same vector for every input (same token, same position), so its CKA is
# undefined (0/0) and the matrices start at layer 1. Each self matrix also gets the block
# statistics of `layersim.stats.blocks` with a bootstrap interval over inputs.

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
examples = None  # validation inputs compared (None: the preset's similarity_examples)
pooling = None  # None: the model's own (cls: first token; decoders: last) | cls | mean | tokens
batch_size = 64
max_length = None  # None: the preset's
n_boot = 200  # bootstrap replicates for the block statistics

# %%
from torch.utils.data import DataLoader

from layersim import tasks
from layersim.models import families, reps, truncate
from layersim.pipeline import finetune, steps
from layersim.pipeline.step_run import run_step

run = run_step(preset, model, task, seed, device=device)
examples = examples or run.spec.similarity_examples
max_length = max_length or run.spec.max_length

# %% [markdown]
# The two models: the fine-tuned checkpoint of step 1, and the pretrained model with the same
# seed (for randomly initialised `tiny-*` models, the exact weights fine-tuning started from).
# Their inputs: `examples` validation examples (a subset drawn with the run's seed), tokenized as
# for fine-tuning.

# %%
tokenizer = finetune.load_tokenizer(model)
model_dir = str(run.key.run_dir(work_dir) / "model")
finetuned = finetune.load_model(model_dir, task, seed=seed).to(run.device)
pretrained = finetune.load_model(model, task, seed=seed).to(run.device)
own = families.natural_pooling(finetuned)
pooling = pooling or own
layers = steps.compared_layers(truncate.num_layers(finetuned), pooling)
rows = steps.evaluation_rows(task, limit=examples, seed=seed)
print(f"{len(rows)} validation inputs of {task}; pooling {pooling}")

# %% [markdown]
# Each model reads them once: the run's shared pass (`layersim.pipeline.passes`), which the
# truncation, baselines and robustness steps read too. Other poolings or lengths get a pass of their
# own.

# %%
if pooling in (own, "mean") and max_length == run.spec.max_length:
    sources = {"finetuned": (finetuned, model_dir), "pretrained": (pretrained, model)}
    found = {
        role: steps.validation_record(
            run.key, role, network, tokenizer, task, rows, work_dir=work_dir, weights=source,
            preset=preset, batch_size=batch_size,
        ).pooled[pooling][layers]
        for role, (network, source) in sources.items()
    }  # fmt: skip
    reps_finetuned, reps_pretrained = found["finetuned"], found["pretrained"]
else:
    dataset = tasks.load(task, "validation", limit=examples, seed=seed)
    encoded = tasks.encode(task, tokenizer, dataset, max_length=max_length)
    loader = DataLoader(encoded, batch_size=batch_size,
                        collate_fn=tasks.collator(task, tokenizer))  # fmt: skip
    kwargs = dict(pooling=pooling, layers=layers, autocast=run.device.type == "cuda",
                  special_token_ids=tokenizer.all_special_ids, progress=True)  # fmt: skip
    reps_finetuned = reps.layer_representations(finetuned, loader, **kwargs)
    reps_pretrained = reps.layer_representations(pretrained, loader, **kwargs)
n = reps_finetuned.shape[1]
print(f"representations: {tuple(reps_finetuned.shape)} (layers, inputs, width)")

# %% [markdown]
# All CKA matrices, as tidy rows (`layer_a`, `layer_b` are hidden-state indices: 0 is the
# embedding output, l the output of layer l):

# %%
matrices = steps.cka_matrices(reps_finetuned, reps_pretrained)
cka_table = steps.cka_rows(run.key, matrices, layers=layers, pooling=pooling, n=n)
matrices["finetuned", "biased"].numpy().round(2)

# %% [markdown]
# Block statistics of each self matrix (biased estimator; `layersim.stats.blocks` explains them):
# the best early/late boundary, the within-minus-between contrast, and the excess over what
# smooth decay with layer distance would give, with bootstrap intervals over inputs; the share of
# bootstrap samples that agree on the boundary and a permutation p-value over layer orders (these
# two have no interval). `boundary` is the first layer of the late block.

# %%
block_table = steps.block_table(
    run.key,
    {"finetuned": reps_finetuned, "pretrained": reps_pretrained},
    layers=layers, pooling=pooling, n_boot=n_boot, seed=seed, matrices=matrices,
)  # fmt: skip
block_table[["kind", "statistic", "value", "lower", "upper", "boundary"]]

# %%
run.write(
    results_dir,
    {"cka": cka_table, "blocks": block_table},
    {"examples": examples, "pooling": pooling, "batch_size": batch_size,
     "max_length": max_length, "n_boot": n_boot, "layers": layers, "n": n},
)  # fmt: skip

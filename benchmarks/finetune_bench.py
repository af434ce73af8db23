"""Fine-tuning benchmarks: layersim.pipeline.finetune's Trainer set-up against transformers'
defaults.

Two measurements (both print what machine they ran on):

``throughput`` (default)
    Training samples per second of the set-up used by :func:`layersim.pipeline.finetune.finetune`
    (dynamic padding, length-grouped batches; on a GPU also bf16 autocast and fused AdamW) against
    ``transformers.Trainer`` with default ``TrainingArguments`` (fp32, random batches, every
    example padded to ``max_length``), same model shape, same data, same number of steps. The
    data are synthetic sentences whose token lengths follow a GLUE-like skew (most short, a long
    tail; capped at 128). On a GPU the model is a random-weight roberta-base shape, on a CPU a
    small 4-layer shape. From the measured rate it estimates the wall time of the ``paper`` grid.

``difficulty``
    For each synthetic task: a logistic-regression probe on frozen MiniLM features (last-layer
    [CLS], and mean-pooled for reference) and fine-tuned MiniLM (``finetune``, demo preset) on
    2,000 training examples, validation accuracy. The numbers in
    ``layersim.tasks.generate_synthetic``'s docstring come from this.

Usage::

    python benchmarks/finetune_bench.py [throughput] [--device cpu|cuda] [--examples N]
    python benchmarks/finetune_bench.py difficulty [--tasks synth_sentiment ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _machine() -> str:
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                name = next(
                    line.split(":", 1)[1].strip()
                    for line in handle
                    if line.startswith("model name")
                )
        except (OSError, StopIteration):
            pass
        name = f"{name}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    import transformers

    return f"{name}; torch {torch.__version__}; transformers {transformers.__version__}"


# --------------------------------------------------------------------------- throughput

_WORDS = (
    "the a of and to in is was for that with on as it by at from this be are which an have "
    "not or but his her their they had has were been one all would there can more when who "
    "will new also some time people film movie question answer sentence market company "
    "government year said about after first two into over its only other most such many "
    "between city world state man woman child house water music story game team school"
).split()


def _glue_like_lengths(n: int, rng: np.random.Generator, max_length: int) -> np.ndarray:
    """Word counts with a GLUE-like skew: a log-normal body (median ~22) and a long tail."""
    lengths = rng.lognormal(mean=np.log(22), sigma=0.6, size=n)
    return np.clip(lengths.astype(int), 4, max_length - 2)


def _default_shape(device: str):
    """(config, description): on a GPU the roberta-base shape, on a CPU a small 4 x 128 one."""
    from transformers import RobertaConfig

    from layersim.pipeline.presets import tiny_model_config

    if device == "cuda":
        config = RobertaConfig(
            vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=514, type_vocab_size=2, pad_token_id=0,
        )  # fmt: skip
        return config, "roberta-base shape (12 x 768), random weights"
    config = tiny_model_config("tiny-roberta")
    config.hidden_size, config.intermediate_size, config.num_attention_heads = 128, 512, 4
    return config, "small roberta shape (4 x 128), random weights"


def _steady_rate_callback(warmup_steps: int, batch_size: int, cuda: bool):
    """A Trainer callback timing the steps after `warmup_steps` (start-up, first kernels and
    allocator growth excluded), synchronising the GPU only at the two ends it reads."""
    from transformers import TrainerCallback

    class SteadyRate(TrainerCallback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.first_step = 0
            self.samples_per_second = float("nan")

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == warmup_steps or state.global_step == state.max_steps:
                if cuda:
                    torch.cuda.synchronize()
                now = time.perf_counter()
                if self.start is None and state.global_step < state.max_steps:
                    self.start, self.first_step = now, state.global_step
                elif self.start is not None:
                    steps = state.global_step - self.first_step
                    self.samples_per_second = steps * batch_size / (now - self.start)

    return SteadyRate()


def throughput(
    device: str,
    examples: int,
    epochs: float,
    *,
    config=None,
    shape: str | None = None,
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 128,
    warmup_steps: int = 10,
) -> dict:
    """Train the Trainer-defaults set-up and layersim.pipeline.finetune's on the same synthetic
    data.

    Returns the machine, the data's token lengths and one row per set-up (samples per second
    over the whole train() call, the same after `warmup_steps` steps, final loss, seconds).
    `config` / `tokenizer` default to the shape of :func:`_default_shape` and MiniLM's WordPiece
    tokenizer (vocabulary 30,522); benchmarks/gpu.py passes its own.
    """
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    if config is None:
        config, shape = _default_shape(device)
    if tokenizer is None:
        from layersim.pipeline.finetune import load_tokenizer

        tokenizer = load_tokenizer("tiny-bert")  # MiniLM's WordPiece tokenizer, vocab 30,522
    config.num_labels = 2

    rng = np.random.default_rng(0)
    word_counts = _glue_like_lengths(examples, rng, max_length)
    texts = [" ".join(rng.choice(_WORDS, size=count)) for count in word_counts]
    labels = rng.integers(0, 2, size=examples).tolist()
    raw = datasets.Dataset.from_dict({"text": texts, "label": labels})

    def tokenize(padding: bool | str):
        def function(batch):
            out = tokenizer(batch["text"], truncation=True, max_length=max_length, padding=padding)
            out["labels"] = batch["label"]
            return out

        return raw.map(function, batched=True, remove_columns=raw.column_names)

    dynamic = tokenize(False)
    padded = tokenize("max_length")
    real_tokens = np.array([len(ids) for ids in dynamic["input_ids"]])
    cuda = device == "cuda"

    def run(name: str, dataset, collate, **overrides) -> dict:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(config)
        steady = _steady_rate_callback(warmup_steps, batch_size, cuda)
        with tempfile.TemporaryDirectory() as scratch:
            arguments = dict(
                output_dir=scratch, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
                save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
                use_cpu=not cuda, logging_strategy="no",
            )  # fmt: skip
            arguments.update(overrides)
            trainer = Trainer(
                model=model,
                args=TrainingArguments(**arguments),
                train_dataset=dataset,
                data_collator=collate,
                processing_class=tokenizer if "train_sampling_strategy" in overrides else None,
                callbacks=[steady],
            )
            start = time.perf_counter()
            output = trainer.train()
            seconds = time.perf_counter() - start
        return {
            "setup": name,
            "samples_per_second": len(dataset) * epochs / seconds,
            "steady_samples_per_second": steady.samples_per_second,
            "loss": output.training_loss,
            "seconds": seconds,
        }

    # transformers' defaults: fp32, random order, padding to max_length (what a plain tokenize
    # with padding="max_length" and the default collator gives), its default optimizer.
    baseline = run(
        "Trainer defaults (fp32, pad to 128, random batches)", padded, default_data_collator
    )
    ours = run(
        "layersim.pipeline.finetune set-up (dynamic padding, length groups"
        + (", bf16, fused AdamW)" if cuda else ")"),
        dynamic,
        DataCollatorWithPadding(tokenizer),
        train_sampling_strategy="group_by_length",
        bf16=cuda and torch.cuda.is_bf16_supported(),
        optim="adamw_torch_fused" if cuda else "adamw_torch",
    )
    return {
        "machine": _machine(),
        "model": f"{shape}; batch {batch_size}; {examples} examples x {epochs:g} epochs",
        "lengths": (
            f"lengths (tokens): median {np.median(real_tokens):.0f}, mean "
            f"{real_tokens.mean():.1f}, p90 {np.percentile(real_tokens, 90):.0f}, max "
            f"{real_tokens.max()} (cap {max_length}); padding to {max_length} makes "
            f"{max_length / real_tokens.mean():.1f}x the tokens"
        ),
        "rows": [baseline, ours],
    }


def paper_grid(samples_per_second: float) -> dict:
    """Training examples per paper task and the grid's wall time at a given training rate."""
    from layersim.tasks import PAPER_TASKS, get_task

    sizes = {name: get_task(name).train_size for name in PAPER_TASKS}
    total = sum(sizes.values())
    samples = 3 * total * 3  # 3 models x all tasks x 3 epochs
    return {
        "sizes": sizes,
        "total": total,
        "samples": samples,
        "hours": samples / samples_per_second / 3600,
    }


def _throughput(device: str, examples: int, epochs: float) -> None:
    result = throughput(device, examples, epochs)
    baseline, ours = result["rows"]
    cuda = device == "cuda"
    print(f"machine: {result['machine']}")
    print(f"model: {result['model']}")
    print(result["lengths"])
    print()
    print(f"{'setup':<64} {'samples/s':>10} {'final loss':>11} {'ratio':>6}")
    for row in (baseline, ours):
        ratio = row["samples_per_second"] / baseline["samples_per_second"]
        rate, loss = row["samples_per_second"], row["loss"]
        print(f"{row['setup']:<64} {rate:>10.1f} {loss:>11.4f} {ratio:>6.2f}")
    print()
    grid = paper_grid(ours["samples_per_second"])
    sizes, total, samples, hours = grid["sizes"], grid["total"], grid["samples"], grid["hours"]
    print(
        "paper grid: training examples per task (dataset cards): "
        + ", ".join(f"{name} {size:,}" for name, size in sizes.items())
        + f"; total {total:,}"
    )
    if cuda:
        print(
            f"estimate: 3 models x 12 tasks x 3 epochs = {samples:,} training samples at "
            f"{ours['samples_per_second']:.0f} samples/s = {hours:.1f} h on this GPU (base-size "
            "shape; ALBERT and ELECTRA differ, evaluation and hidden-state passes not included)"
        )
    else:
        print(
            f"estimate: not meaningful on a CPU with a small shape ({samples:,} training samples "
            f"at {ours['samples_per_second']:.0f} samples/s would be {hours:,.0f} h of this small "
            "model); run `--device cuda` on a GPU for the paper grid"
        )


# --------------------------------------------------------------------------- difficulty


def _difficulty(task_names: list[str], train_examples: int, finetuned: bool = True) -> None:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoModel

    from layersim.pipeline.finetune import finetune, load_tokenizer
    from layersim.pipeline.presets import resolve_model
    from layersim.tasks import collator, encode, load

    tokenizer = load_tokenizer("minilm-l6")
    encoder = AutoModel.from_pretrained(resolve_model("minilm-l6")).eval()
    print(f"machine: {_machine()}")
    print(
        f"MiniLM (all-MiniLM-L6-v2), {train_examples} training examples, validation accuracy; "
        "probe = logistic regression (C by 5-fold CV) on frozen last-layer features"
    )
    print(
        f"{'task':<18} {'probe [CLS]':>11} {'probe mean':>11} {'fine-tuned':>11} {'ft seconds':>11}"
    )

    def features(task: str, split: str, limit: int | None):
        encoded = encode(task, tokenizer, load(task, split, limit=limit), max_length=64)
        collate = collator(task, tokenizer)
        cls, mean, labels = [], [], []
        with torch.inference_mode():
            for start in range(0, len(encoded), 128):
                batch = collate([encoded[i] for i in range(start, min(start + 128, len(encoded)))])
                labels.append(batch.pop("labels").numpy())
                hidden = encoder(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                cls.append(hidden[:, 0].numpy())
                mean.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
        return np.concatenate(cls), np.concatenate(mean), np.concatenate(labels)

    for task in task_names:
        train_cls, train_mean, train_y = features(task, "train", train_examples)
        val_cls, val_mean, val_y = features(task, "validation", None)
        scores = []
        for train_x, val_x in ((train_cls, val_cls), (train_mean, val_mean)):
            probe = make_pipeline(
                StandardScaler(), LogisticRegressionCV(Cs=[0.001, 0.01, 0.1, 1.0], max_iter=3000)
            )
            probe.fit(train_x, train_y)
            scores.append(float((probe.predict(val_x) == val_y).mean()))
        accuracy = seconds = float("nan")
        if finetuned:
            with tempfile.TemporaryDirectory() as scratch:
                result = finetune(
                    "minilm-l6", task, scratch, preset="demo", limit=train_examples, progress=False
                )
            accuracy, seconds = result.metrics["accuracy"], result.train_seconds
        print(
            f"{task:<18} {scores[0]:>11.3f} {scores[1]:>11.3f} {accuracy:>11.3f} {seconds:>11.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "mode", nargs="?", default="throughput", choices=["throughput", "difficulty"]
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--examples", type=int, default=None, help="throughput: examples")
    parser.add_argument("--epochs", type=float, default=1.0, help="throughput: epochs")
    parser.add_argument("--tasks", nargs="*", default=None, help="difficulty: tasks")
    parser.add_argument("--train-examples", type=int, default=2000, help="difficulty")
    parser.add_argument("--probe-only", action="store_true", help="difficulty: skip fine-tuning")
    args = parser.parse_args()
    if args.mode == "difficulty":
        from layersim.tasks import SYNTHETIC_TASKS

        _difficulty(args.tasks or list(SYNTHETIC_TASKS), args.train_examples, not args.probe_only)
        return
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to torch")
    examples = args.examples or (8192 if device == "cuda" else 512)
    _throughput(device, examples, args.epochs)


if __name__ == "__main__":
    main()

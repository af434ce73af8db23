"""Fine-tuning with ``transformers.Trainer``, resumable and reusable, and evaluation of a model.

:func:`finetune` trains one (model, task, seed) run into a directory::

    output_dir/
        config.json, model.safetensors, tokenizer files   the final model (from_pretrained-ready)
        run_args.json     the run's arguments, written when training starts
        metrics.json      written last (atomically): validation metrics, timing, provenance
        checkpoints/      Trainer checkpoints while training; removed when the run finishes
        progress/step-N/  with ``snapshots``: the weights at fixed fractions of training

Re-running with the same arguments reuses a finished run (``metrics.json`` present and its
arguments equal) without training, and resumes an interrupted one from its last complete
checkpoint. Different arguments for a directory that already holds a run raise a ``ValueError``
that names the differences (pass ``overwrite=True`` to discard the old run, or use another
directory): a results directory never silently changes meaning.

:func:`layersim.pipeline.evaluation.evaluate_model` scores an in-memory model on a split with no
training (the truncation experiment evaluates truncated models this way).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from layersim.models import families  # registers the decoders' multiple-choice heads
from layersim.models.devices import describe_device
from layersim.pipeline.presets import Preset, get_preset, resolve_model, resolve_tokenizer
from layersim.results import atomic_write, software_versions
from layersim.tasks import Task, collator, compute_metrics, encode, get_task, load

__all__ = ["FinetuneResult", "finetune", "load_model", "load_tokenizer", "saved_snapshots"]


METRICS_FILE = "metrics.json"


RUN_ARGS_FILE = "run_args.json"


CHECKPOINTS_DIR = "checkpoints"


PROGRESS_DIR = "progress"


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`finetune` produced.

    Attributes
    ----------
    output_dir : Path
        Directory of the final model (``from_pretrained(output_dir)``) and ``metrics.json``.
    metrics : dict of str to float
        Validation metrics of the saved model (``task.metrics``).
    reused : bool
        True when a finished run with the same arguments was found and nothing was trained.
    resumed_from : str or None
        Name of the checkpoint training resumed from (None: trained from the start).
    train_seconds : float
        Training wall time of the run (of the last training call when it was resumed).
    samples_per_second : float
        Training examples processed per second during that call.
    seconds : float
        Wall time of this call of :func:`finetune`.
    record : dict
        The full content of ``metrics.json``.
    """

    output_dir: Path
    metrics: dict[str, float]
    reused: bool
    resumed_from: str | None
    train_seconds: float
    samples_per_second: float
    seconds: float
    record: dict[str, Any] = field(repr=False)


def load_tokenizer(model_name_or_path: str) -> Any:
    """The tokenizer of a model name (``tiny-*`` models use MiniLM's WordPiece tokenizer).

    Parameters
    ----------
    model_name_or_path : str
        A name accepted by :func:`layersim.pipeline.presets.resolve_model`.

    Returns
    -------
    PreTrainedTokenizerBase
    """
    source = resolve_tokenizer(model_name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise OSError(_unreachable_message(model_name_or_path, error)) from error
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # decoders such as GPT-2 ship without one
    return tokenizer


def _unreachable_message(name: str, error: Exception) -> str:
    if os.path.isdir(os.path.expanduser(str(name))):
        return (
            f"could not load the model directory {name!r} ({error}). Check that it holds "
            "config.json, the weights and the tokenizer files as save_pretrained() writes them "
            "(layersim.pipeline.presets.check_model_dir says which one is missing or broken)."
        )
    return (
        f"could not load {name!r} from a local directory or the Hugging Face Hub ({error}). "
        "Without network, download it on a machine that has one "
        f"(`huggingface-cli download {name} --local-dir DIR`), copy DIR here and pass "
        "model_name_or_path=DIR; or use the offline model 'minilm-l6' / a 'tiny-*' model."
    )


def load_model(model_name_or_path: str, task: str | Task, *, seed: int = 0) -> PreTrainedModel:
    """A model with the task's head: pretrained body (or random ``tiny-*``), new seeded head.

    Parameters
    ----------
    model_name_or_path : str
        A name accepted by :func:`layersim.pipeline.presets.resolve_model`.
    task : str or Task
        Gives the head: sequence classification (``num_labels`` classes), regression
        (``num_labels=1``, ``problem_type="regression"``) or multiple choice (for decoders,
        :mod:`layersim.models.families`' head: each choice scored at its last real token).
    seed : int
        Seeds the initialisation of the head (and of every weight of a ``tiny-*`` model).

    Returns
    -------
    PreTrainedModel
    """
    task = get_task(task)
    source = resolve_model(model_name_or_path)
    head = AutoModelForMultipleChoice if task.kind == "multiple_choice" else None
    head = head or AutoModelForSequenceClassification
    labels: dict[str, Any] = {}
    if task.kind == "regression":
        labels = {"num_labels": 1, "problem_type": "regression"}
    elif task.kind == "classification":
        names = task.label_names or tuple(str(i) for i in range(task.num_labels))
        labels = {
            "num_labels": task.num_labels,
            "problem_type": "single_label_classification",
            "id2label": dict(enumerate(names)),
            "label2id": {name: i for i, name in enumerate(names)},
        }
    set_seed(seed)
    if isinstance(source, PretrainedConfig):
        config = copy.deepcopy(source)
        for key, value in labels.items():
            setattr(config, key, value)
        model = head.from_config(config)
    else:
        try:
            model = head.from_pretrained(source, **labels)
        except OSError as error:
            raise OSError(_unreachable_message(model_name_or_path, error)) from error
    if families.is_decoder(model) and model.config.pad_token_id is None:
        # A decoder's head finds the last real token by the padding id.
        model.config.pad_token_id = load_tokenizer(model_name_or_path).pad_token_id
    return model


def _write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    # Serialised first, so that a value JSON cannot hold fails before any file is touched.
    text = json.dumps(content, indent=2, sort_keys=True, default=float) + "\n"
    atomic_write(path, text)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return "; ".join(
        f"{key}: {old.get(key)!r} → {new.get(key)!r}"
        for key in keys
        if old.get(key) != new.get(key)
    )


def _clear_run(output: Path) -> None:
    """Delete a previous layersim run (only a directory that has our run_args.json)."""
    if not (output / RUN_ARGS_FILE).is_file():
        raise ValueError(
            f"refusing to delete {output}: it does not hold a layersim run ({RUN_ARGS_FILE} "
            "missing). Choose an empty or new output_dir."
        )
    shutil.rmtree(output)


def _last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint-N in folder whose trainer_state.json was written."""
    if not folder.is_dir():
        return None
    candidates = []
    for path in folder.iterdir():
        step = path.name.removeprefix("checkpoint-")
        if path.is_dir() and step.isdigit() and (path / "trainer_state.json").is_file():
            candidates.append((int(step), path))
    return max(candidates)[1] if candidates else None


def _prepare_output(output: Path, arguments: dict[str, Any], overwrite: bool) -> dict | None:
    """Check the directory against the arguments; return a reusable finished record if any."""
    finished = _read_json(output / METRICS_FILE)
    started = _read_json(output / RUN_ARGS_FILE)
    recorded = finished.get("arguments") if finished else started
    if recorded is not None and recorded != arguments:
        if not overwrite:
            state = "a finished" if finished else "an unfinished"
            changes = _differences(recorded, arguments)
            raise ValueError(
                f"{output} holds {state} run with other arguments ({changes}). "
                "Use another output_dir, or pass overwrite=True to discard that run."
            )
        _clear_run(output)
        return None
    if finished is not None and (output / "config.json").is_file():
        if overwrite:
            _clear_run(output)
            return None
        return finished
    if recorded is None and output.is_dir() and any(output.iterdir()):
        raise ValueError(
            f"output_dir {output} is not empty and holds no layersim run; choose an empty or new "
            "directory."
        )
    return None


def finetune(
    model_name_or_path: str,
    task: str | Task,
    output_dir: str | os.PathLike,
    *,
    seed: int = 0,
    epochs: float | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    limit: int | None = None,
    eval_limit: int | None = None,
    preset: str | Preset | None = None,
    data_dir: str | os.PathLike | None = None,
    keep_best: bool = False,
    snapshots: tuple[float, ...] = (),
    save_steps: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: list[TrainerCallback] | None = None,
) -> FinetuneResult:
    """Fine-tune a model on a task with ``transformers.Trainer`` and save it with its metrics.

    The training set-up: a new seeded head (sequence classification, regression with
    ``num_labels=1``, or multiple choice); dynamic padding; length-grouped batches
    (``train_sampling_strategy="group_by_length"``, the transformers 5 name of
    ``group_by_length``); AdamW with linear warm-up and decay; on a CUDA GPU bf16 autocast (when
    supported) and fused AdamW; evaluation and a checkpoint every epoch (or every ``save_steps``);
    a progress bar; no external loggers. Data subsets (``limit``, ``eval_limit``) are drawn with
    seed 0 for every run, so runs of different seeds see the same examples.

    Parameters
    ----------
    model_name_or_path : str
        ``minilm-l6``, a ``tiny-*`` name, a Hub id or a local directory
        (:func:`layersim.pipeline.presets.resolve_model`).
    task : str or Task
        Task name (:mod:`layersim.tasks`).
    output_dir : str or path
        Where the final model, tokenizer and ``metrics.json`` go.
    seed : int
        Seeds the head, the data order, dropout.
    epochs, learning_rate, batch_size, max_length : optional
        Override the preset's values.
    limit, eval_limit : int, optional
        Training / validation examples (seeded subsets); default: the preset's
        ``train_limit`` / ``eval_limit``.
    preset : str or Preset, optional
        Source of the defaults (default ``demo``).
    data_dir : str or path, optional
        Local task files (:func:`layersim.tasks.load`).
    keep_best : bool
        Save the checkpoint with the best validation ``task.metric`` instead of the last.
    save_steps : int, optional
        Evaluate and checkpoint every this many optimizer steps instead of every epoch.
    overwrite : bool
        Discard a run already in ``output_dir`` (only a layersim run is ever deleted).
    progress : bool
        Show the Trainer's progress bar.
    snapshots : tuple of float
        Fractions of the training steps (0 = before the first step, 1 = the end) at which the
        model's weights are saved to ``progress/step-N/`` (``from_pretrained``-ready, no
        tokenizer), for analyses along training; the list is in ``metrics.json``.
    callbacks : list of TrainerCallback, optional
        Extra Trainer callbacks (not part of the recorded arguments).

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ValueError
        Unknown task or preset, a missing model directory, bad hyper-parameters, or an
        ``output_dir`` that holds a run with different arguments (or something else).
    """
    started_at = time.perf_counter()
    task = get_task(task)
    preset = get_preset(preset, task.name)
    resolve_model(model_name_or_path)  # fail early on a missing directory or package
    arguments = {
        "model": str(model_name_or_path),
        "task": task.name,
        "seed": int(seed),
        "epochs": float(preset.epochs if epochs is None else epochs),
        "learning_rate": float(preset.learning_rate if learning_rate is None else learning_rate),
        "batch_size": int(preset.batch_size if batch_size is None else batch_size),
        "max_length": int(preset.max_length if max_length is None else max_length),
        "train_limit": preset.train_limit if limit is None else int(limit),
        "eval_limit": preset.eval_limit if eval_limit is None else int(eval_limit),
        "warmup_ratio": preset.warmup_ratio,
        "weight_decay": preset.weight_decay,
        "keep_best": bool(keep_best),
        "save_steps": None if save_steps is None else int(save_steps),
        # Only recorded when asked for, so runs made before snapshots existed stay reusable.
        **({"snapshots": sorted({float(f) for f in snapshots})} if snapshots else {}),
        "data_dir": None if data_dir is None else os.path.abspath(os.path.expanduser(data_dir)),
    }
    if arguments["epochs"] <= 0 or arguments["learning_rate"] <= 0 or arguments["batch_size"] < 1:
        raise ValueError(
            "epochs and learning_rate must be positive and batch_size at least 1, got "
            f"{arguments['epochs']}, {arguments['learning_rate']}, {arguments['batch_size']}"
        )
    if save_steps is not None and save_steps < 1:
        raise ValueError(f"save_steps must be a positive integer or None, got {save_steps!r}")
    if any(not 0 <= float(f) <= 1 for f in snapshots):
        raise ValueError(f"snapshots are fractions of training in [0, 1], got {list(snapshots)}")

    output = Path(output_dir)
    finished = _prepare_output(output, arguments, overwrite)
    if finished is not None:
        shutil.rmtree(output / CHECKPOINTS_DIR, ignore_errors=True)  # leftovers of a crash
        return FinetuneResult(
            output_dir=output,
            metrics=finished["metrics"],
            reused=True,
            resumed_from=finished.get("resumed_from"),
            train_seconds=finished["train_seconds"],
            samples_per_second=finished["train_samples_per_second"],
            seconds=time.perf_counter() - started_at,
            record=finished,
        )
    output.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(output / RUN_ARGS_FILE, arguments)

    tokenizer = load_tokenizer(model_name_or_path)
    model = load_model(model_name_or_path, task, seed=seed)
    train_raw = load(task, "train", limit=arguments["train_limit"], data_dir=data_dir)
    eval_raw = load(task, task.validation_split, limit=arguments["eval_limit"], data_dir=data_dir)
    train_set = encode(task, tokenizer, train_raw, max_length=arguments["max_length"])
    eval_set = encode(task, tokenizer, eval_raw, max_length=arguments["max_length"])

    training_arguments = _training_arguments(
        task, arguments, output / CHECKPOINTS_DIR, len(train_set), progress
    )
    trainer = Trainer(
        model=model,
        args=training_arguments,
        data_collator=collator(task, tokenizer),
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        compute_metrics=lambda prediction: _trainer_metrics(task, prediction),
        callbacks=[*(callbacks or []), _Snapshots(output / PROGRESS_DIR, arguments)],
    )
    checkpoint = _last_complete_checkpoint(output / CHECKPOINTS_DIR)
    step_before = 0
    if checkpoint is not None:
        step_before = (_read_json(checkpoint / "trainer_state.json") or {}).get("global_step", 0)
    train_start = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.perf_counter() - train_start
    total_steps = max(trainer.state.max_steps, 1)
    samples = len(train_set) * arguments["epochs"] * (trainer.state.global_step - step_before)
    samples_per_second = samples / total_steps / max(train_seconds, 1e-9)

    final = _final_evaluation(trainer, arguments["keep_best"])
    metrics = {name: float(final[f"eval_{name}"]) for name in task.metrics}
    trainer.save_model(str(output))
    tokenizer.save_pretrained(str(output))
    record = {
        "arguments": arguments,
        "task": task.name,
        "model": str(model_name_or_path),
        "metric": task.metric,
        "metrics": metrics,
        "eval_loss": float(final.get("eval_loss", float("nan"))),
        "train_loss": float(train_output.training_loss),
        "train_examples": len(train_set),
        "eval_examples": len(eval_set),
        "global_step": int(trainer.state.global_step),
        "resumed_from": checkpoint.name if checkpoint else None,
        "train_seconds": train_seconds,
        "train_samples_per_second": samples_per_second,
        "device": describe_device(),
        "bf16": bool(trainer.args.bf16),
        "optim": str(trainer.args.optim),
        "versions": software_versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "log_history": trainer.state.log_history,
        "snapshots": _snapshot_list(output / PROGRESS_DIR),
    }
    _write_json_atomic(output / METRICS_FILE, record)  # its presence marks the run finished
    shutil.rmtree(output / CHECKPOINTS_DIR, ignore_errors=True)
    return FinetuneResult(
        output_dir=output,
        metrics=metrics,
        reused=False,
        resumed_from=record["resumed_from"],
        train_seconds=train_seconds,
        samples_per_second=samples_per_second,
        seconds=time.perf_counter() - started_at,
        record=record,
    )


class _Snapshots(TrainerCallback):
    """Save the weights at fixed fractions of the optimizer steps (``progress/step-N``)."""

    def __init__(self, folder: Path, arguments: dict[str, Any]) -> None:
        self.folder = folder
        self.fractions = arguments.get("snapshots", [])

    def _save(self, model: PreTrainedModel, step: int, max_steps: int) -> None:
        target = self.folder / f"step-{step}"
        if (target / "config.json").is_file():
            return  # saved before an interruption
        staging = self.folder / f".step-{step}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(str(staging))
        atomic_write(staging / "snapshot.json", json.dumps({"step": step, "max_steps": max_steps}))
        os.replace(staging, target)

    def _due(self, step: int, max_steps: int) -> bool:
        return any(round(f * max_steps) == step for f in self.fractions)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.fractions and state.global_step == 0 and self._due(0, state.max_steps):
            self._save(model, 0, state.max_steps)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self._due(state.global_step, state.max_steps):
            self._save(model, state.global_step, state.max_steps)


def saved_snapshots(model_dir: str | os.PathLike) -> list[tuple[int, int, Path]]:
    """The weights saved along fine-tuning (``snapshots=`` of :func:`finetune`) of a finished
    model directory: ``(step, max_steps, directory)`` in step order; empty if none were kept."""
    folder = Path(model_dir) / PROGRESS_DIR
    found = [(entry, folder / f"step-{entry['step']}") for entry in _snapshot_list(folder)]
    return [
        (e["step"], e["max_steps"], path) for e, path in found if (path / "config.json").is_file()
    ]


def _snapshot_list(folder: Path) -> list[dict[str, int]]:
    """The saved snapshots: step and total steps of each, in step order."""
    found = [_read_json(path / "snapshot.json") for path in folder.glob("step-*")]
    return sorted((entry for entry in found if entry), key=lambda entry: entry["step"])


def _training_arguments(
    task: Task, arguments: dict[str, Any], checkpoints: Path, train_size: int, progress: bool
) -> TrainingArguments:
    cuda = torch.cuda.is_available()
    steps_per_epoch = max(1, math.ceil(train_size / arguments["batch_size"]))
    every = arguments["save_steps"]
    strategy = "steps" if every else "epoch"
    return TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=arguments["epochs"],
        learning_rate=arguments["learning_rate"],
        per_device_train_batch_size=arguments["batch_size"],
        per_device_eval_batch_size=2 * arguments["batch_size"],
        weight_decay=arguments["weight_decay"],
        warmup_steps=arguments["warmup_ratio"],  # a float < 1 is a fraction of all steps
        lr_scheduler_type="linear",
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=every,
        save_steps=every or 500,
        save_total_limit=1,  # with keep_best, the Trainer also keeps the best checkpoint
        load_best_model_at_end=arguments["keep_best"],
        metric_for_best_model=task.metric if arguments["keep_best"] else None,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 4),
        seed=arguments["seed"],
        data_seed=arguments["seed"],
        bf16=cuda and torch.cuda.is_bf16_supported(),
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        train_sampling_strategy="group_by_length",
        report_to="none",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )


def _final_evaluation(trainer: Trainer, keep_best: bool) -> dict[str, float]:
    """Validation metrics of the saved model: the Trainer's evaluation of that step if it ran one
    (the last step, or the best one with keep_best), else a new evaluation."""
    state = trainer.state
    step = state.best_global_step if keep_best else state.global_step
    for entry in reversed(state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return entry
    return trainer.evaluate()


def _trainer_metrics(task: Task, prediction: Any) -> dict[str, float]:
    logits = prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return compute_metrics(task, logits, prediction.label_ids)

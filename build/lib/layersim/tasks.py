"""Tasks: the one place that knows datasets (registry, loading, encoding, metrics).

* :func:`get_task` / :data:`TASKS`: name → :class:`Task` (hub id, text fields, label field, kind,
  metric). The twelve :data:`PAPER_TASKS` come from the Hugging Face Hub; the five
  :data:`REAL_TASKS` are real English text that registry packages carry (:mod:`layersim.data`
  fetches them), the three :data:`DOMAIN_TASKS` polarity labels as for ``movie_polarity`` on
  tweets, Amazon and NYT snippets (inputs from other domains, not fine-tuned on); the four
  :data:`SYNTHETIC_TASKS` are generated offline (:mod:`layersim.synthetic`) and mirror GLUE's
  task families.
* :func:`load`: a split as a :class:`datasets.Dataset` in the hub schema, from the hub, from local
  files (``data_dir``), or from the synthetic generator.
* :func:`encode` and :func:`collator`: model inputs (no padding; the collator pads each batch).
* :func:`compute_metrics`: the task metrics, computed locally with scikit-learn / scipy (the
  ``evaluate`` library downloads metric scripts and cannot run offline).

Local files (no network)
------------------------
With ``data_dir`` set, :func:`load` reads ``<data_dir>/<task>/<split>.<ext>`` with ``ext`` one of
``jsonl``, ``json``, ``parquet``, ``csv``, ``tsv``, or the shards
``<data_dir>/<task>/<split>-*.parquet`` (the layout of the parquet repositories on the Hub,
so ``huggingface-cli download nyu-mll/glue --repo-type dataset --local-dir DIR`` gives a usable
``DIR`` for the GLUE tasks). Files use the hub schema (the columns named by the task's
``prefix_field``, ``text_fields``, ``label_field`` and, for CommonsenseQA, ``choices`` as
``{"label": [...], "text": [...]}``, which needs jsonl/json/parquet; see the comments at the
registry for each task's fields and label values). Labels may be the integer ids of the hub,
booleans, or the label names.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from scipy import stats
from sklearn.metrics import f1_score, matthews_corrcoef

from layersim.synthetic import SYNTHETIC_SIZES, generate_synthetic

__all__ = [
    "DOMAIN_TASKS",
    "KINDS",
    "PAPER_TASKS",
    "REAL_TASKS",
    "SYNTHETIC_SIZES",
    "SYNTHETIC_TASKS",
    "TASKS",
    "Task",
    "collator",
    "compute_metrics",
    "encode",
    "generate_synthetic",
    "get_task",
    "length_order",
    "load",
    "sort_by_length",
    "subset_indices",
]

KINDS = ("classification", "regression", "multiple_choice")


@dataclass(frozen=True)
class Task:
    """One task: where its data lives, what its examples look like, how it is scored.

    Attributes
    ----------
    name : str
        Registry name (lower case, underscores).
    hub_path, hub_config : str or None
        ``datasets.load_dataset(hub_path, hub_config)``; None for synthetic tasks.
    text_fields : tuple of str
        One field (single sentence) or two (a pair, encoded as two segments). For multiple
        choice, the field the question comes from.
    label_field : str
        Column holding the label (class id, float score, or answer key).
    kind : str
        ``classification``, ``regression`` or ``multiple_choice``.
    num_labels : int
        Classes (classification), 1 (regression) or choices per question (multiple choice).
    metric : str
        The main metric (a key of :func:`compute_metrics`' result).
    validation_split : str
        The split that plays the role of validation (MNLI: ``validation_matched``).
    splits : tuple of str
        Every split :func:`load` accepts.
    metrics : tuple of str
        All metrics reported.
    label_names : tuple of str
        Names of the class ids (classification).
    prefix_field : str or None
        A short field written before the first segment as ``"<value>: "`` (WiC's target word).
    choices_field : str or None
        Multiple choice: column of ``{"label": [...], "text": [...]}`` answer options.
    train_size : int or None
        Training examples in the full split (from the dataset card).
    source : str
        Where the hub id and schema were confirmed (or where the data come from).
    package : str or None
        For the real-text offline tasks: the registry package whose source archive carries the
        data (``layersim.data`` fetches and splits it); None otherwise.
    data_dir : str or None
        For a task made from your own data (:mod:`layersim.user_tasks`): the folder its splits
        were written to, read like ``load(..., data_dir=...)``.
    """

    name: str
    hub_path: str | None
    hub_config: str | None
    text_fields: tuple[str, ...]
    label_field: str
    kind: str
    num_labels: int
    metric: str
    validation_split: str = "validation"
    splits: tuple[str, ...] = ("train", "validation", "test")
    metrics: tuple[str, ...] = ("accuracy",)
    label_names: tuple[str, ...] = ()
    prefix_field: str | None = None
    choices_field: str | None = None
    train_size: int | None = None
    source: str = ""
    package: str | None = None
    data_dir: str | None = None

    @property
    def is_synthetic(self) -> bool:
        """True for the offline generated tasks."""
        return self.hub_path is None and self.package is None and self.data_dir is None

    @property
    def is_packaged(self) -> bool:
        """True for the real-text tasks whose data a registry package carries (layersim.data)."""
        return self.package is not None


# --------------------------------------------------------------------------- registry

# Hub ids and schemas, confirmed on 2026-11-26 from the dataset cards:
# - nyu-mll/glue: https://huggingface.co/datasets/nyu-mll/glue (README dataset_info; parquet
#   folders cola/ sst2/ mrpc/ stsb/ qqp/ mnli/ qnli/ rte/ ..., no loading script). Test labels -1.
# - aps/super_glue: https://huggingface.co/datasets/aps/super_glue (parquet per config, e.g.
#   multirc/train-00000-of-00001.parquet at revision 3de24cf8022e94f4ee4b9d55a6f539891524d646;
#   schema from its dataset_info: boolq question/passage/idx/label, cb premise/hypothesis/idx/label,
#   wic word/sentence1/sentence2/start1/start2/end1/end2/idx/label). Test labels -1.
# - tau/commonsense_qa: https://huggingface.co/datasets/tau/commonsense_qa (parquet data/*,
#   id/question/question_concept/choices{label,text}/answerKey; test answerKey is empty).
_GLUE = "https://huggingface.co/datasets/nyu-mll/glue"
_SUPERGLUE = "https://huggingface.co/datasets/aps/super_glue"
_CSQA = "https://huggingface.co/datasets/tau/commonsense_qa"
_BINARY_ENTAIL = ("entailment", "not_entailment")

_PAPER: tuple[Task, ...] = (
    Task("cola", "nyu-mll/glue", "cola", ("sentence",), "label", "classification", 2,
         "matthews_correlation", metrics=("matthews_correlation", "accuracy"),
         label_names=("unacceptable", "acceptable"), train_size=8551, source=_GLUE),
    Task("sst2", "nyu-mll/glue", "sst2", ("sentence",), "label", "classification", 2,
         "accuracy", label_names=("negative", "positive"), train_size=67349, source=_GLUE),
    Task("mrpc", "nyu-mll/glue", "mrpc", ("sentence1", "sentence2"), "label", "classification",
         2, "f1", metrics=("f1", "accuracy"), label_names=("not_equivalent", "equivalent"),
         train_size=3668, source=_GLUE),
    Task("stsb", "nyu-mll/glue", "stsb", ("sentence1", "sentence2"), "label", "regression", 1,
         "spearman", metrics=("pearson", "spearman"), train_size=5749, source=_GLUE),
    Task("qqp", "nyu-mll/glue", "qqp", ("question1", "question2"), "label", "classification",
         2, "f1", metrics=("f1", "accuracy"), label_names=("not_duplicate", "duplicate"),
         train_size=363846, source=_GLUE),
    Task("mnli", "nyu-mll/glue", "mnli", ("premise", "hypothesis"), "label", "classification",
         3, "accuracy", validation_split="validation_matched",
         splits=("train", "validation_matched", "validation_mismatched", "test_matched",
                 "test_mismatched"),
         label_names=("entailment", "neutral", "contradiction"), train_size=392702,
         source=_GLUE),
    Task("qnli", "nyu-mll/glue", "qnli", ("question", "sentence"), "label", "classification",
         2, "accuracy", label_names=_BINARY_ENTAIL, train_size=104743, source=_GLUE),
    Task("rte", "nyu-mll/glue", "rte", ("sentence1", "sentence2"), "label", "classification",
         2, "accuracy", label_names=_BINARY_ENTAIL, train_size=2490, source=_GLUE),
    Task("boolq", "aps/super_glue", "boolq", ("question", "passage"), "label", "classification",
         2, "accuracy", label_names=("False", "True"), train_size=9427, source=_SUPERGLUE),
    Task("cb", "aps/super_glue", "cb", ("premise", "hypothesis"), "label", "classification", 3,
         "macro_f1", metrics=("macro_f1", "accuracy"),
         label_names=("entailment", "contradiction", "neutral"), train_size=250,
         source=_SUPERGLUE),
    Task("wic", "aps/super_glue", "wic", ("sentence1", "sentence2"), "label", "classification",
         2, "accuracy", label_names=("False", "True"), prefix_field="word", train_size=5428,
         source=_SUPERGLUE),
    Task("commonsense_qa", "tau/commonsense_qa", None, ("question",), "answerKey",
         "multiple_choice", 5, "accuracy", choices_field="choices", train_size=9741,
         source=_CSQA),
)  # fmt: skip

_SYNTH: tuple[Task, ...] = (
    Task("synth_sentiment", None, None, ("sentence",), "label", "classification", 2,
         "accuracy", label_names=("negative", "positive"), source="layersim.tasks"),
    Task("synth_agreement", None, None, ("sentence",), "label", "classification", 2,
         "accuracy", metrics=("accuracy", "matthews_correlation"),
         label_names=("unacceptable", "acceptable"), source="layersim.tasks"),
    Task("synth_entailment", None, None, ("premise", "hypothesis"), "label", "classification",
         2, "accuracy", label_names=_BINARY_ENTAIL, source="layersim.tasks"),
    Task("synth_paraphrase", None, None, ("sentence1", "sentence2"), "label", "classification",
         2, "accuracy", metrics=("accuracy", "f1"), label_names=("not_equivalent", "equivalent"),
         source="layersim.tasks"),
)  # fmt: skip

# Real English text that registry packages carry (layersim.data fetches it by package name):
# the offline stand-ins for the paper's task families. Fields and labels are those that
# layersim.data writes; the "source" says where the text comes from.
_VADER = "vadersentiment==3.3.2 (Hutto & Gilbert 2014; Pang & Lee 2005 movie review sentences)"
_BIGBENCH = "bigbench==1.0.0 (BIG-bench task {})"
_NLI3 = ("entailment", "neutral", "contradiction")

_REAL: tuple[Task, ...] = (
    Task("movie_polarity", None, None, ("sentence",), "label", "classification", 2, "accuracy",
         metrics=("accuracy", "f1"), label_names=("negative", "positive"), source=_VADER,
         package="vadersentiment"),
    Task("movie_rating", None, None, ("sentence",), "label", "regression", 1, "spearman",
         metrics=("pearson", "spearman"), source=_VADER, package="vadersentiment"),
    Task("vitaminc", None, None, ("evidence", "claim"), "label", "classification", 3,
         "accuracy", metrics=("accuracy", "macro_f1"), label_names=("true", "false", "neither"),
         source=_BIGBENCH.format("vitaminc_fact_verification"), package="bigbench"),
    Task("presupposition_nli", None, None, ("premise", "hypothesis"), "label", "classification",
         3, "accuracy", metrics=("accuracy", "macro_f1"), label_names=_NLI3,
         source=_BIGBENCH.format("presuppositions_as_nli"), package="bigbench"),
    Task("social_iqa", None, None, ("question",), "answerKey", "multiple_choice", 3, "accuracy",
         choices_field="choices", source=_BIGBENCH.format("social_iqa"), package="bigbench"),
)  # fmt: skip

# The same polarity labels on sentences from other domains (tweets, Amazon and NYT snippets that
# ship with the movie data): inputs for the movie models' robustness check, not fine-tuned on.
_VADER_DOMAIN = "vadersentiment==3.3.2 (Hutto & Gilbert 2014; {})"
_DOMAINS: tuple[Task, ...] = tuple(
    Task(name, None, None, ("sentence",), "label", "classification", 2, "accuracy",
         metrics=("accuracy", "f1"), label_names=("negative", "positive"),
         source=_VADER_DOMAIN.format(what), package="vadersentiment")
    for name, what in (("tweet_polarity", "tweets"), ("amazon_polarity", "Amazon snippets"),
                       ("nyt_polarity", "NYT editorial snippets"))
)  # fmt: skip

TASKS: dict[str, Task] = {task.name: task for task in _PAPER + _SYNTH + _REAL + _DOMAINS}
PAPER_TASKS: tuple[str, ...] = tuple(task.name for task in _PAPER)
SYNTHETIC_TASKS: tuple[str, ...] = tuple(task.name for task in _SYNTH)
REAL_TASKS: tuple[str, ...] = tuple(task.name for task in _REAL)
DOMAIN_TASKS: tuple[str, ...] = tuple(task.name for task in _DOMAINS)


def get_task(name: str | Task) -> Task:
    """The registered task of a given name.

    Parameters
    ----------
    name : str or Task
        Task name (``rte``, ``synth_sentiment``, ...), or the path of your own data file or
        folder (:func:`layersim.user_tasks.task_from_file` registers it); a :class:`Task` is
        returned unchanged.

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        If the name is not registered.
    """
    if isinstance(name, Task):
        return name
    if name in TASKS:
        return TASKS[name]
    from layersim import user_tasks

    if user_tasks.is_data_path(name):
        return user_tasks.task_from_file(name)
    known_path = user_tasks.registered_path(name) if isinstance(name, str) else None
    if known_path is not None and os.path.exists(known_path):
        return user_tasks.task_from_file(known_path)
    raise ValueError(
        f"unknown task {name!r}; known tasks: {', '.join(TASKS)}. Pass one of these names, or a "
        f"data file ({', '.join(user_tasks.FILE_SUFFIXES)}) or folder of your own"
    )


# --------------------------------------------------------------------------- loading

_LOCAL_EXTENSIONS = ("jsonl", "json", "parquet", "csv", "tsv")


def _resolve_split(task: Task, split: str) -> str:
    if split == "validation" and "validation" not in task.splits:
        return task.validation_split  # MNLI: "validation" means validation_matched
    if split not in task.splits:
        raise ValueError(
            f"task {task.name!r} has no split {split!r}; its splits are: "
            f"{', '.join(task.splits)}. Pass one of these."
        )
    return split


def _local_files(task: Task, split: str, data_dir: str) -> tuple[str, list[str]] | None:
    folder = os.path.join(os.path.expanduser(data_dir), task.name)
    for ext in _LOCAL_EXTENSIONS:
        path = os.path.join(folder, f"{split}.{ext}")
        if os.path.isfile(path):
            return ext, [path]
    shards = sorted(glob.glob(os.path.join(folder, f"{split}-*.parquet")))
    if shards:
        return "parquet", shards
    return None


def _load_local(task: Task, split: str, data_dir: str) -> datasets.Dataset:
    found = _local_files(task, split, data_dir)
    if found is None:
        folder = os.path.join(data_dir, task.name)
        raise FileNotFoundError(
            f"no local files for task {task.name!r}, split {split!r} under data_dir={data_dir!r}. "
            f"Expected {folder}/{split}.jsonl (or .json, .parquet, .csv, .tsv) or "
            f"{folder}/{split}-*.parquet in the hub schema (fields: "
            f"{', '.join(_required_columns(task))})."
        )
    ext, paths = found
    builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv", "tsv": "csv"}
    kwargs: dict[str, Any] = {"delimiter": "\t"} if ext == "tsv" else {}
    return datasets.load_dataset(builder[ext], data_files=paths, split="train", **kwargs)


def _load_hub(task: Task, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(task.hub_path, task.hub_config, split=split)
    except (ConnectionError, OSError) as error:
        raise ConnectionError(
            f"could not load task {task.name!r} ({task.hub_path}"
            f"{'/' + task.hub_config if task.hub_config else ''}, split {split!r}) from the "
            f"Hugging Face Hub: {error}. Without network, put the split in local files and pass "
            f"data_dir=DIR: DIR/{task.name}/{split}.jsonl (or .parquet/.csv, or the hub's "
            f"{split}-*.parquet shards) with fields {', '.join(_required_columns(task))}; see "
            "the layersim.tasks module docstring."
        ) from error


def _required_columns(task: Task) -> list[str]:
    columns = list(task.text_fields) + [task.label_field]
    if task.prefix_field:
        columns.insert(0, task.prefix_field)
    if task.choices_field:
        columns.append(task.choices_field)
    return columns


def load(
    name: str | Task,
    split: str,
    *,
    limit: int | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> datasets.Dataset:
    """One split of a task, in the hub schema.

    The source is, in order: local files under ``data_dir`` when given (see the module docstring
    for the layout; for a synthetic task, used only if its folder holds the split), for the
    real-text tasks (:data:`REAL_TASKS`) the splits :mod:`layersim.data` prepared from their
    registry package (fetched on first use), the synthetic generator for synthetic tasks (the
    canonical data, generator seed 0, whatever ``seed``), or the Hugging Face Hub
    (``datasets.load_dataset(hub_path, hub_config, split=split)``).

    Parameters
    ----------
    name : str or Task
        Task name.
    split : str
        A split of the task (``task.splits``); ``"validation"`` also names MNLI's
        ``validation_matched``.
    limit : int, optional
        Keep ``limit`` examples: the first ``limit`` indices of a permutation drawn with
        ``numpy.random.default_rng(seed)``, kept in file order. Subsets are nested (a smaller
        limit keeps a subset of a larger one's examples). None or a limit ≥ the split size keeps
        everything.
    data_dir : str or path, optional
        Folder of local files (what a user without network passes).
    seed : int
        Seed of the subset drawn by ``limit``.

    Returns
    -------
    datasets.Dataset

    Raises
    ------
    ValueError
        Unknown task or split, a bad limit, or local files lacking the task's fields.
    FileNotFoundError
        ``data_dir`` given but no file for this task and split (hub tasks).
    ConnectionError
        The Hub could not be reached (the message says how to use ``data_dir``).
    """
    task = get_task(name)
    split = _resolve_split(task, split)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if task.is_packaged and data_dir is None:
        from layersim import data

        dataset = _load_local(task, split, str(data.ensure(task.name)))
    elif task.data_dir is not None and data_dir is None:  # your own data, split into the cache
        dataset = _load_local(task, split, task.data_dir)
    elif data_dir is not None and (
        not task.is_synthetic or _local_files(task, split, str(data_dir)) is not None
    ):
        dataset = _load_local(task, split, str(data_dir))
    elif task.is_synthetic:
        dataset = generate_synthetic(task.name, seed=0)[split]
    else:
        dataset = _load_hub(task, split)
    missing = [c for c in _required_columns(task) if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"data for task {task.name!r} ({split}) lacks the field(s) {', '.join(missing)}; it "
            f"has {', '.join(dataset.column_names)}. Write files in the hub schema with fields "
            f"{', '.join(_required_columns(task))}."
        )
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(subset_indices(len(dataset), limit, seed))
    return dataset


def subset_indices(size: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """The positions of a split of `size` rows that :func:`load` keeps for `limit` and `seed`:
    the first `limit` of a permutation drawn with ``numpy.random.default_rng(seed)``, sorted
    (every position when `limit` is None or not smaller than `size`)."""
    if limit is None or limit >= size:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).permutation(size)[:limit])


# --------------------------------------------------------------------------- encoding


def _label_id(task: Task, value: Any) -> int:
    """Class id of a label given as an id, a bool, or a label name."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        if value in task.label_names:
            return task.label_names.index(value)
        lowered = [n.lower() for n in task.label_names]
        if value.lower() in lowered:
            return lowered.index(value.lower())
        if value.strip().lstrip("-").isdigit():
            return int(value)
    raise ValueError(
        f"label {value!r} of task {task.name!r} is not a class id or one of the label names "
        f"{', '.join(task.label_names)}"
    )


def _choice_label(choices: dict[str, Sequence[str]], answer: Any) -> int:
    """Index of the answer among the choices; -1 for an unlabelled example (empty key)."""
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool):
        return int(answer)
    if answer in (None, ""):
        return -1
    keys = list(choices["label"])
    if answer not in keys:
        raise ValueError(f"answer key {answer!r} is not one of the choice labels {keys}")
    return keys.index(answer)


def _first_segments(task: Task, batch: dict[str, list]) -> list[str]:
    first = [str(text) for text in batch[task.text_fields[0]]]
    if task.prefix_field:
        first = [
            f"{prefix}: {text}"
            for prefix, text in zip(batch[task.prefix_field], first, strict=True)
        ]
    return first


def encode(
    task: str | Task,
    tokenizer: Any,
    dataset: datasets.Dataset,
    *,
    max_length: int,
) -> datasets.Dataset:
    """Tokenize a split into model inputs and ``labels``, without padding.

    Single-sentence tasks give one segment, pair tasks two (truncating the longest first); WiC's
    target word is written before the first sentence (``"bank: I went to the bank"``). Multiple
    choice gives, per example, one encoded (question, choice) pair per choice: lists of lists
    that :func:`collator` pads to ``(batch, choices, tokens)``.

    Parameters
    ----------
    task : str or Task
        The task the dataset belongs to.
    tokenizer : PreTrainedTokenizerBase
        A Hugging Face tokenizer.
    dataset : datasets.Dataset
        A split in the task's hub schema (as returned by :func:`load`).
    max_length : int
        Tokens per sequence after truncation (special tokens included).

    Returns
    -------
    datasets.Dataset
        Columns ``input_ids``, ``attention_mask``, ``token_type_ids`` (if the tokenizer makes
        them) and ``labels`` (int class ids, -1 for unlabelled test examples; float for
        regression).
    """
    task = get_task(task)
    if not isinstance(max_length, (int, np.integer)) or max_length < 2:
        raise ValueError(f"max_length must be an integer ≥ 2, got {max_length!r}")

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        if task.kind == "multiple_choice":
            return _encode_choices(task, tokenizer, batch, max_length)
        first = _first_segments(task, batch)
        second = (
            [str(text) for text in batch[task.text_fields[1]]]
            if len(task.text_fields) > 1
            else None
        )
        encoded = dict(tokenizer(first, second, truncation=True, max_length=max_length))
        labels = batch[task.label_field]
        if task.kind == "regression":
            encoded["labels"] = [float(value) for value in labels]
        else:
            encoded["labels"] = [_label_id(task, value) for value in labels]
        return encoded

    return dataset.map(
        tokenize, batched=True, remove_columns=dataset.column_names, desc=f"encode {task.name}"
    )


def _encode_choices(task: Task, tokenizer: Any, batch: dict[str, list], max_length: int) -> dict:
    questions = _first_segments(task, batch)
    choices = batch[task.choices_field]
    firsts, seconds, counts = [], [], []
    for question, options in zip(questions, choices, strict=True):
        texts = [str(text) for text in options["text"]]
        firsts += [question] * len(texts)
        seconds += texts
        counts.append(len(texts))
    flat = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
    encoded: dict[str, list] = {key: [] for key in flat}
    start = 0
    for count in counts:
        for key, values in flat.items():
            encoded[key].append(values[start : start + count])
        start += count
    encoded["labels"] = [
        _choice_label(options, answer)
        for options, answer in zip(choices, batch[task.label_field], strict=True)
    ]
    return encoded


def collator(task: str | Task, tokenizer: Any, *, pad_to_multiple_of: int | None = None) -> Any:
    """The data collator that pads a batch of :func:`encode` output dynamically.

    Parameters
    ----------
    task : str or Task
        The task (multiple choice needs its own collator).
    tokenizer : PreTrainedTokenizerBase
        The tokenizer used by :func:`encode` (its pad id and padding side are used).
    pad_to_multiple_of : int, optional
        Round padded lengths up to a multiple (e.g. 8 for tensor cores).

    Returns
    -------
    transformers.DataCollatorWithPadding or transformers.DataCollatorForMultipleChoice
    """
    from transformers import DataCollatorForMultipleChoice, DataCollatorWithPadding

    task = get_task(task)
    if task.kind == "multiple_choice":
        return DataCollatorForMultipleChoice(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)


def length_order(encoded: datasets.Dataset) -> list[int]:
    """Row indices of the encoded split in order of token count (stable; multiple choice: the
    longest choice)."""

    def length(ids: list) -> int:
        return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)

    lengths = [length(ids) for ids in encoded["input_ids"]]
    return sorted(range(len(lengths)), key=lengths.__getitem__)


def sort_by_length(encoded: datasets.Dataset) -> datasets.Dataset:
    """The encoded split's rows in order of token count (:func:`length_order`), so that
    dynamically padded batches pad little.

    For steps whose every metric is order-free (scoring many models on the same rows, CKA of a
    model's layers): batches of similar lengths cut the padded tokens by about 1.3-1.8x on the
    demo tasks. Where row order matters, run in this order and put the rows back with the
    inverse of :func:`length_order` (``numpy.argsort``).
    """
    return encoded.select(length_order(encoded))


# --------------------------------------------------------------------------- metrics


def _correlation(function: Callable, predictions: np.ndarray, labels: np.ndarray) -> float:
    # A constant vector has no defined correlation; report 0.0 (no association), as scikit-learn
    # does for the Matthews correlation, rather than a NaN.
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(function(predictions, labels)[0])


def compute_metrics(
    task: str | Task, predictions: np.ndarray | Sequence, labels: np.ndarray | Sequence
) -> dict[str, float]:
    """The task's metrics of some predictions.

    Parameters
    ----------
    task : str or Task
        The task; ``task.metrics`` says which metrics are computed.
    predictions : array
        Logits ``(n, num_labels)`` or ``(n, choices)`` (argmax taken here), class ids ``(n,)``
        (integers), or regression outputs ``(n,)`` / ``(n, 1)``.
    labels : array
        Class ids ``(n,)`` or regression targets ``(n,)``.

    Returns
    -------
    dict of str to float
        ``accuracy``; ``f1`` (positive class 1; MRPC, QQP); ``macro_f1`` (mean F1 over the
        classes; CB); ``matthews_correlation`` (CoLA); ``pearson`` and ``spearman`` (STS-B). A
        correlation with a constant input is 0.0.

    Raises
    ------
    ValueError
        Mismatched lengths, no examples, or unlabelled examples (label -1: hub test splits).
    """
    task = get_task(task)
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if len(predictions) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"need as many predictions as labels and at least one: got {len(predictions)} "
            f"predictions and {len(labels)} labels"
        )
    if task.kind == "regression":
        predictions = predictions.reshape(len(predictions), -1)[:, 0].astype(np.float64)
        labels = labels.astype(np.float64)
        out = {
            "pearson": _correlation(stats.pearsonr, predictions, labels),
            "spearman": _correlation(stats.spearmanr, predictions, labels),
        }
        return {name: out[name] for name in task.metrics}
    if np.any(labels < 0):
        raise ValueError(
            f"labels of task {task.name!r} contain -1 (unlabelled examples, as in the hub's test "
            "splits); evaluate on a labelled split such as "
            f"{task.validation_split!r}"
        )
    if predictions.ndim == 2:
        predicted = predictions.argmax(axis=-1)
    elif predictions.ndim == 1 and np.issubdtype(predictions.dtype, np.integer):
        predicted = predictions
    else:
        raise ValueError(
            f"predictions for a {task.kind} task must be logits (n, classes) or integer class ids "
            f"(n,), got shape {predictions.shape} and dtype {predictions.dtype}"
        )
    labels = labels.astype(np.int64)
    out: dict[str, float] = {}
    for name in task.metrics:
        if name == "accuracy":
            out[name] = float(np.mean(predicted == labels))
        elif name == "f1":
            out[name] = float(f1_score(labels, predicted, pos_label=1, zero_division=0.0))
        elif name == "macro_f1":
            out[name] = float(
                f1_score(
                    labels, predicted, labels=list(range(task.num_labels)), average="macro",
                    zero_division=0.0,
                )
            )  # fmt: skip
        elif name == "matthews_correlation":
            out[name] = float(matthews_corrcoef(labels, predicted))
        else:  # pragma: no cover - the registry only uses the names above
            raise ValueError(f"unknown metric {name!r}")
    return out

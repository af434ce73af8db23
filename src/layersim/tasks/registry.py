"""Tasks: the one place that knows datasets (registry, loading, encoding, metrics).

* :func:`get_task` / :data:`TASKS`: name → :class:`Task` (hub id, text fields, label field, kind,
  metric). The twelve :data:`PAPER_TASKS` come from the Hugging Face Hub; the five
  :data:`REAL_TASKS` are real English text that registry packages carry
  (:mod:`layersim.tasks.real_text` fetches them), the three :data:`DOMAIN_TASKS` polarity labels as
  for ``movie_polarity`` on tweets, Amazon and NYT snippets (inputs from other domains, not
  fine-tuned on); the four
  :data:`SYNTHETIC_TASKS` are generated offline (:mod:`layersim.tasks.synthetic`) and mirror GLUE's
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

import os
from dataclasses import dataclass

__all__ = [
    "DOMAIN_TASKS",
    "KINDS",
    "PAPER_TASKS",
    "REAL_TASKS",
    "SYNTHETIC_TASKS",
    "TASKS",
    "Task",
    "get_task",
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
        data (``layersim.tasks.real_text`` fetches and splits it); None otherwise.
    data_dir : str or None
        For a task made from your own data (:mod:`layersim.tasks.user_data`): the folder its splits
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
        """True for the real-text tasks whose data a registry package carries
        (layersim.tasks.real_text)."""
        return self.package is not None


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


# Real English text that registry packages carry (layersim.tasks.real_text fetches it by package
# name): the offline stand-ins for the paper's task families. Fields and labels are those that
# layersim.tasks.real_text writes; the "source" says where the text comes from.
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
        folder (:func:`layersim.tasks.user_data.task_from_file` registers it); a :class:`Task` is
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
    from layersim.tasks import user_data

    if user_data.is_data_path(name):
        return user_data.task_from_file(name)
    known_path = user_data.registered_path(name) if isinstance(name, str) else None
    if known_path is not None and os.path.exists(known_path):
        return user_data.task_from_file(known_path)
    raise ValueError(
        f"unknown task {name!r}; known tasks: {', '.join(TASKS)}. Pass one of these names, or a "
        f"data file ({', '.join(user_data.FILE_SUFFIXES)}) or folder of your own"
    )

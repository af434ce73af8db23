"""Fixtures shared by the test modules: the tiny random BERT and its tokenizer, and a local
package index that pip reads instead of PyPI."""

from __future__ import annotations

import pytest

from layersim.pipeline.finetune import load_model, load_tokenizer

#: The task the tiny-model fixtures are built for.
TINY_TASK = "synth_sentiment"


@pytest.fixture(scope="module")
def tokenizer():
    """The tiny-bert tokenizer (a module may override it with another model's)."""
    return load_tokenizer("tiny-bert")


@pytest.fixture(scope="module")
def tiny_bert():
    """A tiny random BERT with the synth_sentiment head, in eval mode, and its tokenizer."""
    return load_model("tiny-bert", TINY_TASK, seed=0).eval(), load_tokenizer("tiny-bert")


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A local folder of archives and wheels that pip reads instead of PyPI, and a fresh cache
    (``LAYERSIM_DATA``); returns the folder to put packages in."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("LAYERSIM_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv(
        "LAYERSIM_PIP_ARGS", f"--no-index --find-links {folder} --no-build-isolation"
    )
    return folder

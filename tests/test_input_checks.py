"""Bad input is refused before any work starts, with a message that names the fix: broken model
directories, parameters of the wrong type, from Python and from the command line (fast, and
nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from layersim.pipeline import batch, presets
from layersim.pipeline.finetune import load_model, load_tokenizer

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    load_model("tiny-bert", "synth_sentiment").save_pretrained(folder)
    load_tokenizer("tiny-bert").save_pretrained(folder)
    return folder


def _copy(saved: Path, target: Path) -> Path:
    target.mkdir()
    for path in saved.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_a_good_directory_passes(saved: Path) -> None:
    presets.check_model_dir(saved)
    batch.validate_grid([str(saved)], ["synth_sentiment"])


def test_broken_directories_name_the_file_and_the_fix(saved: Path, tmp_path: Path) -> None:
    config = _copy(saved, tmp_path / "config")
    (config / "config.json").write_text('{"model_type": "bert",')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON .*save_pretrained"):
        batch.validate_grid([str(config)], None)
    short = _copy(saved, tmp_path / "short")
    weights = short / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="model.safetensors is cut short"):
        batch.validate_grid([str(short)], None)
    bare = _copy(saved, tmp_path / "bare")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (bare / name).unlink(missing_ok=True)
    with pytest.raises(ValueError, match="has no tokenizer"):
        batch.validate_grid([str(bare)], None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        batch.validate_grid([str(empty)], None)


def test_parameters_of_the_wrong_type_are_refused() -> None:
    steps = (*batch.STEPS, *batch.GRID_STEPS)
    with pytest.raises(ValueError, match=r"n_boot='abc'.*expects an integer"):
        batch.check_parameters({"n_boot": "abc"}, NOTEBOOKS, steps)
    with pytest.raises(ValueError, match="no experiment notebook has the parameter 'nboot'"):
        batch.check_parameters({"nboot": 5}, NOTEBOOKS, steps)
    batch.check_parameters({"n_boot": 20, "train_limit": 100, "epochs": 1}, NOTEBOOKS, steps)
    defaults = batch.parameter_defaults(NOTEBOOKS / "baselines.py")
    assert defaults["train_limit"] is None  # the probes follow --param train_limit too


@pytest.mark.parametrize("case", ["corrupt model", "bad parameter"])
def test_the_command_line_refuses_in_seconds_and_writes_nothing(
    saved: Path, tmp_path: Path, case: str
) -> None:
    model = str(saved)
    extra = []
    if case == "corrupt model":
        broken = _copy(saved, tmp_path / "broken")
        (broken / "config.json").write_text(json.dumps({"no": "model_type"}))
        model = str(broken)
    else:
        extra = ["--param", "n_boot=abc"]
    results, work = tmp_path / "results", tmp_path / "runs"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "layersim", "run", "--preset", "tiny", "--models", model,
         "--tasks", "synth_sentiment", "--results", str(results), "--work", str(work),
         "--no-progress", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error:" in done.stderr and ("model_type" in done.stderr or "n_boot" in done.stderr)
    assert not results.exists() and not work.exists()
    print(f"refused in {seconds:.1f} s")  # the bound (10 s) is a timing: benchmarks

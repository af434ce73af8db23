"""The tiny preset end to end through the CLI: papermill runs the three notebooks per run; the
batch resumes, shards, survives a failing run, and a killed batch leaves no partial files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import pandas as pd
import pytest
import safetensors.torch
import torch

from layersim import results
from layersim.pipeline import batch, presets

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["tiny-bert", "tiny-albert"]
TASK = "synth_sentiment"
# Small sizes so that a notebook runs in seconds on two cores.
PARAMS = ["--param", "n_boot=20", "--param", "examples=120", "--param", "eval_limit=120",
          "--param", "refit_examples=60", "--param", "drop_eval_limit=60",
          "--param", "progress_examples=60", "--param", "shared_per_task=30"]  # fmt: skip


def _cli(*args: str, results_dir: Path, work_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "layersim", *args, "--results", str(results_dir)]
    if args[0] == "run":
        command += ["--work", str(work_dir), "--device", "cpu", "--no-progress", *PARAMS]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Two tiny runs, executed once for the tests of this module."""
    base = tmp_path_factory.mktemp("batch")
    results_dir, work_dir = base / "results", base / "runs"
    proc = _cli("run", "--preset", "tiny", "--models", *MODELS, "--tasks", TASK,
                results_dir=results_dir, work_dir=work_dir, timeout=900)  # fmt: skip
    return results_dir, work_dir, proc


def test_tiny_preset_runs_end_to_end(finished) -> None:
    results_dir, work_dir, proc = finished
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 run(s) done, 0 already complete, 0 failed" in proc.stdout
    cka = results.load(results_dir, "cka")
    assert set(cka["model"]) == set(MODELS) and set(cka["kind"]) == set(results.CKA_KINDS)
    selfs = cka[(cka["kind"] != "pretrained_vs_finetuned") & (cka["layer_a"] == cka["layer_b"])]
    assert ((selfs["cka"] - 1).abs() < 1e-6).all(), "self-similarity must be 1"
    assert set(cka["estimator"]) == {"biased", "debiased"}
    truncation = results.load(results_dir, "truncation")
    for _, curve in truncation.groupby("model"):
        assert sorted(set(curve["layers_kept"])) == list(range(5))  # tiny models: 4 layers
    metrics = results.load(results_dir, "metrics")
    assert set(metrics["model"]) == set(MODELS) and metrics["value"].notna().all()
    blocks = results.load(results_dir, "blocks")
    assert set(blocks["kind"]) == {"finetuned", "pretrained"}
    for model in MODELS:  # every step's executed notebook is kept as the run's log
        key = results.RunKey("tiny", model, TASK, 0)
        assert {p.name for p in key.run_dir(work_dir).glob("*.ipynb")} == {
            f"{step}.ipynb" for step in batch.STEPS
        }  # fmt: skip
        provenance = results.read_provenance(results_dir, key)
        assert set(batch.STEPS) <= set(provenance["steps"])
    baselines = results.load(results_dir, "baselines")
    assert set(baselines["baseline"]) == {"majority", "probe_pooled", "probe_mean"}
    drops = results.load(results_dir, "layer_drop")
    assert set(drops["model"]) == set(MODELS) and set(drops["condition"]) == {"unchanged", "refit"}
    assert set(results.load(results_dir, "layer_signals")["layer"]) == {1, 2, 3, 4}
    along = results.load(results_dir, "progress")
    for _, run in along.groupby("model"):  # the snapshots of notebooks/finetune.py, 0 to 100%
        assert run["step"].min() == 0 and run["step"].max() == run["max_steps"].max()
        assert run["step"].nunique() == 7


def test_a_checkout_without_models_fine_tunes_again_for_a_missing_step(finished, tmp_path) -> None:
    """Committed results without runs/ (a fresh clone) and a step added since: the batch trains
    the model again, because the new step reads it, and then runs the step."""
    source, _, _ = finished
    results_dir, work_dir = tmp_path / "results", tmp_path / "runs"
    shutil.copytree(source, results_dir)
    key = results.RunKey("tiny", MODELS[0], TASK, 0)
    for table in batch.STEP_TABLES["layer_drop"]:
        results.table_path(results_dir, key, table).unlink()
    proc = _cli("run", "--preset", "tiny", "--models", MODELS[0], "--tasks", TASK,
                results_dir=results_dir, work_dir=work_dir, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 run(s) done, 0 already complete, 0 failed" in proc.stdout
    assert (key.run_dir(work_dir) / "model" / "metrics.json").is_file()
    assert results.is_complete(results_dir, key, tables=batch.RUN_TABLES)


def test_the_grid_step_compares_the_runs_once_all_of_them_are_done(finished, tmp_path) -> None:
    """A checkout whose runs of one grid (tiny-bert on every tiny task) all have their tables but
    not their models: the batch trains the missing models, then the across step compares them;
    a second call does nothing. (The other tasks' tables are the finished run's, relabelled:
    here they only mark the runs as done.)"""
    source_results, source_work, _ = finished
    results_dir, work_dir = tmp_path / "results", tmp_path / "runs"
    shutil.copytree(source_results, results_dir)
    shutil.copytree(source_work, work_dir)
    grid = batch.grid_runs("tiny", MODELS[0])
    done = results.RunKey("tiny", MODELS[0], TASK, 0)
    assert len(grid) == len(presets.get_preset("tiny").tasks) >= 2 and done in grid
    for key in grid:
        for table in batch.RUN_TABLES:
            frame = results.read_table(results_dir, done, table).assign(task=key.task)
            results.write_table(results_dir, key, table, frame)
    args = ["run", "--preset", "tiny", "--models", MODELS[0]]
    proc = _cli(*args, results_dir=results_dir, work_dir=work_dir, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 run(s) done, {len(grid)} already complete, 0 failed" in proc.stdout
    assert f"grid step across done for tiny {MODELS[0]}" in proc.stdout
    assert all((key.run_dir(work_dir) / "model" / "metrics.json").is_file() for key in grid)
    table = results.read_grid_table(results_dir, "tiny", MODELS[0], "across")
    assert set(table["comparison"]) == {"tasks", "pretrained"}  # one seed: no seed pairs
    pairs = len(grid) * (len(grid) - 1) // 2 + len(grid)  # every two tasks, each with pretrained
    assert table[["run_a", "run_b"]].drop_duplicates().shape[0] == pairs
    record = results.read_grid_provenance(results_dir, "tiny", MODELS[0])["steps"]["across"]
    assert len(record["parameters"]["runs"]) == len(grid)
    assert (results.grid_dir(work_dir, "tiny", MODELS[0]) / "across.ipynb").is_file()
    again = _cli(*args, results_dir=results_dir, work_dir=work_dir, timeout=300)
    assert f"0 run(s) done, {len(grid)} already complete" in again.stdout
    assert "grid step" not in again.stdout


def test_second_run_is_a_no_op(finished) -> None:
    results_dir, work_dir, _ = finished
    before = {p: p.stat().st_mtime_ns for p in results_dir.rglob("*.csv")}
    proc = _cli("run", "--preset", "tiny", "--models", *MODELS, "--tasks", TASK,
                results_dir=results_dir, work_dir=work_dir, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "0 run(s) done, 2 already complete, 0 failed" in proc.stdout
    assert before == {p: p.stat().st_mtime_ns for p in results_dir.rglob("*.csv")}


def test_a_failing_run_fails_alone_and_is_reported(finished, tmp_path) -> None:
    results_dir, work_dir, _ = finished
    # A complete directory passes the up-front checks; its weights do not fit its config, which
    # only loading the model finds out.
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert", "hidden_size": -1}')
    (broken / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n")
    weights = {"embeddings.word_embeddings.weight": torch.zeros(6, 4)}
    safetensors.torch.save_file(weights, broken / "model.safetensors")
    models = ["tiny-bert", str(broken)]
    name = presets.model_key(str(broken))
    proc = _cli("run", "--preset", "tiny", "--models", *models, "--tasks", TASK,
                results_dir=results_dir, work_dir=work_dir, timeout=600)  # fmt: skip
    assert proc.returncode == 1
    assert "0 run(s) done, 1 already complete, 1 failed" in proc.stdout
    assert f"FAILED tiny {name} synth_sentiment seed0 at finetune" in proc.stdout
    assert "finetune.ipynb" in proc.stdout
    status = _cli("status", "--preset", "tiny", "--models", *models,
                  "--tasks", TASK, results_dir=results_dir, work_dir=work_dir)  # fmt: skip
    assert "done     tiny tiny-bert synth_sentiment seed0" in status.stdout
    assert f"failed   tiny {name} synth_sentiment seed0" in status.stdout
    assert "1 done, 0 missing, 1 failed" in status.stdout


def test_killed_batch_leaves_no_partial_run_and_resumes(tmp_path) -> None:
    results_dir, work_dir = tmp_path / "results", tmp_path / "runs"
    args = ["run", "--preset", "tiny", "--models", *MODELS, "--tasks", TASK]
    first = results.RunKey("tiny", MODELS[0], TASK, 0)
    command = [sys.executable, "-m", "layersim", *args, "--results", str(results_dir),
               "--work", str(work_dir), "--device", "cpu", "--no-progress", *PARAMS]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600
    try:  # kill the batch (and its kernels) once the first run is done, mid-way through the next
        while not results.is_complete(results_dir, first, tables=batch.RUN_TABLES):
            assert proc.poll() is None, "the batch ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    leftovers = [p for p in results_dir.rglob("*") if p.is_file() and p.suffix not in
                 (".csv", ".json") and p.name != "FAILED"]  # fmt: skip
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    for path in results_dir.rglob("*.csv"):  # every table present is whole
        assert len(pd.read_csv(path)) > 0
    rerun = _cli(*args, results_dir=results_dir, work_dir=work_dir, timeout=900)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 run(s) done, 1 already complete, 0 failed" in rerun.stdout


def test_shards_are_disjoint_and_cover_the_grid() -> None:
    runs = batch.expand_runs("paper")
    assert len(runs) == 3 * 12
    shards = [batch.shard_runs(runs, i, 5) for i in range(5)]
    assert sorted(sum(shards, []), key=runs.index) == runs
    assert batch.parse_shard("3/12") == (3, 12)
    for bad in ("12/12", "1-4", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            batch.parse_shard(bad)


@pytest.mark.parametrize("name", [*batch.STEPS, *batch.GRID_STEPS])
def test_notebook_pairs_are_in_sync(name: str) -> None:
    script = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    paired = jupytext.read(ROOT / "notebooks" / f"{name}.ipynb")
    assert [c.source for c in script.cells] == [c.source for c in paired.cells], (
        f"notebooks/{name}.ipynb is out of date: run `jupytext --sync notebooks/{name}.py`"
    )
    assert all(not c.get("outputs") for c in paired.cells if c.cell_type == "code"), (
        f"notebooks/{name}.ipynb must be committed without outputs"
    )
    tags = [c.metadata.get("tags", []) for c in script.cells]
    assert ["parameters"] in tags and ["remove-cell"] in tags

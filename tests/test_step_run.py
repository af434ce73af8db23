"""layersim.pipeline.step_run: the notebooks' preamble and closing, on a real results store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from layersim import results
from layersim.pipeline import presets
from layersim.pipeline.step_run import run_grid_step, run_step


def test_run_step_names_the_run_and_writes_its_tables_with_provenance(tmp_path, capsys) -> None:
    run = run_step("tiny", "tiny-bert", "synth_sentiment", 1, device="cpu")
    assert run.key == results.RunKey("tiny", "tiny-bert", "synth_sentiment", 1)
    assert run.device.type == "cpu"
    assert run.spec.eval_limit == presets.get_preset("tiny", "synth_sentiment").eval_limit
    frame = pd.DataFrame(
        [{**run.key.as_dict(), "metric": "accuracy", "value": 0.75},
         {**run.key.as_dict(), "metric": "f1", "value": 0.5}]
    )  # fmt: skip
    seconds = run.write(str(tmp_path), {"metrics": frame}, {"epochs": 3})
    assert seconds >= 0
    assert "wrote 2 metrics rows" in capsys.readouterr().out
    back = results.read_table(tmp_path, run.key, "metrics")
    assert back["value"].tolist() == [0.75, 0.5]
    step = json.loads((run.key.run_dir(tmp_path) / "provenance.json").read_text())["steps"]
    assert step["finetune"]["parameters"] == {"epochs": 3}
    assert step["finetune"]["seconds"] == pytest.approx(seconds)
    assert step["finetune"]["device"].startswith("cpu")


def test_a_model_directory_is_keyed_by_its_path(tmp_path) -> None:
    folder = tmp_path / "my model"
    folder.mkdir()
    run = run_step("tiny", str(folder), "synth_sentiment", 0, device="cpu")
    assert run.key.model == presets.model_key(str(folder)) != str(folder)


def test_a_grid_step_writes_a_grid_table(tmp_path) -> None:
    run = run_grid_step("tiny", "tiny-bert", device="cpu")
    row = {"preset": "tiny", "model": "tiny-bert", "comparison": "seeds",
           "run_a": "synth_sentiment/seed0", "run_b": "synth_sentiment/seed1", "layer_a": 1,
           "layer_b": 1, "estimator": "biased", "pooling": "cls", "cka": 0.9, "n": 30}  # fmt: skip
    frame = pd.DataFrame([row])[list(results.GRID_TABLES["across"])]
    run.write(str(tmp_path), {"across": frame}, {"runs": ["synth_sentiment/seed0"]})
    back = results.read_grid_table(tmp_path, "tiny", "tiny-bert", "across")
    assert back["cka"].tolist() == [0.9]


def test_nothing_to_write_is_refused(tmp_path) -> None:
    run = run_step("tiny", "tiny-bert", "synth_sentiment", 0, device="cpu")
    with pytest.raises(ValueError, match="tables is empty"):
        run.write(str(tmp_path), {}, {})

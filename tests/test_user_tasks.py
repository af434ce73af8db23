"""layersim.tasks.user_data: your own data as a task, from a file, a folder or a frame; what is
inferred, how it is split, and what is refused before any work starts."""

from __future__ import annotations

import pandas as pd
import pytest

from layersim import tasks
from layersim.pipeline import batch
from layersim.tasks import user_data


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERSIM_DATA", str(tmp_path / "cache"))
    before = dict(tasks.TASKS)
    yield
    tasks.TASKS.clear()
    tasks.TASKS.update(before)


def _reviews(n: int = 200) -> pd.DataFrame:
    return pd.DataFrame({
        "text": [f"review number {i} is {'good' if i % 2 else 'bad'}" for i in range(n)],
        "label": ["positive" if i % 2 else "negative" for i in range(n)],
        "id": range(n),
    })  # fmt: skip


def test_a_csv_becomes_a_classification_task_split_by_its_text(tmp_path) -> None:
    path = tmp_path / "reviews.csv"
    _reviews().to_csv(path, index=False)
    task = tasks.get_task(str(path))
    assert task.name.startswith("file-reviews-") and task.kind == "classification"
    assert task.label_names == ("negative", "positive") and task.text_fields == ("text",)
    sizes = {s: len(tasks.load(task, s)) for s in ("train", "validation", "test")}
    assert sum(sizes.values()) == 200 and sizes["train"] > sizes["validation"] > 0
    row = tasks.load(task, "validation")[0]
    assert row["label"] == int("good" in row["text"])  # string labels as class ids, in order
    # the same rows land in the same splits however often the task is built
    again = user_data.task_from_frame(_reviews(), name="again")
    assert len(tasks.load(again, "validation")) == sizes["validation"]
    # its name finds the data again (a notebook of the batch only gets the name)
    tasks.TASKS.pop(task.name)
    assert tasks.get_task(task.name).source == str(path.resolve())


def test_numbers_with_fractions_make_a_regression_and_two_text_columns_a_pair(tmp_path) -> None:
    frame = pd.DataFrame({"sentence1": [f"a {i}" for i in range(80)],
                          "sentence2": [f"b {i}" for i in range(80)],
                          "label": [i / 10 for i in range(80)]})  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    frame.to_json(path, orient="records", lines=True)
    task = tasks.get_task(str(path))
    assert task.kind == "regression" and task.num_labels == 1 and task.metric == "spearman"
    assert task.text_fields == ("sentence1", "sentence2")
    whole = user_data.task_from_frame(frame.assign(label=[i % 3 for i in range(80)]), name="w")
    assert whole.kind == "classification" and whole.label_names == ("0", "1", "2")


def test_a_folder_keeps_its_own_splits(tmp_path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    _reviews(120).to_csv(folder / "train.csv", index=False)
    _reviews(40).to_csv(folder / "validation.csv", index=False)
    task = tasks.get_task(str(folder))
    assert len(tasks.load(task, "train")) == 120 and len(tasks.load(task, "validation")) == 40
    assert len(tasks.load(task, "test")) == 40  # no test file: the validation rows


def test_bad_data_is_refused_with_what_to_do(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['label'\]"):
        user_data.task_from_frame(_reviews().drop(columns="label"), name="x")
    with pytest.raises(ValueError, match="every row has the label"):
        user_data.task_from_frame(_reviews().assign(label="positive"), name="x")
    with pytest.raises(ValueError, match="at least 50"):
        user_data.task_from_frame(_reviews(20), name="x")
    with pytest.raises(ValueError, match="no text column"):
        user_data.task_from_frame(pd.DataFrame({"label": [0, 1] * 40}), name="x")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tasks.get_task(str(tmp_path / "missing.csv"))
    broken = tmp_path / "broken.csv"
    _reviews().drop(columns="label").to_csv(broken, index=False)
    with pytest.raises(ValueError, match="lacks the column"):  # before any notebook starts
        batch.validate_grid(["tiny-bert"], [str(broken)])
    with pytest.raises(ValueError, match="or a data file"):
        batch.validate_grid(["tiny-bert"], ["not_a_task"])


def test_the_batch_files_a_data_file_under_its_task_name(tmp_path) -> None:
    path = tmp_path / "reviews.csv"
    _reviews().to_csv(path, index=False)
    (key,) = batch.expand_runs("tiny", models=["tiny-bert"], tasks=[str(path)], seeds=[0])
    assert key.task == tasks.get_task(str(path)).name and "/" not in key.task

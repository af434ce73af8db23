"""layersim.results: layout, round trips, validation, atomic writes, provenance, run states."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import layersim
from layersim import book, results
from layersim.pipeline import batch
from layersim.results import (
    INTERVAL_COLUMNS,
    STEP_OF_TABLE,
    STEP_TABLES,
    TABLE_NAMES,
    TABLES,
    RunKey,
    atomic_write,
    clear_failed,
    collect_provenance,
    failure,
    find_runs,
    is_complete,
    load,
    mark_failed,
    model_dirname,
    model_from_dirname,
    read_provenance,
    read_table,
    run_status,
    software_versions,
    write_provenance,
    write_table,
)
from layersim.results import files as results_files

ELECTRA = "google/electra-base-discriminator"


def cka_rows(key: RunKey, layers: int = 3, offset: float = 0.0) -> pd.DataFrame:
    rows = []
    for kind in ("finetuned", "pretrained", "pretrained_vs_finetuned"):
        for a in range(layers):
            for b in range(layers):
                rows.append(
                    {
                        **key.as_dict(),
                        "kind": kind,
                        "layer_a": a,
                        "layer_b": b,
                        "cka": 1 / (1 + abs(a - b) + offset) + key.seed / 3,
                        "estimator": "biased",
                        "pooling": "cls",
                        "n": 500,
                    }
                )
    return pd.DataFrame(rows)


def truncation_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "layers_kept": k, "metric": "accuracy", "value": 0.5 + k / 7}
            for k in range(4)
        ]
    )


def metrics_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "metric": "accuracy", "value": 0.8 + key.seed / 100},
            {**key.as_dict(), "metric": "eval_loss", "value": 0.4},
        ]
    )


def baselines_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "baseline": baseline, "metric": "accuracy", "value": value}
            for baseline, value in (("majority", 0.5), ("probe_pooled", 0.6), ("probe_mean", 0.7))
        ]
    )


def blocks_rows(key: RunKey) -> pd.DataFrame:
    # excess and contrast have an interval; a p-value has none (both ends empty)
    intervals = {"excess": (0.2, 0.4), "contrast": (0.1, 0.5), "permutation_p": (np.nan, np.nan)}
    return pd.DataFrame(
        [
            {**key.as_dict(), "kind": kind, "estimator": "biased", "pooling": "cls",
             "statistic": statistic, "value": 0.3, "lower": lower, "upper": upper, "boundary": 2}
            for kind in ("finetuned", "pretrained")
            for statistic, (lower, upper) in intervals.items()
        ]
    )  # fmt: skip


def layer_drop_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "signal": "top_k", "budget": n, "layers": ",".join(map(str, drop)),
             "condition": condition, "metric": "accuracy", "value": 0.8 - n / 10}
            for n, drop in enumerate([(), (3,), (2, 3)])
            for condition in ("unchanged", "refit")
        ]
    )  # fmt: skip


def layer_signals_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "layer": layer, "signal": "block_influence", "value": layer / 10}
            for layer in (1, 2, 3)
        ]
    )


def progress_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "step": step, "max_steps": 10, "statistic": statistic,
             "value": 0.1 + step / 100, "lower": lower, "upper": upper}
            for step in (0, 5, 10)
            for statistic, lower, upper in (("excess", 0.0, 0.2), ("accuracy", np.nan, np.nan))
        ]
    )  # fmt: skip


def progress_cka_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "step": step, "max_steps": 10, "layer_a": a, "layer_b": b,
             "cka": 1.0 if a == b else 0.5}
            for step in (0, 10)
            for a in (1, 2)
            for b in (1, 2)
        ]
    )  # fmt: skip


def robustness_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key.as_dict(), "inputs": "validation", "pooling": pooling, "estimator": "biased",
             "n": n, "statistic": "excess", "value": 0.2, "lower": 0.1, "upper": 0.3,
             "boundary": 3}
            for pooling in ("cls", "mean")
            for n in (100, 500)
        ]
    )  # fmt: skip


def robustness_metrics_rows(key: RunKey) -> pd.DataFrame:
    return pd.DataFrame(
        [{**key.as_dict(), "inputs": inputs, "n": 500, "metric": "accuracy", "value": 0.8}
         for inputs in ("validation", "tweet_polarity")]
    )  # fmt: skip


ROWS = {
    "cka": cka_rows,
    "truncation": truncation_rows,
    "metrics": metrics_rows,
    "blocks": blocks_rows,
    "baselines": baselines_rows,
    "layer_drop": layer_drop_rows,
    "layer_signals": layer_signals_rows,
    "progress": progress_rows,
    "progress_cka": progress_cka_rows,
    "robustness": robustness_rows,
    "robustness_metrics": robustness_metrics_rows,
}


def write_run(root: Path, key: RunKey, tables=tuple(ROWS)) -> None:
    for table in tables:
        write_table(root, key, table, ROWS[table](key))


KEYS = [
    RunKey("tiny", "bert", "parity", 0),
    RunKey("tiny", "bert", "parity", 1),
    RunKey("tiny", ELECTRA, "sst2", 0),
    RunKey("demo", "all-MiniLM-L6-v2", "sst2", 0),
    RunKey("demo", ELECTRA, "stsb", 2),
]


# ----------------------------------------------------------------------------
# Keys and layout
# ----------------------------------------------------------------------------


def test_run_dir_layout_and_model_names_with_slashes(tmp_path: Path) -> None:
    key = RunKey("paper", ELECTRA, "rte", 3)
    assert key.run_dir(tmp_path) == (
        tmp_path / "paper" / "google--electra-base-discriminator" / "rte" / "seed3"
    )
    assert RunKey.from_run_dir(key.run_dir(tmp_path)) == key
    assert model_dirname(ELECTRA) == "google--electra-base-discriminator"
    assert model_from_dirname("google--electra-base-discriminator") == ELECTRA
    assert model_dirname("roberta-base") == "roberta-base"
    assert RunKey("tiny", "bert", "parity", np.int64(2)).seed == 2


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (("tiny", "a--b", "t", 0), "'--'"),
        (("tiny", "", "t", 0), "non-empty"),
        (("tiny", "org//m", "t", 0), "model name"),
        (("tiny", "../m", "t", 0), "model name"),
        (("ti/ny", "m", "t", 0), "preset"),
        (("tiny", "m", "t t", 0), "task"),
        (("tiny", "m", ".t", 0), "task"),
        (("tiny", "m", "t", -1), "seed"),
        (("tiny", "m", "t", True), "seed"),
        (("tiny", "m", "t", 1.0), "seed"),
    ],
)
def test_bad_run_keys_raise(fields, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RunKey(*fields)


# ----------------------------------------------------------------------------
# Tables: round trip and load
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["cka", "truncation", "metrics"])
def test_round_trip_over_runs_and_presets(tmp_path: Path, table: str) -> None:
    for key in KEYS:
        write_table(tmp_path, key, table, ROWS[table](key))
    # written in a different order than load sorts: preset, model, task, seed
    expected = pd.concat([ROWS[table](k) for k in KEYS], ignore_index=True)
    expected = expected.sort_values(["preset", "model", "task", "seed"], kind="stable")
    expected = expected.reset_index(drop=True)[list(TABLES[table])]
    loaded = load(tmp_path, table)
    assert list(loaded.columns) == list(TABLES[table])
    for column, kind in TABLES[table].items():
        assert {
            "str": pd.api.types.is_string_dtype,
            "int": lambda s: s.dtype == np.int64,
            "float": lambda s: s.dtype == np.float64,
        }[kind](loaded[column]), column
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False, check_exact=True)
    assert ELECTRA in set(loaded["model"])  # the real name, not the directory name
    # one preset's directory works as root too
    demo = load(tmp_path / "demo", table)
    pd.testing.assert_frame_equal(
        demo,
        expected[expected["preset"] == "demo"].reset_index(drop=True),
        check_dtype=False,
        check_exact=True,
    )
    key = KEYS[2]
    pd.testing.assert_frame_equal(
        read_table(tmp_path, key, table), ROWS[table](key)[list(TABLES[table])], check_dtype=False
    )


def test_csv_files_are_plain_utf8_without_index(tmp_path: Path) -> None:
    key = RunKey("demo", ELECTRA, "sst2", 0)
    path = write_table(tmp_path, key, "metrics", metrics_rows(key))
    assert path == key.run_dir(tmp_path) / "metrics.csv"
    text = path.read_bytes().decode("utf-8")
    assert text.splitlines()[0] == "preset,model,task,seed,metric,value"
    assert text.splitlines()[1] == f"demo,{ELECTRA},sst2,0,accuracy,0.8"
    assert "\r" not in text


def test_an_empty_interval_is_written_as_empty_cells_and_read_back_as_nan(tmp_path: Path) -> None:
    key = KEYS[0]
    path = write_table(tmp_path, key, "blocks", blocks_rows(key))
    lines = path.read_text(encoding="utf-8").splitlines()
    p_line = next(line for line in lines if ",permutation_p," in line)
    assert p_line.endswith(",permutation_p,0.3,,,2")  # value, empty lower and upper, boundary
    frame = read_table(tmp_path, key, "blocks").set_index(["kind", "statistic"])
    assert frame.loc[("finetuned", "permutation_p"), ["lower", "upper"]].isna().all()
    assert frame.loc[("finetuned", "excess"), "lower"] == 0.2
    assert frame["lower"].dtype == np.float64
    assert INTERVAL_COLUMNS == {
        name: ("lower", "upper") for name in ("blocks", "progress", "robustness")
    }


def test_rewriting_a_table_replaces_it(tmp_path: Path) -> None:
    key = KEYS[0]
    write_table(tmp_path, key, "cka", cka_rows(key, layers=4))
    write_table(tmp_path, key, "cka", cka_rows(key, layers=2))
    assert len(load(tmp_path, "cka")) == 3 * 2 * 2


def test_load_on_an_empty_directory_gives_typed_empty_frames(tmp_path: Path) -> None:
    for table, schema in TABLES.items():
        frame = load(tmp_path, table)
        assert frame.empty and list(frame.columns) == list(schema)
        assert frame["seed"].dtype == np.int64
    assert find_runs(tmp_path) == []


def test_load_rejects_unknown_tables_and_missing_roots(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cka, truncation, metrics"):
        load(tmp_path, "activations")
    with pytest.raises(ValueError, match="does not exist"):
        load(tmp_path / "nowhere", "cka")


def test_load_rejects_a_table_in_another_runs_directory(tmp_path: Path) -> None:
    a, b = KEYS[0], KEYS[1]
    write_run(tmp_path, a, ["metrics"])
    b.run_dir(tmp_path).mkdir(parents=True)
    shutil.copy(a.run_dir(tmp_path) / "metrics.csv", b.run_dir(tmp_path) / "metrics.csv")
    with pytest.raises(ValueError, match="must equal the run's 1"):
        load(tmp_path, "metrics")


def test_find_runs(tmp_path: Path) -> None:
    for key in KEYS:
        write_run(tmp_path, key, ["metrics"])
    assert set(find_runs(tmp_path)) == set(KEYS)
    assert set(find_runs(tmp_path / "demo")) == {k for k in KEYS if k.preset == "demo"}


# ----------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------


def test_missing_and_extra_columns_are_named(tmp_path: Path) -> None:
    key = KEYS[0]
    frame = cka_rows(key).drop(columns=["pooling", "n"]).assign(extra=1)
    with pytest.raises(ValueError, match=r"missing columns \['pooling', 'n'\]") as err:
        write_table(tmp_path, key, "cka", frame)
    assert "unexpected columns ['extra']" in str(err.value)
    assert not key.run_dir(tmp_path).exists()


@pytest.mark.parametrize(
    ("table", "change", "match"),
    [
        ("cka", lambda f: f.assign(layer_a=f["layer_a"].astype(float)), "integer dtype"),
        ("cka", lambda f: f.assign(cka="high"), "numeric"),
        ("cka", lambda f: f.assign(kind="finetuned-ish"), "unknown cka kind"),
        ("cka", lambda f: f.assign(estimator=1), "strings"),
        ("cka", lambda f: f.assign(cka=np.nan), "missing values"),
        (
            "cka",
            lambda f: f.assign(layer_b=f["layer_b"].astype("Int64").where(f.index > 0)),
            "missing",
        ),
        ("metrics", lambda f: f.assign(seed=5), "must equal the run's 0"),
        ("metrics", lambda f: f.assign(model="roberta-base"), "must equal the run's 'bert'"),
        ("metrics", lambda f: f.assign(metric="accuracy"), "repeat the identifying columns"),
        ("metrics", lambda f: f.iloc[:0], "no rows"),
        ("truncation", lambda f: f.assign(layers_kept=True), "integer dtype"),
        ("truncation", lambda f: f.assign(value=np.inf), "non-finite"),
        ("truncation", lambda f: f.assign(value=np.nan), "missing values"),
        ("blocks", lambda f: f.assign(value=np.nan), "missing values"),
        ("blocks", lambda f: f.assign(upper=np.inf), "non-finite"),
        ("blocks", lambda f: f.assign(lower=np.nan), "only one end of its interval"),
    ],
)
def test_bad_values_raise(tmp_path: Path, table: str, change, match: str) -> None:
    key = KEYS[0]
    with pytest.raises(ValueError, match=match):
        write_table(tmp_path, key, table, change(ROWS[table](key)))


def test_columns_may_come_in_any_order(tmp_path: Path) -> None:
    key = KEYS[0]
    frame = metrics_rows(key)
    write_table(tmp_path, key, "metrics", frame[frame.columns[::-1]])
    assert list(read_table(tmp_path, key, "metrics").columns) == list(TABLES["metrics"])


# ----------------------------------------------------------------------------
# Atomicity
# ----------------------------------------------------------------------------


def _write_half_then_fail(handle) -> None:
    handle.write("half of the new conte")
    handle.flush()
    raise RuntimeError("disk full")


def test_atomic_write_that_raises_leaves_no_temp_file_and_no_partial_target(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "sub" / "fresh.json"
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(fresh, _write_half_then_fail)
    assert not fresh.exists() and list(fresh.parent.iterdir()) == []
    old = tmp_path / "old.txt"
    old.write_text("the old content\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(old, _write_half_then_fail)
    assert old.read_text(encoding="utf-8") == "the old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt", "sub"]


def test_atomic_write_writes_text_or_a_writer_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporaries = []
    real_replace = os.replace

    def recording_replace(src, dst):
        temporaries.append(Path(src))
        assert Path(src).parent == Path(dst).parent  # same directory: a rename, never a copy
        real_replace(src, dst)

    monkeypatch.setattr(results_files.os, "replace", recording_replace)
    path = tmp_path / "a.txt"
    assert atomic_write(path, "one\ntwo\n") == path
    assert path.read_bytes() == b"one\ntwo\n"  # line ends as given
    atomic_write(path, lambda handle: handle.write("three\n"))
    assert path.read_text(encoding="utf-8") == "three\n"
    assert len(set(temporaries)) == 2  # a fresh temporary name for every write
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(ValueError, match="string or a function"):
        atomic_write(path, b"bytes")


def _fail_midway(self, path_or_buf=None, *args, **kwargs):
    path_or_buf.write("preset,model,task,se")
    path_or_buf.flush()
    raise RuntimeError("disk full")


def test_interrupted_write_keeps_the_old_table_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = KEYS[0]
    path = write_table(tmp_path, key, "cka", cka_rows(key))
    before = path.read_bytes()
    monkeypatch.setattr(pd.DataFrame, "to_csv", _fail_midway)
    with pytest.raises(RuntimeError, match="disk full"):
        write_table(tmp_path, key, "cka", cka_rows(key, offset=1.0))
    assert path.read_bytes() == before
    assert sorted(p.name for p in key.run_dir(tmp_path).iterdir()) == ["cka.csv"]


def test_interrupted_first_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = KEYS[0]
    monkeypatch.setattr(pd.DataFrame, "to_csv", _fail_midway)
    with pytest.raises(RuntimeError):
        write_table(tmp_path, key, "metrics", metrics_rows(key))
    assert list(key.run_dir(tmp_path).iterdir()) == []
    assert not is_complete(tmp_path, key, ["metrics"])


def test_interrupted_provenance_merge_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = KEYS[0]
    path = write_provenance(tmp_path, key, "finetune", {"seconds": 1.0})
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("interrupted")

    monkeypatch.setattr(results_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="interrupted"):
        write_provenance(tmp_path, key, "similarity", {"seconds": 2.0})
    assert path.read_bytes() == before
    assert sorted(p.name for p in key.run_dir(tmp_path).iterdir()) == ["provenance.json"]


def test_successful_writes_leave_no_temp_files(tmp_path: Path) -> None:
    key = KEYS[3]
    write_run(tmp_path, key)
    write_provenance(tmp_path, key, "finetune", {"a": 1})
    mark_failed(tmp_path, key, "boom")
    names = sorted(p.name for p in key.run_dir(tmp_path).iterdir())
    assert names == [
        "FAILED",
        "baselines.csv",
        "blocks.csv",
        "cka.csv",
        "layer_drop.csv",
        "layer_signals.csv",
        "metrics.csv",
        "progress.csv",
        "progress_cka.csv",
        "provenance.json",
        "robustness.csv",
        "robustness_metrics.csv",
        "truncation.csv",
    ]


# ----------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------


def test_provenance_merges_steps(tmp_path: Path) -> None:
    key = RunKey("demo", ELECTRA, "sst2", 1)
    first = collect_provenance({"epochs": 3, "lr": np.float64(2e-5)}, "cpu", 12.5)
    write_provenance(tmp_path, key, "finetune", first)
    write_table(tmp_path, key, "cka", cka_rows(key), provenance={"pooling": "cls", "n": 500})
    data = json.loads((key.run_dir(tmp_path) / "provenance.json").read_text(encoding="utf-8"))
    assert data["run"] == key.as_dict()
    assert set(data["steps"]) == {"finetune", "similarity"}
    assert data["steps"]["finetune"]["parameters"] == {"epochs": 3, "lr": 2e-5}
    # the step's record, with the rows it wrote (a table cut short is then detected)
    rows = len(cka_rows(key))
    assert data["steps"]["similarity"] == {"pooling": "cls", "n": 500, "rows": {"cka": rows}}
    write_provenance(tmp_path, key, "finetune", {"seconds": 1})  # a rerun replaces its step
    assert read_provenance(tmp_path, key)["steps"] == {
        "finetune": {"seconds": 1},
        "similarity": {"pooling": "cls", "n": 500, "rows": {"cka": rows}},
    }
    assert read_provenance(tmp_path, KEYS[0]) == {"run": KEYS[0].as_dict(), "steps": {}}


def test_collect_provenance_fields(tmp_path: Path) -> None:
    info = collect_provenance({"seed": 0}, "NVIDIA H100", 3)
    assert info["layersim_version"] == layersim.__version__
    assert info["parameters"] == {"seed": 0}
    assert (info["device"], info["seconds"]) == ("NVIDIA H100", 3.0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", info["timestamp"])
    head = subprocess.run(
        ["git", "-C", str(Path(results.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shutil.which("git") and head.returncode == 0:
        assert info["git_commit"] == head.stdout.strip()
        assert isinstance(info["git_dirty"], bool)
    else:
        assert info["git_commit"] is None
    json.dumps(info)  # serialisable as it is


def test_collect_provenance_without_git_checkout_or_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = collect_provenance({}, "cpu", 0.0, repo=tmp_path)
    assert outside["git_commit"] is None and outside["git_dirty"] is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert collect_provenance({}, "cpu", 0.0)["git_commit"] is None


def test_software_versions_are_the_installed_ones() -> None:
    import accelerate
    import datasets
    import torch
    import transformers

    versions = software_versions()
    assert versions == {
        "layersim": layersim.__version__,
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "accelerate": accelerate.__version__,
    }
    info = collect_provenance({}, "cpu", 0.0)
    assert info["layersim_version"] == versions.pop("layersim")
    assert {name: info[name] for name in versions} == versions


def test_bad_provenance_raises(tmp_path: Path) -> None:
    key = KEYS[0]
    with pytest.raises(ValueError, match="NaN"):
        write_provenance(tmp_path, key, "finetune", {"loss": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        write_provenance(tmp_path, key, "finetune", {"model": object()})
    with pytest.raises(ValueError, match="step"):
        write_provenance(tmp_path, key, "", {})
    with pytest.raises(ValueError, match="seconds"):
        collect_provenance({}, "cpu", -1.0)
    assert not (key.run_dir(tmp_path) / "provenance.json").exists()


# ----------------------------------------------------------------------------
# Completion, failures, resume
# ----------------------------------------------------------------------------


def test_is_complete_and_run_status(tmp_path: Path) -> None:
    done, partial, never, failed, corrupt = (
        RunKey("demo", ELECTRA, task, 0) for task in ("a", "b", "c", "d", "e")
    )
    write_run(tmp_path, done)
    write_run(tmp_path, partial, ["metrics", "cka"])
    write_run(tmp_path, failed, ["metrics"])
    mark_failed(tmp_path, failed, "CUDA out of memory", Path("runs/d/similarity.ipynb"))
    write_run(tmp_path, corrupt)
    path = corrupt.run_dir(tmp_path) / "truncation.csv"
    path.write_text(path.read_text(encoding="utf-8")[:40], encoding="utf-8")  # cut short

    assert is_complete(tmp_path, done)
    assert not is_complete(tmp_path, partial)
    assert is_complete(tmp_path, partial, tables=["metrics", "cka"])
    assert is_complete(tmp_path, partial, tables="metrics")
    assert not is_complete(tmp_path, never)
    assert not is_complete(tmp_path, corrupt)
    keys = [done, partial, never, failed, corrupt]
    status = run_status(tmp_path, keys)
    assert list(status) == keys
    assert list(status.values()) == ["done", "missing", "missing", "failed", "missing"]
    assert failure(tmp_path, failed) == {
        "message": "CUDA out of memory",
        "notebook": os.fspath(Path("runs/d/similarity.ipynb")),
        "timestamp": failure(tmp_path, failed)["timestamp"],
    }
    assert failure(tmp_path, done) is None

    # the failed run is rerun successfully: its marker is cleared
    write_run(tmp_path, failed)
    assert run_status(tmp_path, [failed]) == {failed: "failed"}
    assert clear_failed(tmp_path, failed) and not clear_failed(tmp_path, failed)
    assert run_status(tmp_path, [failed]) == {failed: "done"}


def test_failure_marker_written_by_hand_is_read(tmp_path: Path) -> None:
    key = KEYS[0]
    key.run_dir(tmp_path).mkdir(parents=True)
    (key.run_dir(tmp_path) / "FAILED").write_text("killed by the scheduler\n", encoding="utf-8")
    assert run_status(tmp_path, [key]) == {key: "failed"}
    assert failure(tmp_path, key)["message"] == "killed by the scheduler"


def test_status_rejects_unknown_tables(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        is_complete(tmp_path, KEYS[0], tables=["cka", "weights"])
    with pytest.raises(ValueError, match="unknown table"):
        run_status(tmp_path, KEYS, tables=["weights"])


def test_one_map_from_steps_to_tables() -> None:
    written = [table for tables in STEP_TABLES.values() for table in tables]
    assert sorted(written) == sorted(TABLE_NAMES)  # every table has exactly one step
    assert batch.STEPS[0] == "finetune"  # every later step reads the fine-tuned model
    # each step the batch runner runs has its notebook, and no notebook is left out
    notebooks = {path.stem for path in (Path(__file__).parents[1] / "notebooks").glob("*.py")}
    assert notebooks == set(batch.STEPS) | set(batch.GRID_STEPS)
    assert STEP_OF_TABLE == {"metrics": "finetune", "cka": "similarity", "blocks": "similarity",
                             "truncation": "truncation", "baselines": "baselines",
                             "layer_drop": "layer_drop",
                             "layer_signals": "layer_drop", "progress": "progress",
                             "progress_cka": "progress", "robustness": "robustness",
                             "robustness_metrics": "robustness"}  # fmt: skip
    with pytest.raises(ValueError, match="known: metrics, cka, blocks, truncation, baselines"):
        book.produced_by("weights", pd.DataFrame())


def test_write_table_records_the_step_that_writes_the_table(tmp_path: Path) -> None:
    key = KEYS[0]
    for table in TABLE_NAMES:
        write_table(tmp_path, key, table, ROWS[table](key), provenance={"table": table})
    steps = read_provenance(tmp_path, key)["steps"]
    assert {step: info["table"] for step, info in steps.items()} == {
        "finetune": "metrics",
        "similarity": "blocks",  # cka, then blocks: the step's last write
        "truncation": "truncation",
        "baselines": "baselines",
        "layer_drop": "layer_signals",  # layer_drop, then layer_signals
        "progress": "progress_cka",
        "robustness": "robustness_metrics",
    }
    # every table the step wrote keeps its row count, not only the last one
    assert set(steps["similarity"]["rows"]) == {"cka", "blocks"}
    assert steps["layer_drop"]["rows"]["layer_drop"] == len(ROWS["layer_drop"](key))


# ----------------------------------------------------------------------------
# Grid tables: a whole grid's comparison of its runs, beside the task directories
# ----------------------------------------------------------------------------


def _across_rows(preset: str = "demo", model: str = "google/electra-small") -> pd.DataFrame:
    return pd.DataFrame({
        "preset": preset, "model": model, "comparison": ["seeds", "tasks"],
        "run_a": ["a/seed0", "a/seed0"], "run_b": ["a/seed1", "b/seed0"], "layer_a": [1, 1],
        "layer_b": [1, 1], "estimator": "biased", "pooling": "cls", "n": [100, 100],
        "cka": [0.9, 0.6],
    })  # fmt: skip


def test_grid_tables_round_trip_beside_the_runs_and_load_apart_from_them(tmp_path: Path) -> None:
    model = "google/electra-small"
    key = RunKey("demo", model, "a", 0)
    write_table(tmp_path, key, "metrics", ROWS["metrics"](key))
    path = results.write_grid_table(tmp_path, "demo", model, "across", _across_rows(),
                                    provenance={"parameters": {"runs": ["a/seed0"]}})  # fmt: skip
    assert path == tmp_path / "demo" / "google--electra-small" / "across.csv"
    assert path.parent == key.run_dir(tmp_path).parent.parent  # the model's directory
    back = results.read_grid_table(tmp_path, "demo", model, "across")
    pd.testing.assert_frame_equal(back, results.load(tmp_path, "across"))
    assert back["cka"].tolist() == [0.9, 0.6] and back["model"].unique().tolist() == [model]
    assert results.load(tmp_path / "demo", "across").shape == (
        2,
        len(results.GRID_TABLES["across"]),
    )
    record = results.read_grid_provenance(tmp_path, "demo", model)
    assert record["grid"] == {"preset": "demo", "model": model}
    assert record["steps"]["across"]["parameters"]["runs"] == ["a/seed0"]
    assert results.find_runs(tmp_path) == [key]  # a grid directory is not a run
    assert len(results.load(tmp_path, "metrics")) == len(ROWS["metrics"](key))


def test_grid_tables_refuse_rows_of_another_grid_and_the_run_table_api(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must equal the grid's 'demo'"):
        results.write_grid_table(tmp_path, "demo", "m", "across", _across_rows(preset="tiny"))
    with pytest.raises(ValueError, match="repeat the identifying columns"):
        results.write_grid_table(tmp_path, "demo", "m", "across",
                                 pd.concat([_across_rows(model="m")] * 2))  # fmt: skip
    with pytest.raises(ValueError, match="a table of a whole grid"):
        write_table(tmp_path, KEYS[0], "across", _across_rows())
    with pytest.raises(ValueError, match="has no 'across' table"):
        results.read_grid_table(tmp_path, "demo", "m", "across")
    assert results.load(tmp_path, "across").empty


def test_a_table_cut_at_a_row_boundary_is_not_complete(tmp_path) -> None:
    import pandas as pd

    from layersim import results

    key = results.RunKey("tiny", "tiny-bert", "synth_sentiment", 0)
    frame = pd.DataFrame([
        {**key.as_dict(), "metric": "accuracy", "value": 0.9},
        {**key.as_dict(), "metric": "f1", "value": 0.8},
    ])  # fmt: skip
    path = results.write_table(tmp_path, key, "metrics", frame, provenance={"seconds": 1.0})
    assert results.is_complete(tmp_path, key, ["metrics"])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # the last row lost, the CSV still well formed
    assert not results.is_complete(tmp_path, key, ["metrics"])
    problem = results.table_problem(tmp_path, key, ["metrics"])
    assert "has 1 rows but its step recorded 2" in problem and str(path) in problem

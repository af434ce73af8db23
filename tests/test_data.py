"""layersim.tasks.real_text on small archives in the upstream formats: the real parsers and the real
fetch path (pip download from a local folder of source distributions; nothing is downloaded)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from layersim import tasks
from layersim.tasks import archives, real_text

VADER_ROOT = "vaderSentiment-3.3.2"
MOVIES = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"

# An in-tree PEP 517 backend: pip can read the fake sdist's metadata with no build package.
BACKEND = """
import os
def get_requires_for_build_wheel(config_settings=None):
    return []
def prepare_metadata_for_build_wheel(directory, config_settings=None):
    info = os.path.join(directory, "{name}-{version}.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as handle:
        handle.write("Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n")
    return "{name}-{version}.dist-info"
def build_wheel(directory, config_settings=None, metadata_directory=None):
    raise NotImplementedError
"""


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _sdist(root: str, name: str, version: str, members: dict[str, bytes]) -> bytes:
    project = {
        f"{root}/pyproject.toml": (
            b'[build-system]\nrequires = []\nbuild-backend = "fakebackend"\nbackend-path = ["."]\n'
        ),
        f"{root}/fakebackend.py": BACKEND.format(name=name, version=version).encode(),
        f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
    }
    return _tar_gz({**project, **members})


def _movie_lines(rows: list[tuple[float, str]]) -> bytes:
    return "".join(f"{i}\t{r}\t{t}\r\n" for i, (r, t) in enumerate(rows, 1)).encode()


def _vader_sdist(movie_text: bytes, others: dict[str, bytes] | None = None) -> bytes:
    files = {MOVIES.split("/")[1]: movie_text, **(others or {})}
    inner = _tar_gz({f"hutto_ICWSM_2014/{name}": text for name, text in files.items()})
    member = f"{VADER_ROOT}/additional_resources/hutto_ICWSM_2014.tar.gz"
    return _sdist(VADER_ROOT, "vaderSentiment", "3.3.2", {member: inner})


MOVIE_ROWS = [
    (2.27, "The Rock is destined to be the 21st Century's new Conan."),
    (-0.6, "Effective but too tepid biopic"),
    (0.2, "A film that is neither here nor there."),
    (-3.1, "A dull, lifeless mess."),
    (3.5, "The gorgeously elaborate continuation of the trilogy."),
    (-3.1, "A dull, lifeless mess."),  # a duplicate: kept once
] + [(1.0 + i / 100, f"Sentence number {i} is rather good.") for i in range(40)]


def _publish(folder: Path, monkeypatch, key: str, content: bytes) -> None:
    archive = archives.ARCHIVES[key]
    (folder / archive.filename).write_bytes(content)
    pinned = dataclasses.replace(archive, sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(archives.ARCHIVES, key, pinned)


def test_fetch_downloads_checks_and_splits(registry, monkeypatch):
    _publish(registry, monkeypatch, "vadersentiment", _vader_sdist(_movie_lines(MOVIE_ROWS)))
    folders = real_text.fetch(["movie_polarity", "movie_rating"])
    assert (archives.cache_dir() / "archives" / "vaderSentiment-3.3.2.tar.gz").is_file()
    info = json.loads((folders["movie_rating"] / "info.json").read_text())
    assert info["parsed"] == len(MOVIE_ROWS) and info["duplicates_removed"] == 1
    assert sum(info["sizes"].values()) == len(MOVIE_ROWS) - 1
    polarity = json.loads((folders["movie_polarity"] / "info.json").read_text())
    # |rating| < 0.5 dropped: one sentence (0.2) of the 45 distinct ones
    assert sum(polarity["sizes"].values()) == len(MOVIE_ROWS) - 2
    # tasks.load reads the prepared splits; labels follow the sign of the rating
    rows = [row for split in real_text.SPLITS for row in tasks.load("movie_polarity", split)]
    labels = {row["sentence"]: row["label"] for row in rows}
    assert labels["Effective but too tepid biopic"] == 0
    assert labels["The Rock is destined to be the 21st Century's new Conan."] == 1
    ratings = {
        r["sentence"]: r["label"] for s in real_text.SPLITS for r in tasks.load("movie_rating", s)
    }
    assert ratings["A film that is neither here nor there."] == pytest.approx(0.2)

    # a second call does nothing: it works with the package folder gone
    for path in registry.iterdir():
        path.unlink()
    assert real_text.fetch(["movie_polarity", "movie_rating"]) == folders
    assert real_text.status()["movie_polarity"]["sizes"] == polarity["sizes"]
    assert real_text.status()["vitaminc"] is None


def test_other_domains_get_polarity_labels_from_their_own_files(registry, monkeypatch):
    stems = {"tweet_polarity": "tweets", "amazon_polarity": "amazonReviewSnippets",
             "nyt_polarity": "nytEditorialSnippets"}  # fmt: skip
    others = {
        f"{stem}_GroundTruth.txt": _movie_lines(
            [(-2.0, f"{stem} bad"), (0.1, f"{stem} neutral")]
            + [(1.5, f"{stem} good number {i}") for i in range(60)]
        )
        for stem in stems.values()
    }
    _publish(registry, monkeypatch, "vadersentiment",
             _vader_sdist(_movie_lines(MOVIE_ROWS), others))  # fmt: skip
    real_text.fetch(list(stems))
    for task, stem in stems.items():
        assert tasks.get_task(task).name in tasks.DOMAIN_TASKS
        rows = {r["sentence"]: r["label"] for s in real_text.SPLITS for r in tasks.load(task, s)}
        # each domain reads its own file; the near-neutral sentence is dropped as for the movies
        assert len(rows) == 61 and f"{stem} neutral" not in rows
        assert rows[f"{stem} bad"] == 0 and rows[f"{stem} good number 3"] == 1
    assert real_text.status()["movie_polarity"] is None  # only what was asked for


def test_splits_are_stable_when_rows_are_added_or_reordered():
    text = _movie_lines(MOVIE_ROWS).decode()
    more = _movie_lines(list(reversed(MOVIE_ROWS)) + [(2.0, "A new sentence.")]).decode()
    first, _ = real_text.build_splits("movie_rating", text, "a")
    second, _ = real_text.build_splits("movie_rating", more, "b")
    where = {row["sentence"]: split for split, rows in first.items() for row in rows}
    where_again = {row["sentence"]: split for split, rows in second.items() for row in rows}
    assert all(where_again[sentence] == split for sentence, split in where.items())


def test_split_shares_follow_the_fractions():
    counts = {name: 0 for name in real_text.SPLITS}
    for i in range(20_000):
        counts[real_text.split_of("t", f"group {i}", (0.8, 0.1, 0.1))] += 1
    assert counts["train"] / 20_000 == pytest.approx(0.8, abs=0.01)
    assert counts["validation"] / 20_000 == pytest.approx(0.1, abs=0.01)


def test_checksum_mismatch_leaves_nothing(registry, monkeypatch):
    content = _vader_sdist(_movie_lines(MOVIE_ROWS))
    (registry / "vaderSentiment-3.3.2.tar.gz").write_bytes(content)
    monkeypatch.setitem(
        archives.ARCHIVES,
        "vadersentiment",
        dataclasses.replace(archives.ARCHIVES["vadersentiment"], sha256="0" * 64),
    )
    with pytest.raises(archives.DataError, match="sha256"):
        real_text.fetch(["movie_polarity"])
    kept = archives.cache_dir() / "archives"
    assert not any(kept.iterdir())
    assert not (real_text.tasks_dir() / "movie_polarity").exists()


def test_unreachable_registry_says_what_to_run(registry):
    with pytest.raises(
        ConnectionError, match=r"pip download --no-deps --no-binary :all: vadersentiment==3\.3\.2"
    ):
        real_text.fetch(["movie_rating"])
    assert not any((archives.cache_dir() / "archives").iterdir())


def test_a_bad_row_names_file_and_line(registry, monkeypatch):
    lines = _movie_lines(MOVIE_ROWS[:3]) + b"4\tnot-a-number\tSome text\r\n"
    _publish(registry, monkeypatch, "vadersentiment", _vader_sdist(lines))
    with pytest.raises(archives.DataError, match=r"movieReviewSnippets_GroundTruth\.txt, line 4"):
        real_text.fetch(["movie_rating"])
    assert not (real_text.tasks_dir() / "movie_rating").exists()


def test_an_archive_without_the_member(registry, monkeypatch):
    _publish(
        registry, monkeypatch, "vadersentiment", _sdist(VADER_ROOT, "vaderSentiment", "3.3.2", {})
    )
    with pytest.raises(archives.DataError, match="has no member"):
        real_text.fetch(["movie_rating"])


def _bigbench(examples_by_task: dict[str, list[dict]]) -> bytes:
    members = {
        f"bigbench-1.0.0/bigbench/benchmark_tasks/{name}/task.json": json.dumps(
            {"name": name, "examples": examples}
        ).encode()
        for name, examples in examples_by_task.items()
    }
    return _sdist("bigbench-1.0.0", "bigbench", "1.0.0", members)


def _vitaminc(page: str, evidence: str, claim: str, answer: str) -> dict:
    scores = {"True": 0, "False": 0, "Neither": 0} | {answer: 1}
    return {"input": f"{page}: {evidence}\nClaim: {claim}", "target_scores": scores}


def test_bigbench_tasks_from_a_cached_archive(tmp_path, monkeypatch):
    vitaminc = [
        _vitaminc(f"Page {i % 30}", f"The value is {i}.", f"The value exceeds {i - 1}.", answer)
        for i, answer in zip(range(60), ["True", "False", "Neither"] * 20, strict=True)
    ]
    presuppositions = [
        {
            "input": (
                f"Sentence 1: Kim stopped running {i}. \n"
                f"Sentence 2: Kim ran {i}.\n\nThe answer is: "
            ),
            "target_scores": {"entailment": 1, "neutral": 0, "contradiction": 0},
            "comment": {"example_id": str(i // 2)},
        }
        for i in range(30)
    ]
    social = [
        {
            "input": f"Alex helped Sam {i}. Why? ",
            "target_scores": {"To be kind": 1, "To win": 0, "No reason": 0},
        }
        for i in range(30)
    ] + [{"input": "Two answers only? ", "target_scores": {"Yes": 1, "No": 0}}]
    content = _bigbench(
        {
            "vitaminc_fact_verification": vitaminc,
            "presuppositions_as_nli": presuppositions,
            "social_iqa": social,
        }
    )
    # The archive is already in the cache (fetched by hand): no pip call is needed.
    monkeypatch.setenv("LAYERSIM_DATA", str(tmp_path))
    monkeypatch.setenv("LAYERSIM_PIP_ARGS", "--no-index")
    (tmp_path / "archives").mkdir()
    _publish(tmp_path / "archives", monkeypatch, "bigbench", content)
    real_text.fetch(["vitaminc", "presupposition_nli", "social_iqa"])

    rows = {s: list(tasks.load("vitaminc", s)) for s in real_text.SPLITS}
    assert sum(map(len, rows.values())) == 60
    pages = {s: {row["evidence"].split(":")[0] for row in split} for s, split in rows.items()}
    assert not pages["train"] & pages["validation"] and not pages["train"] & pages["test"]
    first = next(
        row for split in rows.values() for row in split if row["evidence"].endswith("is 0.")
    )
    assert first == {
        "evidence": "Page 0: The value is 0.",
        "claim": "The value exceeds -1.",
        "label": 0,
    }

    premises = [row for s in real_text.SPLITS for row in tasks.load("presupposition_nli", s)]
    assert {row["hypothesis"] for row in premises} == {f"Kim ran {i}." for i in range(30)}
    assert all(row["label"] == 0 and row["premise"].startswith("Kim stopped") for row in premises)

    questions = [row for s in real_text.SPLITS for row in tasks.load("social_iqa", s)]
    assert len(questions) == 30  # the two-answer question is dropped
    assert all(
        row["choices"]["text"][["A", "B", "C"].index(row["answerKey"])] == "To be kind"
        for row in questions
    )


def test_bigbench_example_without_a_single_answer():
    text = json.dumps(
        {"examples": [{"input": "x\nClaim: y", "target_scores": {"True": 1, "False": 1}}]}
    )
    with pytest.raises(archives.DataError, match="example 0"):
        real_text.build_splits("vitaminc", text, "task.json")


def test_a_split_left_empty_is_an_error():
    text = _movie_lines(MOVIE_ROWS[:2]).decode()
    with pytest.raises(archives.DataError, match="empty"):
        real_text.build_splits("movie_rating", text, "movies.txt")


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="movie_polarity"):
        real_text.fetch(["sst2"])

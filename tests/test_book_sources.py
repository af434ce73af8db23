"""The book's sources: every page in the table of contents exists, notebook pages have an
in-sync .ipynb twin for Colab, and every Colab set-up cell points at the configured repository."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml

from layersim import book

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
PAGES = [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]
NOTEBOOK_PAGES = [p for p in PAGES if (ROOT / f"{p}.md").read_text().startswith("---\njupytext")]


def test_every_page_exists_and_every_chapter_is_listed() -> None:
    assert all((ROOT / f"{page}.md").is_file() for page in PAGES)
    chapters = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.md")}
    assert chapters == set(PAGES), "every book/*.md is a chapter of _toc.yml"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_notebook_pages_have_a_paired_ipynb_in_sync(page: str) -> None:
    text = jupytext.read(ROOT / f"{page}.md")
    paired = ROOT / f"{page}.ipynb"
    assert paired.is_file(), f"run `jupytext --set-formats ipynb,md:myst {page}.md`"
    twin = jupytext.read(paired)
    assert [c.source for c in text.cells] == [c.source for c in twin.cells], (
        f"{page}.ipynb is out of date: run `jupytext --sync {page}.md`"
    )
    assert all(not c.get("outputs") for c in twin.cells if c.cell_type == "code")


def test_colab_cells_use_the_configured_repository() -> None:
    url = CONFIG["repository"]["url"]
    sources = [ROOT / f"{p}.md" for p in NOTEBOOK_PAGES] + sorted(ROOT.glob("notebooks/*.py"))
    for path in sources:
        text = path.read_text(encoding="utf-8")
        found = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", text))
        assert found == {url}, f"{path.name}: Colab set-up must use {url}, found {found}"


def test_links_are_built_from_the_configuration(monkeypatch) -> None:
    monkeypatch.chdir(ROOT / "book")
    url, branch = CONFIG["repository"]["url"], CONFIG["repository"]["branch"]
    assert book.repository() == (url, branch)
    assert (
        book.source_url("notebooks/similarity.py") == f"{url}/blob/{branch}/notebooks/similarity.py"
    )
    owner_repo = url.removeprefix("https://github.com/")
    assert book.colab_url("notebooks/finetune.ipynb") == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/notebooks/finetune.ipynb"
    )
    with pytest.raises(ValueError, match="Colab opens .ipynb"):
        book.colab_url("notebooks/finetune.py")


def test_outside_a_checkout_the_error_says_where_to_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="from inside the layersim repository"):
        book.repository_root()


def test_every_exercise_has_a_solution_and_there_are_enough() -> None:
    import re

    exercises, solutions = [], []
    for page in PAGES:
        text = (ROOT / f"{page}.md").read_text()
        exercises += re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", text)
        solutions += re.findall(r"```\{solution(?:-start)?\} (\S+)", text)
    assert len(exercises) >= 25, f"only {len(exercises)} exercises"
    assert len(set(exercises)) == len(exercises), "exercise labels repeat"
    missing = sorted(set(exercises) - set(solutions))
    assert not missing, f"exercises without a solution: {missing}"
    orphans = sorted(set(solutions) - set(exercises))
    assert not orphans, f"solutions of no exercise: {orphans}"
    for page in PAGES:  # a gated solution must be closed, or the rest of the page folds away
        text = (ROOT / f"{page}.md").read_text()
        assert text.count("{solution-start}") == text.count("{solution-end}"), page


def test_tables_read_as_people_write_them() -> None:
    import numpy as np
    import pandas as pd

    from layersim import book

    frame = pd.DataFrame({"model": ["m", "m"], "seed": [0.0, 1.0], "excess": [0.12345, np.nan],
                          "blocks": [True, False], "runs_with_blocks": [3, 4]})  # fmt: skip
    page = book.table(frame, digits=2).to_html()
    assert ">model<" not in page  # one value in every row: said in the text instead
    assert ">0.12<" in page and ">–<" in page and "nan" not in page
    assert ">yes<" in page and ">no<" in page
    assert ">0<" in page and ">1<" in page and "0.00" not in page  # seeds as integers
    assert "runs with blocks" in page and "runs_with_blocks" not in page
    assert ">model<" in book.table(frame.head(1)).to_html()  # a single row keeps every column

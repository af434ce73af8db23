"""What the book's analysis pages share: where the results are, links to the repository, and
the "produced by" note under each figure.

The pages run inside a checkout of the repository (the book build, or Colab after the page's
setup cell cloned it). The repository's address and branch are read from the book's own
``_config.yml`` (``repository.url``, ``repository.branch``), the same setting that drives the
launch buttons, so a fork changes one line.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from layersim import results
from layersim.book import plots

__all__ = [
    "colab_url",
    "intervals",
    "load",
    "load_presets",
    "produced_by",
    "repository",
    "repository_root",
    "results_dir",
    "setup",
    "source_url",
    "table",
    "unrelated_floor",
]

COLAB = "https://colab.research.google.com/github"


def repository_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The checkout's root: the nearest directory at or above `start` (default: the current
    directory) holding the book's ``_config.yml``."""
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "_config.yml").is_file() and (directory / "results").is_dir():
            return directory
    raise ValueError(
        f"no repository checkout (a directory with _config.yml and results/) at or above {here}; "
        "run the book's pages from inside the layersim repository"
    )


@cache
def repository() -> tuple[str, str]:
    """``(url, branch)`` of the repository, from ``_config.yml``."""
    import yaml

    config = yaml.safe_load((repository_root() / "_config.yml").read_text(encoding="utf-8"))
    section = config.get("repository") or {}
    url = str(section.get("url", "")).rstrip("/")
    if not url.startswith("https://github.com/"):
        raise ValueError(
            f"_config.yml: repository.url must be the project's https://github.com/... address; "
            f"got {url!r}"
        )
    return url, str(section.get("branch", "main"))


def source_url(path: str) -> str:
    """The repository page of a file, e.g. ``notebooks/similarity.py``."""
    url, branch = repository()
    return f"{url}/blob/{branch}/{quote(path)}"


def colab_url(path: str) -> str:
    """Colab's address that opens a notebook (an ``.ipynb`` path) of the repository."""
    if not path.endswith(".ipynb"):
        raise ValueError(f"Colab opens .ipynb files; got {path!r}")
    url, branch = repository()
    return f"{COLAB}/{url.removeprefix('https://github.com/')}/blob/{branch}/{quote(path)}"


def results_dir(preset: str = "demo") -> Path:
    """``results/<preset>`` of the checkout; an error that says how to make it if missing."""
    path = repository_root() / "results" / preset
    if not path.is_dir():
        raise ValueError(
            f"{path} does not exist: run `python -m layersim run --preset {preset}` first"
        )
    return path


def load(table: str, preset: str = "demo") -> pd.DataFrame:
    """One results table over every run of a preset (:func:`layersim.results.load`)."""
    frame = results.load(results_dir(preset), table)
    if frame.empty:
        raise ValueError(
            f"no {table} results under {results_dir(preset)}: run "
            f"`python -m layersim run --preset {preset}` first"
        )
    return frame


def load_presets(table: str, presets: tuple[str, ...] = ("demo", "models")) -> pd.DataFrame:
    """One results table over the runs of several presets (those that have results), e.g. MiniLM
    of ``demo`` next to the ``models`` preset's MPNet and SmolLM2."""
    frames = [
        results.load(repository_root() / "results" / preset, table)
        for preset in presets
        if (repository_root() / "results" / preset).is_dir()
    ]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        raise ValueError(
            f"no {table} results for presets {', '.join(presets)}: run "
            f"`python -m layersim run --preset {presets[-1]}` first"
        )
    return pd.concat(frames, ignore_index=True)


def unrelated_floor(cka: pd.DataFrame) -> float | None:
    """The biased estimator's value for unrelated representations of the one model of a ``cka``
    table at its number of inputs (:func:`layersim.cka.unrelated_floor`); None for several
    models or an unknown width."""
    from layersim.cka import unrelated_floor as floor
    from layersim.pipeline import presets

    models = list(dict.fromkeys(cka["model"]))
    if len(models) != 1 or models[0] not in presets.MODEL_WIDTHS:
        return None
    return floor(int(cka["n"].max()), presets.MODEL_WIDTHS[models[0]])


def setup() -> None:
    """Page set-up: offline charts (in Colab altair's own renderer works and is kept)."""
    import sys

    if "google.colab" not in sys.modules:
        plots.enable_offline_renderer()
    pd.set_option("display.precision", 4)


def intervals(lower: pd.Series, upper: pd.Series, digits: int = 3) -> pd.Series:
    """``[lower, upper]`` strings for a table column ("–" where there is none)."""
    return pd.Series(
        [
            "–" if pd.isna(a) or pd.isna(b) else f"[{a:.{digits}f}, {b:.{digits}f}]"
            for a, b in zip(lower, upper, strict=True)
        ],
        index=lower.index,
    )


#: How the tables' column names read (others: underscores become spaces).
COLUMN_NAMES = {
    "finetuned": "fine-tuned",
    "best_baseline": "best baseline",
    "runs_with_blocks": "runs with blocks",
    "share_with_blocks": "share with blocks",
    "share_lower": "share, 95% low",
    "share_upper": "share, 95% high",
    "boundary_fraction": "boundary / depth",
    "knee_fraction": "knee / depth",
    "droppable_fraction": "droppable / depth",
    "layers": "depth L",
}


def _cell(value: object, digits: int) -> str:
    """One cell as people read it: no ``nan``, integers without decimals, yes/no for booleans."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, int) or (hasattr(value, "is_integer") and type(value).__name__.startswith(
        "int")):  # fmt: skip
        return f"{int(value)}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(frame: pd.DataFrame, digits: int = 3, *, drop_constant: bool = True):
    """A frame as the book shows tables: no index column; floats to `digits` decimals, integers
    as integers, booleans as yes / no, missing values as "–"; column names in words
    (:data:`COLUMN_NAMES`, underscores as spaces); with `drop_constant`, columns that hold one
    value in every row of a table of several rows left out (say it in the text instead); cell
    text escaped (a ``<`` in a note is text, not markup)."""
    shown = frame.copy()
    if drop_constant and len(shown) > 1:
        constant = [c for c in shown.columns if shown[c].astype(str).nunique(dropna=False) == 1]
        shown = shown.drop(columns=constant)
    for column in shown.columns:
        integral = pd.api.types.is_float_dtype(shown[column]) and bool(
            ((shown[column].dropna() % 1) == 0).all() and shown[column].notna().any()
            and column in ("seed", "seeds", "runs", "layers", "n", "pairs", "learned_pairs")
        )  # fmt: skip
        shown[column] = [
            _cell(int(v) if integral and not pd.isna(v) else v, digits) for v in shown[column]
        ]
    shown.columns = [COLUMN_NAMES.get(c, str(c).replace("_", " ")) for c in shown.columns]
    return shown.style.hide(axis="index").format(escape="html")


def _values(values: list) -> str:
    distinct = list(dict.fromkeys(values))
    return ", ".join(f"`{v}`" for v in distinct)


def produced_by(table: str, frame: pd.DataFrame, *, preset: str = "demo"):
    """A Markdown note saying which notebook, with which parameters, made a figure's data.

    Lists the notebook (with links to its source and to Colab), the runs (models, tasks, seeds),
    and the notebook parameters recorded in the runs' ``provenance.json`` (every distinct value
    when runs differ), plus the commits that produced them.
    """
    from IPython.display import Markdown

    grid_steps = {t: step for step, tables in results.GRID_STEP_TABLES.items() for t in tables}
    known = {**results.STEP_OF_TABLE, **grid_steps}
    if table not in known:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(known)}")
    step = known[table]
    notebook = f"notebooks/{step}.ipynb"
    grid = table in grid_steps
    keys = frame[["preset", "model"] if grid else ["preset", "model", "task", "seed"]]
    keys = keys.drop_duplicates()
    parameters: dict[str, list] = {}
    commits: list[str] = []
    root = results_dir(preset).parent
    for row in keys.itertuples(index=False):
        record = (
            results.read_grid_provenance(root, row.preset, row.model)
            if grid
            else results.read_provenance(
                root, results.RunKey(row.preset, row.model, row.task, int(row.seed))
            )
        )
        step_record = record.get("steps", {}).get(step, {})
        for name, value in (step_record.get("parameters") or {}).items():
            if name not in ("output_dir", "runs"):
                parameters.setdefault(name, []).append(value)
        if step_record.get("git_commit"):
            commits.append(str(step_record["git_commit"])[:10])
    shown = "; ".join(
        f"`{name}` = {_values([str(v) for v in values])}" for name, values in parameters.items()
    )
    runs = (
        f"comparing the runs of the preset's grid for models {_values(list(keys['model']))}"
        if grid
        else f"for models {_values(list(keys['model']))}, tasks {_values(list(keys['task']))}, "
        f"seeds {_values(list(keys['seed']))}"
    )
    lines = [
        f"**Produced by** [`{notebook}`]({source_url(notebook)}) "
        f"([open in Colab]({colab_url(notebook)})), preset `{preset}` "
        f"(hyper-parameters in `layersim.pipeline.presets`), {runs}.",
    ]
    if shown:
        lines.append(f"Recorded parameters: {shown}.")
    if commits:
        lines.append(f"Commits: {_values(commits)}; per-run records in `results/{preset}/`.")
    return Markdown(" ".join(lines))

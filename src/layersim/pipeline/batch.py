"""Run a preset's grid of experiments through papermill: resumable, shardable, failure-tolerant.

A run is one (preset, model, task, seed). Each run executes the experiment notebooks of
:data:`STEPS` in order; each notebook writes its tables through `layersim.results`, so a step
whose table exists is done and is skipped on the next call. After the runs, the grid steps of
:data:`GRID_STEPS` compare the complete runs of each (preset, model) grid
(:func:`complete_grid_runs`: of the preset's tasks x seeds) with each other (their tables are the
grid's, not one run's); one is done when its table exists and covers exactly those runs, so it is
computed again when more of the grid is done. The executed notebook of every step is kept as the
log under the work directory.
"""

from __future__ import annotations

import ast
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from layersim import results, tasks
from layersim.pipeline import presets

__all__ = [
    "GRID_STEPS",
    "STEPS",
    "BatchReport",
    "Failure",
    "GridFailure",
    "default_notebooks_dir",
    "complete_grid_runs",
    "expand_runs",
    "grid_runs",
    "parse_shard",
    "run_batch",
    "shard_runs",
    "validate_grid",
]

STEPS: tuple[str, ...] = tuple(results.STEP_TABLES)
# The tables each step's notebook writes; their presence marks the step as done.
STEP_TABLES: dict[str, tuple[str, ...]] = results.STEP_TABLES
RUN_TABLES: tuple[str, ...] = tuple(t for tables in STEP_TABLES.values() for t in tables)
GRID_STEPS: tuple[str, ...] = tuple(results.GRID_STEP_TABLES)


@dataclass(frozen=True)
class Failure:
    """A run that failed: where its executed notebook is and the error's last line."""

    key: results.RunKey
    step: str
    notebook: Path
    error: str


@dataclass(frozen=True)
class GridFailure:
    """A grid step that failed: which grid, where its executed notebook is, the error's line."""

    preset: str
    model: str
    step: str
    notebook: Path
    error: str


@dataclass
class BatchReport:
    """What a call of `run_batch` did."""

    done: list[results.RunKey] = field(default_factory=list)
    skipped: list[results.RunKey] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    grids_done: list[tuple[str, str, str]] = field(default_factory=list)
    grids_failed: list[GridFailure] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"{len(self.done)} run(s) done, {len(self.skipped)} already complete, "
            f"{len(self.failed)} failed, in {self.seconds:.0f} s"
        ]
        for failure in self.failed:
            key = failure.key
            lines.append(
                f"FAILED {key.preset} {key.model} {key.task} seed{key.seed} at {failure.step}: "
                f"{failure.error}\n    executed notebook: {failure.notebook}"
            )
        lines += [f"grid step {step} done for {preset} {model}" for preset, model, step in
                  self.grids_done]  # fmt: skip
        for failure in self.grids_failed:
            lines.append(
                f"FAILED grid step {failure.step} of {failure.preset} {failure.model}: "
                f"{failure.error}\n    executed notebook: {failure.notebook}"
            )
        return "\n".join(lines)


def default_notebooks_dir() -> Path:
    """The repository's `notebooks/` (the package is installed from a checkout, src layout)."""
    return Path(__file__).resolve().parents[3] / "notebooks"


def expand_runs(
    preset: str,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[results.RunKey]:
    """The preset's grid (models x tasks x seeds), or the subsets given, in a fixed order.

    A model given as a local directory appears under :func:`layersim.pipeline.presets.model_key`'s
    name (``local-<name>-<hash>``), a task given as a data file under :func:`task_key`'s;
    :func:`run_batch` needs the same ``models`` and ``tasks`` to find them again.
    """
    spec = presets.get_preset(preset)
    return [
        results.RunKey(spec.name, presets.model_key(model), task_key(task), int(seed))
        for model in (models or spec.models)
        for task in (tasks or spec.tasks)
        for seed in (seeds if seeds is not None else spec.seeds)
    ]


def task_key(task: str) -> str:
    """The name a task gets in run keys: its registry name, or for your own data file the
    ``file-<name>-<hash>`` of :mod:`layersim.tasks.user_data`."""
    return tasks.get_task(task).name


_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def grid_runs(preset: str, model: str) -> list[results.RunKey]:
    """The grid of (`preset`, `model`): `model` on every task and seed of `preset` (extra seeds
    or a subset given on the command line are not part of it)."""
    return expand_runs(preset, models=[model])


def complete_grid_runs(results_dir: str | Path, preset: str, model: str) -> list[results.RunKey]:
    """The runs of the grid whose every step is done: what a grid step compares (a grid run
    with ``--seeds 0`` compares one seed's tasks; the full grid once all runs are done)."""
    return [key for key in grid_runs(preset, model)
            if results.is_complete(results_dir, key, tables=RUN_TABLES)]  # fmt: skip


def validate_grid(models: Sequence[str] | None, tasks_: Sequence[str] | None) -> None:
    """Fail before any notebook starts: unknown task names, or models that are neither a preset
    name, an existing directory nor a well-formed Hub id (``name`` or ``owner/name``)."""
    from layersim.tasks import user_data

    unknown = [name for name in tasks_ or ()
               if name not in tasks.TASKS and not user_data.is_data_path(name)]  # fmt: skip
    if unknown:
        raise ValueError(
            f"unknown task(s) {', '.join(unknown)}; known tasks: {', '.join(tasks.TASKS)}, or a "
            f"data file ({', '.join(user_data.FILE_SUFFIXES)}) or folder of your own"
        )
    for name in tasks_ or ():  # your own data: checked (columns, classes, rows) before any run
        tasks.get_task(name)
    for model in models or ():
        resolved = presets.resolve_model(model)  # raises for a missing directory or tiny-* name
        if (
            isinstance(resolved, str)
            and os.path.isdir(resolved)
            and model not in (presets.MINILM_NAME, *presets.PACKAGED_MODELS)
        ):
            presets.check_model_dir(resolved)  # a corrupt copy fails here, not in fine-tuning
        if (
            isinstance(resolved, str)
            and not os.path.isdir(resolved)
            and not _HUB_ID.fullmatch(model)
        ):
            raise ValueError(
                f"model {model!r} is neither a known name ({presets.MINILM_NAME}, "
                f"{', '.join(presets.PACKAGED_MODELS)}, {', '.join(presets.TINY_MODELS)}), an "
                "existing directory, nor a Hugging Face "
                "Hub id such as 'roberta-base' or 'google/electra-base-discriminator'"
            )


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N (SLURM: ``--shard $SLURM_ARRAY_TASK_ID/N``)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need N >= 1 and 0 <= i < N (shards count from 0)")
    return index, count


def shard_runs(runs: Sequence[results.RunKey], index: int, count: int) -> list[results.RunKey]:
    """Every `count`-th run starting at `index`: disjoint shards that together cover the grid."""
    return list(runs[index::count])


def run_batch(
    runs: Sequence[results.RunKey],
    *,
    results_dir: Path,
    work_dir: Path,
    device: str = "auto",
    notebooks_dir: Path | None = None,
    parameters: dict | None = None,
    progress: bool = True,
    models: Sequence[str] | None = None,
    task_sources: Sequence[str] | None = None,
) -> BatchReport:
    """Execute every missing step of every run; never stop at a failing run.

    Parameters
    ----------
    runs
        From `expand_runs` (optionally `shard_runs`).
    results_dir
        Root of the results store (tables and provenance).
    work_dir
        Checkpoints and executed notebooks (large; not committed).
    device
        Passed to the notebooks: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    parameters
        Extra papermill parameters for every notebook (e.g. smaller sizes).
    models
        The model names or directories given to `expand_runs`: the notebooks load these (a run
        key holds only :func:`layersim.pipeline.presets.model_key`'s name of a directory).
    task_sources
        The task names or data paths given to `expand_runs` (a run key holds only
        :func:`task_key`'s name of a data file; the notebooks read the path).
    """
    notebooks_dir = Path(notebooks_dir or default_notebooks_dir())
    missing = [s for s in (*STEPS, *GRID_STEPS) if not (notebooks_dir / f"{s}.py").is_file()]
    if missing:
        raise FileNotFoundError(
            f"experiment notebooks {missing} not found in {notebooks_dir}; run from a checkout of "
            "the layersim repository or pass notebooks_dir (--notebooks)"
        )
    declared = {
        step: notebook_parameters(notebooks_dir / f"{step}.py") for step in (*STEPS, *GRID_STEPS)
    }
    check_parameters(parameters or {}, notebooks_dir, (*STEPS, *GRID_STEPS))
    sources = {presets.model_key(model): model for model in models or ()}
    data_paths = {task_key(task): task for task in task_sources or ()}
    context = _Context(Path(results_dir), Path(work_dir), device, notebooks_dir,
                       parameters or {}, declared, progress)  # fmt: skip
    report = BatchReport()
    start = time.perf_counter()
    for key in tqdm(runs, desc="runs", unit="run", disable=not progress):
        if results.is_complete(results_dir, key, tables=RUN_TABLES):
            report.skipped.append(key)
            continue
        failure = _run_one(key, sources.get(key.model, key.model), context,
                           data_paths.get(key.task, key.task))  # fmt: skip
        if failure is None:
            results.clear_failed(results_dir, key)
            report.done.append(key)
        else:
            results.mark_failed(results_dir, key, failure.error, str(failure.notebook))
            report.failed.append(failure)
    for preset, model in dict.fromkeys((key.preset, key.model) for key in runs):
        _run_grid(preset, sources.get(model, model), context, report)
    report.seconds = time.perf_counter() - start
    return report


@dataclass(frozen=True)
class _Context:
    """What every notebook of one batch call is run with."""

    results_dir: Path
    work_dir: Path
    device: str
    notebooks_dir: Path
    parameters: dict
    declared: dict[str, set[str]]
    progress: bool = False

    def say(self, text: str) -> None:
        """One progress line (above the runs' bar) when progress is on."""
        if self.progress:
            tqdm.write(text)

    def execute(self, step: str, executed: Path, values: dict) -> None:
        """Run notebook `step` with papermill (its parameters: `values`, the directories, the
        device and the extra parameters it declares), keeping the executed one at `executed`."""
        import jupytext
        import papermill

        papermill.execute_notebook(
            jupytext.read(self.notebooks_dir / f"{step}.py"),
            str(executed),
            parameters={
                **values,
                "results_dir": str(self.results_dir.resolve()),
                "work_dir": str(self.work_dir.resolve()),
                "device": self.device,
                **{k: v for k, v in self.parameters.items() if k in self.declared[step]},
            },
            kernel_name="python3",
            progress_bar=False,
            cwd=str(self.notebooks_dir),
            # ipykernel warns on every start that its local TCP sockets are unencrypted: noise.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )


def _grid_step_done(results_dir: Path, preset: str, model: str, step: str, grid: list) -> bool:
    """Whether `step`'s tables are there and were computed from exactly the runs of `grid`
    (its notebook records them as the ``runs`` parameter)."""
    from layersim.pipeline.steps.across_inputs import run_label

    try:
        for table in results.GRID_STEP_TABLES[step]:
            results.read_grid_table(results_dir, preset, model, table)
        info = results.read_grid_provenance(results_dir, preset, model)["steps"].get(step, {})
    except ValueError:
        return False
    covered = info.get("parameters", {}).get("runs")
    return sorted(covered or []) == sorted(run_label(key.task, key.seed) for key in grid)


def _run_grid(preset: str, source: str, context: _Context, report: BatchReport) -> None:
    """The grid steps of (`preset`, `source`) over the grid's complete runs (at least two)."""
    grid = complete_grid_runs(context.results_dir, preset, source)
    if len(grid) < 2:
        return  # nothing to compare yet
    model = grid[0].model
    for step in GRID_STEPS:
        if _grid_step_done(context.results_dir, preset, model, step, grid):
            continue
        for key in grid:  # a fresh clone has the runs' tables but not their models
            if not (key.run_dir(context.work_dir) / "model" / "metrics.json").is_file():
                failure = _run_one(key, source, context)
                if failure is not None:
                    report.failed.append(failure)
                    return
        executed = results.grid_dir(context.work_dir, preset, model) / f"{step}.ipynb"
        executed.parent.mkdir(parents=True, exist_ok=True)
        try:
            context.execute(step, executed, {"preset": preset, "model": source})
        except Exception as error:  # a failing grid step must not stop the batch
            report.grids_failed.append(GridFailure(preset, model, step, executed,
                                                   _error_line(error)))  # fmt: skip
            return
        report.grids_done.append((preset, model, step))


def _run_one(
    key: results.RunKey, source: str, context: _Context, task_source: str | None = None
) -> Failure | None:
    log_dir = key.run_dir(context.work_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    # The later steps read the fine-tuned model from work_dir. A checkout with committed results
    # but without runs/ (a fresh clone, after a step was added) must fine-tune it again first.
    model_saved = (log_dir / "model" / "metrics.json").is_file()
    for step in STEPS:
        retrain = step == STEPS[0] and not model_saved
        done = results.is_complete(context.results_dir, key, tables=STEP_TABLES[step])
        if done and not retrain:
            continue
        executed = log_dir / f"{step}.ipynb"
        started = time.perf_counter()
        later = STEPS[STEPS.index(step) + 1 :]
        context.say(f"{key.model} · {key.task} · seed {key.seed}: {step} ...")
        try:
            context.execute(step, executed, {**key.as_dict(), "model": source,
                                             "task": task_source or key.task})  # fmt: skip
        except Exception as error:  # a failing run must not stop the batch
            context.say(f"  {step} failed after {time.perf_counter() - started:.0f} s")
            return Failure(key, step, executed, _error_line(error))
        context.say(f"  {step} done in {time.perf_counter() - started:.0f} s"
                    + (f"; next: {later[0]}" if later else "; run complete"))  # fmt: skip
    return None


def notebook_parameters(path: Path) -> set[str]:
    """Names assigned in a notebook's cell tagged ``parameters`` (what papermill can set)."""
    return set(parameter_defaults(path))


def parameter_defaults(path: Path) -> dict[str, object]:
    """Each parameter of a notebook with its default value (``...`` where the default is not a
    plain literal), read from the cell tagged ``parameters``."""
    import jupytext

    for cell in jupytext.read(path).cells:
        if "parameters" in cell.metadata.get("tags", []):
            defaults: dict[str, object] = {}
            for node in ast.parse(cell.source).body:
                if not isinstance(node, ast.Assign):
                    continue
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, SyntaxError):
                    value = ...
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        defaults[target.id] = value
            return defaults
    raise ValueError(f"{path} has no cell tagged 'parameters'")


def check_parameters(parameters: dict, notebooks_dir: Path, steps: Sequence[str]) -> None:
    """Refuse, before any notebook runs, a parameter no notebook takes or a value of another
    type than the notebooks' default (an integer where an integer is expected, ...)."""
    defaults = {step: parameter_defaults(notebooks_dir / f"{step}.py") for step in steps}
    known = sorted(set().union(*defaults.values()))
    for name, value in parameters.items():
        users = {step: d[name] for step, d in defaults.items() if name in d}
        if not users:
            raise ValueError(
                f"no experiment notebook has the parameter {name!r}; parameters they take: {known}"
            )
        for step, default in users.items():
            if not _same_kind(value, default):
                raise ValueError(
                    f"--param {name}={value!r}: notebooks/{step}.py expects "
                    f"{_kind_name(default)} (its default is {default!r}); pass e.g. "
                    f"{name}={default!r}"
                )


def _same_kind(value: object, default: object) -> bool:
    if default is ... or default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def _kind_name(default: object) -> str:
    kinds = {bool: "True or False", int: "an integer", float: "a number", str: "a string",
             list: "a list", tuple: "a list"}  # fmt: skip
    return kinds.get(type(default), type(default).__name__)


def assigned_names(source: str) -> set[str]:
    """The names a cell's top-level ``name = value`` statements assign."""
    return {
        target.id
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _error_line(error: Exception) -> str:
    """The exception a notebook raised, in one line (papermill keeps its name and value)."""
    name = getattr(error, "ename", type(error).__name__)
    value = getattr(error, "evalue", str(error))
    return f"{name}: {value}".strip().splitlines()[0] if value else name

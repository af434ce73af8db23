"""How long the demo preset takes from scratch: seconds per step and minutes per seed, read from
the provenance the runs recorded (``results/<preset>/**/provenance.json``).

    python benchmarks/demo_timing.py                  # results/demo
    python benchmarks/demo_timing.py --preset synthetic
    python benchmarks/demo_timing.py --seeds 1 2      # only the seeds that ran on a quiet machine

Run it after ``python -m layersim run --preset demo`` on a machine with nothing else computing;
the output goes to ``benchmarks/results/<preset>_cpu.txt`` by redirection.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from layersim import results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: all)")
    args = parser.parse_args()
    root = args.results / args.preset
    per_seed: dict[int, float] = defaultdict(float)
    per_step: dict[str, float] = defaultdict(float)
    devices, commits = set(), set()
    names = list(results.STEP_TABLES)
    print(f"# {args.preset} preset: seconds per step, from the runs' provenance ({root})")
    print(f"{'task':<20} {'seed':>4} " + " ".join(f"{h:>10}" for h in [*names, "total"]))
    runs = [k for k in results.find_runs(root) if args.seeds is None or k.seed in args.seeds]
    for key in runs:
        steps = results.read_provenance(args.results, key).get("steps", {})
        seconds = {name: float(step.get("seconds", 0.0)) for name, step in steps.items()}
        devices.update(step.get("device", "?") for step in steps.values())
        commits.update(str(step.get("git_commit", "?"))[:7] for step in steps.values())
        total = sum(seconds.values())
        per_seed[key.seed] += total
        for name, value in seconds.items():
            per_step[name] += value
        cells = " ".join(f"{seconds.get(name, 0):>10.0f}" for name in [*names])
        print(f"{key.task:<20} {key.seed:>4} {cells} {total:>10.0f}")
    for seed, total in sorted(per_seed.items()):
        print(f"seed {seed}: {total / 60:.1f} min for all tasks and steps")
    finetune = per_step.get("finetune", 0.0)
    if finetune:  # the analyses' cost against fine-tuning's, over all runs
        print("each step's time over fine-tuning's: " + ", ".join(
            f"{name} {per_step[name] / finetune:.2f}" for name in names[1:] if name in per_step
        ))  # fmt: skip
    grid_seconds = 0.0
    for model in sorted({key.model for key in runs}):  # once per grid
        grid = results.read_grid_provenance(args.results, args.preset, model).get("steps", {})
        # A grid step compares all of the grid's runs: charge the chosen runs their share.
        chosen = sum(k.model == model for k in runs)
        share_of_runs = chosen / sum(k.model == model for k in results.find_runs(root))
        for name, step in grid.items():
            seconds = float(step.get("seconds", 0.0)) * share_of_runs
            grid_seconds += seconds
            share = f", {seconds / finetune:.3f} of their fine-tuning" if finetune else ""
            print(
                f"grid step {name} ({model}, the chosen runs' share of one call): "
                f"{seconds:.0f} s{share}"
            )
            devices.add(step.get("device", "?"))
            commits.add(str(step.get("git_commit", "?"))[:7])
    if finetune:  # E3-E5's budget (issue 14): at most half of the fine-tuning time
        questions = per_step.get("progress", 0.0) + per_step.get("robustness", 0.0) + grid_seconds
        print(f"E3-E5 (progress, robustness, across) over fine-tuning: {questions / finetune:.2f}")
    print(f"devices: {', '.join(sorted(devices))}; commits: {', '.join(sorted(commits))}")


if __name__ == "__main__":
    main()

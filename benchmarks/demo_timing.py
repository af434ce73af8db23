"""How long a preset takes from scratch: seconds per step, minutes per seed and the analysis steps'
cost against fine-tuning, per model, read from the provenance the runs recorded
(``results/<preset>/**/provenance.json``).

    python benchmarks/demo_timing.py                  # results/demo
    python benchmarks/demo_timing.py --preset models  # MPNet and SmolLM2, one block per model
    python benchmarks/demo_timing.py --seeds 1 2      # only the seeds that ran on a quiet machine

Run it after ``python -m layersim run --preset ...`` on a machine with nothing else computing;
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

NAMES = list(results.STEP_TABLES)


def model_block(results_dir: Path, preset: str, model: str, runs: list, everyone: list) -> set:
    """Print one model's table and summary lines; return the devices and commits seen."""
    per_seed: dict[int, float] = defaultdict(float)
    per_step: dict[str, float] = defaultdict(float)
    seen = set()
    print(f"## {model}")
    print(f"{'task':<20} {'seed':>4} " + " ".join(f"{h:>10}" for h in [*NAMES, "total"]))
    for key in runs:
        steps = results.read_provenance(results_dir, key).get("steps", {})
        seconds = {name: float(step.get("seconds", 0.0)) for name, step in steps.items()}
        seen.update(f"device {step.get('device', '?')}" for step in steps.values())
        seen.update(f"commit {str(step.get('git_commit', '?'))[:7]}" for step in steps.values())
        total = sum(seconds.values())
        per_seed[key.seed] += total
        for name, value in seconds.items():
            per_step[name] += value
        cells = " ".join(f"{seconds.get(name, 0):>10.0f}" for name in NAMES)
        print(f"{key.task:<20} {key.seed:>4} {cells} {total:>10.0f}")
    for seed, total in sorted(per_seed.items()):
        print(f"seed {seed}: {total / 60:.1f} min for all tasks and steps")
    for name in NAMES:
        count = sum(1 for key in runs if name in results.read_provenance(results_dir, key).get(
            "steps", {}))  # fmt: skip
        if count:
            print(f"{name}: {per_step[name] / count / 60:.1f} min per run (mean of {count})")
    finetune = per_step.get("finetune", 0.0)
    if not finetune:
        return seen
    print("each step's time over fine-tuning's: " + ", ".join(
        f"{name} {per_step[name] / finetune:.2f}" for name in NAMES[1:] if name in per_step
    ))  # fmt: skip
    grid_seconds = 0.0
    grid = results.read_grid_provenance(results_dir, preset, model).get("steps", {})
    # A grid step compares all of the grid's runs: charge the chosen runs their share.
    share_of_runs = len(runs) / max(1, sum(k.model == model for k in everyone))
    for name, step in grid.items():
        seconds = float(step.get("seconds", 0.0)) * share_of_runs
        grid_seconds += seconds
        print(f"grid step {name} (the chosen runs' share of one call): {seconds:.0f} s, "
              f"{seconds / finetune:.3f} of their fine-tuning")  # fmt: skip
        seen.add(f"device {step.get('device', '?')}")
        seen.add(f"commit {str(step.get('git_commit', '?'))[:7]}")
    analysis = sum(per_step[name] for name in NAMES[1:]) + grid_seconds
    print(f"all analysis steps over fine-tuning: {analysis / finetune:.2f}")
    questions = per_step.get("progress", 0.0) + per_step.get("robustness", 0.0) + grid_seconds
    print(f"E3-E5 (progress, robustness, across) over fine-tuning: {questions / finetune:.2f}")
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: all)")
    args = parser.parse_args()
    root = args.results / args.preset
    everyone = results.find_runs(root)
    runs = [k for k in everyone if args.seeds is None or k.seed in args.seeds]
    print(f"# {args.preset} preset: seconds per step, from the runs' provenance ({root})")
    seen = set()
    for model in dict.fromkeys(key.model for key in runs):
        seen |= model_block(args.results, args.preset, model,
                            [k for k in runs if k.model == model], everyone)  # fmt: skip
    print("; ".join(sorted(seen)))


if __name__ == "__main__":
    main()

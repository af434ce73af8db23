"""How long the demo preset takes from scratch: seconds per step and minutes per seed, read from
the provenance the runs recorded (``results/<preset>/**/provenance.json``).

    python benchmarks/demo_timing.py                  # results/demo
    python benchmarks/demo_timing.py --preset synthetic

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
    args = parser.parse_args()
    root = args.results / args.preset
    per_seed: dict[int, float] = defaultdict(float)
    per_step: dict[str, float] = defaultdict(float)
    devices, commits = set(), set()
    names = list(results.STEP_TABLES)
    print(f"# {args.preset} preset: seconds per step, from the runs' provenance ({root})")
    print(f"{'task':<20} {'seed':>4} " + " ".join(f"{h:>10}" for h in [*names, "total"]))
    for key in results.find_runs(root):
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
    for model in sorted({key.model for key in results.find_runs(root)}):  # once per grid
        grid = results.read_grid_provenance(args.results, args.preset, model).get("steps", {})
        for name, step in grid.items():
            seconds = float(step.get("seconds", 0.0))
            share = f", {seconds / finetune:.3f} of all fine-tuning" if finetune else ""
            print(f"grid step {name} ({model}, once after all runs): {seconds:.0f} s{share}")
            devices.add(step.get("device", "?"))
            commits.add(str(step.get("git_commit", "?"))[:7])
    print(f"devices: {', '.join(sorted(devices))}; commits: {', '.join(sorted(commits))}")


if __name__ == "__main__":
    main()

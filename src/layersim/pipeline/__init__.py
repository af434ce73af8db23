"""Pipeline: what a run is and how it is executed.

Presets (:mod:`.presets`), fine-tuning (:mod:`.finetune`) and scoring (:mod:`.evaluation`), the
shared forward pass of a run (:mod:`.passes`), the notebooks' preamble and closing
(:mod:`.step_run`), what each experiment step computes (:mod:`.steps`) and the papermill grid
runner behind ``python -m layersim run`` (:mod:`.batch`).

May import: :mod:`layersim.models`, :mod:`layersim.tasks`, :mod:`layersim.stats`,
:mod:`layersim.results`, :mod:`layersim.cka`; never :mod:`layersim.analysis` or
:mod:`layersim.book` (checked by import-linter, ``.importlinter``).
"""

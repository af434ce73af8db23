"""Statistics of CKA matrices and layer signals: pure functions of tensors and frames.

Block structure of a CKA matrix with bootstrap and permutation baselines (:mod:`.blocks`) and
layer-redundancy signals with the layers each drops (:mod:`.redundancy`).

May import: :mod:`layersim.cka` only (checked by import-linter, ``.importlinter``).
"""

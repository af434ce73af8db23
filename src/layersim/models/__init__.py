"""Models: everything that reads or changes a Hugging Face model.

The one table of model families (:mod:`.architectures`: layer stack, embedding output, decoder
or not), per-layer pooled representations (:mod:`.reps`), the pooling and heads that differ
between families (:mod:`.families`), keeping or dropping layers with the head
(:mod:`.truncate`), scoring pruned models from cached hidden states (:mod:`.layer_cache`), linear
probes on a frozen model (:mod:`.probe`), real pretrained models built from registry packages
(:mod:`.packaged`) and the device (:mod:`.devices`).

May import: :mod:`layersim.cka`, :mod:`layersim.stats`, :mod:`layersim.tasks`,
:mod:`layersim.results` (checked by import-linter, ``.importlinter``).
"""

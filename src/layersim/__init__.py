"""layersim: layer similarity and layer redundancy in transformers.

The library behind the executable edition of Phang, Liu & Bowman (2021),
"Fine-Tuned Transformers Show Clusters of Similar Representations Across Layers".

>>> import layersim
>>> result = layersim.layer_cka("minilm-l6", sentences)   # doctest: +SKIP
>>> result.matrix, result.layers, result.to_frame()       # doctest: +SKIP

The names below are imported on first use, so ``import layersim`` stays light.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("layersim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

#: Top-level names and the module each comes from (loaded on first use).
_EXPORTS = {
    "layer_cka": "layersim.api",
    "LayerCKA": "layersim.api",
    "SmallSampleWarning": "layersim.api",
    "cka_matrix": "layersim.cka",
    "linear_cka": "layersim.cka",
    "keep_first_layers": "layersim.models.truncate",
    "drop_layers": "layersim.models.truncate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):  # PEP 562: layersim.layer_cka imports layersim.api then
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'layersim' has no attribute {name!r}")

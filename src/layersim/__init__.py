"""layersim: layer similarity and layer redundancy in transformers.

The library behind the executable edition of Phang, Liu & Bowman (2021),
"Fine-Tuned Transformers Show Clusters of Similar Representations Across Layers".
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("layersim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

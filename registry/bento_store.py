"""Import exported bundles into the BentoML model store (honours BENTOML_HOME), with lineage.

The store version is derived from the MLflow version and run, so exporting the same version
again finds the existing model instead of creating a duplicate.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from training.dataset import file_sha256


@dataclass
class Imported:
    tag: str
    created: bool


def store_version(mlflow_version: str, run_id: str) -> str:
    return f"v{mlflow_version}-{run_id[:12]}"


def file_hashes(bundle: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(Path(bundle).iterdir()) if p.is_file()}


def import_bundle(name: str, bundle: Path, lineage: dict[str, str], metadata: dict | None = None) -> Imported:
    """Copies every file of `bundle` into a new store model `name:v<version>-<run>` unless it exists
    and is already `name:latest`."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{name}:{store_version(lineage['mlflow_version'], lineage['mlflow_run_id'])}"
    try:
        existing = bentoml.models.get(tag)
        if bentoml.models.get(f"{name}:latest").tag == existing.tag:
            return Imported(str(existing.tag), created=False)
        # The services load `name:latest`, which is the newest import. Exporting an older version
        # again (the champion moved back) re-imports it, so serving and images follow the export.
        bentoml.models.delete(tag)
    except NotFound:
        pass
    hashes = file_hashes(bundle)
    with bentoml.models.create(tag, labels=dict(lineage), metadata={**(metadata or {}), **lineage,
                                                                      "sha256": hashes}) as model:
        for path in Path(bundle).iterdir():
            if path.is_file():
                shutil.copy2(path, Path(model.path) / path.name)
    return Imported(str(model.tag), created=True)

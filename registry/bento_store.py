"""Import exported bundles into the BentoML model store (honours BENTOML_HOME), with lineage.

The store version is derived from the MLflow version and run, so exporting the same version
again finds the existing model instead of creating a duplicate. What is served is decided by the
pin (service/pin.py), never by which model was imported last.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from langdetect_ops.integrity import bundle_hashes


@dataclass
class Imported:
    tag: str
    created: bool


def store_version(mlflow_version: str, run_id: str) -> str:
    return f"v{mlflow_version}-{run_id[:12]}"


def import_bundle(name: str, bundle: Path, lineage: dict[str, str], metadata: dict | None = None) -> Imported:
    """Copies every file of `bundle` into a new store model `name:v<version>-<run>` unless it exists."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{name}:{store_version(lineage['mlflow_version'], lineage['mlflow_run_id'])}"
    try:
        return Imported(str(bentoml.models.get(tag).tag), created=False)
    except NotFound:
        pass
    hashes = bundle_hashes(bundle)
    with bentoml.models.create(
        tag, labels=dict(lineage), metadata={**(metadata or {}), **lineage, "sha256": hashes}
    ) as model:
        for path in Path(bundle).iterdir():
            if path.is_file():
                shutil.copy2(path, Path(model.path) / path.name)
    return Imported(str(model.tag), created=True)

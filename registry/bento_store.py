"""Import exported bundles into the BentoML model store (honours BENTOML_HOME), with lineage.

The store version is derived from the MLflow version and run, so exporting the same version
again finds the existing model instead of creating a duplicate. What is served is decided by the
pin (service/pin.py), never by which model was imported last.
"""

from __future__ import annotations

import shutil
import sys
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
    """Copies every file of `bundle` into a new store model `name:v<version>-<run>` unless it exists with
    the same files. A copy with other files (an export by older code of the same version) is replaced, so
    the store never serves a stale bundle under a current tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{name}:{store_version(lineage['mlflow_version'], lineage['mlflow_run_id'])}"
    hashes = bundle_hashes(bundle)
    try:
        existing = bentoml.models.get(tag)
        if existing.info.metadata.get("sha256") == hashes:
            return Imported(str(existing.tag), created=False)
        bentoml.models.delete(tag)
        print(f"note: {tag} held other files than this export; replaced", file=sys.stderr)
    except NotFound:
        pass
    with bentoml.models.create(
        tag, labels=dict(lineage), metadata={**(metadata or {}), **lineage, "sha256": hashes}
    ) as model:
        for path in Path(bundle).iterdir():
            if path.is_file():
                shutil.copy2(path, Path(model.path) / path.name)
    return Imported(str(model.tag), created=True)

"""Import exported bundles into the BentoML model store (honours BENTOML_HOME), with lineage.

The store version is derived from the MLflow version and run, so exporting the same version
again finds the existing model instead of creating a duplicate. What is served is decided by the
pin (service/pin.py), never by which model was imported last.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
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
    stored = {**(metadata or {}), **lineage, "sha256": hashes}
    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        return Imported(_create(tag, bundle, stored, lineage), created=True)
    if existing.info.metadata.get("sha256") == hashes:
        return Imported(str(existing.tag), created=False)
    with tempfile.TemporaryDirectory() as tmp:
        # Kept until the new copy is complete: a failed copy (a full disk) puts the old one back.
        backup = bentoml.models.export_model(tag, str(Path(tmp) / "stale.bentomodel"))
        bentoml.models.delete(tag)
        try:
            created = _create(tag, bundle, stored, lineage)
        except BaseException:
            bentoml.models.import_model(backup)
            raise
    print(f"note: {tag} held other files than this export; replaced", file=sys.stderr)
    return Imported(created, created=True)


def _create(tag: str, bundle: Path, metadata: dict, labels: dict[str, str]) -> str:
    import bentoml

    with bentoml.models.create(tag, labels=dict(labels), metadata=metadata) as model:
        for path in Path(bundle).iterdir():
            if path.is_file():
                shutil.copy2(path, Path(model.path) / path.name)
    return str(model.tag)

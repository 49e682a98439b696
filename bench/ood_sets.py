"""The out-of-domain evaluation sets that `langdetect ood-set` writes (training/ood.py), as the bench reads them.

Each CSV (labels,text,source) is checked against the sha256 in its manifest, counted per language and per
source type (the part of `source` before the colon: debconf, appstream, udhr) and cut into the same slices
as the test split. A set whose file is missing is recorded as not built, with the command that builds it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from langdetect_ops.config import OOD_SETS
from langdetect_ops.slices import FULL_TEXT, TextSet, evaluation_sets, read_labelled_rows, stratified_sample

BUILD_COMMAND = "langdetect ood-set"


@dataclass
class OodSet:
    key: str
    record: dict  # what results.json says about the set (before any scores)
    slices: list[TextSet]  # empty when the set is not built or unreadable


def load_ood_sets(folder: Path, per_language: int | None) -> list[OodSet]:
    """Every set of OOD_SETS, built or not; `per_language` subsamples like the test split (--quick)."""
    manifest = read_manifest(folder / "manifest.json")
    return [load_set(folder, key, title, manifest, per_language) for key, title in OOD_SETS]


def read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_set(folder: Path, key: str, title: str, manifest: dict | None, per_language: int | None) -> OodSet:
    path = folder / f"{key}.csv"
    record = {"name": title, "path": str(path)}
    if not path.is_file():
        return OodSet(key, {**record, "built": False, "reason": f"not built: run `{BUILD_COMMAND}`"}, [])
    data = path.read_bytes()
    try:
        labels, texts, sources = read_labelled_rows(data)
    except (KeyError, ValueError) as exc:  # a file of another shape: say so, score the other sets
        return OodSet(key, {**record, "built": True, "error": f"unreadable: {type(exc).__name__}: {exc}"}, [])
    if not texts:
        return OodSet(key, {**record, "built": True, "error": f"no texts: rebuild with `{BUILD_COMMAND}`"}, [])
    sha256 = hashlib.sha256(data).hexdigest()
    record |= {"built": True, "sha256": sha256, **manifest_check(manifest, key, sha256)}
    record |= {"file_texts": len(texts), "counts": counts(labels, sources)}
    if per_language:
        texts, labels = stratified_sample(texts, labels, per_language)
    record["texts_per_language"] = dict(sorted(Counter(labels).items()))
    return OodSet(key, record, evaluation_sets(texts, labels, FULL_TEXT))


def manifest_check(manifest: dict | None, key: str, sha256: str) -> dict:
    """Whether the file is the one its manifest describes (a stale or hand-edited file is flagged)."""
    if manifest is None:
        return {"manifest": f"no manifest.json beside it: rebuild with `{BUILD_COMMAND}`"}
    described = manifest.get("sets", {}).get(key)
    found = {k: manifest[k] for k in ("builder_version", "created_at") if k in manifest}
    if not described:
        return {**found, "manifest": f"not in manifest.json: rebuild with `{BUILD_COMMAND}`"}
    if described.get("sha256") != sha256:
        return {**found, "manifest": f"sha256 differs from manifest.json: rebuild with `{BUILD_COMMAND}`"}
    return {**found, "manifest": "matches"}


def counts(labels: list[str], sources: list[str]) -> dict:
    """Texts per language, and per source type and language: the manifest's own shape."""
    by_type: dict[str, Counter] = defaultdict(Counter)
    for label, source in zip(labels, sources):
        by_type[source.split(":")[0]][label] += 1
    return {
        "per_language": dict(sorted(Counter(labels).items())),
        "per_source_type": {kind: dict(sorted(langs.items())) for kind, langs in sorted(by_type.items())},
    }

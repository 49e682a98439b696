"""Which stored models the services load: the ones `langdetect export --alias champion` pinned.

Export writes the pin into the BentoML home ($BENTOML_HOME/langdetect/pin.json), next to the store it
describes, so a test's temp BENTOML_HOME never moves the user's pin. It names exact store tags, never
`:latest`: exporting another version changes what is served only through the alias.
LANGDETECT_ONNX_MODEL / LANGDETECT_TORCH_MODEL override it; the images set them to the tags they carry.

LANGDETECT_MODEL_DIR replaces the store altogether: the service then declares no BentoModel (so a bento
built that way packages no model) and loads the bundle that `langdetect fetch-model` wrote there (the
fleet's model-less images, fed by an init container).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

PIN_ENV = {"onnx": "LANGDETECT_ONNX_MODEL", "torch": "LANGDETECT_TORCH_MODEL"}
MODEL_DIR_ENV = "LANGDETECT_MODEL_DIR"


class NoPinnedModel(RuntimeError):
    """Nothing tells the service which model to load."""


def pin_path() -> Path:
    from bentoml._internal.configuration.containers import BentoMLContainer

    return Path(BentoMLContainer.bentoml_home.get()) / "langdetect" / "pin.json"


def read_pin() -> dict | None:
    try:
        return json.loads(pin_path().read_text())
    except FileNotFoundError:
        return None


def write_pin(record: dict) -> Path:
    """Atomically: a reader (a server starting) sees the old pin or the new one, never half of one."""
    path = pin_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(record, handle, indent=1)
    os.replace(handle.name, path)
    return path


def pinned_tag(kind: str) -> str:
    """The store tag of the `onnx` or `torch` model to serve."""
    if tag := os.environ.get(PIN_ENV[kind]):
        return tag
    pin = read_pin()
    if pin and pin.get(kind):
        return pin[kind]
    raise NoPinnedModel(
        f"no {kind} model is pinned for serving: run `langdetect export --alias champion` "
        f"(writes {pin_path()}), or set {PIN_ENV[kind]} to a store tag"
    )


def model_dir() -> Path | None:
    """The fetched bundle to serve instead of the BentoML store, when LANGDETECT_MODEL_DIR is set."""
    value = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(value) if value else None


def stored_model(kind: str):
    """The BentoModel class attribute of an entry service: the pinned store model, or None when the
    model comes from LANGDETECT_MODEL_DIR (then `bentoml build` packages no model)."""
    import bentoml

    return None if model_dir() else bentoml.models.BentoModel(pinned_tag(kind))

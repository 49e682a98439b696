"""The model under test: the @champion version (or --version N), its export directory and store tags."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from langdetect_ops import config
from langdetect_ops.errors import UserError


@dataclass
class ModelUnderTest:
    name: str
    version: str
    alias: str | None
    run_id: str
    export_dir: Path
    store_tags: dict[str, str]  # BentoML store: {"onnx": ..., "torch": ...}
    sha256: dict[str, str]  # of the files benchmarked
    registry_tags: dict[str, str]

    def as_dict(self) -> dict:
        return {**asdict(self), "export_dir": str(self.export_dir)}


def resolve_model(
    alias: str | None = None, version: str | None = None, export_root: Path = config.ARTIFACTS_DIR / "export"
) -> ModelUnderTest:
    from langdetect_ops.config import FP32_FILE, INT8_FILE
    from langdetect_ops.integrity import file_sha256
    from registry.bento_store import store_version
    from registry.models import registry_client, resolve

    model_version = resolve(registry_client(), alias=alias, version=version)
    number = str(model_version.version)
    export_dir = Path(export_root) / f"v{number}"
    files = {
        "onnx_int8": export_dir / "onnx" / INT8_FILE,
        "onnx_fp32": export_dir / FP32_FILE,
        "torch": export_dir / "torch" / "model.safetensors",
    }
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise UserError(
            f"{config.REGISTERED_MODEL} version {number} has no export ({', '.join(missing)} missing): "
            f"run `langdetect export --version {number}` first"
        )
    suffix = store_version(number, model_version.run_id)
    return ModelUnderTest(
        model_version.name,
        number,
        None if version else (alias or config.CHAMPION_ALIAS),
        model_version.run_id,
        export_dir,
        {"onnx": f"{config.BENTO_ONNX_MODEL}:{suffix}", "torch": f"{config.BENTO_TORCH_MODEL}:{suffix}"},
        {kind: file_sha256(path) for kind, path in files.items()},
        dict(model_version.tags or {}),
    )


def require_in_store(model: ModelUnderTest) -> None:
    """`bentoml serve` loads the models from BENTOML_HOME; say how to put them there when they are not."""
    import bentoml
    from bentoml.exceptions import NotFound

    for tag in model.store_tags.values():
        try:
            bentoml.models.get(tag)
        except NotFound as exc:
            raise UserError(
                f"{tag} is not in the BentoML store {_store_home()}: run "
                f"`langdetect export --version {model.version}` with the same BENTOML_HOME, "
                f"or pass --skip-serving"
            ) from exc


def _store_home() -> str:
    from bentoml._internal.configuration.containers import BentoMLContainer

    return str(BentoMLContainer.bentoml_home.get())

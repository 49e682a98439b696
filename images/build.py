"""Two bentos, two images: `bentoml build` then `bentoml containerize`, from the BentoML store.

- CPU (bentofile.yaml, entry LanguageDetectorCPU): onnxruntime + tokenizers + numpy, the int8 model;
- GPU (bentofile.gpu.yaml, entry LanguageDetector): adds torch (CUDA build) and transformers.

Both carry the models pinned by `langdetect export --alias champion` (service/pin.py), and the bento
sets LANGDETECT_ONNX_MODEL / LANGDETECT_TORCH_MODEL to their tags.

The model-less variants (cpu-modelless, gpu-modelless: the fleet's images) are built from the same
bentofiles with LANGDETECT_MODEL_DIR set, so the entry service declares no model and the bento packages
none; at run time the service reads the bundle that `langdetect fetch-model` (an init container) wrote
to /models/langdetect.

Images are tagged `<bento name>:<bento version>` and `:latest`, and labelled with the lineage of every
model they carry (store tag, MLflow version and run, sha256 of the weights file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from images.base import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_STRIP_IMAGE,
    DEFAULT_UV_IMAGE,
    base_image,
    strip_image,
    uv_image,
)
from langdetect_ops.containers import image_exists, inspect_image, require_engine, run_logged, tool_env
from langdetect_ops.errors import UserError

REPO = Path(__file__).resolve().parent.parent
IMAGE_PREFIX_ENV = "LANGDETECT_IMAGE_PREFIX"
BENTOML = [sys.executable, "-m", "bentoml"]
LABEL_PREFIX = "langdetect"


FLEET_MODEL_DIR = "/models/langdetect"  # where the init container's fetcher writes (deploy/k8s)


@dataclass(frozen=True)
class ImageSpec:
    kind: str
    bentofile: str
    models: tuple[str, ...]  # the pinned models its entry service loads (service/pin.py)
    uv_overrides: str | None = None  # dependencies dropped when locking (a uv overrides file)
    model_dir: str | None = None  # model-less: the service loads the fetched bundle from here

    @property
    def baked_models(self) -> tuple[str, ...]:
        return () if self.model_dir else self.models


CPU_OVERRIDES = "service/requirements-cpu-overrides.txt"
SPECS = {
    "cpu": ImageSpec("cpu", "bentofile.yaml", ("onnx",), CPU_OVERRIDES),
    "gpu": ImageSpec("gpu", "bentofile.gpu.yaml", ("onnx", "torch")),
    "cpu-modelless": ImageSpec("cpu-modelless", "bentofile.yaml", ("onnx",), CPU_OVERRIDES, FLEET_MODEL_DIR),
    "gpu-modelless": ImageSpec("gpu-modelless", "bentofile.gpu.yaml", ("onnx", "torch"), None, FLEET_MODEL_DIR),
}


@dataclass
class BuiltImage:
    kind: str
    bento: str
    image: str
    size_bytes: int
    bento_seconds: float
    containerize_seconds: float
    labels: dict[str, str]

    @property
    def repository(self) -> str:
        return self.image.rsplit(":", 1)[0]


def build_images(kinds: list[str], log_dir: Path | None = None) -> list[BuiltImage]:
    require_engine()
    require_local_images()
    return [build_image(SPECS[kind], log_dir) for kind in kinds]


def require_local_images() -> None:
    """The default base, uv and strip images exist only where `langdetect images base` made them."""
    defaults = (
        (base_image(), DEFAULT_BASE_IMAGE),
        (uv_image(), DEFAULT_UV_IMAGE),
        (strip_image(), DEFAULT_STRIP_IMAGE),
    )
    for ref, default in defaults:
        if ref == default and not image_exists(ref):
            raise UserError(
                f"image {ref} is missing: run `langdetect images base` first (or set LANGDETECT_BASE_IMAGE / "
                "LANGDETECT_UV_IMAGE / LANGDETECT_STRIP_IMAGE to images you can pull)"
            )


def image_repository(kind: str) -> str:
    """`langdetect-cpu` / `langdetect-gpu`, after an optional prefix: the tests set one, so that their
    smoke-model images never replace the user's `langdetect-cpu:latest`."""
    return f"{os.environ.get(IMAGE_PREFIX_ENV, '')}langdetect-{kind}"


def build_image(spec: ImageSpec, log_dir: Path | None) -> BuiltImage:
    log = log_dir / f"build-{spec.kind}.log" if log_dir else None
    started = time.monotonic()
    bento = build_bento(spec, log)
    bento_seconds = time.monotonic() - started
    version = bento.split(":")[1]
    repository = image_repository(spec.kind)
    labels = lineage_labels(bento)
    if spec.model_dir:
        labels[f"{LABEL_PREFIX}.model_dir"] = spec.model_dir
    started = time.monotonic()
    containerize(bento, [f"{repository}:{version}", f"{repository}:latest"], labels, log)
    return BuiltImage(
        spec.kind,
        bento,
        f"{repository}:{version}",
        int(inspect_image(f"{repository}:{version}")["Size"]),
        bento_seconds,
        time.monotonic() - started,
        labels,
    )


def build_bento(spec: ImageSpec, log: Path | None) -> str:
    """`bentoml build` of the spec's bentofile with the pinned models; returns the bento tag."""
    extra = {"UV_OVERRIDE": str(REPO / spec.uv_overrides)} if spec.uv_overrides else {}
    # With LANGDETECT_MODEL_DIR the service module declares no BentoModel: nothing to package. A baked
    # build must not inherit one from the shell.
    extra["LANGDETECT_MODEL_DIR"] = spec.model_dir or ""
    with tempfile.TemporaryDirectory() as tmp:
        bentofile = pinned_bentofile(spec, Path(tmp))
        result = subprocess.run(
            [*BENTOML, "build", "-f", str(bentofile), "--output", "tag", str(REPO)],
            cwd=REPO,
            env=tool_env(**extra),
            capture_output=True,
            text=True,
        )
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ bentoml build -f {spec.bentofile} (+ pinned model envs)\n{result.stdout}{result.stderr}")
    tags = [line.split("__tag__:", 1)[1].strip() for line in result.stdout.splitlines() if "__tag__:" in line]
    if result.returncode != 0 or not tags:
        raise UserError(f"bentoml build -f {spec.bentofile} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return tags[-1]


def pinned_bentofile(spec: ImageSpec, directory: Path) -> Path:
    """The spec's bentofile plus the pinned store tags as environment variables of the bento: the image
    then serves exactly the models it carries, whatever is exported or pinned later on the build host.
    A model-less bento gets LANGDETECT_MODEL_DIR instead, and its own name and image label."""
    import yaml

    from service.pin import MODEL_DIR_ENV, PIN_ENV, NoPinnedModel, pinned_tag

    data = yaml.safe_load((REPO / spec.bentofile).read_text())
    try:
        pins = [{"name": PIN_ENV[kind], "value": pinned_tag(kind)} for kind in spec.baked_models]
    except NoPinnedModel as exc:
        raise UserError(str(exc)) from exc
    if spec.model_dir:
        pins.append({"name": MODEL_DIR_ENV, "value": spec.model_dir})
        data["name"] = f"langdetect-{spec.kind}"
        data["labels"] = {**(data.get("labels") or {}), "image": spec.kind}
    data["envs"] = [*(data.get("envs") or []), *pins]
    path = directory / Path(spec.bentofile).name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def containerize(bento: str, image_tags: list[str], labels: dict[str, str], log: Path | None) -> None:
    """`bentoml containerize` with host networking (the only way out of a build here)."""
    options = [
        "network=host",
        "progress=plain",
        f"build-arg=LANGDETECT_BASE_IMAGE={base_image()}",
        f"build-arg=LANGDETECT_UV_IMAGE={uv_image()}",
        f"build-arg=LANGDETECT_STRIP_IMAGE={strip_image()}",
        *[f"label={k}={v}" for k, v in labels.items()],
    ]
    cmd = [
        *BENTOML,
        "containerize",
        bento,
        "--backend",
        "docker",
        *[a for tag in image_tags for a in ("--image-tag", tag)],
        *[a for o in options for a in ("--opt", o)],
    ]
    # BentoML copies the bento to a temp dir and then refuses to read its Dockerfile.template there
    # unless that dir lies under the working directory (bentoml 1.4.39), so run from the temp root.
    run_logged(cmd, log, cwd=Path(tempfile.gettempdir()).resolve())
    trim_build_cache()


def trim_build_cache() -> None:
    """Each build leaves its `runtime-venv` stage in BuildKit's cache (5 GB for a GPU image); keep the cache
    to a bound, least recently used first, so the uv download cache of the last builds stays."""
    from langdetect_ops.containers import docker

    keep = os.environ.get("LANGDETECT_BUILD_CACHE_KEEP", "12GB")
    docker("builder", "prune", "-f", "--keep-storage", keep, check=False)


def lineage_labels(bento_tag: str) -> dict[str, str]:
    """OCI title/version, and per model: store tag, MLflow version and run, sha256 of the weights."""
    import bentoml

    bento = bentoml.bentos.get(bento_tag)
    labels = {"org.opencontainers.image.title": bento.tag.name, "org.opencontainers.image.version": bento.tag.version}
    for info in bento.info.all_models:
        model = bentoml.models.get(info.tag)
        kind = model.tag.name.removeprefix("langdetect-")  # onnx | torch
        weights = weights_file(Path(model.path))
        labels.update(
            {
                f"{LABEL_PREFIX}.{kind}.model": str(model.tag),
                f"{LABEL_PREFIX}.{kind}.mlflow_version": model.info.labels.get("mlflow_version", ""),
                f"{LABEL_PREFIX}.{kind}.mlflow_alias": model.info.labels.get("mlflow_alias", ""),
                f"{LABEL_PREFIX}.{kind}.mlflow_run_id": model.info.labels.get("mlflow_run_id", ""),
                f"{LABEL_PREFIX}.{kind}.weights": weights,
                f"{LABEL_PREFIX}.{kind}.sha256": model.info.metadata.get("sha256", {}).get(weights, ""),
            }
        )
    return labels


def weights_file(model_dir: Path) -> str:
    """The largest file of a stored model: model.int8.onnx, model.safetensors."""
    files = [p for p in model_dir.iterdir() if p.is_file() and p.name != "model.yaml"]
    return max(files, key=lambda p: p.stat().st_size).name

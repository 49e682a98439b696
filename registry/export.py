"""`langdetect export`: registry version -> ONNX fp32 -> int8 -> fp32 check + parity gate -> MLflow -> BentoML."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from langdetect_ops import config
from langdetect_ops.errors import UserError
from langdetect_ops.fetch import BUNDLE_PATH_TAG, BUNDLE_SHA256_TAG
from langdetect_ops.integrity import bundle_hashes, file_sha256
from registry import bento_store, parity
from registry.models import registry_client, resolve
from registry.onnx_export import export_onnx, quantize_int8
from service.inference import OnnxClassifier, TorchClassifier, softmax, write_labels
from service.ngrams import NGRAM_FILE, NgramModel
from service.pin import write_pin
from training import ngram_model
from training.dataset import load_dataset

SERVING_DIR = "serving"  # the export run's artifact folder that `langdetect fetch-model` downloads


@dataclass
class ExportSummary:
    version: str
    alias: str | None
    run_id: str
    report: parity.ParityReport
    fp32: parity.Fp32Report  # the fp32 ONNX graph against torch, before quantisation
    sizes: dict[str, int]
    tags: dict[str, str]  # BentoML store tags: {"onnx": ..., "torch": ...}
    created: dict[str, bool]
    pinned: Path | None  # the serving pin this export wrote (alias exports only)


def run_export(
    alias: str | None = None,
    version: str | None = None,
    data_dir: Path | None = None,
    out_dir: Path = config.ARTIFACTS_DIR / "export",
    tamper=None,
    activation_scales: str = config.DEFAULT_INT8_ACTIVATION_SCALES,
) -> ExportSummary:
    """`tamper` (tests only) receives the int8 path before the gate, to prove the gate can fail.
    `activation_scales`: "token" makes each text's answer independent of its batch (quantize_int8)."""
    client = registry_client()
    model_version = resolve(client, alias=alias, version=version)
    alias = None if version is not None else (alias or config.CHAMPION_ALIAS)
    test = _test_split(client, model_version, data_dir)
    out = Path(out_dir) / f"v{model_version.version}"
    shutil.rmtree(out, ignore_errors=True)
    torch_dir, onnx_dir = _build_bundles(client, model_version, out, activation_scales)
    if tamper:
        tamper(onnx_dir / config.INT8_FILE)
    report, fp32 = _parity(torch_dir, onnx_dir, out / config.FP32_FILE, test)
    sizes = {
        "onnx_fp32_bytes": (out / config.FP32_FILE).stat().st_size,
        "onnx_int8_bytes": (onnx_dir / config.INT8_FILE).stat().st_size,
    }
    _log_export(client, model_version, out, torch_dir, onnx_dir, report, fp32, sizes, activation_scales)
    parity.enforce_fp32(fp32)  # first: a wrong fp32 graph makes the int8 figures meaningless
    parity.enforce(report)
    lineage = {
        "mlflow_model": model_version.name,
        "mlflow_version": str(model_version.version),
        "mlflow_alias": alias or "",
        "mlflow_run_id": model_version.run_id,
        "mlflow_tracking_uri": config.tracking_uri(),
    }
    onnx = bento_store.import_bundle(
        config.BENTO_ONNX_MODEL, onnx_dir, lineage, {"parity": report.as_dict(), **sizes, "format": "onnx-int8"}
    )
    torch_ = bento_store.import_bundle(config.BENTO_TORCH_MODEL, torch_dir, lineage, {"format": "transformers"})
    tags = {"onnx": onnx.tag, "torch": torch_.tag}
    # Serving follows the alias: only an alias export moves the pin; `--version N` only fills the store.
    pinned = (
        write_pin({**lineage, **tags, "pinned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if alias
        else None
    )
    return ExportSummary(
        str(model_version.version),
        alias,
        model_version.run_id,
        report,
        fp32,
        sizes,
        tags,
        {"onnx": onnx.created, "torch": torch_.created},
        pinned,
    )


def _test_split(client, model_version, data_dir: Path | None):
    """The gate runs on the test split of the data the model was trained on, unless told otherwise."""
    if data_dir is None:
        logged = client.get_run(model_version.run_id).data.params.get("data_dir")
        if not logged:
            raise UserError(f"version {model_version.version}'s run logged no data_dir; pass --data DIR")
        data_dir = Path(logged)
    return load_dataset(Path(data_dir))["test"]


def _build_bundles(client, model_version, out: Path, activation_scales: str) -> tuple[Path, Path]:
    """torch/: checkpoint for the GPU runner; onnx/: int8 model, tokenizer.json, labels.json (and the
    run's ngrams.npz) only."""
    import mlflow

    components = mlflow.transformers.load_model(
        f"models:/{model_version.name}/{model_version.version}", return_type="components"
    )
    model = components["model"]
    max_length = model.config.max_position_embeddings - 2
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    torch_dir, onnx_dir = out / "torch", out / "onnx"
    model.save_pretrained(torch_dir)
    with tempfile.TemporaryDirectory() as tmp:
        # The run's own tokenizer.json: byte-identical to what training used.
        logged = Path(
            mlflow.artifacts.download_artifacts(run_id=model_version.run_id, artifact_path="tokenizer", dst_path=tmp)
        )
        for bundle in (torch_dir, onnx_dir):
            bundle.mkdir(parents=True, exist_ok=True)
            shutil.copy2(logged / "tokenizer.json", bundle / "tokenizer.json")
            write_labels(bundle, labels, max_length)
        shutil.copy2(logged / "tokenizer_config.json", torch_dir / "tokenizer_config.json")
        # The ensemble's n-gram model, when the run fitted one: the same file in both bundles, rewritten in
        # the current format (lossless, and smaller in the image than the first format).
        if ngrams := ngram_model.download_logged(model_version.run_id, Path(tmp)):
            NgramModel.load(ngrams).save(onnx_dir / NGRAM_FILE)
            shutil.copy2(onnx_dir / NGRAM_FILE, torch_dir / NGRAM_FILE)
    export_onnx(model, out / config.FP32_FILE, max_length)
    quantize_int8(out / config.FP32_FILE, onnx_dir / config.INT8_FILE, activation_scales)
    return torch_dir, onnx_dir


def _parity(torch_dir: Path, onnx_dir: Path, fp32_path: Path, test) -> tuple[parity.ParityReport, parity.Fp32Report]:
    """The int8 gate on probabilities, and the fp32 check on logits (the same test texts)."""
    torch_logits = TorchClassifier(torch_dir, device="cpu").text_logits(test.texts)
    fp32_logits = OnnxClassifier(onnx_dir, model_file=str(fp32_path.resolve())).text_logits(test.texts)
    int8_probs = OnnxClassifier(onnx_dir).probabilities(test.texts)
    report = parity.compare(softmax(torch_logits), softmax(fp32_logits), int8_probs, test.labels)
    return report, parity.compare_fp32(torch_logits, fp32_logits)


def _log_export(
    client,
    model_version,
    out: Path,
    torch_dir: Path,
    onnx_dir: Path,
    report,
    fp32,
    sizes: dict[str, int],
    activation_scales: str,
) -> None:
    """An export run holds the ONNX files, the parity report (with the fp32 check) and the serving bundle
    (serving/onnx, serving/torch: what `langdetect fetch-model` downloads); tags on the version link to it
    and record the sha256 of every bundle file, which the fetcher checks."""
    import mlflow

    with mlflow.start_run(run_name=f"export-v{model_version.version}-{time.strftime('%Y%m%d-%H%M%S')}") as run:
        mlflow.set_tags(
            {
                "stage": "export",
                "mlflow_model": model_version.name,
                "mlflow_version": str(model_version.version),
                "source_run_id": model_version.run_id,
            }
        )
        mlflow.log_param("int8_activation_scales", activation_scales)
        mlflow.log_metrics({**sizes, **{k: float(v) for k, v in report.as_dict().items()}})
        mlflow.log_metrics({f"fp32_{k}": float(v) for k, v in fp32.as_dict().items()})
        mlflow.log_artifact(str(out / config.FP32_FILE), artifact_path="onnx")
        mlflow.log_artifact(str(onnx_dir / config.INT8_FILE), artifact_path="onnx")
        report_path = out / "parity.json"
        report_path.write_text(json.dumps({**report.as_dict(), "fp32_check": fp32.as_dict()}, indent=1))
        mlflow.log_artifact(str(report_path), artifact_path="onnx")
        bundles = (("onnx", onnx_dir), ("torch", torch_dir))
        passed = report.passed and fp32.passed
        if passed:  # a bundle that fails a gate is never offered to fetchers
            for kind, bundle in bundles:
                mlflow.log_artifacts(str(bundle), artifact_path=f"{SERVING_DIR}/{kind}")
    tags = {
        "export_run_id": run.info.run_id,
        "onnx_fp32_sha256": file_sha256(out / config.FP32_FILE),
        "onnx_int8_sha256": file_sha256(onnx_dir / config.INT8_FILE),
        "parity_agreement": f"{report.agreement:.6f}",
        "parity_passed": str(report.passed).lower(),
        "fp32_max_abs_logit_diff": f"{fp32.max_abs_logit_diff:.3g}",
        "fp32_check_passed": str(fp32.passed).lower(),
        "int8_activation_scales": activation_scales,
        **{k: str(v) for k, v in sizes.items()},
    }
    root = client.get_experiment(run.info.experiment_id).artifact_location
    served_at = proxy_path(run.info.artifact_uri, root) if passed else None
    if served_at is not None:
        bundle_sha256 = {
            f"{kind}/{name}": digest for kind, bundle in bundles for name, digest in bundle_hashes(bundle).items()
        }
        tags.update(
            {
                BUNDLE_PATH_TAG: f"{served_at}/{SERVING_DIR}",
                BUNDLE_SHA256_TAG: json.dumps(bundle_sha256, sort_keys=True),
            }
        )
    else:  # a failed gate, or a store no artifact proxy serves: no fetcher may take an older bundle for this one
        for key in (BUNDLE_PATH_TAG, BUNDLE_SHA256_TAG):
            if key in (model_version.tags or {}):
                client.delete_model_version_tag(model_version.name, model_version.version, key)
        if passed:
            print(
                f"note: the export run's artifacts ({run.info.artifact_uri}) are not behind an MLflow artifact "
                "proxy, so `langdetect fetch-model` cannot fetch this version: export against "
                "`mlflow server --serve-artifacts` (or `langdetect mlflow-server`)",
                file=sys.stderr,
            )
    for key, value in tags.items():
        client.set_model_version_tag(model_version.name, model_version.version, key, value)


def proxy_path(artifact_uri: str, experiment_location: str) -> str | None:
    """Where a run's artifacts lie below a tracking server's artifact root, i.e. the path after
    /api/2.0/mlflow-artifacts/artifacts/ when the server runs with --serve-artifacts. A run created
    through such a server has an `mlflow-artifacts:` URI; a run of the embedded sqlite store lies under
    its experiment's local artifact location, which `langdetect mlflow-server` serves as its root."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "mlflow-artifacts":
        return parsed.path.strip("/")
    root = urlparse(experiment_location).path.rstrip("/")
    if parsed.scheme in ("", "file") and root and parsed.path.startswith(root + "/"):
        return parsed.path[len(root) + 1 :].strip("/")
    return None  # s3://, gs://...: what the server's clients read directly, not through its proxy

"""`langdetect rescore --version N`: the validation-slice score of a version registered before training
logged it, computed by the same code (training/pipeline.py score_valid_slices) on the same split.

The split must be the one the version's run was validated on (data_sha256_valid): a score on another
split would not compare with the others, which is the point of having it."""

from __future__ import annotations

from pathlib import Path

from langdetect_ops import config
from langdetect_ops.errors import UserError
from langdetect_ops.mlflow_setup import setup_mlflow
from registry.models import get_version, registry_client
from service.ngrams import NgramModel
from training import evaluate, ngram_model
from training.dataset import load_dataset
from training.pipeline import SELECTION_SCORE, score_valid_slices


def rescore(version: str, data_dir: Path | None = None) -> float:
    mlflow = setup_mlflow()
    client = registry_client()
    model_version = get_version(client, version)
    run = client.get_run(model_version.run_id)
    valid = load_dataset(Path(data_dir or run.data.params.get("data_dir") or config.CORPUS_DIR))["valid"]
    validated_on = (model_version.tags or {}).get("data_sha256_valid") or run.data.tags.get("data_sha256_valid")
    if validated_on and validated_on != valid.sha256:
        raise UserError(
            f"{valid.path} (sha256 {valid.sha256[:12]}…) is not the split version {version} was validated on "
            f"({validated_on[:12]}…); pass --data with that corpus"
        )
    components = mlflow.transformers.load_model(
        f"models:/{model_version.name}/{model_version.version}", return_type="components"
    )
    predict = evaluate.predictor(components["model"], components["tokenizer"], _logged_ngrams(run.info.run_id))
    with mlflow.start_run(run_id=model_version.run_id):
        score = score_valid_slices(mlflow, predict, valid)
    client.set_model_version_tag(model_version.name, model_version.version, SELECTION_SCORE, f"{score:.6f}")
    if not validated_on:
        client.set_model_version_tag(model_version.name, model_version.version, "data_sha256_valid", valid.sha256)
    return score


def _logged_ngrams(run_id: str) -> NgramModel | None:
    """The run's n-gram model: the score is the ensemble's, as at training time."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = ngram_model.download_logged(run_id, Path(tmp))
        return NgramModel.load(path) if path else None

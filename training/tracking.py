"""MLflow plumbing: where runs go, and how a trained model becomes a registered version."""

from __future__ import annotations

import subprocess
from pathlib import Path

from langdetect_ops import config

# What a model logged here needs to be loaded back with mlflow.transformers (pinned like the project).
MODEL_PIP_REQUIREMENTS = ["torch==2.13.0", "transformers==5.23.0", "tokenizers==0.23.3"]


def setup_mlflow(experiment: str = config.EXPERIMENT):
    """Points MLflow at MLFLOW_TRACKING_URI (or the embedded sqlite store) and the experiment."""
    config.quiet_telemetry()
    import mlflow

    mlflow.set_tracking_uri(config.tracking_uri())
    mlflow.set_registry_uri(config.tracking_uri())
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=config.artifact_location())
    mlflow.set_experiment(experiment)
    return mlflow


REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit(repo: Path = REPO_ROOT) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log_transformers_model(mlflow, model, tokenizer):
    """The transformers flavour keeps model and tokenizer together, loadable with mlflow.transformers."""
    return mlflow.transformers.log_model(
        {"model": model, "tokenizer": tokenizer},
        name="model",
        task="text-classification",
        pip_requirements=MODEL_PIP_REQUIREMENTS,
    )


def register(mlflow, model_uri: str, tags: dict[str, str], description: str):
    """Registers a new version of `langdetect` (no stages: promotion is by alias)."""
    from mlflow import MlflowClient

    version = mlflow.register_model(model_uri, config.REGISTERED_MODEL, tags=tags)
    MlflowClient().update_model_version(config.REGISTERED_MODEL, version.version, description=description)
    return version

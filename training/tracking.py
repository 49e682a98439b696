"""How a trained model is logged to MLflow and becomes a registered version (set-up: langdetect_ops.mlflow_setup)."""

from __future__ import annotations

from langdetect_ops import config
from langdetect_ops.pins import requirement

# What a model logged here needs to be loaded back with mlflow.transformers (pinned like the project).
MODEL_PIP_REQUIREMENTS = [requirement(name) for name in ("torch", "transformers", "tokenizers")]


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

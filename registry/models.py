"""Resolving `langdetect` versions and aliases in the MLflow Model Registry, with clear errors."""

from __future__ import annotations

from langdetect_ops import config
from langdetect_ops.errors import UserError


def registry_client():
    """An MlflowClient on MLFLOW_TRACKING_URI (or the embedded sqlite store)."""
    from mlflow import MlflowClient

    from langdetect_ops.mlflow_setup import setup_mlflow

    setup_mlflow()
    return MlflowClient()


def list_versions(client, name: str = config.REGISTERED_MODEL) -> list:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise UserError(
            f"no registered model {name!r} in {config.tracking_uri()}; run `langdetect train` first"
        ) from exc
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise UserError(f"registered model {name!r} has no versions yet; run `langdetect train` first")
    return sorted(versions, key=lambda v: int(v.version))


def get_version(client, version: str | int, name: str = config.REGISTERED_MODEL):
    """A version by number, or the newest one for `latest` (what the main job promotes)."""
    version = str(version).strip()
    known = [str(v.version) for v in list_versions(client, name)]
    if version == "latest":
        version = known[-1]
    if not version.isdigit():
        raise UserError(f"model version must be a positive integer or 'latest', got {version!r}")
    if version not in known:
        raise UserError(f"{name} has no version {version} (versions: {', '.join(known)})")
    return client.get_model_version(name, version)


def get_by_alias(client, alias: str, name: str = config.REGISTERED_MODEL, required: bool = True):
    """The version that carries `alias`, or None when `required` is False and no version does."""
    from mlflow.exceptions import MlflowException

    list_versions(client, name)  # a missing model or an empty registry gets its own message
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if not required:
            return None
        raise UserError(
            f"no version of {name} has the alias @{alias}; set it in the MLflow UI "
            f"(Models > {name} > version > Aliases) or run `langdetect promote VERSION "
            f"--alias {alias}`"
        ) from exc


def resolve(client, alias: str | None = None, version: str | int | None = None, name: str = config.REGISTERED_MODEL):
    """--version wins over --alias; with neither, the champion."""
    if version is not None:
        return get_version(client, version, name)
    return get_by_alias(client, alias or config.CHAMPION_ALIAS, name)


def metric_tag(model_version, key: str = "test_accuracy") -> float | None:
    value = (model_version.tags or {}).get(key)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

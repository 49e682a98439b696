"""Where MLflow runs and registered models go: one set-up for every stage that talks to MLflow."""

from __future__ import annotations

from langdetect_ops import config


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

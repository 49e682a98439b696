"""Shared fixtures: temp MLflow store and BENTOML_HOME, one smoke model, one exported version, one server.

Expensive fixtures are session-scoped so the suite trains once, exports once and serves once.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.serving import BentoServer

REPO = Path(__file__).resolve().parent.parent
MINI_CORPUS = REPO / "tests" / "fixtures" / "mini_corpus"


def longest_per_language(per_language: int = 5) -> tuple[list[str], list[str]]:
    """The longest test sentences of each language in the mini corpus (5 each: 100 texts, 20 languages):
    the multilingual fixture set that service, behaviour and container tests post."""
    import pandas as pd

    frame = pd.read_csv(MINI_CORPUS / "test.csv", dtype=str, keep_default_na=False)
    frame = frame.assign(n=frame.text.str.len()).sort_values(["labels", "n"], ascending=[True, False])
    picked = frame.groupby("labels").head(per_language)
    return picked.text.tolist(), picked.labels.tolist()


def session_client():
    """An MlflowClient on the session store, for tracking and registry alike."""
    from mlflow import MlflowClient

    return MlflowClient(os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="session")
def isolated_env(tmp_path_factory):
    """Points MLflow and BentoML at temp stores for the whole session, and restores the env after."""
    root = tmp_path_factory.mktemp("stores")
    saved = dict(os.environ)
    os.environ.update({
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BENTOML_HOME": str(root / "bentoml"),
        "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "LANGDETECT_IMAGE_PREFIX": "test-",  # smoke-model images must not replace the user's :latest
    })
    _reset_bentoml_store(root / "bentoml")
    yield root
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def mlflow_follows_env():
    """Tests that point MLFLOW_TRACKING_URI at a throwaway registry (monkeypatch) also move
    mlflow's process-wide tracking and registry URIs; put those back with the env afterwards."""
    yield
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri and "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)


def _reset_bentoml_store(home: Path) -> None:
    """BentoML reads BENTOML_HOME once per process; re-point its model store for this session."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    BentoMLContainer.bentoml_home.set(str(home))


@pytest.fixture(scope="session")
def smoke_model(isolated_env):
    """Trains the smoke profile on the mini corpus and registers version 1."""
    from training.pipeline import run_training

    return run_training(MINI_CORPUS, "smoke", progress=False)


@pytest.fixture(scope="session")
def exported(smoke_model):
    """Promotes the smoke model to @champion and exports it into the temp BentoML store."""
    from registry.export import run_export
    from registry.promote import promote

    promote(smoke_model.model_version)
    return run_export(alias="champion", out_dir=isolated_out(smoke_model))


def isolated_out(smoke_model) -> Path:
    return Path(os.environ["BENTOML_HOME"]).parent / "export"


@pytest.fixture(scope="session")
def server(exported):
    """A real `bentoml serve` of LanguageDetector (both runners; torch on CPU) on a free loopback port."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    with BentoServer("service.service:LanguageDetector", env, Path(env["BENTOML_HOME"]).parent / "serve.log") as srv:
        srv.wait_ready(timeout=120)
        yield srv

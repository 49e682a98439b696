"""Shared fixtures: temp MLflow store and BENTOML_HOME, one smoke model, one exported version, one server.

Expensive fixtures are session-scoped so the suite trains once, exports once and serves once.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

from langdetect_ops.processes import BentoServer

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
    os.environ.update(
        {
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "BENTOML_HOME": str(root / "bentoml"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "BENTOML_DO_NOT_TRACK": "true",
            "DO_NOT_TRACK": "true",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "LANGDETECT_IMAGE_PREFIX": "test-",  # smoke-model images must not replace the user's :latest
        }
    )
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
def smoke_model(isolated_env, tmp_path_factory):
    """Trains the smoke profile on the mini corpus and registers version 1. An out-of-domain set made of the
    mini corpus's test split stands in for data/ood, so the run logs ood_* metrics whatever this checkout has."""
    import csv

    from langdetect_ops import config
    from training.pipeline import run_training

    ood_dir = tmp_path_factory.mktemp("ood")
    with open(MINI_CORPUS / "test.csv", newline="", encoding="utf-8") as src:
        rows = [(r["labels"], r["text"], "fixture") for r in csv.DictReader(src)]
    with open(ood_dir / "ood.csv", "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([("labels", "text", "source"), *rows])
    saved, config.OOD_DIR = config.OOD_DIR, ood_dir
    try:
        return run_training(MINI_CORPUS, "smoke", progress=False)
    finally:
        config.OOD_DIR = saved


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


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine (scripts/install-docker.sh runs when none answers, as root); skips with the reason
    when it cannot be set up, except under CI, where a skip would hide a broken set-up."""
    from langdetect_ops.containers import engine_problem_after_setup

    problem = engine_problem_after_setup()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the container tests, but Docker cannot be set up: {problem}")
        pytest.skip(f"Docker cannot be set up here: {problem}")


@pytest.fixture(scope="session")
def image_builder(docker_engine, exported, tmp_path_factory):
    """build(kind) -> BuiltImage, once per kind and session, from the models `exported` put into the
    session's BENTOML_HOME (the model-less kinds carry none)."""
    from images.base import HOST_CA_CERTIFICATES, ensure_base_images
    from images.build import build_images
    from langdetect_ops.containers import docker

    built = {}
    logs = tmp_path_factory.mktemp("image-builds")

    def build(kind: str):
        if kind not in built:
            host_cas = HOST_CA_CERTIFICATES if any(HOST_CA_CERTIFICATES.glob("*.crt")) else None
            ensure_base_images(extra_ca_dir=host_cas)
            image = built[kind] = build_images([kind], log_dir=logs)[0]
            print(
                f"\n{image.image}: {image.size_bytes / 1e6:,.0f} MB, bento {image.bento_seconds:.0f} s, "
                f"containerize {image.containerize_seconds:.0f} s"
            )
        return built[kind]

    yield build
    # Each run's bento version tag would keep its model layers alive; `test-…:latest` stays as the cache.
    for image in built.values():
        docker("rmi", image.image, check=False)


@pytest.fixture
def twin(smoke_model):
    """A second version of `langdetect` that shares the smoke model's weights, run and tags.

    Identical tags (test_accuracy included) keep later `promote` calls in the session working, and a
    distinct version number is what proves that something followed the alias rather than "version 1".
    Teardown puts the session back as it was: the twin, its alias, its BentoML models and its serving pin go.
    """
    import bentoml
    from bentoml.exceptions import NotFound
    from mlflow.exceptions import MlflowException

    from langdetect_ops.config import BENTO_ONNX_MODEL, BENTO_TORCH_MODEL, CHAMPION_ALIAS, REGISTERED_MODEL
    from registry.bento_store import store_version
    from registry.models import get_by_alias, registry_client
    from service.pin import pin_path

    client = registry_client()
    original = client.get_model_version(REGISTERED_MODEL, smoke_model.model_version)
    previous = get_by_alias(client, CHAMPION_ALIAS, required=False)
    pinned = pin_path().read_bytes() if pin_path().is_file() else None
    version = client.create_model_version(
        REGISTERED_MODEL, source=original.source, run_id=original.run_id, tags=original.tags
    )
    yield version
    if pinned is not None:  # an alias export pins the twin; the session's servers serve the smoke model
        pin_path().write_bytes(pinned)
    client.delete_model_version(REGISTERED_MODEL, version.version)  # drops its aliases too
    if previous is not None:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, previous.version)
    else:  # a browser or a server may have put it elsewhere when the test failed
        with contextlib.suppress(MlflowException):
            client.delete_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    for name in (BENTO_ONNX_MODEL, BENTO_TORCH_MODEL):  # else the twin's would be `:latest` for the services
        with contextlib.suppress(NotFound):  # nothing exported (the test failed before the export)
            bentoml.models.delete(f"{name}:{store_version(str(version.version), version.run_id)}")


@pytest.fixture(scope="session")
def tracking_server(exported, tmp_path_factory):
    """`langdetect mlflow-server` over the session's sqlite store: basic auth, artifact proxy, one worker.
    The session export logged the champion's serving bundle, which it proxies."""
    from langdetect_ops.tracking_server import StoreLayout, TrackingServer

    state = tmp_path_factory.mktemp("mlflow-server")
    with TrackingServer(StoreLayout.from_tracking_uri(), state_dir=state) as server:
        yield server

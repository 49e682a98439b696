"""`langdetect fetch-model` against a real `mlflow server` with basic auth, and every fault it must
survive: unknown alias or version, wrong or missing credentials, an unreachable server, a sha256
mismatch and a cut-off download. After a failure the output directory is exactly as it was."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from langdetect_ops.config import CHAMPION_ALIAS, REGISTERED_MODEL
from langdetect_ops.fetch import BUNDLE_PATH_TAG, BUNDLE_SHA256_TAG, MANIFEST
from langdetect_ops.integrity import file_sha256
from langdetect_ops.processes import free_port

pytestmark = pytest.mark.slow
FETCH_TARGET_S = 3.0  # issue 12: a fetch on loopback


def fetch(out: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The fetcher as the init container runs it: its own process, stdlib only, env for credentials."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return subprocess.run(
        [sys.executable, "-m", "langdetect_ops.fetch", "--out", str(out), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def previous_bundle(tmp_path) -> Path:
    """An output directory that already holds a bundle: a failed fetch must leave it as it is."""
    out = tmp_path / "models" / "langdetect"
    out.mkdir(parents=True)
    (out / MANIFEST).write_text('{"version": "previous"}')
    return out


def assert_untouched(out: Path) -> None:
    assert json.loads((out / MANIFEST).read_text()) == {"version": "previous"}
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name], "a partial download was left behind"


def test_fetch_champion_writes_a_verified_bundle(tracking_server, exported, tmp_path):
    out = tmp_path / "models" / "langdetect"
    started = time.monotonic()
    result = fetch(out, tracking_server.reader_env(), "--alias", CHAMPION_ALIAS)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["version"] == exported.version and manifest["alias"] == CHAMPION_ALIAS
    assert sorted(manifest["sha256"]) == [
        "onnx/labels.json",
        "onnx/model.int8.onnx",
        "onnx/ngrams.npz",
        "onnx/tokenizer.json",
    ]
    for name, digest in manifest["sha256"].items():
        assert file_sha256(out / name) == digest
    assert not (out / "torch").exists(), "the CPU runtime needs no torch files"
    assert seconds < 4 * FETCH_TARGET_S, f"fetch took {seconds:.1f} s on loopback"  # loose: a test, not the bench
    assert f"version {exported.version}" in result.stdout


def test_fetch_all_runtimes_by_version_replaces_the_previous_bundle(tracking_server, exported, previous_bundle):
    from service.inference import OnnxClassifier

    result = fetch(previous_bundle, tracking_server.reader_env(), "--version", exported.version, "--runtime", "all")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((previous_bundle / MANIFEST).read_text())
    assert manifest["version"] == exported.version and manifest["alias"] == ""
    assert {"torch/model.safetensors", "torch/config.json", "onnx/model.int8.onnx"} <= set(manifest["sha256"])
    assert sorted(p.name for p in previous_bundle.parent.iterdir()) == ["langdetect"], "old bundle left behind"
    probabilities = OnnxClassifier(previous_bundle / "onnx").probabilities(["Ceci est une phrase en français."])
    assert probabilities.shape[0] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("--alias", "no-such-alias"), "@no-such-alias does not exist"),
        (("--version", "999"), "version 999 does not exist"),
    ],
)
def test_unknown_alias_or_version_exits_2_and_keeps_the_old_bundle(tracking_server, previous_bundle, args, message):
    result = fetch(previous_bundle, tracking_server.reader_env(), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert_untouched(previous_bundle)


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_wrong_or_missing_credentials_exit_3_at_once(tracking_server, previous_bundle, password):
    env = {**tracking_server.reader_env(), "MLFLOW_TRACKING_PASSWORD": password or ""}
    if password is None:
        env.pop("MLFLOW_TRACKING_USERNAME")
    started = time.monotonic()
    result = fetch(previous_bundle, env, "--alias", CHAMPION_ALIAS, "--backoff", "2")
    assert result.returncode == 3, result.stderr
    assert "refused the credentials (401)" in result.stderr
    assert time.monotonic() - started < 2 * 2, "credentials were retried with backoff"
    assert_untouched(previous_bundle)


def test_unreachable_server_is_retried_with_backoff_then_exits_4(previous_bundle):
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    started = time.monotonic()
    result = fetch(previous_bundle, env, "--alias", CHAMPION_ALIAS, "--attempts", "3", "--backoff", "0.2")
    elapsed = time.monotonic() - started
    assert result.returncode == 4, result.stderr
    assert "did not answer after 3 attempts" in result.stderr
    assert 0.2 + 0.4 <= elapsed < 30, f"{elapsed:.1f} s: the backoff was not taken, or not bounded"
    assert_untouched(previous_bundle)


def test_sha256_mismatch_exits_5_and_installs_nothing(tracking_server, exported, previous_bundle):
    """A weights file altered in the artifact store after export: the version's tags no longer match."""
    from registry.models import registry_client

    tags = registry_client().get_model_version(REGISTERED_MODEL, exported.version).tags
    stored = tracking_server.store.artifacts / tags[BUNDLE_PATH_TAG] / "onnx" / "model.int8.onnx"
    original = stored.read_bytes()
    assert json.loads(tags[BUNDLE_SHA256_TAG])["onnx/model.int8.onnx"] == file_sha256(stored)
    try:
        stored.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
        result = fetch(previous_bundle, tracking_server.reader_env(), "--alias", CHAMPION_ALIAS)
    finally:
        stored.write_bytes(original)
    assert result.returncode == 5, result.stderr
    assert "model.int8.onnx: sha256" in result.stderr and "refusing to install it" in result.stderr
    assert_untouched(previous_bundle)


class CutOffServer(http.server.BaseHTTPRequestHandler):
    """Answers the registry like MLflow, then sends 10 of the 1,000 bytes it announces and hangs up."""

    def do_GET(self):
        if self.path.startswith("/api/2.0/mlflow/registered-models/alias"):
            body = json.dumps(
                {
                    "model_version": {
                        "name": "langdetect",
                        "version": "7",
                        "run_id": "r",
                        "tags": [
                            {"key": BUNDLE_PATH_TAG, "value": "r/artifacts/serving"},
                            {"key": BUNDLE_SHA256_TAG, "value": json.dumps({"onnx/model.int8.onnx": "0" * 64})},
                        ],
                    }
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args):
        pass


def test_cut_off_download_exits_5_and_installs_nothing(previous_bundle):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutOffServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{server.server_address[1]}"}
        result = fetch(previous_bundle, env, "--alias", CHAMPION_ALIAS)
    finally:
        server.shutdown()
    assert result.returncode == 5, result.stderr
    assert "cut off" in result.stderr
    assert_untouched(previous_bundle)


def test_server_needs_a_user_and_the_reader_cannot_write(tracking_server, exported):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(
            f"{tracking_server.url}/api/2.0/mlflow/registered-models/alias?"
            f"name={REGISTERED_MODEL}&alias={CHAMPION_ALIAS}",
            timeout=10,
        )
    assert anonymous.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as write:
        tracking_server.call(
            "POST",
            "/api/2.0/mlflow/registered-models/alias",
            {"name": REGISTERED_MODEL, "alias": "intruder", "version": exported.version},
            user="langdetect-fetcher",
        )
    assert write.value.code == 403


class FakeRegistry(http.server.BaseHTTPRequestHandler):
    """Answers the alias endpoint with the version record in `record`, and 404 for anything else."""

    record: dict = {}

    def do_GET(self):
        body = json.dumps({"model_version": self.record}).encode()
        self.send_response(200 if "registered-models/alias" in self.path else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def fetch_from_fake(record: dict, out: Path) -> subprocess.CompletedProcess:
    handler = type("Handler", (FakeRegistry,), {"record": record})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return fetch(
            out, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{server.server_address[1]}"}, "--alias", CHAMPION_ALIAS
        )
    finally:
        server.shutdown()


@pytest.mark.parametrize("name", ["onnx/../../escaped.onnx", "/etc/passwd", "onnx/./model.int8.onnx"])
def test_a_bundle_naming_files_outside_it_is_refused(previous_bundle, name):
    record = {
        "name": "langdetect",
        "version": "3",
        "tags": [
            {"key": BUNDLE_PATH_TAG, "value": "r/artifacts/serving"},
            {"key": BUNDLE_SHA256_TAG, "value": json.dumps({name: "0" * 64, "onnx/labels.json": "0" * 64})},
        ],
    }
    result = fetch_from_fake(record, previous_bundle)
    assert result.returncode == 5 and "outside it" in result.stderr, result.stderr
    assert_untouched(previous_bundle)
    assert not (previous_bundle.parent.parent / "escaped.onnx").exists()


def test_a_version_that_failed_the_parity_gate_is_not_fetched(previous_bundle):
    record = {
        "name": "langdetect",
        "version": "4",
        "tags": [
            {"key": "parity_passed", "value": "false"},
            {"key": BUNDLE_PATH_TAG, "value": "r/artifacts/serving"},
            {"key": BUNDLE_SHA256_TAG, "value": json.dumps({"onnx/model.int8.onnx": "0" * 64})},
        ],
    }
    result = fetch_from_fake(record, previous_bundle)
    assert result.returncode == 2 and "failed the int8 parity gate" in result.stderr, result.stderr
    assert_untouched(previous_bundle)


def test_credentials_in_the_tracking_uri_are_refused(previous_bundle):
    result = fetch(previous_bundle, {"MLFLOW_TRACKING_URI": "http://admin:secret@127.0.0.1:9/"}, "--alias", "x")
    assert result.returncode == 1 and "holds credentials" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert_untouched(previous_bundle)

"""Fast checks of the serving plumbing: the pin, sha256 verification, the error contract, the patches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langdetect_ops.integrity import IntegrityError, bundle_hashes, verify_bundle
from service import errors


def test_pinned_tag_reads_the_pin_and_env_overrides_it(isolated_env, monkeypatch):
    from service.pin import NoPinnedModel, pin_path, pinned_tag, read_pin, write_pin

    saved = pin_path().read_bytes() if pin_path().exists() else None
    try:
        pin_path().unlink(missing_ok=True)
        monkeypatch.delenv("LANGDETECT_ONNX_MODEL", raising=False)
        with pytest.raises(NoPinnedModel, match="langdetect export --alias champion"):
            pinned_tag("onnx")
        write_pin({"onnx": "langdetect-onnx:v3-abc", "torch": "langdetect-torch:v3-abc", "mlflow_version": "3"})
        assert pinned_tag("onnx") == "langdetect-onnx:v3-abc" and read_pin()["mlflow_version"] == "3"
        assert not list(pin_path().parent.glob("*.tmp"))  # written atomically, nothing left behind
        monkeypatch.setenv("LANGDETECT_ONNX_MODEL", "langdetect-onnx:v9-def")
        assert pinned_tag("onnx") == "langdetect-onnx:v9-def" and pinned_tag("torch") == "langdetect-torch:v3-abc"
    finally:
        if saved is not None:
            pin_path().write_bytes(saved)


def test_verify_bundle_names_altered_and_missing_files(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "b.bin").write_bytes(b"b")
    recorded = bundle_hashes(tmp_path)
    verify_bundle(tmp_path, recorded)  # intact: no error
    (tmp_path / "a.bin").write_bytes(b"A")
    (tmp_path / "b.bin").unlink()
    with pytest.raises(IntegrityError) as caught:
        verify_bundle(tmp_path, recorded)
    assert "a.bin has sha256" in str(caught.value) and "b.bin is missing" in str(caught.value)
    with pytest.raises(IntegrityError, match="no sha256 recorded"):
        verify_bundle(tmp_path, {})


@pytest.mark.parametrize(
    "body, error, detail",
    [
        (b'[{"error": "backend \'gpu\' is not available"}]', "backend 'gpu' is not available", ""),
        (
            b'{"error": "1 validation error for Input", "detail": [{"loc": ["texts", 1], "msg": "too short"}]}',
            "1 validation error for Input",
            "texts.1: too short",
        ),
        (b"Not Found", "Not Found", ""),
        (b"", "request refused", ""),
        (b"[1, 2]", "[1, 2]", ""),
    ],
)
def test_error_bodies_get_one_shape(body, error, detail):
    assert json.loads(errors.normalised(body)) == {"error": error, "detail": detail}


def test_openapi_declares_the_added_refusals():
    from _bentoml_sdk.service import openapi

    errors.declare_in_openapi()
    assert {400, 405, 413, 415} <= set(openapi.error_responses)


def test_supervision_patches_the_methods_it_relies_on(monkeypatch):
    """If bentoml, circus or uvicorn rename these, the patches would silently do nothing: fail here."""
    import uvicorn
    from circus.arbiter import Arbiter
    from circus.watcher import Watcher

    from service import supervision

    supervision.install()
    for owner, name in (
        (Watcher, "__init__"),
        (Watcher, "reap_process"),
        (Arbiter, "__init__"),
        (Arbiter, "stop"),
        (uvicorn.Config, "__init__"),
        (uvicorn.Server, "shutdown"),
    ):
        assert getattr(owner, name).__code__.co_filename == supervision.__file__, (owner, name)
    monkeypatch.setenv(supervision.GRACE_ENV, "7")
    assert supervision.grace_seconds() == 7
    monkeypatch.setenv(supervision.GRACE_ENV, "soon")
    with pytest.raises(ValueError, match="whole number of seconds"):
        supervision.grace_seconds()


def test_the_drain_plugs_the_listener_only_once_no_client_is_half_open(monkeypatch):
    """SIGTERM's drain (service/supervision.py): every queued connection is accepted, and the plug goes in
    only when /proc/net/tcp shows no handshake in progress on the port, which the close would reset."""
    import socket

    from service import supervision

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    assert supervision._half_open(port) == 0  # a completed handshake is not half-open
    answers = iter([1, 1, 0, 0])  # a client mid-handshake for two rounds, then none
    seen = []
    monkeypatch.setattr(supervision, "_half_open", lambda p: seen.append(p) or next(answers))
    accepted, plug = supervision._accept_and_plug(listener)
    try:
        assert len(accepted) == 1 and plug is not None and seen == [port] * 4
        assert supervision._queued(listener) == 1  # the plug holds the one place
    finally:
        for sock in [*accepted, plug, client, listener]:
            sock.close()
    monkeypatch.setattr(supervision, "_half_open", lambda p: 1)  # never clear: no plug, nothing lost waiting
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted, plug = supervision._accept_and_plug(listener, wait_s=0.05)
    assert accepted == [] and plug is None
    listener.close()


ROOT = Path(__file__).resolve().parents[1]
HEAP_AFTER_A_LOAD = """
import numpy as np
from service.api import return_freed_heap

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6

big = np.ones(4_000_000)  # 32 MB, mmapped; freeing it raises glibc's mmap threshold
del big
temporaries = [np.ones(1_000_000) for _ in range(30)]  # 8 MB each: now from the heap, like a load's
kept = [np.ones(8) for _ in range(100)]  # what the load keeps, allocated after them
del temporaries
before = rss_mb()
returned = return_freed_heap()
print(returned, before, rss_mb())
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_the_heap_a_load_freed_goes_back_to_the_os():
    """A model load's freed numpy temporaries stay in the RSS under glibc until malloc_trim: the service
    returns them once its models are loaded (about 120 MB per worker with the n-gram chain)."""
    out = subprocess.run(
        [sys.executable, "-c", HEAP_AFTER_A_LOAD], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    returned, before, after = out[0] == "True", float(out[1]), float(out[2])
    assert returned
    assert before - after > 24, (before, after)  # 48 MB measured; without the call RSS stays where it was

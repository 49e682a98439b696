"""The GPU path without a GPU: the routing that picks CUDA when present, and the prepared GPU check as a
CPU dry run (scripts/gpu-check.sh --cpu). The real run needs a CUDA machine (BENCHMARKS.md says where)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bentoml.exceptions import InvalidArgument
from conftest import MINI_CORPUS, REPO, isolated_out

from service.api import DetectorAPI, ModelLineage, Runtime


class FakeClassifier:
    labels = ["de", "fr"]

    def probabilities(self, texts):
        return np.tile([0.2, 0.8], (len(texts), 1))


def api_with(torch_device: str | None) -> DetectorAPI:
    """A DetectorAPI whose runtimes are stand-ins: what routing sees on a machine with or without CUDA."""
    api = object.__new__(DetectorAPI)
    lineage = ModelLineage(tag="t:1", mlflow_version="1")
    api.runtimes = {"onnx": Runtime("onnx-int8-cpu", "cpu", FakeClassifier(), lineage)}
    if torch_device:
        precision = "fp16" if torch_device.startswith("cuda") else "fp32"
        api.runtimes["torch"] = Runtime(
            f"torch-{precision}-{torch_device.split(':')[0]}", torch_device, FakeClassifier(), lineage
        )
    api.labels = FakeClassifier.labels
    api.auto = "torch" if torch_device and torch_device.startswith("cuda") else "onnx"
    return api


def test_with_cuda_auto_and_gpu_run_torch_in_fp16():
    api = api_with("cuda:0")
    assert api._runtime("auto").name == api._runtime("gpu").name == "torch-fp16-cuda"
    assert api._runtime("cpu").name == "onnx-int8-cpu"
    info = api.describe()
    assert info.auto_runtime == "torch-fp16-cuda" and info.backends["gpu"] == "torch-fp16-cuda"


def test_without_cuda_gpu_is_refused_and_auto_stays_on_int8():
    api = api_with("cpu")
    assert api._runtime("auto").name == "onnx-int8-cpu" and api._runtime("torch").name == "torch-fp32-cpu"
    with pytest.raises(InvalidArgument, match="needs a CUDA device"):
        api._runtime("gpu")
    assert "gpu" not in api.describe().backends


def test_cpu_only_service_refuses_torch_backends():
    api = api_with(None)
    for backend in ("torch", "gpu"):
        with pytest.raises(InvalidArgument, match="not available in this deployment"):
            api._runtime(backend)


def test_the_pipeline_picks_cuda_when_torch_sees_it(monkeypatch):
    import torch

    from training import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert distributed.join().device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.join().device == "cpu"


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(exported, smoke_model, tmp_path):
    out = tmp_path / "gpu-check.json"
    export = isolated_out(smoke_model) / f"v{exported.version}"
    result = subprocess.run(
        [
            str(REPO / "scripts" / "gpu-check.sh"),
            "--cpu",
            "--export",
            str(export),
            "--data",
            str(MINI_CORPUS),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["dry_run_on_cpu"] and report["runtime"] == "torch-fp32-cpu"
    assert report["agreement"]["with_fp32"] == 1.0 and report["agreement"]["with_int8"] >= 0.97
    assert [row["batch"] for row in report["throughput"]] == [1, 64, 256, 1024]
    assert all(row["texts_per_s"] > 0 for row in report["throughput"])
    assert report["training"]["steps_per_s"] > 0
    assert report["serving"]["served"] and report["serving"]["runtimes"] == ["torch-fp32-cpu"]
    assert Path(report["export"]) == export

"""The CPU runner: int8 ONNX. Imports nothing heavier than numpy at import time."""
from __future__ import annotations

import os

import bentoml
import numpy as np

from service.common import MAX_BATCH_SIZE, MAX_LATENCY_MS, ONNX_MODEL_TAG, STABLE_CONNECTION, model_lineage


@bentoml.service(name="langdetect-cpu-runner", workers=1, runner_connection=STABLE_CONNECTION,
                 traffic={"timeout": 60})
class CpuRunner:
    """int8 ONNX with onnxruntime, tokenizers and numpy: what the slim CPU image runs."""

    model = bentoml.models.BentoModel(ONNX_MODEL_TAG)

    def __init__(self) -> None:
        from service.inference import OnnxClassifier

        threads = int(os.environ.get("LANGDETECT_ONNX_THREADS", "0")) or os.cpu_count()
        self.classifier = OnnxClassifier(self.model.path, threads=threads)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.classifier.probabilities(texts)

    @bentoml.api
    def describe(self) -> dict:
        return {"labels": self.classifier.labels, "device": "cpu", "runtime": "onnxruntime-int8",
                "model": model_lineage(self.model)}

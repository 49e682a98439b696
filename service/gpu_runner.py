"""The GPU runner: torch, imported only inside __init__ (resources={'gpu': 1} does not fail without one)."""
from __future__ import annotations

import bentoml
import numpy as np

from service.common import MAX_BATCH_SIZE, MAX_LATENCY_MS, STABLE_CONNECTION, TORCH_MODEL_TAG, model_lineage


@bentoml.service(name="langdetect-gpu-runner", workers=1, resources={"gpu": 1},
                 runner_connection=STABLE_CONNECTION, traffic={"timeout": 60})
class GpuRunner:
    """transformers + torch: CUDA in fp16 when present, CPU fp32 otherwise."""

    model = bentoml.models.BentoModel(TORCH_MODEL_TAG)

    def __init__(self) -> None:
        from service.inference import TorchClassifier

        self.classifier = TorchClassifier(self.model.path)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.classifier.probabilities(texts)

    @bentoml.api
    def describe(self) -> dict:
        return {"labels": self.classifier.labels, "device": self.classifier.device,
                "runtime": "torch-fp16" if self.classifier.device.startswith("cuda") else "torch-fp32",
                "model": model_lineage(self.model)}

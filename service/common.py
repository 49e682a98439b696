"""What both runner services share: model tags, batching limits, connection settings, lineage."""
from __future__ import annotations

import os

ONNX_MODEL_TAG = os.environ.get("LANGDETECT_ONNX_MODEL", "langdetect-onnx:latest")
TORCH_MODEL_TAG = os.environ.get("LANGDETECT_TORCH_MODEL", "langdetect-torch:latest")
MAX_BATCH_SIZE = 256
# Adaptive batching on 2 cores: 100 ms gave 503s under load, 1 s gave none (shared/NOTES.md).
MAX_LATENCY_MS = 1000
# BentoML recycles the inter-service connection every 100 requests / 300 s, even under in-flight
# requests (500s at 16 concurrent clients); this keeps one connection for the process lifetime.
STABLE_CONNECTION = {"max_requests": 1_000_000_000, "max_age": 1e9}


def model_lineage(stored) -> dict:
    """Store tag, MLflow labels (model, version, alias, run id) and per-file sha256 of a loaded model.

    Inside a service instance, a BentoModel class attribute reads back as the resolved stored model.
    """
    return {"tag": str(stored.tag), **stored.info.labels, "sha256": stored.info.metadata.get("sha256", {})}

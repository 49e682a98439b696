"""LanguageDetectorCPU: the HTTP API with the int8 ONNX model in the API process (the slim CPU image)."""

from __future__ import annotations

import os

import bentoml

from service.api import DetectorAPI, entry_service, info_app
from service.pin import stored_model

# One worker: it serves 1,000+ requests/s on 2 cores with the tail and memory targets met; a second one
# doubles the memory for little more throughput (BENCHMARKS.md). LANGDETECT_WORKERS overrides it.
WORKERS = int(os.environ.get("LANGDETECT_WORKERS", "1"))


@entry_service
@bentoml.service(
    name="langdetect-cpu", workers=WORKERS, traffic={"timeout": 60}, logging={"access": {"enabled": False}}
)
@bentoml.asgi_app(info_app, path="/")
class LanguageDetectorCPU(DetectorAPI):
    onnx_model = stored_model("onnx")  # None with LANGDETECT_MODEL_DIR (the model-less image)
    workers = WORKERS

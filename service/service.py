"""LanguageDetector: the HTTP API with torch (fp16 on CUDA, fp32 on CPU) and int8 ONNX in the API process
(what the GPU image runs)."""

from __future__ import annotations

import os

import bentoml

from service.api import DetectorAPI, entry_service, info_app
from service.pin import stored_model

WORKERS = int(os.environ.get("LANGDETECT_WORKERS", "1"))  # one per GPU; each loads both models


@entry_service
@bentoml.service(
    name="langdetect",
    workers=WORKERS,
    resources={"gpu": 1},
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(info_app, path="/")
class LanguageDetector(DetectorAPI):
    kinds = ("onnx", "torch")
    onnx_model = stored_model("onnx")  # both None with LANGDETECT_MODEL_DIR (the model-less image)
    torch_model = stored_model("torch")
    workers = WORKERS

"""LanguageDetector: the HTTP API with both runners (what `bentoml serve` and the GPU image run)."""
from __future__ import annotations

import bentoml

from service.api import DetectorAPI, info_app
from service.common import STABLE_CONNECTION
from service.cpu_runner import CpuRunner
from service.gpu_runner import GpuRunner


@bentoml.service(name="langdetect", workers=1, traffic={"timeout": 60}, runner_connection=STABLE_CONNECTION)
@bentoml.asgi_app(info_app, path="/")
class LanguageDetector(DetectorAPI):
    cpu = bentoml.depends(CpuRunner)
    gpu = bentoml.depends(GpuRunner)

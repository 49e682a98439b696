"""LanguageDetectorCPU: the same HTTP API with the CPU runner only (what the slim image runs)."""
from __future__ import annotations

import bentoml

from service.api import DetectorAPI, info_app
from service.common import STABLE_CONNECTION
from service.cpu_runner import CpuRunner


@bentoml.service(name="langdetect-cpu", workers=1, traffic={"timeout": 60}, runner_connection=STABLE_CONNECTION)
@bentoml.asgi_app(info_app, path="/")
class LanguageDetectorCPU(DetectorAPI):
    cpu = bentoml.depends(CpuRunner)

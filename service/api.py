"""The HTTP API shared by both entry services: schemas, input rules and backend routing."""
from __future__ import annotations

from typing import Annotated, Literal

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_TEXT_CHARS = 100_000  # larger texts get a 4xx; longer-than-window texts are truncated (200)
MAX_BATCH_TEXTS = 256
Backend = Literal["auto", "cpu", "gpu"]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS,
                            description="Any Unicode text; only the first tokens (the model's window) are scored")]
TopK = Annotated[int, Field(ge=1, le=20, description="How many candidates to return (1 = just the best)")]


class Candidate(BaseModel):
    language: str
    score: float


class Detection(BaseModel):
    language: str = Field(description="ISO 639-1 code, one of the 20 supported languages")
    score: float = Field(description="Probability of `language`, 0..1")
    backend: str = Field(description="Runner that answered: cpu or gpu")
    candidates: list[Candidate] | None = Field(default=None, description="Top-k languages, when top_k > 1")


class BatchDetection(BaseModel):
    results: list[Detection]


class DetectorAPI:
    """Routes requests to the CPU runner (`cpu`) or the GPU runner (`gpu`, may be absent)."""

    cpu: object
    gpu: object | None = None

    def __init__(self) -> None:
        global _instance
        self._gpu_device: str | None = None
        self._label_names: list[str] | None = None
        _instance = self  # one API instance per worker process; GET /info reads it

    @bentoml.api(route="/detect")
    async def detect(self, text: Text, backend: Backend = "auto", top_k: TopK = 1) -> Detection:
        return (await self._detect([text], backend, top_k))[0]

    @bentoml.api(route="/detect_batch")
    async def detect_batch(
        self, texts: Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH_TEXTS)],
        backend: Backend = "auto", top_k: TopK = 1,
    ) -> BatchDetection:
        return BatchDetection(results=await self._detect(texts, backend, top_k))

    @bentoml.api(route="/info")
    async def info(self) -> dict:
        """Model lineage (MLflow version, run id, sha256 per file) and available runners; also GET /info."""
        runners = {"cpu": await self.cpu.to_async.describe()}
        if self.gpu is not None:
            runners["gpu"] = await self.gpu.to_async.describe()
        return {"runners": runners, "available_backends": sorted(runners),
                "auto_backend": await self._auto_backend(), "max_text_chars": MAX_TEXT_CHARS,
                "max_batch_texts": MAX_BATCH_TEXTS}

    async def _detect(self, texts: list[str], backend: str, top_k: int) -> list[Detection]:
        for i, text in enumerate(texts):
            if not text.strip():
                where = "text" if len(texts) == 1 else f"texts[{i}]"
                raise InvalidArgument(f"{where} is empty or whitespace only; send the text to classify")
        chosen = await self._auto_backend() if backend == "auto" else backend
        if chosen == "gpu" and self.gpu is None:
            raise InvalidArgument("backend 'gpu' is not available in this deployment (this image serves 'cpu')")
        runner = self.gpu if chosen == "gpu" else self.cpu
        probs = np.asarray(await runner.to_async.probabilities(texts))
        labels = await self._labels()
        return [_to_detection(row, labels, chosen, top_k) for row in probs]

    async def _auto_backend(self) -> str:
        """The GPU runner when it runs on CUDA, otherwise the CPU runner (int8 is faster on CPU)."""
        if self.gpu is None:
            return "cpu"
        if self._gpu_device is None:
            self._gpu_device = (await self.gpu.to_async.describe())["device"]
        return "gpu" if self._gpu_device.startswith("cuda") else "cpu"

    async def _labels(self) -> list[str]:
        """Class names in the models' order; both bundles carry the same labels.json."""
        if self._label_names is None:
            self._label_names = (await self.cpu.to_async.describe())["labels"]
        return self._label_names


def _to_detection(row: np.ndarray, labels: list[str], backend: str, top_k: int) -> Detection:
    best = np.argsort(-row)[:top_k]
    candidates = [Candidate(language=labels[i], score=float(row[i])) for i in best]
    return Detection(language=candidates[0].language, score=candidates[0].score, backend=backend,
                     candidates=candidates if top_k > 1 else None)


_instance: DetectorAPI | None = None


async def _get_info(_: Request) -> JSONResponse:
    if _instance is None:
        return JSONResponse({"error": "service is starting"}, status_code=503)
    return JSONResponse(await _instance.info())


# BentoML APIs are POST-only; this small app adds GET /info beside them (mounted after BentoML's routes).
info_app = Starlette(routes=[Route("/info", _get_info, methods=["GET"])])

"""The HTTP API of both entry services: schemas, input rules, the models in the API process, metrics.

One process per replica holds the model: no runner service, no inter-process hop. The CPU service
(service/cpu_service.py) holds the int8 ONNX model; the GPU service (service/service.py) holds torch
too (fp16 on CUDA, fp32 on CPU without one) and keeps int8 ONNX as its CPU path.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from langdetect_ops.integrity import verify_bundle

MAX_TEXT_CHARS = 100_000  # larger texts get a 4xx; longer-than-window texts are truncated (200)
MAX_BATCH_TEXTS = 256
Backend = Literal["auto", "onnx", "torch", "cpu", "gpu"]
Text = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description="Any Unicode text; only the first tokens (the model's window) are scored",
    ),
]
TopK = Annotated[int, Field(ge=1, le=20, description="How many candidates to return (1 = just the best)")]


class Candidate(BaseModel):
    language: str
    score: float


class Detection(BaseModel):
    language: str = Field(description="ISO 639-1 code, one of the 20 supported languages")
    score: float = Field(description="Probability of `language`, 0..1")
    runtime: str = Field(description="What computed it: onnx-int8-cpu, torch-fp16-cuda or torch-fp32-cpu")
    model_version: str = Field(description="MLflow model version that answered")
    candidates: list[Candidate] = Field(description="The top_k most likely languages, best first")


class BatchDetection(BaseModel):
    results: list[Detection]


class ModelLineage(BaseModel):
    tag: str = Field(description="BentoML store tag")
    mlflow_model: str = ""
    mlflow_version: str = ""
    mlflow_alias: str = Field("", description="The alias the version carried when it was exported and pinned")
    mlflow_run_id: str = ""
    sha256: dict[str, str] = Field(default_factory=dict, description="Verified at load, per file")


class RuntimeInfo(BaseModel):
    runtime: str
    device: str
    ngram_weight: float = Field(
        0.0, description="Weight of the character n-gram scores added to the transformer's logits (0: none)"
    )
    ngram_word_weight: float = Field(
        0.0, description="How many grams a known whole word counts as in those scores (0: grams only)"
    )
    ngram_last_word_whole: float = Field(
        1.0, description="How likely a text's last word is whole rather than cut off, in those scores"
    )
    ngram_gram_scoring: str = Field(
        "sum",
        description="How those scores read the grams: 'sum' (every overlapping gram) or 'chain' (each character once)",
    )
    ngram_chain_end_whole: float = Field(
        1.0, description="Read as a chain, how likely a text's end after a letter is a word's end rather than a cut"
    )
    model: ModelLineage


class ServiceInfo(BaseModel):
    runtimes: dict[str, RuntimeInfo] = Field(description="Loaded models by backend name (onnx, torch)")
    backends: dict[str, str] = Field(description="What each accepted `backend` value runs here")
    auto_runtime: str
    labels: list[str]
    max_text_chars: int
    max_batch_texts: int


@dataclass
class Runtime:
    """A model loaded in this process, with the name of what computes it and where it came from."""

    name: str
    device: str
    classifier: object
    lineage: ModelLineage

    def __post_init__(self) -> None:
        from service.batching import ContinuousBatcher

        # LANGDETECT_BATCHING=0: one model call per request on the event loop (the bench's comparison).
        self.batched = (
            ContinuousBatcher(self.probabilities, max_texts=MAX_BATCH_TEXTS)
            if os.environ.get("LANGDETECT_BATCHING", "1") != "0"
            else self.unbatched
        )

    @property
    def ngram_weight(self) -> float:
        ngrams = getattr(self.classifier, "ngrams", None)
        return ngrams.weight if ngrams is not None else 0.0

    @property
    def ngram_word_weight(self) -> float:
        return self.classifier.ngrams.word_weight if self.ngram_weight else 0.0  # a weight implies a model

    @property
    def ngram_last_word_whole(self) -> float:
        return self.classifier.ngrams.last_word_whole if self.ngram_word_weight else 1.0

    @property
    def ngram_gram_scoring(self) -> str:
        return self.classifier.ngrams.gram_scoring if self.ngram_weight else "sum"

    @property
    def ngram_chain_end_whole(self) -> float:
        return self.classifier.ngrams.chain_end_whole if self.ngram_gram_scoring == "chain" else 1.0

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.probabilities(texts)

    async def unbatched(self, texts: Sequence[str]) -> np.ndarray:
        return self.probabilities(texts)


@dataclass
class ModelFiles:
    """A model directory whose files matched their recorded sha256, and where it came from."""

    path: str
    lineage: ModelLineage


def from_store(stored) -> ModelFiles:
    """A BentoML store model, checked against the sha256 that export recorded in its metadata."""
    hashes = stored.info.metadata.get("sha256", {})
    verify_bundle(stored.path, hashes)
    labels = stored.info.labels
    return ModelFiles(
        stored.path,
        ModelLineage(
            tag=str(stored.tag),
            sha256=hashes,
            **{k: labels.get(k, "") for k in ("mlflow_model", "mlflow_version", "mlflow_alias", "mlflow_run_id")},
        ),
    )


def from_fetched(root: Path, kind: str) -> ModelFiles:
    """ROOT/<kind>/ of a bundle that `langdetect fetch-model` wrote, checked against its bundle.json (whose
    hashes the fetcher checked against the MLflow version's tags)."""
    import json

    from langdetect_ops.fetch import MANIFEST
    from langdetect_ops.integrity import IntegrityError

    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise IntegrityError(
            f"LANGDETECT_MODEL_DIR={root} holds no readable {MANIFEST} ({exc}): run "
            f"`langdetect fetch-model --alias champion --out {root}` first (in a pod, the "
            f"init container does)"
        ) from None
    hashes = {
        name.split("/", 1)[1]: digest
        for name, digest in manifest.get("sha256", {}).items()
        if name.startswith(f"{kind}/")
    }
    if not hashes:
        raise IntegrityError(
            f"{root / MANIFEST} lists no {kind} files: this service needs them "
            f"(fetch with --runtime all for the GPU image)"
        )
    verify_bundle(root / kind, hashes)
    return ModelFiles(
        str(root / kind),
        ModelLineage(
            tag=f"models:/{manifest['name']}/{manifest['version']}",
            mlflow_model=manifest["name"],
            mlflow_version=manifest["version"],
            mlflow_alias=manifest.get("alias", ""),
            mlflow_run_id=manifest.get("run_id", ""),
            sha256=hashes,
        ),
    )


def model_files(stored, kind: str) -> ModelFiles:
    from service.pin import model_dir

    root = model_dir()
    return from_fetched(root, kind) if root else from_store(stored)


def onnx_threads(workers: int) -> int:
    """LANGDETECT_ONNX_THREADS, else the cores left to each worker (workers x threads <= cores)."""
    return int(os.environ.get("LANGDETECT_ONNX_THREADS", "0")) or max(1, (os.cpu_count() or 1) // workers)


def load_onnx(files: ModelFiles, workers: int) -> Runtime:
    import onnxruntime

    from service.inference import OnnxClassifier

    onnxruntime.disable_telemetry_events()  # offline machines, and nobody asked for it
    classifier = OnnxClassifier(
        files.path, threads=onnx_threads(workers), spin=os.environ.get("LANGDETECT_ONNX_SPIN", "0") == "1"
    )
    return Runtime("onnx-int8-cpu", "cpu", classifier, files.lineage)


def load_torch(files: ModelFiles) -> Runtime:
    from service.inference import TorchClassifier

    classifier = TorchClassifier(files.path)
    precision = "fp16" if classifier.device.startswith("cuda") else "fp32"
    return Runtime(f"torch-{precision}-{classifier.device.split(':')[0]}", classifier.device, classifier, files.lineage)


def settle_garbage_collector(runtimes) -> None:
    """Moves everything loaded so far (BentoML, pydantic, onnxruntime, torch...: millions of objects) out of
    the collector's reach. Otherwise Python's full collection walks all of them every ~1,200 requests and
    stalls the worker for ~100 ms each time: that was the p99 at concurrency 1 (gen-2 pauses of 82-121 ms,
    every 1.5 s, freeing nothing; measured with gc.callbacks)."""
    import gc

    for runtime in runtimes:  # one call each first, so that lazy imports on the request path happen now
        runtime.probabilities(["warm-up"])
    gc.collect()
    gc.freeze()


def return_freed_heap() -> bool:
    """Hands the heap that loading freed back to the OS. glibc keeps it: freeing the large numpy temporaries
    of a model's load raises its mmap threshold, so the next ones come from the heap and stay in the RSS
    (about 120 MB per worker with the n-gram chain's table, measured). False without glibc (nothing to do)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


class DetectorAPI:
    """The API both entry services expose. Subclasses list the `kinds` of model they serve and declare
    `onnx_model` (and `torch_model`) as BentoModel class attributes, so that `bentoml build` packages exactly
    the pinned models; None when LANGDETECT_MODEL_DIR supplies them instead (service/pin.py)."""

    kinds: tuple[str, ...] = ("onnx",)
    onnx_model: object | None = None
    torch_model: object | None = None
    workers: int = 1

    def __init__(self) -> None:
        from service import metrics

        self.runtimes = {"onnx": load_onnx(model_files(self.onnx_model, "onnx"), self.workers)}
        if "torch" in self.kinds:
            self.runtimes["torch"] = load_torch(model_files(self.torch_model, "torch"))
        self.labels = self.runtimes["onnx"].classifier.labels
        torch = self.runtimes.get("torch")
        self.auto = "torch" if torch is not None and torch.device.startswith("cuda") else "onnx"
        self.metrics = metrics
        settle_garbage_collector(self.runtimes.values())
        return_freed_heap()  # the loads' temporaries are freed by now

    @bentoml.api(route="/detect")
    async def detect(self, text: Text, backend: Backend = "auto", top_k: TopK = 1) -> Detection:
        """Language of one text. backend: auto (torch on CUDA when the service has a GPU, else int8 ONNX),
        onnx or cpu (int8 ONNX on CPU), torch (the torch model on the service's device), gpu (torch on
        CUDA; a 400 without one)."""
        return (await self._detect([text], backend, top_k))[0]

    @bentoml.api(route="/detect_batch")
    async def detect_batch(
        self,
        texts: Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH_TEXTS)],
        backend: Backend = "auto",
        top_k: TopK = 1,
    ) -> BatchDetection:
        """Languages of up to 256 texts, in input order."""
        return BatchDetection(results=await self._detect(texts, backend, top_k))

    def describe(self) -> ServiceInfo:
        return ServiceInfo(
            runtimes={
                kind: RuntimeInfo(
                    runtime=r.name,
                    device=r.device,
                    ngram_weight=r.ngram_weight,
                    ngram_word_weight=r.ngram_word_weight,
                    ngram_last_word_whole=r.ngram_last_word_whole,
                    ngram_gram_scoring=r.ngram_gram_scoring,
                    ngram_chain_end_whole=r.ngram_chain_end_whole,
                    model=r.lineage,
                )
                for kind, r in self.runtimes.items()
            },
            backends={
                backend: self._runtime(backend).name
                for backend in ("auto", "onnx", "cpu", "torch", "gpu")
                if self._available(backend)
            },
            auto_runtime=self.runtimes[self.auto].name,
            labels=list(self.labels),
            max_text_chars=MAX_TEXT_CHARS,
            max_batch_texts=MAX_BATCH_TEXTS,
        )

    async def _detect(self, texts: list[str], backend: str, top_k: int) -> list[Detection]:
        for i, text in enumerate(texts):
            if not text.strip():
                where = "text" if len(texts) == 1 else f"texts[{i}]"
                raise InvalidArgument(f"{where} is empty or whitespace only; send the text to classify")
        runtime = self._runtime(backend)
        probs = await runtime.batched(texts)
        best = np.argmax(probs, axis=1)
        self.metrics.record(
            runtime.name,
            runtime.lineage.mlflow_version,
            Tally(self.labels[i] for i in best),
            probs[np.arange(len(best)), best],
        )
        return [self._to_detection(row, runtime, top_k) for row in probs]

    def _available(self, backend: str) -> bool:
        try:
            self._runtime(backend)
        except InvalidArgument:
            return False
        return True

    def _runtime(self, backend: str) -> Runtime:
        """What a `backend` value runs: never a name that says gpu for work done on a CPU."""
        kind = {"auto": self.auto, "cpu": "onnx", "gpu": "torch"}.get(backend, backend)
        runtime = self.runtimes.get(kind)
        if runtime is None:
            raise InvalidArgument(
                f"backend {backend!r} is not available in this deployment: it serves "
                f"{', '.join(r.name for r in self.runtimes.values())} (see GET /info)"
            )
        if backend == "gpu" and not runtime.device.startswith("cuda"):
            raise InvalidArgument(
                f"backend 'gpu' needs a CUDA device, and this server has none: its torch model "
                f"runs as {runtime.name} (ask for backend 'torch' to use it anyway)"
            )
        return runtime

    def _to_detection(self, row: np.ndarray, runtime: Runtime, top_k: int) -> Detection:
        best = np.argsort(-row)[:top_k]
        candidates = [Candidate(language=self.labels[i], score=float(row[i])) for i in best]
        return Detection(
            language=candidates[0].language,
            score=candidates[0].score,
            runtime=runtime.name,
            model_version=runtime.lineage.mlflow_version,
            candidates=candidates,
        )


# GET beside BentoML's POST-only APIs: a FastAPI app mounted on the service, whose route receives the
# running service instance through bentoml.get_current_service (BentoML merges its OpenAPI paths).
info_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@info_app.get(
    "/info",
    response_model=ServiceInfo,
    summary="Model lineage and runtimes",
    description="Model lineage (MLflow version, alias, run id, sha256 verified at load) and runtimes.",
)
def get_info(service=Depends(bentoml.get_current_service)) -> ServiceInfo:  # noqa: B008 (FastAPI's idiom)
    return service.describe()


def entry_service(cls):
    """What both entry services add to their BentoML service: the error contract (service/errors.py), the
    process supervision (service/supervision.py) and the request-path fix (service/http_fixes.py). It runs
    when the service module is imported, in the arbiter and in every worker alike."""
    from service import errors, http_fixes, supervision

    supervision.install()
    http_fixes.install()
    errors.declare_in_openapi()
    cls.add_asgi_middleware(errors.ErrorContract)
    return cls

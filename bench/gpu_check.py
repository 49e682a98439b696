"""The GPU path on a CUDA machine, in one bounded run that writes one JSON file.

    scripts/gpu-check.sh [--cpu] [--export artifacts/export/vN] [--data data/corpus] [--out FILE]

With a carried export (torch checkpoint, int8 ONNX, tokenizer.json, labels.json, ngrams.npz) and a test split:
1. the GPU path's classifier (torch fp16 on CUDA) over the test split: label agreement with torch fp32 on
   the same device and with the int8 ONNX model (onnxruntime on CPU), and the accuracy of each;
2. throughput at batch 1, 64, 256 and 1024, and peak GPU memory;
3. a fixed number of training steps of the default profile's architecture on the device: steps/s;
4. the service itself (`bentoml serve` of LanguageDetector) answering with the torch runtime, where
   bentoml is importable; otherwise the report says it is not.

`--cpu` is the dry run that the tests use: the same steps on CPU in fp32, on a few hundred texts.
Needs torch, transformers, onnxruntime, tokenizers and numpy (not mlflow, pandas or bentoml).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from service.inference import OnnxClassifier, TorchClassifier

BATCH_SIZES = (1, 64, 256, 1024)
MIN_AGREEMENT = 0.995  # issue target: fp16 on CUDA vs int8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="dry run on CPU (fp32, few texts): what the tests run")
    parser.add_argument("--export", type=Path, help="an export directory (default: the newest artifacts/export/v*)")
    parser.add_argument("--data", type=Path, default=Path("data/corpus"), help="directory with test.csv")
    parser.add_argument(
        "--out", type=Path, help="the JSON report (default: $OUT/gpu-check.json, else reports/gpu-check.json)"
    )
    parser.add_argument("--max-texts", type=int, help="texts scored (default: all on CUDA, 400 with --cpu)")
    parser.add_argument("--train-steps", type=int, help="timed training steps (default 300 on CUDA, 10 with --cpu)")
    parser.add_argument("--skip-serving", action="store_true", help="do not start bentoml serve")
    return parser.parse_args(argv)


def newest_export(root: Path = Path("artifacts/export")) -> Path:
    exports = sorted(root.glob("v*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1)
    if not exports:
        sys.exit(f"no export under {root}: run `langdetect export` first, or pass --export DIR")
    return exports[-1]


def read_test_split(data: Path, limit: int | None) -> tuple[list[str], list[str]]:
    with open(data / "test.csv", newline="", encoding="utf-8") as handle:
        rows = [(r["text"], r["labels"]) for r in csv.DictReader(handle) if r["text"].strip()]
    if limit and len(rows) > limit:  # every k-th row keeps every language
        rows = rows[:: -(-len(rows) // limit)]
    return [t for t, _ in rows], [label for _, label in rows]


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def throughput(classifier, texts: list[str], batch: int, device: str, budget_texts: int) -> dict:
    sample = (texts * (1 + budget_texts // max(1, len(texts))))[:budget_texts]
    classifier.batch_size = batch
    classifier.probabilities(sample[: max(batch, 8)])  # warm-up: kernels, allocator
    synchronize(device)
    started = time.perf_counter()
    classifier.probabilities(sample)
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"batch": batch, "texts": len(sample), "seconds": seconds, "texts_per_s": len(sample) / seconds}


def training_speed(classifier: TorchClassifier, steps: int, device: str) -> dict:
    """Steps/s of the default profile's architecture on random token ids (batch 64, 40 tokens): the
    device's training speed, independent of data loading."""
    import torch

    from langdetect_ops.config import PROFILES
    from training.model import build_model

    profile = PROFILES["default"]
    vocab = classifier.tokenizer.get_vocab_size()
    model = build_model(profile, vocab).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=profile.lr)
    ids = torch.randint(5, vocab, (profile.batch_size, profile.max_length), device=device)
    labels = torch.randint(0, 20, (profile.batch_size,), device=device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32

    def step() -> None:
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=device.startswith("cuda")):
            loss = torch.nn.functional.cross_entropy(model(input_ids=ids).logits, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - started
    return {
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "batch": profile.batch_size,
        "tokens": profile.max_length,
        "autocast": str(dtype).split(".")[-1],
    }


def serve_through_bentoml(export: Path, texts: list[str], expected_runtime: str) -> dict:
    """`bentoml serve service.service:LanguageDetector` from a temp store holding this export's models."""
    try:
        import bentoml  # noqa: F401
    except ImportError as exc:
        return {"served": False, "reason": f"bentoml is not importable here ({exc}): its wheels were not carried"}
    import tempfile

    import httpx

    from langdetect_ops.processes import BentoServer
    from registry.bento_store import import_bundle

    with tempfile.TemporaryDirectory() as home:
        os.environ["BENTOML_HOME"] = home  # the store and the server below, not the user's
        from bentoml._internal.configuration.containers import BentoMLContainer

        BentoMLContainer.bentoml_home.set(home)
        lineage = {"mlflow_version": export.name.lstrip("v"), "mlflow_run_id": "gpu-check", "mlflow_alias": "gpu-check"}
        tags = {kind: import_bundle(f"langdetect-{kind}", export / kind, lineage).tag for kind in ("onnx", "torch")}
        env = {**os.environ, "LANGDETECT_ONNX_MODEL": tags["onnx"], "LANGDETECT_TORCH_MODEL": tags["torch"]}
        with BentoServer("service.service:LanguageDetector", env, Path(home) / "serve.log") as server:
            ready = server.wait_ready(timeout=300)
            backend = "gpu" if expected_runtime.endswith("cuda") else "torch"
            started = time.perf_counter()
            answer = httpx.post(
                f"{server.url}/detect_batch", json={"texts": texts[:256], "backend": backend}, timeout=120
            )
            seconds = time.perf_counter() - started
            info = httpx.get(f"{server.url}/info", timeout=30).json()
    results = answer.json().get("results", []) if answer.status_code == 200 else []
    runtimes = sorted({r["runtime"] for r in results})
    return {
        "served": answer.status_code == 200 and runtimes == [expected_runtime],
        "ready_s": ready,
        "status": answer.status_code,
        "runtimes": runtimes,
        "batch_256_seconds": seconds,
        "auto_runtime": info.get("auto_runtime"),
        "backends": info.get("backends"),
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    device = "cuda" if cuda else "cpu"
    export = args.export or newest_export()
    texts, labels = read_test_split(args.data, args.max_texts or (None if cuda else 400))
    report: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "dry_run_on_cpu": not cuda,
        "export": str(export),
        "texts": len(texts),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
    }
    fast = TorchClassifier(export / "torch", device=device)  # fp16 on CUDA: the GPU path
    reference = TorchClassifier(export / "torch", device=device, dtype=torch.float32)
    int8 = OnnxClassifier(export / "onnx")
    fast.batch_size = reference.batch_size = 256
    predicted = {
        name: np.argmax(c.probabilities(texts), axis=1)
        for name, c in (("gpu_path", fast), ("fp32", reference), ("int8", int8))
    }
    truth = np.asarray([fast.labels.index(label) for label in labels])
    report["runtime"] = f"torch-{'fp16' if cuda else 'fp32'}-{device}"
    report["agreement"] = {
        "with_int8": float(np.mean(predicted["gpu_path"] == predicted["int8"])),
        "with_fp32": float(np.mean(predicted["gpu_path"] == predicted["fp32"])),
    }
    report["accuracy"] = {name: float(np.mean(p == truth)) for name, p in predicted.items()}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    budget = 20000 if cuda else 512
    report["throughput"] = [
        throughput(fast, texts, b, device, budget if b > 1 else min(budget, 2000)) for b in BATCH_SIZES
    ]
    int8.batch_size = 64
    report["int8_cpu_throughput_batch64"] = throughput(int8, texts, 64, "cpu", 4000 if cuda else 512)
    report["gpu_memory_peak_bytes"] = torch.cuda.max_memory_allocated() if cuda else None
    report["training"] = training_speed(fast, args.train_steps or (300 if cuda else 10), device)
    report["serving"] = (
        {"served": False, "reason": "skipped (--skip-serving)"}
        if args.skip_serving
        else serve_through_bentoml(export, texts, report["runtime"])
    )
    report["passed"] = {"agreement_with_int8": report["agreement"]["with_int8"] >= MIN_AGREEMENT}
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or (
        Path(os.environ["OUT"]) / "gpu-check.json" if os.environ.get("OUT") else Path("reports/gpu-check.json")
    )
    started = time.perf_counter()
    report = run(args)
    report["seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("runtime", "agreement", "accuracy", "gpu_memory_peak_bytes")}))
    for row in report["throughput"]:
        print(f"batch {row['batch']:>5}: {row['texts_per_s']:,.0f} texts/s")
    print(f"training: {report['training']['steps_per_s']:.1f} steps/s; serving: {report['serving']}")
    print(f"report: {out} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""In-process texts/second of the int8 ONNX, fp32 ONNX and torch models on the test split.

    python -m bench.inprocess_speed --export-dir artifacts/export/v1 --data data/corpus --threads 1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.speed import texts_per_second
from service.inference import OnnxClassifier, TorchClassifier
from training.dataset import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--export-dir", type=Path, required=True, help="artifacts/export/vN from langdetect export")
    parser.add_argument("--data", type=Path, default=Path("data/corpus"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--texts", type=int, default=4000)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    texts = load_dataset(args.data)["test"].texts[: args.texts]
    onnx_dir = args.export_dir / "onnx"
    results = {
        "onnx_int8": texts_per_second(OnnxClassifier(onnx_dir, threads=args.threads).probabilities, texts),
        "onnx_fp32": texts_per_second(OnnxClassifier(onnx_dir, model_file=str((args.export_dir / "model.onnx")
                                                                               .resolve()), threads=args.threads)
                                      .probabilities, texts),
        "torch_fp32": texts_per_second(TorchClassifier(args.export_dir / "torch", device="cpu").probabilities, texts),
    }
    print(json.dumps({"threads": args.threads, "texts": len(texts),
                      **{k: round(v, 1) for k, v in results.items()}}))


if __name__ == "__main__":
    main()

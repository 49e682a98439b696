"""In-process texts/second of our three models (int8 ONNX, fp32 ONNX, torch) on the test split: the
speed part of `langdetect bench`, alone, for a quick look at one export.

    python -m bench.inprocess_speed --export-dir artifacts/export/v1 --data data/corpus --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.detectors import our_detectors
from bench.speed import texts_per_second
from training.dataset import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--export-dir", type=Path, required=True, help="artifacts/export/vN from langdetect export")
    parser.add_argument("--data", type=Path, default=Path("data/corpus"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--texts", type=int, default=4000)
    args = parser.parse_args()

    texts = load_dataset(args.data)["test"].texts[: args.texts]
    results = {
        detector.name: round(texts_per_second(detector.load(args.threads), texts), 1)
        for detector in our_detectors(args.export_dir, version="")
    }
    print(json.dumps({"threads": args.threads, "texts": len(texts), **results}))


if __name__ == "__main__":
    main()

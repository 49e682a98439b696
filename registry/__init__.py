"""Registry stage: alias promotion -> ONNX export + int8 quantization -> parity gate -> BentoML store."""

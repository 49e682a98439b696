"""Explicit export and quantize steps (as in optimum's examples), each with its own arguments."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from langdetect_ops.config import DEFAULT_INT8_ACTIVATION_SCALES, INT8_ACTIVATION_SCALES

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAMES = ["logits"]


def export_onnx(model, out_path: Path, max_length: int, opset: int = 18) -> Path:
    """fp32 ONNX with dynamic batch and sequence axes: (input_ids, attention_mask) -> logits."""
    import torch

    class LogitsOnly(torch.nn.Module):
        # transformers returns a ModelOutput; the graph should expose only the logits tensor.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    model = model.to("cpu", dtype=torch.float32).eval()
    example = (torch.full((2, 8), 5, dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=max_length)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(
            LogitsOnly(model),
            example,
            str(out_path),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            opset_version=opset,
            dynamo=True,
            optimize=True,
            external_data=False,
            verbose=False,
            dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
        )
    return out_path


def quantize_int8(fp32_path: Path, int8_path: Path, activation_scales: str = DEFAULT_INT8_ACTIVATION_SCALES) -> Path:
    """Dynamic int8 quantization of the MatMul weights, per channel (onnxruntime), then the rewrites of
    registry/int8_graph.py: the embedding table per row, always; activations per token with
    `activation_scales="token"` (the default), so that a text's answer depends on that text alone, not on
    what it is batched with. "batch" keeps onnxruntime's one scale per batch tensor (a few % faster)."""
    if activation_scales not in INT8_ACTIVATION_SCALES:
        raise ValueError(f"activation_scales: {activation_scales!r}, not one of {INT8_ACTIVATION_SCALES}")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from registry.int8_graph import embedding_gathers, quantize_activations_per_token, quantize_embedding_rows

    int8_path.parent.mkdir(parents=True, exist_ok=True)
    stripped = int8_path.with_name(int8_path.stem + ".noshapes.onnx")
    prepared = int8_path.with_name(int8_path.stem + ".pre.onnx")
    # The dynamo exporter's intermediate shape annotations clash with the optimiser that
    # quant_pre_process runs ("Inferred shape and existing shape differ"); re-infer them instead.
    graph = onnx.load(str(fp32_path))
    del graph.graph.value_info[:]
    onnx.save(graph, str(stripped))
    try:
        quant_pre_process(str(stripped), str(prepared), skip_symbolic_shape=True)
        tables = embedding_gathers(onnx.load(str(prepared)))
        quantize_dynamic(
            str(prepared), str(int8_path), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=tables
        )
    finally:
        stripped.unlink(missing_ok=True)
        prepared.unlink(missing_ok=True)
    model = onnx.load(str(int8_path))
    quantize_embedding_rows(model)
    if activation_scales == "token":
        quantize_activations_per_token(model)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(int8_path))
    return int8_path

"""Two rewrites of onnxruntime's dynamic int8 graph that make every number in it belong to one row.

1. **The word-embedding table, per row.** `quantize_dynamic` gives a Gather's table one scale, so a rare
   token whose embedding is small keeps few levels. Here each row gets its own scale (symmetric int8):
   Gather(int8 rows) * Gather(row scales), 96 KB more for 24,000 rows.
2. **Activations, per token** (the default; `langdetect export --activation-scales batch` opts out).
   `DynamicQuantizeLinear` takes one scale for the whole batch tensor, so a
   text's logits moved with the texts batched beside it (by up to 0.08 on version 6: the same text could
   get another answer under other traffic). Here each token gets its own scale: symmetric, around a fixed
   uint8 zero point of 128 that MatMulInteger takes as it is, through one blocked QuantizeLinear (opset 21).
   The per-token scale is applied after the MatMulInteger-Cast-Mul chain, because onnxruntime's fusion of
   that chain (MatMulIntegerToFloat) assumes a scalar activation scale and computes wrong logits otherwise.
   The chain's activation scale is a runtime 1.0, so that the fusion still happens (see _runtime_one).

Measured on version 6's validation split cut to 10 and 20 characters, int8 against fp32 ONNX logits
(MLflow experiment `langdetect-int8-experiments`): p99 of the largest difference 0.049 with one scale
per table and per batch; 0.038 with the table per row, at the same speed; 0.029 with per-token
activations too, where a text alone and in a batch give identical logits, a few % slower.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

MIN_ROWS_PER_ROW = 256  # smaller tables (positions, token types: a few KB) stay fp32, exact
PER_TOKEN_OPSET = 21  # QuantizeLinear with block_size: one scale per token
ZERO_POINT = 128  # uint8 activations are symmetric around it: 1..255 for -127..127 steps


def embedding_gathers(model: ModelProto) -> list[str]:
    """The Gather nodes that read a 2-D float table (embeddings): kept out of quantize_dynamic."""
    tables = _float_tables(model.graph)
    return [n.name for n in model.graph.node if n.op_type == "Gather" and n.input[0] in tables]


def _float_tables(graph) -> dict:
    """The graph's 2-D float initializers by name: what a Gather reads as an embedding table."""
    return {t.name: t for t in graph.initializer if len(t.dims) == 2 and t.data_type == TensorProto.FLOAT}


def quantize_embedding_rows(model: ModelProto, min_rows: int = MIN_ROWS_PER_ROW) -> int:
    """Each large float table read by a Gather becomes int8 rows with one scale per row; returns how many."""
    graph = model.graph
    tables = _float_tables(graph)
    rewritten = 0
    for node in list(graph.node):
        table = tables.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or table.dims[0] < min_rows or table.dims[1] < 2:  # small, or a column of row scales already
            continue
        if any(a.name == "axis" and a.i != 0 for a in node.attribute):
            continue  # not a row lookup
        weights = numpy_helper.to_array(table)
        scale = np.abs(weights).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0  # an all-zero row stays zero
        rows = np.clip(np.round(weights / scale), -127, 127).astype(np.int8)
        name, ids, out = table.name, node.input[1], node.output[0]
        graph.initializer.remove(table)
        graph.initializer.extend(
            [numpy_helper.from_array(rows, f"{name}_rows_int8"), numpy_helper.from_array(scale, f"{name}_row_scale")]
        )
        _replace(
            graph,
            node,
            [
                helper.make_node("Gather", [f"{name}_rows_int8", ids], [f"{out}_int8"], name=f"{node.name}_int8"),
                helper.make_node("Cast", [f"{out}_int8"], [f"{out}_steps"], to=TensorProto.FLOAT),
                helper.make_node("Gather", [f"{name}_row_scale", ids], [f"{out}_scale"], name=f"{node.name}_scale"),
                helper.make_node("Mul", [f"{out}_steps", f"{out}_scale"], [out], name=f"{node.name}_dequantize"),
            ],
        )
        rewritten += 1
    return rewritten


def quantize_activations_per_token(model: ModelProto) -> int:
    """Every DynamicQuantizeLinear (one scale per batch) feeding MatMulIntegers becomes a per-token
    quantisation; returns how many."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    consumers = _consumers(graph)
    producers = {out: n for n in graph.node for out in n.output}
    constants = {
        "per_token_axes": np.array([-1], np.int64),
        "per_token_step": np.array(1 / 127, np.float32),
        "per_token_tiny": np.array(1e-12, np.float32),  # an all-zero token: any scale, all steps 0
        "per_token_zero_point": np.array(ZERO_POINT, np.uint8),
    }
    dqls = [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]
    if not dqls:
        return 0
    for at, node in enumerate(_runtime_one(graph.input[0].name)):
        graph.node.insert(at, node)
    for dql in dqls:
        x, (quantized, scale, zero_point) = dql.input[0], dql.output
        matmuls = consumers[quantized]
        if not matmuls or any(m.op_type != "MatMulInteger" for m in matmuls):
            raise ValueError(f"{dql.name}: its int8 output feeds more than MatMulInteger")
        width = weights[matmuls[0].input[1]].dims[0]  # the contracted axis: one block per token
        p = f"{dql.name}_per_token"
        _replace(
            graph,
            dql,
            [
                # max |x| as max(max x, -min x): two reductions, and no Abs copy of the whole tensor
                helper.make_node("ReduceMax", [x, "per_token_axes"], [f"{p}_max"], keepdims=1),
                helper.make_node("ReduceMin", [x, "per_token_axes"], [f"{p}_min"], keepdims=1),
                helper.make_node("Neg", [f"{p}_min"], [f"{p}_neg_min"]),
                helper.make_node("Max", [f"{p}_max", f"{p}_neg_min", "per_token_tiny"], [f"{p}_range"]),
                helper.make_node("Mul", [f"{p}_range", "per_token_step"], [scale]),
                helper.make_node("Shape", [scale], [f"{p}_shape"]),
                helper.make_node("Expand", ["per_token_zero_point", f"{p}_shape"], [f"{p}_zero_points"]),
                helper.make_node(
                    "QuantizeLinear", [x, scale, f"{p}_zero_points"], [quantized], axis=-1, block_size=width
                ),
            ],
        )
        for matmul in matmuls:
            _swap_input(matmul, zero_point, "per_token_zero_point")
            _scale_after_fusion(graph, matmul, scale, consumers, producers)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in constants.items())
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, PER_TOKEN_OPSET)
    del graph.value_info[:]  # the zero points' shapes changed; onnxruntime infers them again
    return len(dqls)


def _runtime_one(input_name: str) -> list[NodeProto]:
    """A scalar 1.0 computed from the input's batch size (never 0 when there is work). onnxruntime folds
    Mul(constant 1.0, weight scales) into one constant, and its MatMulIntegerToFloat fusion then finds no
    activation-scale Mul to fuse: the chain stays three unfused kernels, ~3x slower, and the whole model
    ~10% slower in process. tests/test_int8_graph.py checks that the fusion happens."""
    return [
        helper.make_node("Shape", [input_name], ["per_token_batch"], start=0, end=1),
        helper.make_node("Squeeze", ["per_token_batch"], ["per_token_batch_scalar"]),
        helper.make_node("Cast", ["per_token_batch_scalar"], ["per_token_nonempty"], to=TensorProto.BOOL),
        helper.make_node("Cast", ["per_token_nonempty"], ["per_token_one"], to=TensorProto.FLOAT),
    ]


def _scale_after_fusion(graph, matmul: NodeProto, scale: str, consumers, producers) -> None:
    """MatMulInteger -> Cast -> Mul(scale * weight scales): the product loses the per-token scale
    (weight scales only) and a Mul by it follows the chain."""
    (cast,) = consumers[matmul.output[0]]
    (rescale,) = consumers[cast.output[0]]
    product = producers[next(i for i in rescale.input if i != cast.output[0])]
    if cast.op_type != "Cast" or rescale.op_type != "Mul" or product.op_type != "Mul" or scale not in product.input:
        raise ValueError(f"{matmul.name}: not the MatMulInteger -> Cast -> Mul chain quantize_dynamic writes")
    _swap_input(product, scale, "per_token_one")
    out = rescale.output[0]
    rescale.output[0] = f"{out}_per_channel"
    at = list(graph.node).index(rescale) + 1
    graph.node.insert(at, helper.make_node("Mul", [f"{out}_per_channel", scale], [out], name=f"{rescale.name}_token"))


def _consumers(graph) -> dict[str, list[NodeProto]]:
    found = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            found[name].append(node)
    return found


def _swap_input(node: NodeProto, old: str, new: str) -> None:
    for i, name in enumerate(node.input):
        if name == old:
            node.input[i] = new


def _replace(graph, node: NodeProto, new: list[NodeProto]) -> None:
    """Puts `new` where `node` was: nodes stay in topological order."""
    at = list(graph.node).index(node)
    graph.node.remove(node)
    for offset, replacement in enumerate(new):
        graph.node.insert(at + offset, replacement)

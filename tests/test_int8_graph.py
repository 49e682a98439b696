"""The int8 graph (registry/int8_graph.py: the word table per row, activations per token by default) on a
small fp32 model of the same shape as the classifier's first steps: an embedding table, then a dense layer
with a bias, then a second one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from registry.int8_graph import MIN_ROWS_PER_ROW, embedding_gathers, quantize_embedding_rows
from registry.onnx_export import quantize_int8

VOCAB, WIDTH, HIDDEN, POSITIONS = 400, 32, 48, 8


def small_model(path: Path) -> Path:
    """ids (batch, sequence) -> embeddings (words + positions) -> dense -> tanh -> dense -> (batch, sequence, 5).
    Row 7's embedding is 200 times larger than the others: one token that sets a batch-wide scale."""
    rng = np.random.default_rng(0)
    words = rng.normal(0, 0.05, (VOCAB, WIDTH)).astype(np.float32)
    words[7] *= 200
    weights = {
        "words": words,
        "positions": rng.normal(0, 0.05, (POSITIONS, WIDTH)).astype(np.float32),
        "position_ids": np.arange(4, dtype=np.int64)[None, :],
        "w1": rng.normal(0, 0.2, (WIDTH, HIDDEN)).astype(np.float32),
        "b1": rng.normal(0, 0.1, HIDDEN).astype(np.float32),
        "w2": rng.normal(0, 0.2, (HIDDEN, 5)).astype(np.float32),
        "b2": rng.normal(0, 0.1, 5).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gather", ["words", "ids"], ["word_vectors"], name="word_embedding"),
        helper.make_node("Gather", ["positions", "position_ids"], ["position_vectors"], name="position_embedding"),
        helper.make_node("Add", ["word_vectors", "position_vectors"], ["embedded"], name="embed"),
        helper.make_node("MatMul", ["embedded", "w1"], ["h1"], name="dense1"),
        helper.make_node("Add", ["h1", "b1"], ["h1b"], name="bias1"),
        helper.make_node("Tanh", ["h1b"], ["t1"], name="tanh"),
        helper.make_node("MatMul", ["t1", "w2"], ["h2"], name="dense2"),
        helper.make_node("Add", ["h2", "b2"], ["logits"], name="bias2"),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4, 5])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10
    )  # what onnxruntime reads
    onnx.save(model, str(path))
    return path


Logits = Callable[[list], np.ndarray]  # ids (batch, 4) -> logits (batch, 4, 5)


@dataclass
class Models:
    fp32: Logits
    words: np.ndarray  # the fp32 word table
    paths: dict[str, Path]  # activation_scales -> the int8 file
    int8: dict[str, Logits]  # activation_scales -> its session
    graphs: dict[str, onnx.ModelProto]  # activation_scales -> its graph


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    import onnxruntime as ort

    directory = tmp_path_factory.mktemp("int8_graph")
    fp32 = small_model(directory / "fp32.onnx")
    paths = {scales: quantize_int8(fp32, directory / f"int8_{scales}.onnx", scales) for scales in ("token", "batch")}

    def session(path):  # the serving options: every graph optimisation, fusions included
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda ids: sess.run(["logits"], {"ids": np.asarray(ids, dtype=np.int64)})[0]

    words = next(t for t in onnx.load(str(fp32)).graph.initializer if t.name == "words")
    return Models(
        fp32=session(fp32),
        words=numpy_helper.to_array(words),
        paths=paths,
        int8={scales: session(path) for scales, path in paths.items()},
        graphs={scales: onnx.load(str(path)) for scales, path in paths.items()},
    )


def test_the_default_activation_scales_are_per_token(tmp_path, models):
    default = quantize_int8(small_model(tmp_path / "fp32.onnx"), tmp_path / "int8.onnx")
    assert default.read_bytes() == models.paths["token"].read_bytes()


def test_a_texts_logits_do_not_depend_on_what_it_is_batched_with(models):
    """One-scale-per-batch quantisation fails this: row 7's huge embedding coarsens every other row."""
    int8 = models.int8["token"]
    quiet, loud = [3, 150, 22, 9], [7, 7, 7, 7]
    alone = int8([quiet])
    assert np.array_equal(int8([quiet, loud])[0], alone[0])
    assert np.array_equal(int8([loud, quiet, [1, 2, 3, 4]])[1], alone[0])


def test_with_one_scale_per_batch_a_loud_batch_mate_moves_the_logits(models):
    """The opt-out ("batch"): why "token" is the default. The word table is per row here too."""
    per_batch, graph = models.int8["batch"], models.graphs["batch"]
    quiet, loud = [3, 150, 22, 9], [7, 7, 7, 7]
    assert not np.allclose(per_batch([quiet, loud])[0], per_batch([quiet])[0], rtol=0, atol=1e-4)
    ops = [n.op_type for n in graph.graph.node]
    assert "DynamicQuantizeLinear" in ops and "QuantizeLinear" not in ops
    assert "words_rows_int8" in {t.name for t in graph.graph.initializer}


def test_an_unknown_activation_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="activation_scales"):
        quantize_int8(small_model(tmp_path / "fp32.onnx"), tmp_path / "int8.onnx", activation_scales="tensor")


def test_int8_logits_stay_close_to_fp32(models):
    """Also guards the fusion hazard: a per-token scale inside onnxruntime's MatMulIntegerToFloat is
    misapplied (logits off by about the logits' size), so the rewrite must keep it outside."""
    fp32, int8 = models.fp32, models.int8["token"]
    ids = np.random.default_rng(1).integers(0, VOCAB, (64, 4))
    ids[::9, 0] = 7  # some rows hold the loud token
    reference, quantised = fp32(ids), int8(ids)
    error = np.abs(quantised - reference)
    assert error.max() < 0.05 * np.abs(reference).max()
    assert np.mean(quantised.argmax(-1) == reference.argmax(-1)) >= 0.97


def test_the_graph_has_no_batch_wide_quantisation_left(models):
    graph = models.graphs["token"]
    ops = [n.op_type for n in graph.graph.node]
    assert "DynamicQuantizeLinear" not in ops
    blocked = [n for n in graph.graph.node if n.op_type == "QuantizeLinear"]
    assert len(blocked) == ops.count("MatMulInteger") == 2  # one activation per dense layer
    assert {helper.get_attribute_value(a) for n in blocked for a in n.attribute if a.name == "block_size"} == {
        WIDTH,
        HIDDEN,
    }


@pytest.mark.parametrize("activation_scales", ["token", "batch"])
def test_onnxruntime_fuses_every_int8_matmul(tmp_path, models, activation_scales):
    """A constant activation scale of 1.0 would be folded away, and with it onnxruntime's
    MatMulIntegerToFloat fusion: three unfused kernels per dense layer, ~10% slower in serving."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(models.paths[activation_scales]), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops, ops
    fused = ops.count("MatMulIntegerToFloat") + ops.count("DynamicQuantizeMatMul")
    assert fused == 2, ops  # one per dense layer


def test_the_word_table_is_int8_per_row_and_the_small_table_stays_fp32(models):
    graph, original = models.graphs["token"], models.words
    tables = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    rows, scale = tables["words_rows_int8"], tables["words_row_scale"]
    assert rows.dtype == np.int8 and rows.shape == (VOCAB, WIDTH) and scale.shape == (VOCAB, 1)
    assert "words" not in tables
    assert {name for name in tables if name.endswith("_rows_int8")} == {"words_rows_int8"}  # 8 positions stay fp32
    assert POSITIONS < MIN_ROWS_PER_ROW <= VOCAB
    # each row is within half a step of its own scale, and the largest entry of each row is +-127 steps
    assert np.all(np.abs(rows * scale - original) <= scale / 2 + 1e-7)
    assert np.all(np.abs(rows).max(axis=1) == 127)
    assert scale[7, 0] > 100 * np.median(scale)  # the loud row did not coarsen the others


def test_embedding_gathers_finds_tables_and_the_rewrite_leaves_other_gathers(tmp_path):
    model = onnx.load(str(small_model(tmp_path / "fp32.onnx")))
    assert embedding_gathers(model) == ["word_embedding", "position_embedding"]
    assert quantize_embedding_rows(model) == 1  # words only: positions are below the row count
    assert quantize_embedding_rows(model) == 0  # idempotent: an int8 table is no float table

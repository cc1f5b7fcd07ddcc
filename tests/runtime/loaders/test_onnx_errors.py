"""Bad .onnx input gives edgefw errors that say what is wrong, never a crash or a huge
allocation: corrupt bytes, unsupported ops and features, broken graphs, absurd sizes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import runtime
from edgefw.errors import GraphError, ModelFormatError, UnsupportedOpError
from runtime import InferenceSession
from tests.runtime.loaders.onnx_builder import make_model
from tests.runtime.loaders.onnx_fixtures import path_of

X = np.ones((2, 3), np.float32)


def _relu_model(**changes) -> onnx.ModelProto:
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="act")], {"x": X}, ["y"],
                      13, **changes)


def _load(model: onnx.ModelProto):
    return runtime.load_onnx(model.SerializeToString())


# ------------------------------------------------------------------ bytes and files
@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"not an onnx file at all\n" * 4,
                                  np.random.default_rng(0).bytes(4096)],
                         ids=["empty", "zeros", "text", "random"])
def test_garbage_bytes(data):
    with pytest.raises(ModelFormatError, match="onnx"):
        runtime.load_onnx(data)


def test_truncated_file_names_the_path(tmp_path):
    data = path_of("lenet_ts17").read_bytes()
    for cut in (10, len(data) // 2, len(data) - 3):
        bad = tmp_path / "lenet.onnx"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match="lenet.onnx"):
            InferenceSession(str(bad))


def test_other_protobuf_message_is_not_a_model():
    tensor = numpy_helper.from_array(np.arange(6, dtype=np.float32), "w")
    with pytest.raises(ModelFormatError, match="not a valid ONNX model|no graph"):
        runtime.load_onnx(tensor.SerializeToString())
    with pytest.raises(ModelFormatError, match="no graph"):
        runtime.load_onnx(onnx.ModelProto(ir_version=8).SerializeToString())


def test_missing_file_and_wrong_argument_type(tmp_path):
    with pytest.raises(ModelFormatError, match="not found"):
        runtime.load_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ModelFormatError, match="path, bytes or an onnx.ModelProto"):
        runtime.load_onnx(12)


# ------------------------------------------------------------------------- ops
def test_unsupported_op_names_op_node_and_supported_ops():
    model = make_model([helper.make_node("Relu", ["x"], ["h"]),
                        helper.make_node("FancyOp", ["h"], ["y"], name="my_fancy")],
                       {"x": X}, ["y"], 13)
    with pytest.raises(UnsupportedOpError) as info:
        InferenceSession(model.SerializeToString())
    message = str(info.value)
    assert "'FancyOp'" in message and "'my_fancy'" in message
    assert "supported ops:" in message and "Conv" in message and "QLinearConv" in message


def test_custom_domain_op_is_unsupported():
    model = make_model([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")],
                       {"x": X}, ["y"], 13)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpError, match="com.microsoft"):
        _load(model)


def test_subgraph_is_unsupported():
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "branch", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    model = make_model([helper.make_node("If", ["c"], ["y"], then_branch=branch,
                                         else_branch=branch)],
                       {"x": X, "c": np.array(True)}, ["y"], 13)
    with pytest.raises(UnsupportedOpError, match="subgraph.*If"):
        _load(model)


# ----------------------------------------------------------------------- graphs
def test_cycle_names_the_nodes():
    model = make_model([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                        helper.make_node("Relu", ["a"], ["b"], name="n2"),
                        helper.make_node("Relu", ["a"], ["y"])], {"x": X}, ["y"], 13)
    with pytest.raises(GraphError, match="cycle.*'n1'.*'n2'"):
        _load(model)
    model = make_model([helper.make_node("Add", ["x", "y"], ["y"], name="self")], {"x": X},
                       ["y"], 13)
    with pytest.raises(GraphError, match="'self'"):
        _load(model)


def test_undefined_input_and_output():
    model = make_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")],
                       {"x": X}, ["y"], 13)
    with pytest.raises(GraphError, match="'adder'.*'ghost'"):
        _load(model)
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": X}, ["nowhere"], 13)
    with pytest.raises(GraphError, match="'nowhere'"):
        _load(model)


def test_duplicate_names():
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="a"),
                        helper.make_node("Neg", ["x"], ["y"], name="b")], {"x": X}, ["y"], 13)
    with pytest.raises(GraphError, match="'y' is defined twice"):
        _load(model)
    model = make_model([helper.make_node("Relu", ["x"], ["x"])], {"x": X}, ["x"], 13)
    with pytest.raises(GraphError, match="defined twice"):
        _load(model)
    model = _relu_model(initializers={"w": X})
    model.graph.initializer.append(numpy_helper.from_array(X, "w"))
    with pytest.raises(GraphError, match="'w' is defined twice"):
        _load(model)


def test_declared_output_type_must_match():
    model = _relu_model(output_types={"y": TensorProto.INT64})
    with pytest.raises(GraphError, match="declared int64 but computes float32"):
        _load(model)


def test_shape_mismatch_names_the_node():
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], {"x": X},
                       ["y"], 13, {"w": np.ones((4, 2), np.float32)})
    with pytest.raises(Exception, match="'mm'") as info:
        _load(model)
    assert "EdgeFWError" in [c.__name__ for c in type(info.value).__mro__]


# --------------------------------------------------------------------- sizes
def test_absurd_declared_input_dims():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       {"x": (TensorProto.FLOAT, [10**12, 10**12])}, ["y"], 13)
    with pytest.raises(ModelFormatError, match="graph input 'x'.*elements"):
        _load(model)
    model = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       {"x": (TensorProto.FLOAT, [2, -3])}, ["y"], 13)
    with pytest.raises(ModelFormatError, match="invalid dim -3"):
        _load(model)


def test_initializer_data_must_match_its_dims():
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], {"x": X}, ["y"], 13,
                       {"w": X})
    tensor = model.graph.initializer[0]
    tensor.dims[:] = [10**6, 10**6]
    with pytest.raises(ModelFormatError, match="'w' has shape .*1e\\+12 elements"):
        _load(model)
    tensor.dims[:] = [1000, 1000]
    with pytest.raises(ModelFormatError, match="'w'.*raw data has 24 bytes.*needs 4000000"):
        _load(model)
    tensor.dims[:] = [2, 3]
    tensor.raw_data = tensor.raw_data[:-4]
    with pytest.raises(ModelFormatError, match="raw data has 20 bytes but shape \\[2, 3\\]"):
        _load(model)
    typed = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3])
    typed.float_data.extend([1.0] * 5)
    model.graph.initializer[0].CopyFrom(typed)
    with pytest.raises(ModelFormatError, match="needs 6 values in float_data.*holds 5"):
        _load(model)


def test_unsupported_element_types():
    model = make_model([helper.make_node("Identity", ["x"], ["y"])],
                       {"x": (TensorProto.BFLOAT16, [2])}, ["y"], 13)
    with pytest.raises(ModelFormatError, match="BFLOAT16"):
        _load(model)
    model = make_model([helper.make_node("Identity", ["x"], ["y"])],
                       {"x": (TensorProto.STRING, [2])}, ["y"], 13)
    with pytest.raises(ModelFormatError, match="STRING"):
        _load(model)


def test_huge_computed_shapes_are_refused_before_running():
    model = make_model([helper.make_node("Expand", ["x", "s"], ["y"], name="grow")],
                       {"x": np.ones((1, 1), np.float32)}, ["y"], 13,
                       {"s": np.array([10**7, 10**7], np.int64)})
    with pytest.raises(ModelFormatError, match="grow.*elements"):
        _load(model)
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")], {},
                       ["y"], 13, {"s": np.array([10**7, 10**7], np.int64)})
    with pytest.raises(ModelFormatError, match="fill.*elements"):
        _load(model)


def test_non_tensor_input_and_opset_problems():
    model = _relu_model()
    model.graph.input[0].type.CopyFrom(helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2])))
    with pytest.raises(ModelFormatError, match="sequence_type"):
        _load(model)
    model = _relu_model()
    model.opset_import[0].version = 999
    with pytest.raises(ModelFormatError, match="opset 999"):
        _load(model)
    del model.opset_import[:]
    with pytest.raises(ModelFormatError, match="no opset"):
        _load(model)


def test_bad_constant_nodes():
    model = make_model([helper.make_node("Constant", [], ["c"], value_float=1.0,
                                         value_int=2)], {}, ["c"], 13)
    with pytest.raises(GraphError, match="exactly one value"):
        _load(model)
    model = make_model([helper.make_node("Constant", [], ["c"], value_strings=["a"])], {},
                       ["c"], 13)
    with pytest.raises(UnsupportedOpError, match="strings"):
        _load(model)


# ------------------------------------------------------------------ external data
def _model_with_external_weight(folder, location="weights.bin"):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       {"x": np.ones((2, 3), np.float32)}, ["y"], 13, {"w": w})
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=location, size_threshold=0)
    return folder / "model.onnx", w


def test_external_data_beside_the_model_loads(tmp_path):
    path, w = _model_with_external_weight(tmp_path)
    (y,) = InferenceSession(path).run(None, {"x": np.ones((2, 3), np.float32)})
    np.testing.assert_array_equal(y, np.ones((2, 3), np.float32) @ w)
    with pytest.raises(ModelFormatError, match="external file.*from its path"):
        runtime.load_onnx(path.read_bytes())


def test_external_data_outside_the_folder_or_too_short_is_refused(tmp_path):
    path, _ = _model_with_external_weight(tmp_path)
    model = onnx.load(str(path), load_external_data=False)
    entry = next(e for e in model.graph.initializer[0].external_data if e.key == "location")
    entry.value = "../weights.bin"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFormatError, match="outside the model's folder"):
        runtime.load_onnx(path)
    entry.value = "weights.bin"
    model.graph.initializer[0].dims[:] = [30, 4]
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFormatError, match="does not fit"):
        runtime.load_onnx(path)


def test_constant_subgraphs_that_would_fold_into_gigabytes_are_refused():
    # 2^29 elements: under the general limit, over the one for values folded at load
    model = make_model([helper.make_node("Expand", ["one", "s"], ["big"], name="grow"),
                        helper.make_node("ReduceSum", ["big"], ["y"], keepdims=0)], {},
                       ["y"], 13, {"one": np.ones(1, np.float32),
                                   "s": np.array([2**15, 2**14], np.int64)})
    with pytest.raises(ModelFormatError, match="grow.*elements"):
        _load(model)


def test_huge_per_item_shapes_with_a_symbolic_batch_are_refused():
    model = make_model([helper.make_node("Pad", ["x", "p"], ["y"], name="pad")],
                       {"x": (TensorProto.FLOAT, ["batch", 2])}, ["y"], 13,
                       {"p": np.array([0, 0, 0, 10**10], np.int64)})
    with pytest.raises(ModelFormatError, match="pad.*elements"):
        _load(model)


def test_runtime_imports_without_onnx_until_a_model_is_loaded():
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys; sys.modules['onnx'] = None\n"
        "import numpy as np, runtime\n"
        "from edgefw.ir import Graph\n"
        "g = Graph(); x = g.add_input('x', 'float32', (2,))\n"
        "g.set_outputs([g.add_node('Relu', [x]).output])\n"
        "print(runtime.InferenceSession(g).run(None, {'x': np.ones(2, np.float32)})[0])\n"
        "try:\n"
        "    runtime.load_onnx(b'abc')\n"
        "except runtime.loaders.onnx_loader.ModelFormatError as e:\n"
        "    print('refused:', e)\n")
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                            text=True, env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "[1. 1.]" in result.stdout and "needs the 'onnx' package" in result.stdout

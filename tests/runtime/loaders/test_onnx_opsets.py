"""Old operator forms are rewritten to the IR's form with the old semantics: each case is
a small model at an old opset, run by edgefw and by onnxruntime (which still implements
the old forms from opset 6 on) or, before that, checked against numpy by hand."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import runtime
from tests.runtime.loaders.onnx_builder import assert_same, make_model, run_edgefw, run_onnxruntime

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
X3 = RNG.standard_normal((2, 3, 4)).astype(np.float32)


def _node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, **attrs)


# id -> (opset, nodes, inputs, outputs, initializers, output types)
CASES = {
    "softmax11_axis1_coerces_to_2d": (
        11, [_node("Softmax", ["x"], ["y"], axis=1)], {"x": X3}, ["y"], {}, {}),
    "softmax9_default_axis": (9, [_node("Softmax", ["x"], ["y"])], {"x": X}, ["y"], {}, {}),
    "softmax11_axis0": (11, [_node("Softmax", ["x"], ["y"], axis=0)], {"x": X3}, ["y"], {}, {}),
    "softmax11_last_axis": (
        11, [_node("Softmax", ["x"], ["y"], axis=-1)], {"x": X3}, ["y"], {}, {}),
    "logsoftmax11_axis_minus2": (
        11, [_node("LogSoftmax", ["x"], ["y"], axis=-2)], {"x": X}, ["y"], {}, {}),
    "clip10_min_max_attributes": (
        10, [_node("Clip", ["x"], ["y"], min=-0.5, max=0.25)], {"x": X}, ["y"], {}, {}),
    "clip6_max_only": (6, [_node("Clip", ["x"], ["y"], max=0.1)], {"x": X}, ["y"], {}, {}),
    "clip13_omitted_min": (
        13, [_node("Clip", ["x", "", "hi"], ["y"])], {"x": X}, ["y"],
        {"hi": np.array(0.3, np.float32)}, {}),
    "reducemean11_axes_attribute": (
        11, [_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)], {"x": X}, ["y"], {}, {}),
    "reducesum12_axes_attribute": (
        12, [_node("ReduceSum", ["x"], ["y"], axes=[0, -1])], {"x": X}, ["y"], {}, {}),
    "reducemax13_axes_attribute": (
        13, [_node("ReduceMax", ["x"], ["y"], axes=[2], keepdims=1)], {"x": X}, ["y"], {}, {}),
    "reducemin17_all_axes": (17, [_node("ReduceMin", ["x"], ["y"])], {"x": X}, ["y"], {}, {}),
    "squeeze11_axes_attribute": (
        11, [_node("Unsqueeze", ["x"], ["u"], axes=[0, 4]),
             _node("Squeeze", ["u"], ["y"], axes=[0])], {"x": X}, ["y"], {}, {}),
    "split11_split_attribute": (
        11, [_node("Split", ["x"], ["a", "b"], axis=2, split=[1, 3])], {"x": X}, ["a", "b"],
        {}, {}),
    "split11_equal_parts": (
        11, [_node("Split", ["x"], ["a", "b"], axis=1)], {"x": X3.reshape(2, 4, 3)},
        ["a", "b"], {}, {}),
    "split18_num_outputs_uneven": (
        18, [_node("Split", ["x"], ["a", "b", "c"], axis=3, num_outputs=3)],
        {"x": RNG.standard_normal((1, 2, 2, 7)).astype(np.float32)}, ["a", "b", "c"], {}, {}),
    "pad10_attributes_with_value": (
        10, [_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 0, 2, 1, 1], value=2.5)],
        {"x": X}, ["y"], {}, {}),
    "pad10_reflect": (
        10, [_node("Pad", ["x"], ["y"], mode="reflect", pads=[0, 0, 1, 2, 0, 0, 2, 1])],
        {"x": X}, ["y"], {}, {}),
    "slice9_attributes": (
        9, [_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[1000, -1], axes=[1, 3])],
        {"x": X}, ["y"], {}, {}),
    "slice9_no_axes": (
        9, [_node("Slice", ["x"], ["y"], starts=[0, 1], ends=[1, 3])], {"x": X}, ["y"], {}, {}),
    "dropout13_training_mode_false": (
        13, [_node("Dropout", ["x", "r", "t"], ["y"])], {"x": X}, ["y"],
        {"r": np.array(0.5, np.float32), "t": np.array(False)}, {}),
    "batchnorm7_spatial": (
        7, [_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=1,
                  epsilon=1e-3)], {"x": X}, ["y"], "bn", {}),
    "constant_node_forms": (
        13, [_node("Constant", [], ["f"], value_float=1.5),
             _node("Constant", [], ["fs"], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0]),
             _node("Constant", [], ["i"], value_int=2),
             _node("Constant", [], ["t"], value=helper.make_tensor("t", TensorProto.FLOAT,
                                                                     [5], [0.5] * 5)),
             _node("Constant", [], ["shape"], value_ints=[2, 3, 20]),
             _node("Mul", ["x", "fs"], ["a"]), _node("Add", ["a", "f"], ["b"]),
             _node("Sub", ["b", "t"], ["c"]), _node("Reshape", ["c", "shape"], ["y"]),
             _node("Cast", ["i"], ["ci"], to=TensorProto.FLOAT), _node("Mul", ["y", "ci"], ["z"])],
        {"x": X}, ["z"], {}, {}),
    "constant_of_shape_is_folded": (
        12, [_node("ConstantOfShape", ["s"], ["fill"],
                   value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5])),
             _node("Add", ["x", "fill"], ["y"])], {"x": X}, ["y"],
        {"s": np.array([4, 5], np.int64)}, {}),
    "nodes_out_of_order": (
        13, [_node("Relu", ["h"], ["y"]), _node("Mul", ["x", "x"], ["h"])], {"x": X}, ["y"],
        {}, {}),
    "omitted_middle_output": (
        17, [_node("LayerNormalization", ["x", "g"], ["y", "", "inv_std"], axis=-1)],
        {"x": X}, ["y", "inv_std"], {"g": np.linspace(0.5, 1.5, 5).astype(np.float32)}, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_old_form_matches_onnxruntime(case):
    opset, nodes, inputs, outputs, inits, types = CASES[case]
    inits = BN_PARAMS if inits == "bn" else inits
    model = make_model(nodes, inputs, outputs, opset, inits, types)
    assert_same(run_edgefw(model, inputs), run_onnxruntime(model, inputs), tol=1e-5)


def test_softmax_before_13_is_not_the_new_softmax():
    """The coercion matters: opset-11 Softmax(axis=1) on [2,3,4] normalizes 12 values."""
    model = make_model([_node("Softmax", ["x"], ["y"], axis=1)], {"x": X3}, ["y"], 11)
    (y,) = run_edgefw(model, {"x": X3})
    flat = X3.reshape(2, 12)
    expected = np.exp(flat - flat.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(y, expected.reshape(2, 3, 4), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y.sum(axis=(1, 2)), [1.0, 1.0], rtol=1e-6)


def test_softmax_before_13_with_symbolic_dims():
    model = make_model([_node("Softmax", ["x"], ["y"], axis=1)],
                       {"x": (TensorProto.FLOAT, ["n", 3, "t"])}, ["y"], 11)
    for t in (4, 6):
        x = RNG.standard_normal((2, 3, t)).astype(np.float32)
        assert_same(run_edgefw(model, {"x": x}), run_onnxruntime(model, {"x": x}), tol=1e-6)


BN_PARAMS = {"s": np.array([1.0, 2.0, 0.5], np.float32), "b": np.array([0.0, 1, -1], np.float32),
             "m": np.array([0.1, 0.2, 0.3], np.float32), "v": np.array([1.0, 2, 3], np.float32)}


def test_dropout_before_12_is_identity_with_an_all_kept_mask():
    """onnxruntime's pre-12 Dropout reports an all-false mask in inference; the ONNX
    reference (and onnxruntime from opset 12) an all-true one: nothing is dropped."""
    from onnx.reference import ReferenceEvaluator

    for opset, mask_type in ((7, TensorProto.FLOAT), (10, TensorProto.BOOL)):
        model = make_model([_node("Dropout", ["x"], ["y", "mask"], ratio=0.3)], {"x": X},
                           ["y", "mask"], opset, output_types={"mask": mask_type})
        y, mask = run_edgefw(model, {"x": X})
        np.testing.assert_array_equal(y, X)
        np.testing.assert_array_equal(mask, np.ones_like(mask))
        assert mask.dtype == (np.float32 if opset == 7 else np.bool_)
        np.testing.assert_array_equal(mask.astype(bool),
                                      ReferenceEvaluator(model).run(None, {"x": X})[1])


# Forms onnxruntime no longer runs (opset < 7): numpy by hand.
def test_batchnorm6_is_test_and_consumed_inputs():
    model = make_model([_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], is_test=1,
                              epsilon=1e-3, consumed_inputs=[0, 0, 0, 1, 1])],
                       {"x": X}, ["y"], 6, BN_PARAMS)
    p = {k: v[None, :, None, None] for k, v in BN_PARAMS.items()}
    expected = (X - p["m"]) / np.sqrt(p["v"] + 1e-3) * p["s"] + p["b"]
    np.testing.assert_allclose(run_edgefw(model, {"x": X})[0], expected, rtol=1e-5, atol=1e-6)


def test_legacy_broadcast_with_axis_and_gemm_broadcast():
    b = RNG.standard_normal((3, 4)).astype(np.float32)
    w = RNG.standard_normal((4, 3)).astype(np.float32)
    c = RNG.standard_normal(4).astype(np.float32)
    a = X3[:, :, 0].copy()
    model = make_model([_node("Add", ["x", "b"], ["y"], broadcast=1, axis=1),
                        _node("Gemm", ["a", "w", "c"], ["g"], broadcast=1, transB=1)],
                       {"x": X, "a": a}, ["y", "g"], 6, {"b": b, "w": w, "c": c})
    y, g = run_edgefw(model, {"x": X, "a": a})
    np.testing.assert_allclose(y, X + b[None, :, :, None], rtol=1e-6)
    np.testing.assert_allclose(g, a @ w.T + c, rtol=1e-5, atol=1e-6)
def test_reshape4_shape_attribute():
    model = make_model([_node("Reshape", ["x"], ["y"], shape=[2, -1])], {"x": X}, ["y"], 4)
    np.testing.assert_array_equal(run_edgefw(model, {"x": X})[0], X.reshape(2, -1))


def test_cast1_type_name_and_consumed_inputs():
    model = make_model([_node("Relu", ["x"], ["r"], consumed_inputs=[0]),
                        _node("Cast", ["r"], ["y"], to="FLOAT16")], {"x": X}, ["y"], 1,
                       output_types={"y": TensorProto.FLOAT16})
    (y,) = run_edgefw(model, {"x": X})
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, np.maximum(X, 0).astype(np.float16))


def test_concat3_default_axis_and_pad2_paddings():
    model = make_model([_node("Concat", ["x", "x"], ["c"]),
                        _node("Pad", ["c"], ["y"], paddings=[0, 0, 1, 0, 0, 0, 0, 1])],
                       {"x": X}, ["y"], 1)
    (y,) = run_edgefw(model, {"x": X})
    expected = np.pad(np.concatenate([X, X], axis=1), [(0, 0), (0, 0), (1, 0), (0, 1)])
    np.testing.assert_array_equal(y, expected)


def test_split1_sizes_as_input_and_legacy_broadcast_without_axis():
    model = make_model([_node("Split", ["x", "sizes"], ["a", "b"], axis=3),
                        _node("Sub", ["a", "k"], ["y"], broadcast=1)], {"x": X}, ["y", "b"], 1,
                       {"sizes": np.array([2, 3], np.int64), "k": np.float32([1.0, 2.0])})
    y, b = run_edgefw(model, {"x": X})
    np.testing.assert_array_equal(y, X[..., :2] - np.float32([1.0, 2.0]))
    np.testing.assert_array_equal(b, X[..., 2:])


def test_symbolic_and_unknown_input_dims():
    model = make_model([_node("Relu", ["x"], ["y"])],
                       {"x": (TensorProto.FLOAT, ["batch", None, 4])}, ["y"], 13)
    graph = runtime.load_onnx(model.SerializeToString())
    assert graph.inputs[0].shape == ("batch", None, 4)
    assert graph.outputs[0].shape == ("batch", None, 4)


def test_dropout_training_mode_true_is_refused():
    from edgefw.errors import UnsupportedOpError

    model = make_model([_node("Dropout", ["x", "r", "t"], ["y"])], {"x": X}, ["y"], 13,
                       {"r": np.array(0.5, np.float32), "t": np.array(True)})
    with pytest.raises(UnsupportedOpError, match="training mode"):
        runtime.load_onnx(model)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 2, 1.5], [1, 1, 3, 2], [1, 1, 0.5, 0.6],
                                    [1, 1, 1.3, 0.4]], ids=["up", "up_int", "down", "mixed"])
def test_resize10_and_upsample_match_onnxruntime(mode, scales):
    """Old resizing: asymmetric coordinates; onnxruntime's nearest rounds the source index
    down on upsampled axes and up on downsampled ones."""
    x = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32)
    s = np.array(scales, np.float32)
    models = [make_model([_node("Resize", ["x", "s"], ["y"], mode=mode)], {"x": x}, ["y"], 10,
                         {"s": s})]
    if min(scales) >= 1:  # Upsample never downsampled in onnxruntime
        models.append(make_model([_node("Upsample", ["x", "s"], ["y"], mode=mode)], {"x": x},
                                 ["y"], 9, {"s": s}))
        models.append(make_model([_node("Upsample", ["x"], ["y"], mode=mode,
                                        scales=[float(f) for f in scales])],
                                 {"x": x}, ["y"], 7))
    for model in models:
        assert_same(run_edgefw(model, {"x": x}), run_onnxruntime(model, {"x": x}), tol=1e-5)

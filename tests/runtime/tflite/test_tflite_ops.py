"""Float TFLite ops one at a time: a hand-built model per case (padding, strides, dilation,
groups, fused activations, broadcasting against channels-first values, masks of
STRIDED_SLICE...), run by edgefw and by LiteRT's reference kernels on the same bytes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import runtime
from tests.runtime.tflite.tflite_builder import (
    TFLiteBuilder,
    assert_matches,
    litert,
    options,
    random_feed,
)

RNG = np.random.default_rng(11)
F32 = "float32"


def w(*shape: int) -> np.ndarray:
    return RNG.normal(0, 0.5, shape).astype(np.float32)


def single(op: str, in_shapes: list, out_shape: list, opts=None, consts=(),
           in_dtype: str = F32, out_dtype: str = F32, outputs: int = 1,
           version: int = 1) -> TFLiteBuilder:
    """A model whose inputs (dynamic batch) and constants feed one ``op``."""
    b = TFLiteBuilder()
    ins = [b.input(f"x{i}", in_dtype, s, signature=[-1] + list(s[1:]))
           for i, s in enumerate(in_shapes)]
    ins += [c if isinstance(c, int) else b.const(f"c{i}", c) for i, c in enumerate(consts)]
    shapes = out_shape if outputs > 1 else [out_shape]
    outs = [b.tensor(f"y{i}", out_dtype, s) for i, s in enumerate(shapes)]
    b.op(op, ins, outs, opts, version=version)
    for t in outs:
        b.output(t)
    return b


def conv(padding=0, stride=1, dilation=1, act=0, groups=1) -> TFLiteBuilder:
    b = TFLiteBuilder()
    x = b.input("x", F32, [1, 9, 9, 4], signature=[-1, 9, 9, 4])
    y = b.tensor("y", F32, [1, 1, 1, 6])
    b.op("CONV_2D", [x, b.const("w", w(6, 3, 3, 4 // groups)), b.const("b", w(6))], [y],
         options("Conv2DOptions", padding=padding, strideW=stride, strideH=stride,
                 dilationWFactor=dilation, dilationHFactor=dilation,
                 fusedActivationFunction=act))
    b.output(y)
    return b


def depthwise(multiplier=2, padding=0, stride=2) -> TFLiteBuilder:
    b = TFLiteBuilder()
    x = b.input("x", F32, [1, 8, 7, 3], signature=[-1, 8, 7, 3])
    y = b.tensor("y", F32, [1, 1, 1, 3 * multiplier])
    b.op("DEPTHWISE_CONV_2D", [x, b.const("w", w(1, 3, 3, 3 * multiplier)),
                               b.const("b", w(3 * multiplier))], [y],
         options("DepthwiseConv2DOptions", padding=padding, strideW=stride, strideH=stride,
                 depthMultiplier=multiplier, fusedActivationFunction=1))
    b.output(y)
    return b


def pool(name, padding=0, act=0) -> TFLiteBuilder:
    return single(name, [[1, 7, 6, 3]], [1, 1, 1, 3], options(
        "Pool2DOptions", padding=padding, strideW=2, strideH=2, filterWidth=3, filterHeight=3,
        fusedActivationFunction=act))


def conv_then(op: str, const: np.ndarray, opts=None) -> TFLiteBuilder:
    """CONV_2D (channels-first inside edgefw) followed by a binary op with a constant."""
    b = conv()
    y = b.outputs.pop()
    z = b.tensor("z", F32, [1, 7, 7, 6])
    b.op(op, [y, b.const("k", const)], [z], opts)
    b.output(z)
    return b


def strided_slice(begin, end, strides, **masks) -> TFLiteBuilder:
    return single("STRIDED_SLICE", [[1, 6, 5, 4]], [1], options("StridedSliceOptions", **masks),
                  consts=[np.int32(begin), np.int32(end), np.int32(strides)])


def concat_of_convs() -> TFLiteBuilder:
    b = conv()
    y = b.outputs.pop()
    z = b.tensor("z", F32, [1, 7, 7, 12])
    b.op("CONCATENATION", [y, y], [z], options("ConcatenationOptions", axis=-1))
    b.output(z)
    return b


def pack_unpack() -> TFLiteBuilder:
    b = TFLiteBuilder()
    x = b.input("x", F32, [2, 3, 4])
    parts = [b.tensor(f"p{i}", F32, [2, 4]) for i in range(3)]
    b.op("UNPACK", [x], parts, options("UnpackOptions", num=3, axis=1))
    y = b.tensor("y", F32, [2, 4, 3])
    b.op("PACK", parts, [y], options("PackOptions", valuesCount=3, axis=2))
    b.output(y)
    return b


def split_v() -> TFLiteBuilder:
    return single("SPLIT_V", [[2, 10, 3]], [[2, 3, 3], [2, 5, 3], [2, 2, 3]],
                  options("SplitVOptions", numSplits=3),
                  consts=[np.int32([3, -1, 2]), np.int32(1)], outputs=3)


def split() -> TFLiteBuilder:
    b = TFLiteBuilder()
    axis = b.const("axis", np.int32(-1))
    x = b.input("x", F32, [2, 3, 6])
    outs = [b.tensor(f"y{i}", F32, [2, 3, 2]) for i in range(3)]
    b.op("SPLIT", [axis, x], outs, options("SplitOptions", numSplits=3))
    for t in outs:
        b.output(t)
    return b


def shape_as_output() -> TFLiteBuilder:
    b = single("SHAPE", [[2, 5, 3]], [3], options("ShapeOptions", outType=2),
               out_dtype="int32")
    return b


def batch_matmul() -> TFLiteBuilder:
    b = TFLiteBuilder()
    x = b.input("x", F32, [2, 4, 5])
    y = b.input("w", F32, [2, 3, 5])
    z = b.tensor("z", F32, [2, 4, 3])
    b.op("BATCH_MATMUL", [x, y], [z], options("BatchMatMulOptions", adjY=True))
    b.output(z)
    return b


def select() -> TFLiteBuilder:
    b = TFLiteBuilder()
    x = b.input("x", F32, [2, 5])
    y = b.input("y", F32, [2, 5])
    c = b.tensor("c", "bool", [2, 5])
    b.op("LESS", [x, y], [c])
    z = b.tensor("z", F32, [2, 5])
    b.op("SELECT_V2", [c, x, b.const("k", np.float32([1, 2, 3, 4, 5]))], [z])
    b.output(z)
    return b


CASES: dict[str, Callable[[], TFLiteBuilder]] = {
    "conv_same_stride2_relu6": lambda: conv(padding=0, stride=2, act=3),
    "conv_valid_dilated": lambda: conv(padding=1, dilation=2),
    "conv_grouped_same": lambda: conv(groups=2),
    "depthwise_multiplier2_same": lambda: depthwise(),
    "depthwise_valid": lambda: depthwise(multiplier=1, padding=1, stride=1),
    "max_pool_same_relu": lambda: pool("MAX_POOL_2D", act=1),
    "average_pool_same_excludes_padding": lambda: pool("AVERAGE_POOL_2D"),
    "average_pool_valid": lambda: pool("AVERAGE_POOL_2D", padding=1),
    "fc_flattens_3d_input": lambda: single(
        "FULLY_CONNECTED", [[2, 3, 4]], [2, 5], options("FullyConnectedOptions",
                                                        fusedActivationFunction=1),
        consts=[w(5, 12), w(5)]),
    "fc_keep_num_dims": lambda: single(
        "FULLY_CONNECTED", [[2, 3, 4]], [2, 3, 5], options("FullyConnectedOptions",
                                                           keepNumDims=True),
        consts=[w(5, 4), w(5)]),
    "fc_no_bias": lambda: single("FULLY_CONNECTED", [[2, 4]], [2, 3], consts=[w(3, 4), -1]),
    "add_bias_to_conv_output": lambda: conv_then(
        "ADD", w(6), options("AddOptions", fusedActivationFunction=1)),
    "mul_conv_output_relu6": lambda: conv_then(
        "MUL", w(1, 1, 6), options("MulOptions", fusedActivationFunction=3)),
    "sub_scalar": lambda: conv_then("SUB", np.float32(0.25)),
    "div_broadcast": lambda: single("DIV", [[2, 3, 4]], [2, 3, 4], consts=[
        np.float32(RNG.uniform(1, 2, (3, 1)))]),
    "maximum": lambda: single("MAXIMUM", [[2, 3], [2, 3]], [2, 3]),
    "squared_difference": lambda: single("SQUARED_DIFFERENCE", [[2, 3]], [2, 3],
                                         consts=[w(3)]),
    "logistic": lambda: single("LOGISTIC", [[2, 5]], [2, 5]),
    "tanh": lambda: single("TANH", [[2, 5]], [2, 5]),
    "exp": lambda: single("EXP", [[2, 5]], [2, 5]),
    "relu6": lambda: single("RELU6", [[2, 5]], [2, 5]),
    "relu_n1_to_1": lambda: single("RELU_N1_TO_1", [[2, 5]], [2, 5]),
    "leaky_relu": lambda: single("LEAKY_RELU", [[2, 5]], [2, 5],
                                 options("LeakyReluOptions", alpha=0.2)),
    "hard_swish": lambda: single("HARD_SWISH", [[2, 5]], [2, 5]),
    "gelu_tanh": lambda: single("GELU", [[2, 5]], [2, 5], options("GeluOptions",
                                                                    approximate=True)),
    "gelu_erf": lambda: single("GELU", [[2, 5]], [2, 5], options("GeluOptions")),
    "abs_neg": lambda: single("ABS", [[2, 5]], [2, 5]),
    "square": lambda: single("SQUARE", [[2, 5]], [2, 5]),
    "softmax_beta": lambda: single("SOFTMAX", [[2, 3, 7]], [2, 3, 7],
                                   options("SoftmaxOptions", beta=0.5)),
    "log_softmax": lambda: single("LOG_SOFTMAX", [[2, 7]], [2, 7]),
    "reshape_constant_shape": lambda: single("RESHAPE", [[2, 3, 4]], [2, 12],
                                             consts=[np.int32([-1, 12])]),
    "reshape_new_shape_option": lambda: single("RESHAPE", [[2, 3, 4]], [2, 4, 3],
                                               options("ReshapeOptions", newShape=[-1, 4, 3])),
    "strided_slice_masks": lambda: strided_slice([0, 1, 0, 1], [0, -1, 5, 4], [1, 2, 1, 1],
                                                 beginMask=1, endMask=5),
    "strided_slice_negative_stride_shrink": lambda: strided_slice(
        [0, -1, 2, 0], [0, 0, 3, 4], [1, -2, 1, 1], beginMask=9, endMask=9,
        shrinkAxisMask=4),
    "slice": lambda: single("SLICE", [[2, 5, 4]], [2, 3, 2],
                            consts=[np.int32([0, 1, 2]), np.int32([-1, 3, 2])]),
    "concat_of_conv_outputs": concat_of_convs,
    "pack_unpack": pack_unpack,
    "split": split,
    "split_v": split_v,
    "squeeze": lambda: single("SQUEEZE", [[2, 1, 3, 1]], [2, 3],
                              options("SqueezeOptions", squeezeDims=[1, -1])),
    "expand_dims": lambda: single("EXPAND_DIMS", [[2, 3]], [2, 1, 3],
                                  consts=[np.int32([1])]),
    "transpose": lambda: single("TRANSPOSE", [[2, 3, 4]], [4, 2, 3],
                                consts=[np.int32([2, 0, 1])]),
    "gather": lambda: single("GATHER", [[2, 5, 3]], [2, 4, 3],
                             options("GatherOptions", axis=1),
                             consts=[np.int32([4, 0, 0, 2])]),
    "pad": lambda: single("PAD", [[2, 3, 4]], [2, 5, 5],
                          consts=[np.int32([[0, 0], [1, 1], [0, 1]])]),
    "padv2_value": lambda: single("PADV2", [[2, 3]], [2, 6],
                                  consts=[np.int32([[0, 0], [2, 1]]), np.float32(-3)]),
    "mirror_pad_reflect": lambda: single("MIRROR_PAD", [[2, 4]], [2, 7],
                                         options("MirrorPadOptions", mode=0),
                                         consts=[np.int32([[0, 0], [2, 1]])]),
    "tile": lambda: single("TILE", [[2, 3]], [4, 9], consts=[np.int32([2, 3])]),
    "broadcast_to": lambda: single("BROADCAST_TO", [[2, 1, 3]], [2, 4, 3],
                                   consts=[np.int32([2, 4, 3])], version=2),
    "mean_keep_dims": lambda: single("MEAN", [[2, 4, 5, 3]], [2, 1, 1, 3],
                                     options("ReducerOptions", keepDims=True),
                                     consts=[np.int32([1, 2])]),
    "sum_last_axis": lambda: single("SUM", [[2, 4, 5]], [2, 4],
                                    options("ReducerOptions"), consts=[np.int32([-1])]),
    "reduce_max": lambda: single("REDUCE_MAX", [[2, 4, 5]], [2, 5],
                                 options("ReducerOptions"), consts=[np.int32([1])]),
    "arg_max": lambda: single("ARG_MAX", [[2, 4, 5]], [2, 5],
                              options("ArgMaxOptions", outputType=2),
                              consts=[np.int32([1])], out_dtype="int32"),
    "batch_matmul_adj_y": batch_matmul,
    "select_v2_less": select,
    "cast_to_int32": lambda: single("CAST", [[2, 5]], [2, 5], out_dtype="int32"),
    "shape_as_output": shape_as_output,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_litert_reference(case):
    data = CASES[case]().build()
    session = runtime.InferenceSession(data)
    feeds = [random_feed([2 if not isinstance(d, int) else d for d in arg.shape], arg.dtype,
                         seed=i) for i, arg in enumerate(session.get_inputs())]
    if case == "cast_to_int32":
        feeds = [f * 10 for f in feeds]
    ours = session.run(None, {a.name: x for a, x in zip(session.get_inputs(), feeds)})
    assert_matches(ours, litert(data, feeds))


def test_transpose_costs_no_node():
    graph = runtime.load_tflite(CASES["transpose"]().build())
    assert [n.op_type for n in graph.nodes] == ["Transpose"]  # materialized for the output


def test_constant_bias_broadcast_stays_channels_first():
    """ADD of a [C] constant to a conv output: the constant is expanded to [1, C, 1, 1]
    while loading, so the only Transposes are the input's and the output's."""
    graph = runtime.load_tflite(CASES["add_bias_to_conv_output"]().build())
    ops = [n.op_type for n in graph.nodes]
    assert ops == ["Transpose", "Conv", "Add", "Transpose"]
    assert graph.nodes[2].inputs[1].shape == (1, 6, 1, 1)

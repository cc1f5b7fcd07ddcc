"""Per-opset rewrites: write each IR node in the form its op has at the target opset.

The IR uses the newest ONNX op forms (axes, pads, bounds as inputs; Gelu; Split's
``num_outputs``...). Exporting to an older opset rewrites the nodes whose op changed
between that opset and the IR's form; every other node is written as it is. A rewrite is a
function ``(NodeWriter) -> None`` registered here under the IR op types it handles:

=====================  ==========================================================
op                     before the opset named, the file gets
=====================  ==========================================================
Reduce* (not Sum)      18: ``axes`` as an attribute (must be a constant); empty axes
                       with ``noop_with_empty_axes`` -> Identity
Split                  18: no ``num_outputs``; explicit sizes when the shapes are
                       static. From 18 ``num_outputs`` is set when sizes are absent
Pad                    18: no ``axes`` input (pads expanded to every axis);
                       19: ``mode="wrap"`` cannot be written
Shape                  15: ``start``/``end`` become Shape -> Slice
Reshape                14: no ``allowzero`` (an error when a 0 in the shape needs it)
BatchNormalization     14: no ``training_mode``
AveragePool            19: no ``dilations`` (an error unless they are all 1)
LpPool                 18: no ``dilations``/``ceil_mode`` (errors unless default)
Max/Avg/LpPool         22: ceil_mode keeps a last window that starts in the end
                       padding (an error when the static output size differs)
Scatter                always: ScatterElements (Scatter is deprecated since 11)
SpaceToDepth           28: no ``mode`` (an error unless it is DCR)
Mod                    28: ``fmod=0`` on floats (an error)
Cast                   19: no ``saturate``
QuantizeLinear         21: no ``block_size``/``output_dtype`` (the zero point gives the
                       type); 19: no ``saturate``
DequantizeLinear       21: no ``block_size``
CastLike               15: Cast to the dtype of the second input; 19: no ``saturate``
ScatterElements/ND     16: only ``reduction="none"``; 18: no ``max``/``min``
MeanVarianceNorm.      always: ``axes`` written explicitly (onnx.checker needs it)
Resize, Upsample       18, 19 / always: :mod:`exporter.onnx.resize`
Gelu, HardSwish, Mish  20, 14, 18: decomposed (:mod:`exporter.onnx.decompositions`);
Swish, SwiGLU          always (they exist from opsets 24 and 28 on)
LayerNormalization,    17, 21: decomposed (:mod:`exporter.onnx.normalizations`);
GroupNormalization     GroupNormalization-18 normalizes scale per group, not per
                       channel, so it is never used; RMSNormalization (opset 23)
                       always
=====================  ==========================================================

An op ONNX does not define at the target opset and no rewrite expresses (Trilu before 14,
the Bitwise ops before 18, RotaryEmbedding before 23, CumProd and BitCast before 26...)
fails with an ExportError saying from which opset on it exists.

Element types are checked against the ONNX schema of the opset (``Relu`` on int8 needs 14,
a float16 ``QuantizeLinear`` scale 19, int16 quantization 21): a node the opset cannot
hold fails with :class:`~edgefw.errors.ExportError` naming the node, its module path and
the first opset that can hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from onnx import defs

from edgefw.ir.dtypes import FLOAT_DTYPES, from_onnx, onnx_type_string, to_numpy, to_onnx
from edgefw.ir.schema.dims import normalize_axis
from exporter.onnx.emitter import NodeWriter, onnx_schema, op_missing_reason

Rewrite = Callable[[NodeWriter], None]

#: IR op type -> the rewrite that writes it (ops not listed are written as they are).
REWRITES: dict[str, Rewrite] = {}

_VARIADIC = defs.OpSchema.FormalParameterOption.Variadic


def rewrite(*op_types: str) -> Callable[[Rewrite], Rewrite]:
    """Register the decorated function as the ONNX writer of ``op_types``."""

    def register(fn: Rewrite) -> Rewrite:
        for op in op_types:
            if op in REWRITES:
                raise ValueError(f"ONNX rewrite for {op!r} registered twice")
            REWRITES[op] = fn
        return fn

    return register


def write_node(writer: NodeWriter) -> None:
    """Write ``writer.node`` at ``writer.opset`` with its op's rewrite (or as it is)."""
    REWRITES.get(writer.node.op_type, write_as_is)(writer)


def write_as_is(writer: NodeWriter, inputs: Sequence[str] | None = None,
                attrs: dict | None = None) -> None:
    """Write the node with its own op type (after checking the opset has the op and holds
    its types; attributes and arity are checked as the node is emitted)."""
    if onnx_schema(writer.node.op_type, writer.opset) is None:
        writer.fail(op_missing_reason(writer.node.op_type))
    check_types(writer)
    writer.emit(writer.node.op_type, writer.inputs if inputs is None else inputs,
                writer.outputs, writer.attrs if attrs is None else attrs)


# ----------------------------------------------------------------------- type checks
def _type_problems(writer: NodeWriter, opset: int) -> list[str] | None:
    """What the op's ONNX schema at ``opset`` rejects in the node's element types
    (None when the op does not exist at that opset)."""
    node = writer.node
    schema = onnx_schema(node.op_type, opset, node.domain)
    if schema is None:
        return None
    allowed_by_param = {c.type_param_str: set(c.allowed_type_strs)
                        for c in schema.type_constraints}
    problems = []
    for kind, values, formals in (("input", node.inputs, schema.inputs),
                                  ("output", node.outputs, schema.outputs)):
        for i, value in enumerate(values):
            if value is None or value.dtype is None:
                continue
            if i < len(formals):
                formal = formals[i]
            elif formals and formals[-1].option == _VARIADIC:
                formal = formals[-1]
            else:
                continue  # an input this opset moves to an attribute (axes before 18...)
            allowed = allowed_by_param.get(formal.type_str, {formal.type_str})
            if onnx_type_string(value.dtype) not in allowed:
                names = ", ".join(sorted(t[len("tensor("):-1] for t in allowed
                                         if t.startswith("tensor(")))
                problems.append(f"{kind} {i} ('{formal.name}') is {value.dtype}, which "
                                f"{node.op_type}-{schema.since_version} does not accept "
                                f"(it accepts {names})")
    return problems


def check_types(writer: NodeWriter) -> None:
    """ExportError when the target opset's schema of the op rejects the node's dtypes; the
    message says from which opset on the node can be written."""
    problems = _type_problems(writer, writer.opset)
    if not problems:
        return
    later = next((v for v in range(writer.opset + 1, defs.onnx_opset_version() + 1)
                  if _type_problems(writer, v) == []), None)
    hint = f"; it can be written from opset {later} on" if later is not None else ""
    writer.fail("; ".join(problems) + hint)


# ----------------------------------------------------------------------- rewrites
def reduce_node(writer: NodeWriter, op_type: str, x: str, axes: Sequence[int], *,
                keepdims: int, step: str | None, output: str | None = None) -> str:
    """Write ``op_type`` (a Reduce*) over constant ``axes`` in the target opset's form."""
    attrs: dict = {"keepdims": keepdims}
    inputs = [x]
    axes_as_input = writer.opset >= 18 or op_type == "ReduceSum"
    if axes_as_input:
        inputs.append(writer.ints(axes, f"{step or 'reduce'}_axes"))
    else:
        attrs["axes"] = list(axes)
    return writer.emit(op_type, inputs, None if output is None else [output], attrs, step=step)


#: Reduce ops whose axes became an input at opset 18 (ReduceSum's did at 13).
AXES_INPUT_FROM_18 = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                      "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare")


@rewrite(*AXES_INPUT_FROM_18, "ReduceSum")
def _reduce(writer: NodeWriter) -> None:
    # ReduceSum takes axes as an input since opset 13, the others only since 18.
    if writer.opset >= 18 or writer.node.op_type == "ReduceSum":
        write_as_is(writer)
        return
    check_types(writer)
    attrs = dict(writer.attrs)
    noop = attrs.pop("noop_with_empty_axes", 0)
    axes = writer.const_ints(1, "axes") if writer.has_input(1) else []
    if not axes and noop:
        writer.emit("Identity", [writer.inputs[0]], writer.outputs)
        return
    if axes:
        attrs["axes"] = axes
    writer.emit(writer.node.op_type, [writer.inputs[0]], writer.outputs, attrs)


@rewrite("Split")
def _split(writer: NodeWriter) -> None:
    check_types(writer)
    attrs = dict(writer.attrs)
    attrs.pop("num_outputs", None)
    inputs = writer.inputs[:2]
    if not writer.has_input(1):
        if writer.opset >= 18:
            # From 18 one of `split` and `num_outputs` must be given, never both.
            attrs["num_outputs"] = len(writer.outputs)
        else:
            sizes = _static_split_sizes(writer)
            if sizes is not None:
                # Split-13 without sizes needs an evenly divisible axis; explicit sizes
                # also carry the IR's uneven split (smaller last part).
                inputs = [inputs[0], writer.ints(sizes, "split")]
    writer.emit("Split", inputs, writer.outputs, attrs)


def _static_split_sizes(writer: NodeWriter) -> list[int] | None:
    x = writer.value(0)
    if x is None or x.rank is None:
        return None
    axis = normalize_axis(int(writer.attrs.get("axis", 0)), x.rank, "Split axis")
    sizes = [v.shape[axis] if v.shape is not None else None for v in writer.node.outputs]
    return sizes if all(isinstance(s, int) for s in sizes) else None


@rewrite("Pad")
def _pad(writer: NodeWriter) -> None:
    check_types(writer)
    if writer.attrs.get("mode") == "wrap" and writer.opset < 19:
        writer.fail("Pad mode 'wrap' exists from opset 19 on")
    if writer.opset >= 18 or not writer.has_input(3):
        writer.emit("Pad", writer.inputs[:4 if writer.opset >= 18 else 3], writer.outputs,
                    writer.attrs)
        return
    rank = writer.value(0).rank
    if rank is None:
        writer.fail("Pad with an axes input needs a known input rank before opset 18 "
                    "(pads are then given for every axis)")
    axes = [normalize_axis(a, rank, "Pad axis") for a in writer.const_ints(3, "axes")]
    pads = writer.const_ints(1, "pads")
    full = [0] * (2 * rank)
    for j, axis in enumerate(axes):
        full[axis], full[axis + rank] = pads[j], pads[j + len(axes)]
    writer.emit("Pad", [writer.inputs[0], writer.ints(full, "pads"), writer.inputs[2]],
                writer.outputs, writer.attrs)


@rewrite("Reshape")
def _reshape(writer: NodeWriter) -> None:
    check_types(writer)
    attrs = dict(writer.attrs)
    if writer.opset < 14 and attrs.pop("allowzero", 0):
        shape = writer.const(1)
        if shape is None:
            writer.fail("allowzero=1 exists from opset 14 on, and the shape is computed at "
                        "run time, so a 0 in it cannot be ruled out")
        if 0 in np.asarray(shape).reshape(-1).tolist():
            writer.fail("allowzero=1 with a 0 in the shape exists from opset 14 on")
    writer.emit("Reshape", writer.inputs, writer.outputs, attrs)


@rewrite("Shape")
def _shape(writer: NodeWriter) -> None:
    check_types(writer)
    start = int(writer.attrs.get("start", 0))
    end = writer.attrs.get("end")
    if writer.opset >= 15 or (start == 0 and end is None):
        attrs = dict(writer.attrs) if writer.opset >= 15 else {}
        writer.emit("Shape", writer.inputs, writer.outputs, attrs)
        return
    # Shape-13 has no start/end: slice the full shape (Slice clamps the same way).
    full = writer.emit("Shape", writer.inputs, step="full_shape")
    stop = np.iinfo(np.int64).max if end is None else int(end)
    writer.emit("Slice", [full, writer.ints([start], "starts"), writer.ints([stop], "ends"),
                          writer.ints([0], "axes")], writer.outputs)


def _check_ceil_mode_windows(writer: NodeWriter) -> None:
    """Before opset 22 ONNX's ceil_mode keeps a last window that starts in the end padding
    (output ``ceil((padded - span) / stride) + 1``); from 22 on, like the IR, PyTorch and
    onnxruntime, it drops it. A node whose static output size the two rules disagree on
    cannot be written before 22: the file would declare a shape ONNX infers otherwise."""
    attrs = writer.attrs
    x = writer.value(0)
    if writer.opset >= 22 or not int(attrs.get("ceil_mode", 0)) or x is None \
            or x.shape is None or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        return
    kernel = [int(k) for k in attrs["kernel_shape"]]
    n = len(kernel)
    strides = [int(s) for s in attrs.get("strides", [1] * n)]
    dilations = [int(d) for d in attrs.get("dilations", [1] * n)]
    pads = [int(p) for p in attrs.get("pads", [0] * (2 * n))]
    for axis, size in enumerate(x.shape[2:]):
        if not isinstance(size, int):
            continue
        span = dilations[axis] * (kernel[axis] - 1) + 1
        old = -(-(size + pads[axis] + pads[axis + n] - span) // strides[axis]) + 1
        if (old - 1) * strides[axis] >= size + pads[axis]:
            writer.fail(f"with ceil_mode=1 its last window along spatial axis {axis} starts in "
                        f"the end padding: the output size is {old - 1} from opset 22 on (as "
                        f"the IR computes it) but {old} before")


@rewrite("MaxPool")
def _max_pool(writer: NodeWriter) -> None:
    _check_ceil_mode_windows(writer)
    write_as_is(writer)


@rewrite("AveragePool")
def _average_pool(writer: NodeWriter) -> None:
    _check_ceil_mode_windows(writer)
    attrs = dict(writer.attrs)
    if writer.opset < 19:
        dilations = attrs.pop("dilations", None)
        if dilations and any(int(d) != 1 for d in dilations):
            writer.fail(f"AveragePool dilations {list(dilations)} exist from opset 19 on")
    write_as_is(writer, attrs=attrs)


@rewrite("LpPool")
def _lp_pool(writer: NodeWriter) -> None:
    _check_ceil_mode_windows(writer)
    attrs = dict(writer.attrs)
    if writer.opset < 18:
        if int(attrs.pop("ceil_mode", 0)):
            writer.fail("LpPool ceil_mode=1 exists from opset 18 on")
        dilations = attrs.pop("dilations", None)
        if dilations and any(int(d) != 1 for d in dilations):
            writer.fail(f"LpPool dilations {list(dilations)} exist from opset 18 on")
    write_as_is(writer, attrs=attrs)


@rewrite("BatchNormalization")
def _batch_norm(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    if writer.opset < 14:
        attrs.pop("training_mode", None)  # the IR holds inference BatchNorm only
    write_as_is(writer, attrs=attrs)


@rewrite("Cast")
def _cast(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    if writer.opset < 19:
        attrs.pop("saturate", None)  # it only affects float8 targets, which the IR lacks
    write_as_is(writer, attrs=attrs)


@rewrite("QuantizeLinear")
def _quantize_linear(writer: NodeWriter) -> None:
    check_types(writer)
    attrs = dict(writer.attrs)
    inputs = list(writer.inputs)
    if writer.opset < 21:
        if attrs.pop("block_size", 0):
            writer.fail("blocked quantization (block_size) exists from opset 21 on")
        output_dtype = attrs.pop("output_dtype", 0)
        if output_dtype and not writer.has_input(2):
            # Before 21 the zero point's type is the output type: write a zero one.
            scale = writer.value(1)
            if scale.shape is None or not all(isinstance(d, int) for d in scale.shape):
                writer.fail("output_dtype without a zero point needs opset 21 when the "
                            "scale's shape is not static")
            zero = np.zeros(scale.shape, to_numpy(from_onnx(output_dtype)))
            inputs = inputs[:2] + [writer.emitter.constant(zero, f"{writer.node.name}/"
                                                                 "zero_point")]
    if writer.opset < 19:
        attrs.pop("saturate", None)  # float8 only
    writer.emit("QuantizeLinear", inputs, writer.outputs, attrs)


@rewrite("CastLike")
def _cast_like(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    if writer.opset < 19:
        attrs.pop("saturate", None)  # float8 only
    if writer.opset >= 15:
        write_as_is(writer, attrs=attrs)
        return
    target = writer.value(1).dtype
    if target is None:
        writer.fail("CastLike exists from opset 15 on, and the dtype of its second input "
                    "is unknown, so it cannot be written as Cast")
    writer.emit("Cast", [writer.inputs[0]], writer.outputs, {"to": to_onnx(target)})


@rewrite("ScatterElements", "ScatterND")
def _scatter(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    reduction = attrs.get("reduction", "none")
    if writer.opset < 16:
        if reduction != "none":
            writer.fail(f"reduction={reduction!r} exists from opset 16 on")
        attrs.pop("reduction", None)
    elif writer.opset < 18 and reduction in ("max", "min"):
        writer.fail(f"reduction={reduction!r} exists from opset 18 on")
    write_as_is(writer, attrs=attrs)


@rewrite("Scatter")
def _scatter_deprecated(writer: NodeWriter) -> None:
    # Scatter-11 is deprecated (onnx.checker rejects it); ScatterElements is the same op.
    check_types(writer)
    writer.emit("ScatterElements", writer.inputs, writer.outputs, writer.attrs)


@rewrite("SpaceToDepth")
def _space_to_depth(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    if writer.opset < 28:
        mode = attrs.pop("mode", "DCR")  # before 28 every SpaceToDepth is DCR
        if mode != "DCR":
            writer.fail(f"SpaceToDepth mode {mode!r} exists from opset 28 on (before it the "
                        "op has DCR order only)")
    write_as_is(writer, attrs=attrs)


@rewrite("Mod")
def _mod(writer: NodeWriter) -> None:
    x = writer.value(0)
    if writer.opset < 28 and not int(writer.attrs.get("fmod", 0)) \
            and x is not None and x.dtype in FLOAT_DTYPES:
        writer.fail(f"Mod with fmod=0 (the result takes the divisor's sign) on {x.dtype} "
                    "exists from opset 28 on; before it floating-point Mod needs fmod=1")
    write_as_is(writer)


@rewrite("MeanVarianceNormalization")
def _mean_variance_normalization(writer: NodeWriter) -> None:
    # ONNX's function body reads @axes; with the default left implicit, onnx.checker's
    # strict inference of that body fails (onnx 1.23). Written explicitly, it checks.
    write_as_is(writer, attrs={**writer.attrs, "axes": list(writer.node.attr("axes"))})


@rewrite("DequantizeLinear")
def _dequantize_linear(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    if writer.opset < 21 and attrs.pop("block_size", 0):
        writer.fail("blocked quantization (block_size) exists from opset 21 on")
    write_as_is(writer, attrs=attrs)


__all__ = [
    "AXES_INPUT_FROM_18",
    "REWRITES",
    "check_types",
    "reduce_node",
    "rewrite",
    "write_as_is",
    "write_node",
]

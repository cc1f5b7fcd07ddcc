"""Old ONNX operator forms rewritten to the IR's (newest) form while a model loads.

ONNX changed some operators' semantics across opsets; the IR keeps one form per op (the
newest), so an old file's node is translated here, exactly, when it is read:

==================  =========  ==========================================================
op                  before     becomes
==================  =========  ==========================================================
Softmax, LogSoftmax 13         2-D coercion at ``axis`` (Hardmax too): the op itself when
                               ``axis`` is the last dim, else Flatten(axis) -> op(axis=1) ->
                               Reshape back
Clip                11         ``min``/``max`` attributes -> constant inputs
Reduce*             18         ``axes`` attribute -> constant input (ReduceSum: before 13)
Squeeze, Unsqueeze  13         ``axes`` attribute -> constant input
Split               13         ``split`` attribute -> constant input
Pad                 11         ``pads`` (``paddings``) / ``value`` attributes -> inputs
Slice               10         ``starts``/``ends``/``axes`` attributes -> inputs
Reshape             5          ``shape`` attribute -> constant input
Dropout             12         ``ratio``/``is_test`` dropped (inference); a pre-10 mask has
                               the input's dtype (Cast of the bool mask)
BatchNormalization  9 / 15     ``spatial``/``is_test``/``consumed_inputs`` dropped (spatial=0
                               only with per-channel parameters); training mode refused
Add, Mul, ... Pow   7          legacy ``broadcast``/``axis``: B unsqueezed to align at axis
Gemm                7          ``broadcast`` dropped (C always broadcasts now)
Cast                6          ``to`` as a type name -> type code
Concat              4          missing ``axis`` -> 1
Upsample, Resize    any / 11   Resize(x, None, scales), asymmetric coordinates, nearest
                               rounding down (``scales`` attribute -> input before 9)
any                 7          ``consumed_inputs`` dropped
==================  =========  ==========================================================

Each rewrite is a function ``(node: NodeBuilder) -> None`` that adds IR nodes through the
builder; :func:`upgrade` picks it by op type and opset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.errors import GraphError, UnsupportedOpError
from edgefw.ir import Graph, Node, Value
from edgefw.ir.dtypes import to_numpy, to_onnx
from edgefw.ir.schema.dims import is_static

# Legacy broadcasting binary ops (opset < 7 semantics: attribute-controlled broadcasting).
LEGACY_BROADCAST_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Equal", "Greater",
                                  "Less", "And", "Or", "Xor", "PRelu"})
# TensorProto.DataType names used by Cast-1's string ``to``.
_CAST_NAMES = {"FLOAT": 1, "UINT8": 2, "INT8": 3, "UINT16": 4, "INT16": 5, "INT32": 6,
               "INT64": 7, "BOOL": 9, "FLOAT16": 10, "DOUBLE": 11, "UINT32": 12, "UINT64": 13}


class NodeBuilder:
    """One ONNX node while it is translated: its resolved inputs, attributes and opset,
    and the methods that add IR nodes for it.

    ``emit`` adds the node that produces the ONNX outputs (under their file names);
    ``helper`` adds an intermediate node whose output gets a name no value of the file
    uses; ``const`` adds a constant likewise.
    """

    def __init__(self, graph: Graph, op_type: str, domain: str, name: str,
                 inputs: list[Value | None], attrs: dict[str, Any], output_names: list[str],
                 opset: int, reserved: set[str]) -> None:
        self.graph = graph
        self.op_type = op_type
        self.domain = domain
        self.name = name
        self.inputs = inputs
        self.attrs = attrs
        self.output_names = output_names
        self.opset = opset
        self._reserved = reserved
        self.outputs: dict[str, Value] = {}

    def describe(self) -> str:
        return f"node {self.name!r} ({self.op_type}, opset {self.opset})"

    def fresh_name(self, hint: str) -> str:
        base = f"{self.name or self.op_type}/{hint}"
        name, n = base, 0
        while name in self._reserved or self.graph.has_value(name):
            n += 1
            name = f"{base}_{n}"
        self._reserved.add(name)
        return name

    def input(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def const(self, array: np.ndarray, hint: str) -> Value:
        return self.graph.add_constant(self.fresh_name(hint), array)

    def helper(self, op_type: str, inputs: list[Value | None], attrs: dict | None = None,
               hint: str | None = None) -> Value:
        name = self.fresh_name(hint or op_type)
        node = self.graph.add_node(op_type, inputs, attrs or {}, name=name, output_names=[name])
        return node.outputs[0]

    def emit(self, op_type: str | None = None, inputs: list[Value | None] | None = None,
             attrs: dict | None = None, output_names: list[str] | None = None,
             domain: str | None = None) -> Node:
        """Add the node producing the ONNX outputs (defaults: this node's own op, inputs,
        attributes); omitted optional outputs in the middle get placeholder names."""
        names = list(self.output_names if output_names is None else output_names)
        while names and not names[-1]:
            names.pop()
        names = [n or self.fresh_name(f"unused_output_{i}") for i, n in enumerate(names)]
        inputs = list(self.inputs if inputs is None else inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        node = self.graph.add_node(
            op_type or self.op_type, inputs, self.attrs if attrs is None else attrs,
            name=self.name or None, output_names=names,
            domain=self.domain if domain is None else domain)
        for out_name, value in zip(names, node.outputs, strict=True):
            if value.name != out_name:  # cannot happen: names are checked unique up front
                raise GraphError(f"{self.describe()}: output name {out_name!r} is taken")
            self.outputs[out_name] = value
        return node

    def dtype_of(self, i: int) -> np.dtype:
        v = self.input(i)
        return to_numpy(v.dtype) if v is not None and v.dtype else np.dtype(np.float32)

    def ints_const(self, values: Any, hint: str) -> Value:
        return self.const(np.asarray(_int_list(values, hint, self), dtype=np.int64), hint)

    def unsupported(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.describe()}: {why}")


def _int_list(values: Any, what: str, node: NodeBuilder) -> list[int]:
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        return [int(values)]
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise GraphError(f"{node.describe()}: attribute {what!r} must be a list of ints, got "
                         f"{values!r:.60}")
    return [int(v) for v in values]


def _pop_int(node: NodeBuilder, name: str, default: int | None) -> int | None:
    """Remove and return an int attribute (GraphError if it is not an int)."""
    value = node.attrs.pop(name, default)
    if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
        raise GraphError(f"{node.describe()}: attribute {name!r} must be an int, got "
                         f"{value!r:.60}")
    return value


def _pop_float(node: NodeBuilder, name: str, default: float | None) -> float | None:
    value = node.attrs.pop(name, default)
    if value is not None and (not isinstance(value, (int, float, np.number))
                              or isinstance(value, bool)):
        raise GraphError(f"{node.describe()}: attribute {name!r} must be a number, got "
                         f"{value!r:.60}")
    return value


def _pop_legacy(node: NodeBuilder, *names: str) -> None:
    for name in names:
        node.attrs.pop(name, None)


# --------------------------------------------------------------------------- upgrades
def _softmax_before_13(node: NodeBuilder) -> None:
    """Softmax-1/11: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])]."""
    axis = _pop_int(node, "axis", 1)
    x = node.input(0)
    rank = None if x is None else x.rank
    if rank is not None:
        if not -rank <= axis <= rank:
            raise GraphError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
        axis = axis + rank if axis < 0 else axis
        if axis == rank - 1 or rank == 0:
            node.emit(attrs={"axis": -1})
            return
    flat = node.helper("Flatten", [x], {"axis": axis}, hint="flatten")
    y = node.helper(node.op_type, [flat], {"axis": 1}, hint=node.op_type.lower())
    if x is not None and x.shape is not None and all(isinstance(d, int) for d in x.shape):
        shape = node.const(np.asarray(x.shape, np.int64), "shape")
    else:
        shape = node.helper("Shape", [x], hint="shape")
    node.emit("Reshape", [y, shape], {})


def _clip_before_11(node: NodeBuilder) -> None:
    dtype = node.dtype_of(0)
    bounds: list[Value | None] = []
    for name in ("min", "max"):
        value = _pop_float(node, name, None)
        bounds.append(None if value is None else node.const(np.asarray(value, dtype), name))
    _pop_legacy(node, "consumed_inputs")
    node.emit(inputs=[node.input(0), *bounds])


def _axes_to_input(node: NodeBuilder) -> None:
    """Reduce*/Squeeze/Unsqueeze: the ``axes`` attribute becomes input 1."""
    axes = node.attrs.pop("axes", None)
    axes_input = None if axes is None else node.ints_const(axes, "axes")
    node.emit(inputs=[node.input(0), axes_input])


def _split_before_13(node: NodeBuilder) -> None:
    split = node.attrs.pop("split", None)
    given = node.input(1)  # Split-1 could take the sizes as an input already
    sizes = given if given is not None else (
        None if split is None else node.ints_const(split, "split"))
    node.emit(inputs=[node.input(0), sizes])


def _pad_before_11(node: NodeBuilder) -> None:
    pads = node.attrs.pop("pads", None)
    if pads is None:
        pads = node.attrs.pop("paddings", None)  # Pad-1's spelling
    if pads is None:
        raise GraphError(f"{node.describe()}: required attribute 'pads' is missing")
    value = _pop_float(node, "value", 0.0)
    mode = node.attrs.get("mode", "constant")
    fill = node.const(np.asarray(value, node.dtype_of(0)), "value") \
        if mode == "constant" and value else None
    node.emit(inputs=[node.input(0), node.ints_const(pads, "pads"), fill])


def _slice_before_10(node: NodeBuilder) -> None:
    starts, ends = node.attrs.pop("starts", None), node.attrs.pop("ends", None)
    axes = node.attrs.pop("axes", None)
    if starts is None or ends is None:
        raise GraphError(f"{node.describe()}: attributes 'starts' and 'ends' are required")
    node.emit(inputs=[node.input(0), node.ints_const(starts, "starts"),
                      node.ints_const(ends, "ends"),
                      None if axes is None else node.ints_const(axes, "axes")])


def _reshape_before_5(node: NodeBuilder) -> None:
    shape = node.attrs.pop("shape", None)
    if shape is None and node.input(1) is None:
        raise GraphError(f"{node.describe()}: attribute 'shape' is missing")
    _pop_legacy(node, "consumed_inputs")
    target = node.input(1) if shape is None else node.ints_const(shape, "shape")
    node.emit(inputs=[node.input(0), target])


def _dropout(node: NodeBuilder) -> None:
    _pop_legacy(node, "ratio", "is_test", "consumed_inputs")
    if node.opset >= 12 and node.input(2) is not None:
        training = node.input(2).data
        if training is None or training.size != 1 or bool(training.reshape(-1)[0]):
            raise node.unsupported("Dropout in training mode (training_mode input not a "
                                   "constant false) is not supported; export in eval mode")
    inputs = [node.input(0)] if node.opset < 12 else node.inputs
    names = list(node.output_names)
    if node.opset >= 10 or len(names) < 2 or not names[1]:
        node.emit(inputs=inputs)
        return
    mask = node.fresh_name("mask")
    node.emit(inputs=inputs, output_names=[names[0], mask])
    # Before opset 10 the mask had the input's type: 1 where kept (all, in inference).
    node.emit("Cast", [node.graph.value(mask)], {"to": to_onnx(node.dtype_of(0).name)},
              output_names=[names[1]])


def _batch_norm(node: NodeBuilder) -> None:
    spatial = _pop_int(node, "spatial", 1)
    _pop_legacy(node, "is_test", "consumed_inputs")
    if node.attrs.get("training_mode"):
        raise node.unsupported("BatchNormalization with training_mode=1 is not supported "
                               "(inference only)")
    if not spatial:
        for i in range(1, 5):
            p = node.input(i)
            if p is None or p.rank != 1:
                raise node.unsupported("BatchNormalization with spatial=0 (statistics per "
                                       "activation) is only supported with per-channel [C] "
                                       "parameters")
    if any(node.output_names[1:]):
        raise node.unsupported("BatchNormalization with running statistics outputs (training "
                               "mode) is not supported; export the model in eval mode")
    node.emit(output_names=node.output_names[:1])


def _legacy_broadcast(node: NodeBuilder) -> None:
    broadcast = _pop_int(node, "broadcast", 0)
    axis = _pop_int(node, "axis", None)
    _pop_legacy(node, "consumed_inputs")
    a, b = node.input(0), node.input(1)
    if not broadcast or axis is None or b is None:
        node.emit()  # same shapes, or B matches A's trailing dims: numpy broadcasting
        return
    if a is None or a.rank is None or b.rank is None:
        raise node.unsupported("legacy broadcasting with an axis needs both input ranks known")
    axis = axis + a.rank if axis < 0 else axis
    trailing = a.rank - axis - b.rank
    if axis < 0 or trailing < 0:
        raise GraphError(f"{node.describe()}: B of rank {b.rank} cannot broadcast into A of "
                         f"rank {a.rank} at axis {axis}")
    if trailing:
        axes = node.ints_const(list(range(b.rank, b.rank + trailing)), "axes")
        b = node.helper("Unsqueeze", [b, axes], hint="aligned")
    node.emit(inputs=[a, b])


def _gemm_before_7(node: NodeBuilder) -> None:
    _pop_legacy(node, "broadcast")
    node.emit()


def _cast_before_6(node: NodeBuilder) -> None:
    to = node.attrs.get("to")
    if isinstance(to, str):
        if to.upper() not in _CAST_NAMES:
            raise node.unsupported(f"Cast to {to!r} is not supported; supported: "
                                   f"{', '.join(_CAST_NAMES)}")
        node.attrs["to"] = _CAST_NAMES[to.upper()]
    node.emit()


def _concat_before_4(node: NodeBuilder) -> None:
    node.attrs.setdefault("axis", 1)
    node.emit()


def _resize_before_11(node: NodeBuilder) -> None:
    """Upsample (7-9) and Resize-10 scale with asymmetric coordinates, nearest rounding
    down: Resize(x, roi=None, scales) with those modes named."""
    scales = node.input(1)
    if node.op_type == "Upsample" and scales is None:
        factors = node.attrs.pop("scales", None)
        if factors is None and "height_scale" in node.attrs:  # Upsample-1
            factors = [1.0, 1.0, _pop_float(node, "height_scale", 1.0),
                       _pop_float(node, "width_scale", 1.0)]
        if not isinstance(factors, list) or not all(
                isinstance(f, (int, float)) for f in factors):
            raise GraphError(f"{node.describe()}: attribute 'scales' must be a list of numbers")
        scales = node.const(np.asarray(factors, np.float32), "scales")
    mode = node.attrs.pop("mode", "nearest")
    if mode == "bilinear":  # Upsample-1's spelling
        mode = "linear"
    if node.attrs:
        raise GraphError(f"{node.describe()}: unknown attributes {sorted(node.attrs)}")
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric",
             "nearest_mode": "floor"}
    factors = None if scales is None or scales.data is None else scales.data.reshape(-1)
    if mode != "nearest" or factors is None or not (factors < 1).any():
        node.emit("Resize", [node.input(0), None, scales], attrs)
        return
    # onnxruntime's old nearest rounds the source index down when upsampling an axis and
    # up when downsampling it: one Resize per direction (nearest is separable).
    up = np.where(factors < 1, np.float32(1), factors).astype(np.float32)
    down = np.where(factors < 1, factors, np.float32(1)).astype(np.float32)
    x = node.input(0)
    if (up != 1).any():
        x = node.helper("Resize", [x, None, node.const(up, "scales_up")], attrs, hint="upsample")
    node.emit("Resize", [x, None, node.const(down, "scales_down")],
              {**attrs, "nearest_mode": "ceil"})


def _quantize_params(node: NodeBuilder) -> None:
    """Q/DQ: onnxruntime's quantizer writes e.g. a [1] scale beside a [] zero point; the
    spec wants equal shapes, so a one-element zero point takes the scale's shape."""
    scale, zero_point = node.input(1), node.input(2)
    if (scale is not None and zero_point is not None and zero_point.data is not None
            and scale.shape is not None and zero_point.shape != scale.shape
            and zero_point.data.size == 1 and is_static(scale.shape)
            and math.prod(scale.shape) == 1):
        reshaped = node.const(zero_point.data.reshape(scale.shape), "zero_point")
        node.inputs = [node.input(0), scale, reshaped, *node.inputs[3:]]
    node.emit()


# op_type -> [(first opset with the new form, rewrite)] for opsets below it
Upgrade = Callable[[NodeBuilder], None]
_UPGRADES: dict[str, tuple[int, Upgrade]] = {
    "Softmax": (13, _softmax_before_13),
    "LogSoftmax": (13, _softmax_before_13),
    "Hardmax": (13, _softmax_before_13),
    "Clip": (11, _clip_before_11),
    "Squeeze": (13, _axes_to_input),
    "Unsqueeze": (13, _axes_to_input),
    "ReduceSum": (13, _axes_to_input),
    "Split": (13, _split_before_13),
    "Pad": (11, _pad_before_11),
    "Slice": (10, _slice_before_10),
    "Reshape": (5, _reshape_before_5),
    "Dropout": (10**9, _dropout),
    "BatchNormalization": (10**9, _batch_norm),
    "Gemm": (7, _gemm_before_7),
    "Cast": (6, _cast_before_6),
    "Concat": (4, _concat_before_4),
    "Upsample": (10**9, _resize_before_11),
    "Resize": (11, _resize_before_11),
    "QuantizeLinear": (10**9, _quantize_params),
    "DequantizeLinear": (10**9, _quantize_params),
}


def find_upgrade(op_type: str, opset: int) -> Upgrade | None:
    """The rewrite an ``op_type`` node of a model at ``opset`` needs, or None."""
    entry = _UPGRADES.get(op_type)
    if entry is not None:
        return entry[1] if opset < entry[0] else None
    if op_type.startswith("Reduce") and opset < 18:  # every Reduce* took axes as attribute
        return _axes_to_input
    if op_type in LEGACY_BROADCAST_OPS and opset < 7:
        return _legacy_broadcast
    return None


def upgrade(node: NodeBuilder) -> None:
    """Add ``node`` to the graph in the IR's form (rewritten if its opset needs it)."""
    if node.opset < 7:
        _pop_legacy(node, "consumed_inputs")
    rewrite = find_upgrade(node.op_type, node.opset) if node.domain == "" else None
    if rewrite is None:
        node.emit()
    else:
        rewrite(node)


__all__ = ["LEGACY_BROADCAST_OPS", "NodeBuilder", "find_upgrade", "upgrade"]

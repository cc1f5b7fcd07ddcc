"""IR graph -> :class:`~exporter.tflite.model.TFLiteModel`: one lowering rule per IR op type.

A rule is a function ``rule(ctx, node)`` registered with ``@lowers("Conv")``; it reads its
operands through the :class:`LoweringContext` (which hands them over in the layout asked
for, writing TRANSPOSE / DEQUANTIZE only where needed) and writes TFLite operators. The
rule modules (``ops_nn``, ``ops_elementwise``, ``ops_tensor``, ``quantized``) register on
import.

Before any rule runs, :func:`check_supported` lists every node without a rule, so an
unexportable graph fails naming all such nodes (and their module paths) at once, before a
byte is written. Rules raise :class:`~edgefw.errors.ExportError` through
:meth:`LoweringContext.fail` for attribute combinations TFLite cannot express.

    >>> from edgefw.ir import Graph
    >>> g = Graph()
    >>> x = g.add_input("x", "float32", ("batch", 4))
    >>> g.set_outputs([g.add_node("Relu", [x]).output])
    >>> model = lower_graph(g)
    >>> [op.op for op in model.operators], model.tensors[model.inputs[0]].signature
    (['RELU'], (-1, 4))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgefw.errors import ExportError
from edgefw.ir import Graph, Node, Value
from edgefw.ir.graph import constant_data
from edgefw.ir.tflite_schema import ACTIVATIONS
from exporter.tflite import layout
from exporter.tflite.layout import Perm
from exporter.tflite.model import TensorQuantization, TFLiteModel

Rule = Callable[["LoweringContext", Node], None]
#: IR op type -> lowering rule.
RULES: dict[str, Rule] = {}
#: Interface layouts of rank-4 inputs/outputs ``to_tflite`` offers.
LAYOUTS = ("NHWC", "NCHW")


def lowers(*op_types: str) -> Callable[[Rule], Rule]:
    """Register a lowering rule for ``op_types``."""
    def register(rule: Rule) -> Rule:
        for op_type in op_types:
            if op_type in RULES:
                raise ValueError(f"a TFLite lowering rule for {op_type} is already registered")
            RULES[op_type] = rule
        return rule
    return register


def _load_rules() -> None:
    from exporter.tflite import ops_elementwise, ops_nn, ops_tensor, quantized  # noqa: F401


class LoweringContext:
    """What a rule writes with: the IR graph, the model under construction, each IR value's
    TFLite tensors (one per stored layout) and the node being lowered (for errors)."""

    def __init__(self, graph: Graph, model: TFLiteModel, *, interface_layout: str = "NHWC",
                 int8_io: bool = False) -> None:
        self.graph = graph
        self.model = model
        self.interface_layout = interface_layout
        self.int8_io = int8_io
        self.node: Node | None = None
        self.uses = graph.uses()
        self._tensors: dict[int, dict[Perm, int]] = {}  # id(value) -> stored perm -> tensor
        self._primary: dict[int, Perm] = {}
        self._deferred: dict[int, Callable[[], None]] = {}
        #: Nodes already written by a rule that covered them (e.g. a QuantizeLinear).
        self.done: set[int] = set()
        #: id(value) -> order: a rank-2 value stored with its columns reordered,
        #: ``stored[:, i] = logical[:, order[i]]`` (a Flatten of NHWC data whose readers,
        #: FULLY_CONNECTED ops, permute their weights instead).
        self.column_order: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ errors
    def fail(self, reason: str, node: Node | None = None) -> ExportError:
        """An ExportError naming the node being lowered; ``raise ctx.fail(...)``."""
        node = node or self.node
        where = node.describe() if node is not None else f"graph '{self.graph.name}'"
        return ExportError(f"cannot export {where} to TFLite: {reason}")

    # ------------------------------------------------------------------ values
    def consumers(self, value: Value) -> list[Node]:
        return [n for n, _ in self.uses.get(id(value), [])]

    def constant(self, value: Value | None) -> np.ndarray | None:
        """The data of a constant input (or None)."""
        return None if value is None else constant_data(value)

    def bind(self, value: Value, tensor: int, perm: Perm | None = None) -> None:
        perm = layout.identity(value.rank or 0) if perm is None else tuple(perm)
        self._tensors.setdefault(id(value), {})[perm] = tensor
        self._primary.setdefault(id(value), perm)
        self._deferred.pop(id(value), None)

    def defer(self, value: Value, materialize: Callable[[], None]) -> None:
        """Bind ``value`` only when a rule reads it (e.g. a DEQUANTIZE nobody may need)."""
        self._deferred[id(value)] = materialize

    def stored(self, value: Value) -> tuple[int, Perm]:
        """The tensor holding ``value`` in the layout it was produced in, and that layout."""
        if id(value) not in self._tensors:
            if self._is_weight(value):
                return self.get(value), layout.identity(value.rank or 0)
            self._materialize(value)
        perm = self._primary[id(value)]
        return self._tensors[id(value)][perm], perm

    def perm_of(self, value: Value) -> Perm:
        data = constant_data(value)
        if data is not None:
            return layout.identity(data.ndim)
        return self.stored(value)[1]

    def get(self, value: Value, perm: Sequence[int] | None = None) -> int:
        """The tensor holding ``value`` stored with ``perm`` (identity when None)."""
        rank = value.rank
        if rank is None:
            data = constant_data(value)
            rank = data.ndim if data is not None else None
        if rank is None:
            raise self.fail(f"value {value.name!r} has an unknown rank")
        perm = layout.identity(rank) if perm is None else tuple(perm)
        data = constant_data(value)
        if data is not None:
            return self.model.add_constant(value.name, np.transpose(np.asarray(data), perm))
        stored = self._tensors.get(id(value), {})
        if perm in stored:
            return stored[perm]
        if self._is_weight(value):
            from exporter.tflite.quantized import weight_tensor

            tensor = weight_tensor(self, value, perm=perm)
            self.bind(value, tensor, perm)
            return tensor
        if id(value) not in self._tensors:
            self._materialize(value)
        stored = self._tensors[id(value)]
        if perm not in stored:
            have_perm = self._primary[id(value)]
            have = stored[have_perm]
            moved = self.new_tensor(f"{value.name}/transposed", value, perm,
                                    dtype=self.model.tensors[have].dtype,
                                    quantization=self.model.tensors[have].quantization)
            axes = self.ints(layout.transpose_between(have_perm, perm), f"{value.name}/perm")
            self.model.add_operator("TRANSPOSE", [have, axes], [moved])
            stored[perm] = moved
        return stored[perm]

    def _is_weight(self, value: Value) -> bool:
        from exporter.tflite.quantized import weight_source

        return id(value) not in self._deferred and weight_source(value) is not None

    def _materialize(self, value: Value) -> None:
        materialize = self._deferred.pop(id(value), None)
        if materialize is None:
            producer = value.producer.describe() if value.producer else "no node"
            raise self.fail(f"value {value.name!r} (from {producer}) was not written before "
                            "its use (an exporter bug)")
        materialize()
        if id(value) not in self._tensors:
            raise self.fail(f"value {value.name!r} could not be written (an exporter bug)")

    # ------------------------------------------------------------------ tensors
    def shape_and_signature(self, dims: Sequence[Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A stored shape: dynamic dims (symbols, unknown) are 1 in the shape, -1 in the
        signature, as TFLite's converter writes a dynamic batch."""
        shape = tuple(int(d) if isinstance(d, (int, np.integer)) else 1 for d in dims)
        signature = tuple(int(d) if isinstance(d, (int, np.integer)) else -1 for d in dims)
        return shape, signature

    def new_tensor(self, name: str, value: Value, perm: Sequence[int] | None = None, *,
                   dtype: str | None = None, dims: Sequence[Any] | None = None,
                   quantization: TensorQuantization | None = None) -> int:
        """A tensor for (a version of) ``value`` stored with ``perm``; not bound."""
        if dims is None:
            if value.shape is None:
                raise self.fail(f"value {value.name!r} has an unknown rank; TFLite tensors "
                                "need one (run shape inference first)")
            perm = layout.identity(len(value.shape)) if perm is None else perm
            dims = layout.stored_shape(value.shape, perm)
        shape, signature = self.shape_and_signature(dims)
        return self.model.add_tensor(name, dtype or value.dtype, shape, signature=signature,
                                     quantization=quantization)

    def output(self, value: Value, perm: Sequence[int] | None = None, *,
               dtype: str | None = None,
               quantization: TensorQuantization | None = None) -> int:
        """A new tensor for node output ``value`` stored with ``perm``, bound to it."""
        tensor = self.new_tensor(value.name, value, perm, dtype=dtype, quantization=quantization)
        self.bind(value, tensor, perm)
        return tensor

    def ints(self, values: Sequence[int] | np.ndarray, name: str) -> int:
        """An int32 constant (shapes, axes, paddings: TFLite's index type)."""
        return self.model.add_constant(name, np.asarray(values, dtype=np.int32))

    def emit(self, op: str, inputs: Sequence[int], outputs: Sequence[int],
             options: dict[str, Any] | None = None, **version_hints: Any) -> None:
        self.model.add_operator(op, inputs, outputs, options, version_hints)

    # ------------------------------------------------------------------ activations
    def fused_activation(self, node: Node) -> tuple[int, Any]:
        """``(ActivationFunctionType, leftover)``: the code for ``meta["fused_activation"]``
        when TFLite has one, else NONE and the activation to write as its own op."""
        spec = node.meta.get("fused_activation")
        code = _FUSED_CODES.get(_activation_key(spec)) if spec is not None else None
        if spec is None:
            return ACTIVATIONS["NONE"], None
        if code is not None:
            return code, None
        return ACTIVATIONS["NONE"], spec

    def finish(self, op: str, inputs: Sequence[int], options: dict[str, Any] | None,
               perm: Sequence[int] | None = None, *, activation_field: str | None =
               "fused_activation_function", **version_hints: Any) -> int:
        """Write ``op`` producing the current node's single output (stored with ``perm``),
        with the node's fused activation in ``activation_field`` (or as an op after)."""
        node = self.node
        value = node.outputs[0]
        options = dict(options or {})
        leftover = node.meta.get("fused_activation")
        if activation_field is not None:
            code, leftover = self.fused_activation(node)
            if code:
                options[activation_field] = code
        if leftover is None:
            out = self.output(value, perm)
            self.emit(op, inputs, [out], options, **version_hints)
            return out
        pre = self.new_tensor(f"{value.name}/pre_activation", value, perm)
        self.emit(op, inputs, [pre], options, **version_hints)
        out = self.output(value, perm)
        self.activation(leftover, pre, out, value)
        return out

    def activation(self, spec: Any, src: int, dst: int, value: Value) -> None:
        """Write activation ``spec`` (a ``fused_activation`` mark) from ``src`` to ``dst``."""
        key = _activation_key(spec)
        if key in _STANDALONE:
            self.emit(_STANDALONE[key], [src], [dst])
        elif key[0] == "LeakyRelu":
            self.emit("LEAKY_RELU", [src], [dst], {"alpha": float(key[1])})
        elif key[0] == "Clip":
            self.clip(src, dst, key[1], key[2], value)
        else:
            raise self.fail(f"activation {spec!r} has no TFLite form")

    def clip(self, src: int, dst: int, lo: float | None, hi: float | None, value: Value) -> None:
        """min(max(x, lo), hi) with MAXIMUM / MINIMUM (RELU6-style ops when they fit)."""
        dtype = self.model.tensors[src].dtype
        key = ("Clip", lo, hi)
        if key in _STANDALONE:
            self.emit(_STANDALONE[key], [src], [dst])
            return
        steps = [(op, bound) for op, bound in (("MAXIMUM", lo), ("MINIMUM", hi))
                 if bound is not None]
        if not steps:
            self.emit("RESHAPE", [src, self.ints(self.model.tensors[src].signature
                                                 or self.model.tensors[src].shape,
                                                 f"{value.name}/shape")], [dst])
            return
        current = src
        for i, (op, bound) in enumerate(steps):
            target = dst if i == len(steps) - 1 else self.model.add_tensor(
                f"{value.name}/clip_low", dtype, self.model.tensors[src].shape,
                signature=self.model.tensors[src].signature)
            bound_tensor = self.model.add_constant(f"{value.name}/{op.lower()}",
                                                   np.asarray(bound, dtype=dtype))
            self.emit(op, [current, bound_tensor], [target])
            current = target


def _activation_key(spec: Any) -> tuple:
    if isinstance(spec, str):
        return (spec,)
    key = tuple(spec)
    if key and key[0] == "Clip":
        lo, hi = (list(key[1:]) + [None, None])[:2]
        return ("Clip", None if lo is None else float(lo), None if hi is None else float(hi))
    return key


_FUSED_CODES = {
    ("Relu",): ACTIVATIONS["RELU"], ("Clip", 0.0, 6.0): ACTIVATIONS["RELU6"],
    ("Clip", -1.0, 1.0): ACTIVATIONS["RELU_N1_TO_1"], ("Clip", 0.0, None): ACTIVATIONS["RELU"],
}  # TANH / SIGN_BIT exist in the enum, but kernels (CONV_2D, XNNPACK) ignore them
_STANDALONE = {
    ("Relu",): "RELU", ("Clip", 0.0, None): "RELU", ("Clip", 0.0, 6.0): "RELU6",
    ("Clip", -1.0, 1.0): "RELU_N1_TO_1", ("Sigmoid",): "LOGISTIC", ("Tanh",): "TANH",
}


# ---------------------------------------------------------------------- the driver
def check_supported(graph: Graph) -> None:
    """ExportError listing every node that has no TFLite lowering rule."""
    _load_rules()
    missing = [n for n in graph.nodes if n.op_type not in RULES or n.domain != ""]
    if not missing:
        return
    lines = [f"  - {n.describe()}: no TFLite builtin operator implements "
             f"{n.domain + '.' if n.domain else ''}{n.op_type}" for n in missing]
    raise ExportError(f"{len(missing)} node(s) of graph '{graph.name}' cannot be exported to "
                      "TFLite (nothing was written):\n" + "\n".join(lines)
                      + f"\nops with a TFLite mapping: {', '.join(sorted(RULES))}")


def lower_graph(graph: Graph, *, interface_layout: str = "NHWC",
                int8_io: bool = False) -> TFLiteModel:
    """Lower a verified, shape-inferred IR graph to a TFLite model (nothing written)."""
    if interface_layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {', '.join(LAYOUTS)}, got "
                          f"{interface_layout!r}")
    check_supported(graph)
    model = TFLiteModel()
    ctx = LoweringContext(graph, model, interface_layout=interface_layout, int8_io=int8_io)
    from exporter.tflite.quantized import bind_graph_inputs, graph_output_tensor

    bind_graph_inputs(ctx)
    for node in graph.nodes:
        if id(node) in ctx.done:
            continue
        ctx.node = node
        RULES[node.op_type](ctx, node)
    ctx.node = None
    names = []
    for value in graph.outputs:
        model.outputs.append(graph_output_tensor(ctx, value))
        names.append(value.name)
    model.output_names = names
    return model


def interface_perm(ctx: LoweringContext, value: Value) -> Perm:
    """How a graph input/output is stored in the file: NHWC for rank-4 values when the
    interface layout is NHWC, else as in the IR."""
    rank = value.rank or 0
    if rank == 4 and ctx.interface_layout == "NHWC":
        return layout.NHWC
    return layout.identity(rank)


__all__ = ["LAYOUTS", "RULES", "LoweringContext", "check_supported", "interface_perm",
           "lower_graph", "lowers"]

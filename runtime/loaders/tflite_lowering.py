"""The context TFLite operators are lowered in: tensors of the file -> IR values, in
whichever layout they were computed, plus the rule registry.

TFLite feature maps are NHWC; the IR's Conv / pooling ops are NCHW (ONNX semantics). A
tensor may therefore exist in the IR in several layouts: each is a ``perm`` with
``stored = logical.transpose(perm)`` (the identity is the file's layout, :data:`NCHW`
= ``(0, 3, 1, 2)`` channels-first). A Conv stores its output channels-first; the next Conv
reads it as is, and a Transpose is written only when some op needs another layout (a
RESHAPE that flattens, a graph output...). So a chain of convolutions costs no transposes.

Small integer tensors computed from shapes (Keras' dynamic-batch flatten: SHAPE ->
STRIDED_SLICE -> PACK -> RESHAPE) are evaluated symbolically (:meth:`Lowering.known`,
with symbols such as ``"batch"``); their nodes are written only if something reads them as
tensors, and a RESHAPE whose shape is known becomes an IR Reshape with a constant shape.

Quantized ops (int8/int16 activations with scale and zero point) go, in this order, to an
integer rule (``@lowers_integer``: TFLite's fixed-point kernels as edgefw's integer ops),
to the float rule itself when the op only moves data (:data:`DTYPE_GENERIC`: RESHAPE,
TRANSPOSE, PAD...: TFLite copies the integers, so does the IR), or else to a *float
island*: the float rule runs on the dequantized inputs and its outputs are quantized with
the output tensors' parameters (DequantizeLinear -> op -> QuantizeLinear, within one step
of TFLite's integer kernels).

A rule is ``rule(lowering, op)`` registered with ``@lowers("CONV_2D")``; a symbolic rule
(``@evaluates("SHAPE")``) returns the known contents of the op's outputs or None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefw.errors import GraphError, ModelFormatError, UnsupportedOpError
from edgefw.ir import Graph, Node, QuantParams, Value
from edgefw.ir.tflite_schema import ACTIVATION_NAMES
from runtime.loaders.tflite_schema import SLOTS, Table

Perm = tuple[int, ...]
#: ``stored = nhwc.transpose(NCHW)``: channels-first storage of a rank-4 NHWC tensor.
NCHW: Perm = (0, 3, 1, 2)
#: Longest integer vector evaluated symbolically (shapes, axes, begin/end indices).
MAX_KNOWN_ELEMENTS = 64

#: Activation dtypes TFLite quantizes (int8/uint8 affine, int16 symmetric).
QUANTIZED_DTYPES = frozenset({"int8", "uint8", "int16"})
#: Ops whose float rule is exact on quantized integers (TFLite copies them unchanged).
DTYPE_GENERIC = frozenset({
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "STRIDED_SLICE", "SLICE", "GATHER",
    "SPLIT", "SPLIT_V", "PACK", "UNPACK", "TILE", "BROADCAST_TO", "SHAPE", "PAD", "PADV2",
})  # fmt: skip

Rule = Callable[["Lowering", "Operator"], "bool | None"]
Evaluator = Callable[["Lowering", "Operator"], "dict[int, Any] | None"]
#: TFLite builtin name -> lowering rule.
RULES: dict[str, Rule] = {}
#: Builtin name -> exact integer rule for quantized tensors (returns False to decline).
INTEGER_RULES: dict[str, Rule] = {}
#: Ops whose rule handles quantized and float tensors itself (QUANTIZE, DEQUANTIZE).
SELF_TYPED: set[str] = set()
#: TFLite builtin name -> symbolic evaluator of small integer results.
EVALUATORS: dict[str, Evaluator] = {}
#: Builtin name -> the options table it carries (defaults come from it when absent).
OPTIONS_TABLES: dict[str, str] = {}


def lowers(*names: str, options: str | None = None) -> Callable[[Rule], Rule]:
    """Register a lowering rule for the builtin ops ``names`` (carrying ``options``)."""
    def register(rule: Rule) -> Rule:
        for name in names:
            if name in RULES:
                raise ValueError(f"a TFLite rule for {name} is already registered")
            RULES[name] = rule
            if options is not None:
                OPTIONS_TABLES[name] = options
        return rule
    return register


def lowers_integer(*names: str) -> Callable[[Rule], Rule]:
    """Register the integer rule of quantized ``names`` (the float rule stays in RULES)."""
    def register(rule: Rule) -> Rule:
        for name in names:
            INTEGER_RULES[name] = rule
        return rule
    return register


def evaluates(*names: str) -> Callable[[Evaluator], Evaluator]:
    """Register a symbolic evaluator for ``names`` (which also need a lowering rule)."""
    def register(evaluator: Evaluator) -> Evaluator:
        for name in names:
            EVALUATORS[name] = evaluator
        return evaluator
    return register


@dataclass
class TensorInfo:
    """A tensor of the subgraph as the file declares it."""

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    #: ``shape_signature`` (-1 for a dynamic dim), or None when the file has none.
    signature: tuple[int, ...] | None
    buffer: int
    quant: QuantParams | None

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dims(self) -> tuple[int | str | None, ...]:
        """The IR shape: a dynamic first dim is ``"batch"``, other dynamic dims unknown."""
        if self.signature is None:
            return self.shape
        return tuple(d if d >= 0 else ("batch" if axis == 0 else None)
                     for axis, d in enumerate(self.signature))


@dataclass
class Operator:
    """One operator of the subgraph: builtin name, version, tensor indices (None for an
    omitted optional input) and its options table."""

    index: int
    name: str
    version: int
    inputs: list[int | None]
    outputs: list[int]
    options: Table | None

    def describe(self) -> str:
        return f"operator #{self.index} ({self.name} v{self.version})"

    def option(self, field: str) -> Any:
        """An options field, or the schema default when the op carries no options."""
        if self.options is not None:
            return self.options.get(field)
        table = OPTIONS_TABLES.get(self.name)
        return SLOTS[table][field][2] if table is not None else None

    def input(self, i: int) -> int | None:
        return self.inputs[i] if i < len(self.inputs) else None


class Lowering:
    """The IR graph being built from one subgraph and what each tensor became."""

    def __init__(self, graph: Graph, tensors: Sequence[TensorInfo],
                 constant_data: Callable[[TensorInfo], np.ndarray | None]) -> None:
        self.graph = graph
        self.tensors = tensors
        self._constant_data = constant_data
        self._values: dict[int, dict[Perm, Value]] = {}
        self._known: dict[int, Any] = {}
        self._deferred: dict[int, Operator] = {}
        self.op: Operator | None = None
        # The op being lowered as a float island: its quantized tensors read dequantized.
        self._island: Operator | None = None
        self._dequantized: dict[tuple[int, Perm], Value] = {}
        self._constants: set[int] = set()  # tensors whose layouts are constants

    # ------------------------------------------------------------------ errors
    def _where(self) -> str:
        return self.op.describe() if self.op is not None else "the subgraph"

    def fail(self, reason: str) -> ModelFormatError:
        """A ModelFormatError naming the operator being lowered; ``raise ctx.fail(...)``."""
        return ModelFormatError(f"{self._where()}: {reason}")

    def unsupported(self, reason: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self._where()}: {reason}")

    # ----------------------------------------------------------------- tensors
    def tensor(self, t: int | None) -> TensorInfo:
        if t is None or not 0 <= t < len(self.tensors):
            raise self.fail(f"refers to tensor {t}, but the subgraph has tensors 0.."
                            f"{len(self.tensors) - 1}")
        return self.tensors[t]

    def label(self, t: int) -> str:
        return f"tensor {t} {self.tensor(t).name!r}"

    def is_quantized(self, t: int | None) -> bool:
        """Whether ``t`` holds quantized integers (int8/uint8/int16 with parameters)."""
        if t is None:
            return False
        info = self.tensor(t)
        return info.quant is not None and info.dtype in QUANTIZED_DTYPES

    def _in_island(self, t: int) -> bool:
        island = self._island
        return island is not None and (t in island.inputs or t in island.outputs) \
            and self.is_quantized(t)

    def dtype(self, t: int) -> str:
        """The dtype rules see: float32 for a quantized tensor of a float island."""
        return "float32" if self._in_island(t) else self.tensor(t).dtype

    def constant(self, t: int | None) -> np.ndarray | None:
        """The data of tensor ``t`` when it is a constant (else None); dequantized inside
        a float island."""
        if t is None:
            return None
        data = self._constant_data(self.tensor(t))
        if data is not None and self._in_island(t):
            return dequantize_array(data, self.tensor(t).quant)
        return data

    def require_constant(self, t: int | None, what: str) -> np.ndarray:
        data = self.constant(t)
        if data is None:
            where = self.label(t) if t is not None else "absent"
            raise self.unsupported(f"the {what} ({where}) must be a constant")
        return data

    def is_defined(self, t: int) -> bool:
        return t in self._values or t in self._deferred or self.constant(t) is not None

    def known(self, t: int | None) -> Any:
        """Contents of a small integer tensor known while loading (rank 0: a value, rank 1:
        a list): a constant's values or a symbolically evaluated shape (ints, symbols such
        as ``"batch"``, None for unknown)."""
        if t is None:
            return None
        if t in self._known:
            return self._known[t]
        data = self.constant(t)
        if data is None or data.dtype.kind not in "iu" or data.size > MAX_KNOWN_ELEMENTS \
                or data.ndim > 1:
            return None
        return data.tolist()

    def rank(self, t: int) -> int:
        return len(self.dims(t))

    def dims(self, t: int) -> tuple:
        """The logical (file-layout) IR shape of tensor ``t``."""
        data = self._constant_data(self.tensor(t))
        if data is not None:
            return data.shape
        value, perm = self.stored(t)
        if value.shape is None:
            raise self.unsupported(f"{self.label(t)} has an unknown rank")
        logical: list = [None] * len(perm)
        for stored_axis, logical_axis in enumerate(perm):
            logical[logical_axis] = value.shape[stored_axis]
        return tuple(logical)

    # ------------------------------------------------------------------ values
    def stored(self, t: int) -> tuple[Value, Perm]:
        """The IR value of tensor ``t`` in the layout it was computed in (constants: the
        file's layout)."""
        self._materialize(t)
        layouts = self._values.get(t)
        if layouts is None or t in self._constants:
            data = self._constant_data(self.tensor(t))
            if data is None:
                raise GraphError(f"{self._where()} reads {self.label(t)}, which no earlier "
                                 "operator, graph input or constant defines")
            perm: Perm = tuple(range(data.ndim))
            return self.value(t, perm), perm
        perm, _ = next(iter(layouts.items()))
        return self.value(t, perm), perm

    def value(self, t: int, perm: Sequence[int] | None = None) -> Value:
        """The IR value of tensor ``t`` stored with ``perm`` (the file's layout when None);
        a Transpose is added the first time a layout is asked for."""
        raw = self._raw_value(t, perm)
        if not self._in_island(t):
            return raw
        key = (t, tuple(range(raw.rank or 0)) if perm is None else tuple(perm))
        if key not in self._dequantized:
            quant = raw.quant or _permuted_quant(self.tensor(t).quant, key[1])
            per_axis = quant.axis is not None
            scale = quant.scale if per_axis else quant.scale.reshape(())
            zero = (quant.zero_point if per_axis else quant.zero_point.reshape(())).astype(
                raw.dtype)
            self._dequantized[key] = self.graph.add_node(
                "DequantizeLinear", [raw, self.const(scale, f"{raw.name}/scale"),
                                     self.const(zero, f"{raw.name}/zero_point")],
                {"axis": quant.axis} if per_axis else None,
                name=f"{raw.name}/dequantize").output
        return self._dequantized[key]

    def _raw_value(self, t: int, perm: Sequence[int] | None) -> Value:
        self._materialize(t)
        layouts = self._values.get(t)
        data = self._constant_data(self.tensor(t)) if layouts is None or t in self._constants \
            else None
        if data is not None:  # a constant: each layout is its own (transposed) constant
            perm = tuple(range(data.ndim)) if perm is None else tuple(perm)
            if sorted(perm) != list(range(data.ndim)):
                raise self.fail(f"{self.label(t)} has rank {data.ndim}, not {len(perm)}")
            layouts = self._values.setdefault(t, {})
            self._constants.add(t)
            if perm not in layouts:
                info = self.tensor(t)
                layouts[perm] = self.graph.add_constant(
                    info.name or f"tensor_{t}", np.transpose(data, perm), copy=False,
                    quant=_permuted_quant(info.quant, perm))
            return layouts[perm]
        if layouts is None:
            raise GraphError(f"{self._where()} reads {self.label(t)}, which no earlier "
                             "operator, graph input or constant defines")
        have_perm, have = next(iter(layouts.items()))
        perm = tuple(range(len(have_perm))) if perm is None else tuple(perm)
        if perm in layouts:
            return layouts[perm]
        if sorted(perm) != list(range(len(have_perm))):
            raise self.fail(f"{self.label(t)} has rank {len(have_perm)}, not {len(perm)}")
        inverse = {axis: i for i, axis in enumerate(have_perm)}
        moved = self.graph.add_node("Transpose", [have], {"perm": [inverse[a] for a in perm]},
                                    name=f"{have.name}/transpose").output
        if moved.dtype in QUANTIZED_DTYPES:
            moved.quant = _permuted_quant(self.tensor(t).quant, perm)
        layouts[perm] = moved
        return moved

    def define(self, t: int, value: Value, perm: Sequence[int] | None = None) -> None:
        """Bind output tensor ``t`` of the current op to ``value`` (stored with ``perm``);
        inside a float island a float value is quantized with ``t``'s parameters first."""
        info = self.tensor(t)
        perm = tuple(range(value.rank or 0)) if perm is None else tuple(perm)
        if value.rank is not None and len(perm) != value.rank:
            raise self.fail(f"layout {perm} does not fit the rank {value.rank} of "
                            f"{self.label(t)}")
        if self._in_island(t) and value.dtype != info.dtype:
            quant = _permuted_quant(info.quant, perm)
            if quant.axis is not None:
                raise self.unsupported(f"output {self.label(t)} is quantized per channel")
            value = self.graph.add_node(
                "QuantizeLinear", [value, self.const(quant.scale.reshape(()),
                                                     f"{info.name}/scale"),
                                   self.const(quant.zero_point.reshape(()).astype(info.dtype),
                                              f"{info.name}/zero_point")],
                name=info.name or f"tensor_{t}", output_names=[info.name or f"tensor_{t}"]
            ).output
        if value.dtype is not None and value.dtype != info.dtype:
            raise self.fail(f"output {self.label(t)} is declared {info.dtype} but the op "
                            f"computes {value.dtype}")
        if info.quant is not None and value.dtype in QUANTIZED_DTYPES:
            value.quant = _permuted_quant(info.quant, perm)
        self._values[t] = {perm: value}

    # ------------------------------------------------------------------- nodes
    def node(self, op_type: str, inputs: Sequence[Value | np.ndarray | None],
             attrs: dict[str, Any] | None = None, *, output: int | None = None,
             domain: str = "", meta: dict[str, Any] | None = None,
             num_outputs: int = 1) -> Node:
        """Add an IR node for the current op; its output is named after tensor ``output``
        (the op's final node) or as a helper of the op's first output. Numpy arrays among
        ``inputs`` become constants."""
        base = self.tensor(output).name if output is not None else None
        if not base or (output is not None and self._in_island(output)):
            first = self.op.outputs[0] if self.op is not None and self.op.outputs else None
            stem = (self.tensor(first).name if first is not None else "") or "tflite"
            base = f"{stem}/{op_type.lower()}"
        prepared = [self.const(x, f"{base}/in{i}") if isinstance(x, np.ndarray) else x
                    for i, x in enumerate(inputs)]
        return self.graph.add_node(op_type, prepared, attrs or None, name=base, domain=domain,
                                   meta=meta, num_outputs=num_outputs,
                                   output_names=[base] if num_outputs == 1 else None)

    def const(self, array: Any, name: str) -> Value:
        return self.graph.add_constant(name, np.asarray(array), copy=False)

    # ----------------------------------------------------------------- drivers
    def lower(self, op: Operator) -> None:
        """Write ``op`` (or only note its known results, written if ever read)."""
        self.op = op
        evaluator = EVALUATORS.get(op.name)
        known = evaluator(self, op) if evaluator is not None else None
        if known is not None and all(t in known for t in op.outputs):
            self._known.update(known)
            for t in op.outputs:
                self._deferred[t] = op
            return
        self._emit(op)

    def _emit(self, op: Operator) -> None:
        rule = RULES.get(op.name)
        if rule is None:
            raise UnsupportedOpError(f"{op.describe()} is not supported by edgefw's TFLite "
                                     f"loader; supported builtin ops: {', '.join(sorted(RULES))}")
        outer, self.op = self.op, op
        try:
            self._route(op, rule)
        finally:
            self.op = outer
        for t in op.outputs:
            if t not in self._values:
                raise self.fail(f"output {self.label(t)} was not written (loader bug)")

    def _route(self, op: Operator, rule: Rule) -> None:
        quantized = op.name not in SELF_TYPED and any(
            self.is_quantized(t) and self._constant_data(self.tensor(t)) is None
            for t in op.inputs + op.outputs if t is not None)
        if not quantized or op.name in DTYPE_GENERIC:
            rule(self, op)
            return
        integer_rule = INTEGER_RULES.get(op.name)
        if integer_rule is not None and integer_rule(self, op) is not False:
            return
        self._island = op
        try:
            rule(self, op)
        finally:
            self._island = None

    def _materialize(self, t: int) -> None:
        op = self._deferred.get(t)
        if op is None:
            return
        for out in op.outputs:
            self._deferred.pop(out, None)
        self._emit(op)

    # --------------------------------------------------------------- shortcuts
    def activation(self, field: str = "fused_activation_function") -> str | None:
        """The op's fused activation: None, "RELU", "RELU6", "RELU_N1_TO_1" or "TANH"."""
        code = self.op.option(field) if self.op is not None else None
        name = ACTIVATION_NAMES.get(0 if code is None else code)
        if name is None or name == "SIGN_BIT":
            raise self.unsupported(f"fused activation {name or code} is not supported "
                                   "(supported: NONE, RELU, RELU6, RELU_N1_TO_1, TANH)")
        return None if name == "NONE" else name

    def activate(self, value: Value, activation: str | None) -> Value:
        """``value`` with a fused activation applied by an explicit node."""
        if activation is None:
            return value
        if activation == "RELU":
            return self.node("Relu", [value]).output
        if activation == "TANH":
            return self.node("Tanh", [value]).output
        lo, hi = (0.0, 6.0) if activation == "RELU6" else (-1.0, 1.0)
        dtype = np.dtype(value.dtype or "float32")
        return self.node("Clip", [value, np.asarray(lo, dtype), np.asarray(hi, dtype)]).output


#: Fused activation -> ``node.meta["fused_activation"]`` understood by Conv/Gemm/MatMul/Add.
FUSED_META: dict[str, Any] = {"RELU": "Relu", "RELU6": ("Clip", 0.0, 6.0),
                              "RELU_N1_TO_1": ("Clip", -1.0, 1.0), "TANH": "Tanh"}


def dequantize_array(data: np.ndarray, quant: QuantParams) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32, per channel along ``quant.axis``."""
    shape = [1] * data.ndim
    if quant.axis is not None:
        shape[quant.axis] = -1
    scale = quant.scale.reshape(shape) if quant.axis is not None else quant.scale.reshape(())
    zero = quant.zero_point.reshape(shape) if quant.axis is not None \
        else quant.zero_point.reshape(())
    return ((data.astype(np.int64) - zero) * scale.astype(np.float64)).astype(np.float32)


def _permuted_quant(quant: QuantParams | None, perm: Sequence[int]) -> QuantParams | None:
    """``quant`` for the tensor stored with ``perm`` (the per-axis axis moves with it)."""
    if quant is None or quant.axis is None:
        return quant
    return QuantParams(quant.scale, quant.zero_point, list(perm).index(quant.axis))


def batch_matmul_operands(ctx: Lowering, op: Operator) -> list[Value]:
    """BATCH_MATMUL's two operands, each transposed in its last two axes where the op's
    ``adj_x`` / ``adj_y`` option asks for it (float and integer lowerings share this)."""
    operands = []
    for t, adjoint in ((op.input(0), op.option("adj_x")), (op.input(1), op.option("adj_y"))):
        v = ctx.value(t)
        if v.rank is None or v.rank < 2:
            raise ctx.fail(f"BATCH_MATMUL needs operands of rank >= 2, got {ctx.dims(t)}")
        if adjoint:
            perm = list(range(v.rank - 2)) + [v.rank - 1, v.rank - 2]
            v = ctx.node("Transpose", [v], {"perm": perm}).output
        operands.append(v)
    return operands


def inverse_perm(perm: Sequence[int]) -> list[int]:
    inverse = [0] * len(perm)
    for i, axis in enumerate(perm):
        inverse[axis] = i
    return inverse


__all__ = [
    "DTYPE_GENERIC",
    "EVALUATORS",
    "FUSED_META",
    "INTEGER_RULES",
    "MAX_KNOWN_ELEMENTS",
    "NCHW",
    "OPTIONS_TABLES",
    "QUANTIZED_DTYPES",
    "RULES",
    "SELF_TYPED",
    "Lowering",
    "Operator",
    "Perm",
    "TensorInfo",
    "batch_matmul_operands",
    "dequantize_array",
    "evaluates",
    "inverse_perm",
    "lowers",
    "lowers_integer",
]

"""The IR's values and nodes: :class:`Value` (a tensor), :class:`Node` (an op application)
and :class:`QuantParams`. Graphs are built from them by :class:`edgefw.ir.graph.Graph`.

>>> v = Value("x", "float32", ("batch", 3))
>>> v, v.rank
(<Value x: float32[batch,3]>, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefw.errors import GraphError, ShapeError
from edgefw.ir.dtypes import normalize_dtype
from edgefw.ir.schema import REQUIRED, TensorType, get_schema
from edgefw.ir.schema.dims import Dim, Shape, format_shape


@dataclass
class QuantParams:
    """Quantization parameters attached to a value: per tensor (axis None) or per axis."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None


class Value:
    """A tensor in the graph: a graph input, a constant (``data`` set) or a node output.

    ``shape`` is a tuple of ints, symbols (``"batch"``) and ``None`` (unknown dim), or
    ``None`` when even the rank is unknown.
    """

    __slots__ = ("name", "dtype", "shape", "data", "quant", "producer", "meta")

    def __init__(
        self,
        name: str,
        dtype: str | None,
        shape: Sequence[Dim] | None,
        data: np.ndarray | None = None,
        quant: QuantParams | None = None,
    ) -> None:
        self.name = name
        self.dtype = None if dtype is None else normalize_dtype(dtype)
        self.shape = normalize_shape(shape)
        self.data = data
        self.quant = quant
        #: The node that produces this value (None for inputs and constants).
        self.producer: Node | None = None
        #: Free-form annotations (e.g. calibration ranges) for passes.
        self.meta: dict[str, Any] = {}

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def type(self) -> TensorType:
        return TensorType(self.dtype, self.shape)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def __repr__(self) -> str:
        kind = "const " if self.data is not None else ""
        return f"<Value {kind}{self.name}: {self.dtype}{format_shape(self.shape)}>"


def normalize_shape(shape: Sequence[Dim] | None) -> Shape | None:
    """A shape as a tuple of Python ints, symbol strings and None."""
    if shape is None:
        return None
    out: list[Dim] = []
    for d in shape:
        if d is None or isinstance(d, str):
            out.append(d)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
            out.append(int(d))
        else:
            raise ShapeError(f"invalid dim {d!r} in shape {tuple(shape)!r}: expected an int >= 0, "
                             "a symbol string or None")
    return tuple(out)


class Node:
    """One op application: ONNX op type and attribute names, inputs/outputs as Values.

    ``inputs`` may hold None for an omitted optional input. ``module_path`` is where the
    op came from in the model (``features.3.conv``); ``meta`` carries marks that passes
    leave for the runtime, e.g. ``meta["fused_activation"] = "Relu"``.
    """

    __slots__ = ("op_type", "name", "inputs", "outputs", "attrs", "domain", "module_path", "meta")

    def __init__(
        self,
        op_type: str,
        name: str,
        inputs: list[Value | None],
        outputs: list[Value],
        attrs: dict[str, Any] | None = None,
        domain: str = "",
        module_path: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.op_type = op_type
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs if attrs is not None else {}
        self.domain = domain
        self.module_path = module_path
        self.meta = meta if meta is not None else {}

    @property
    def output(self) -> Value:
        """The single output (GraphError if the node has several)."""
        if len(self.outputs) != 1:
            raise GraphError(f"{self.describe()} has {len(self.outputs)} outputs, not one")
        return self.outputs[0]

    def attr(self, name: str) -> Any:
        """Attribute ``name``, or its schema default when the node does not set it."""
        if name in self.attrs:
            return self.attrs[name]
        schema = get_schema(self.op_type, self.domain)
        if name not in schema.attrs:
            raise GraphError(f"{self.describe()}: {self.op_type} has no attribute {name!r}; "
                             f"known: {', '.join(schema.attrs) or 'none'}")
        value = schema.default(name)
        if value is REQUIRED:
            raise GraphError(f"{self.describe()}: required attribute {name!r} is missing")
        return value

    def describe(self) -> str:
        """``node 'fc1' (Gemm, module fc1)``: how errors name a node."""
        module = f", module {self.module_path}" if self.module_path else ""
        return f"node '{self.name}' ({self.op_type}{module})"

    def __repr__(self) -> str:
        return f"<Node {self.name}: {self.op_type}>"


_ATTR_SCALARS = (bool, int, float, str, np.ndarray)


def normalize_attr(name: str, value: Any) -> Any:
    """ONNX attribute values as plain Python: ints, floats, strings, lists, arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, _ATTR_SCALARS) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [normalize_attr(name, v) for v in value]
    raise GraphError(f"attribute {name!r} has unsupported value type {type(value).__name__}")


__all__ = ["Node", "QuantParams", "Value", "normalize_attr", "normalize_shape"]

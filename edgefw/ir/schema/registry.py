"""Op schemas: arity, attributes with defaults, and shape/dtype inference per ONNX op type.

A schema is registered by decorating its inference function::

    @op_schema("Relu", inputs=1, doc="max(x, 0)")
    def _relu(ctx: InferenceContext) -> list[TensorType]:
        return [ctx.input_type(0)]

Inference works on :class:`TensorType` (dtype + shape) and the data of constant inputs, not
on graph objects, so the same function serves the graph builder, ``Graph.check()`` and the
runtime planner when it re-infers shapes for a concrete batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from edgefw.errors import DTypeError, EdgeFWError, GraphError, ShapeError, UnsupportedOpError
from edgefw.ir.schema.dims import Shape, normalize_axis


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of an attribute that has none and must be given.
REQUIRED: Any = _Required()

ATTR_KINDS = ("int", "float", "string", "ints", "floats", "strings", "tensor")


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: ONNX name, kind (``int``, ``floats``, ``tensor``...), default."""

    name: str
    kind: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class TensorType(NamedTuple):
    """What inference knows about a value: dtype name (or None) and shape (or None)."""

    dtype: str | None
    shape: Shape | None


InferFn = Callable[["InferenceContext"], Sequence[TensorType]]


@dataclass(frozen=True)
class OpSchema:
    """Arity, attributes and inference of one op type (ONNX semantics, newest form).

    Inputs below ``min_inputs`` are required; later ones are optional and may be None.
    """

    op_type: str
    domain: str
    min_inputs: int
    max_inputs: int
    min_outputs: int
    max_outputs: int
    attrs: Mapping[str, Attr]
    infer: InferFn
    doc: str = ""
    since_version: int = 1

    def default(self, name: str) -> Any:
        """Default value of attribute ``name`` (REQUIRED when it has none)."""
        return self.attrs[name].default

    def problems(self, inputs: Sequence[object | None], num_outputs: int,
                 attrs: Mapping[str, Any]) -> list[str]:
        """What is wrong with a node of this op (arity, attributes); empty when valid."""
        found: list[str] = []
        n_in = len(inputs)
        if not self.min_inputs <= n_in <= self.max_inputs:
            found.append(f"takes {_arity(self.min_inputs, self.max_inputs)} inputs, got {n_in}")
        for i in range(min(n_in, self.min_inputs)):
            if inputs[i] is None:
                found.append(f"input {i} is required but missing")
        if not self.min_outputs <= num_outputs <= self.max_outputs:
            found.append(
                f"has {_arity(self.min_outputs, self.max_outputs)} outputs, got {num_outputs}"
            )
        for name in attrs:
            if name not in self.attrs:
                known = ", ".join(self.attrs) or "none"
                found.append(f"unknown attribute {name!r} (known: {known})")
        for spec in self.attrs.values():
            if spec.required and spec.name not in attrs:
                found.append(f"required attribute {spec.name!r} is missing")
            elif spec.name in attrs and not attr_value_fits(spec, attrs[spec.name]):
                value = attrs[spec.name]
                shown = f"<{type(value).__name__}>" if isinstance(value, np.ndarray) \
                    else repr(value)[:60]
                found.append(f"attribute {spec.name!r} must be {_KIND_TEXT[spec.kind]}, got "
                             f"{shown}")
        return found


_KIND_TEXT = {
    "int": "an int",
    "float": "a number",
    "string": "a string",
    "ints": "a list of ints",
    "floats": "a list of numbers",
    "strings": "a list of strings",
    "tensor": "a numpy array",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, (float, np.floating))


_KIND_CHECKS = {
    "int": _is_int,
    "float": _is_number,
    "string": lambda v: isinstance(v, str),
    "ints": lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) for x in v),
    "floats": lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v),
    "strings": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
    "tensor": lambda v: isinstance(v, np.ndarray),
}


def attr_value_fits(spec: Attr, value: Any) -> bool:
    """Whether ``value`` has the kind the attribute declares (None only where it is the
    default, i.e. "not set")."""
    if value is None:
        return spec.default is None
    return _KIND_CHECKS[spec.kind](value)


def _arity(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo} to {hi}"


class InferenceContext:
    """What an inference function sees: input types, constant input data, attributes.

    ``attr(name)`` returns the node's value or the schema default; ``const(i)`` the data
    of input ``i`` when it is a constant (needed by Reshape, Slice, Pad...), else None.
    """

    def __init__(
        self,
        schema: OpSchema,
        input_types: Sequence[TensorType | None],
        input_data: Sequence[np.ndarray | None],
        attrs: Mapping[str, Any],
        num_outputs: int,
    ) -> None:
        self.schema = schema
        self.input_types = list(input_types)
        self.input_data = list(input_data)
        self.attrs = attrs
        self.num_outputs = num_outputs

    @property
    def num_inputs(self) -> int:
        return len(self.input_types)

    def has_input(self, i: int) -> bool:
        return i < len(self.input_types) and self.input_types[i] is not None

    def input_type(self, i: int) -> TensorType:
        t = self.input_types[i] if i < len(self.input_types) else None
        if t is None:
            raise ShapeError(f"input {i} is missing")
        return t

    def dtype(self, i: int) -> str | None:
        return self.input_type(i).dtype

    def shape(self, i: int) -> Shape | None:
        return self.input_type(i).shape

    def rank(self, i: int) -> int | None:
        shape = self.shape(i)
        return None if shape is None else len(shape)

    def const(self, i: int) -> np.ndarray | None:
        if i < len(self.input_data):
            return self.input_data[i]
        return None

    def const_ints(self, i: int) -> list[int] | None:
        """Constant input ``i`` as a list of Python ints (for shape/axes/pads inputs)."""
        data = self.const(i)
        if data is None:
            return None
        if data.dtype.kind not in "iu":
            raise DTypeError(f"input {i} must be an integer tensor, got {data.dtype}")
        return [int(v) for v in data.reshape(-1)]

    def attr(self, name: str) -> Any:
        if name in self.attrs:
            return self.attrs[name]
        value = self.schema.default(name)
        if value is REQUIRED:
            raise GraphError(f"required attribute {name!r} is missing")
        return value

    def axis(self, name: str, rank: int) -> int:
        return normalize_axis(int(self.attr(name)), rank, f"attribute {name}")

    def require_same_dtype(self, *indices: int) -> str | None:
        """The common dtype of the given inputs; DTypeError if they differ."""
        dtypes = {self.dtype(i) for i in indices if self.has_input(i)} - {None}
        if len(dtypes) > 1:
            listing = ", ".join(f"input {i}: {self.dtype(i)}" for i in indices if self.has_input(i))
            raise DTypeError(f"inputs must share one dtype, got {listing}")
        return next(iter(dtypes), None)

    def require_dtype(
        self, i: int, allowed: frozenset[str] | set[str], what: str = ""
    ) -> str | None:
        dtype = self.dtype(i)
        if dtype is not None and dtype not in allowed:
            label = what or f"input {i}"
            raise DTypeError(f"{label} has dtype {dtype}; supported: {', '.join(sorted(allowed))}")
        return dtype


_SCHEMAS: dict[tuple[str, str], OpSchema] = {}


def op_schema(
    op_type: str,
    *,
    inputs: int | tuple[int, int] = 1,
    outputs: int | tuple[int, int] = 1,
    attrs: Sequence[Attr] = (),
    domain: str = "",
    since_version: int = 1,
    doc: str = "",
) -> Callable[[InferFn], InferFn]:
    """Register the decorated inference function as the schema of ``op_type``."""
    min_in, max_in = (inputs, inputs) if isinstance(inputs, int) else inputs
    min_out, max_out = (outputs, outputs) if isinstance(outputs, int) else outputs

    def register(infer: InferFn) -> InferFn:
        key = (domain, op_type)
        if key in _SCHEMAS:
            raise ValueError(f"schema for {op_type!r} (domain {domain!r}) registered twice")
        _SCHEMAS[key] = OpSchema(
            op_type=op_type,
            domain=domain,
            min_inputs=min_in,
            max_inputs=max_in,
            min_outputs=min_out,
            max_outputs=max_out,
            attrs={a.name: a for a in attrs},
            infer=infer,
            doc=doc or (infer.__doc__ or "").strip(),
            since_version=since_version,
        )
        return infer

    return register


def get_schema(op_type: str, domain: str = "") -> OpSchema:
    """The schema of ``op_type``; UnsupportedOpError listing the known ops when unknown.

    >>> get_schema("Gemm").default("transB")
    0
    """
    try:
        return _SCHEMAS[(domain, op_type)]
    except KeyError:
        where = f" in domain {domain!r}" if domain else ""
        raise UnsupportedOpError(
            f"unknown op type {op_type!r}{where}; known ops: {', '.join(known_ops(domain))}"
        ) from None


def has_schema(op_type: str, domain: str = "") -> bool:
    return (domain, op_type) in _SCHEMAS


def known_ops(domain: str = "") -> list[str]:
    """Sorted op types with a schema in ``domain``."""
    return sorted(op for d, op in _SCHEMAS if d == domain)


def infer_types(
    op_type: str,
    input_types: Sequence[TensorType | None],
    input_data: Sequence[np.ndarray | None],
    attrs: Mapping[str, Any],
    num_outputs: int = 1,
    domain: str = "",
) -> list[TensorType]:
    """Run ``op_type``'s inference; ShapeError/DTypeError/GraphError when inputs do not fit."""
    schema = get_schema(op_type, domain)
    ctx = InferenceContext(schema, input_types, input_data, attrs, num_outputs)
    try:
        result = list(schema.infer(ctx))
    except (EdgeFWError, RecursionError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - malformed inputs must not escape as bare errors
        raise ShapeError(f"{op_type} inference failed: {type(exc).__name__}: {exc}") from exc
    if len(result) < num_outputs:
        raise GraphError(f"{op_type} inference produced {len(result)} outputs, {num_outputs} asked")
    return result[:num_outputs]


__all__ = [
    "ATTR_KINDS",
    "REQUIRED",
    "Attr",
    "InferenceContext",
    "OpSchema",
    "TensorType",
    "get_schema",
    "has_schema",
    "infer_types",
    "known_ops",
    "op_schema",
]

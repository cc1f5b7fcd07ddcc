"""Element types of IR values: one string name per type, with numpy and ONNX conversions.

The IR spells dtypes as numpy-style strings (``"float32"``, ``"int8"``, ...) so a graph
prints and compares without importing numpy's type objects; :func:`to_numpy` and
:func:`from_numpy` convert at the boundary, :func:`to_onnx` / :func:`from_onnx` map to the
``TensorProto.DataType`` codes (hard-coded here so that the IR never imports ``onnx``).

>>> to_onnx("float32"), from_onnx(3)
(1, 'int8')
>>> normalize_dtype(np.float16)
'float16'
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import DTypeError

# name -> ONNX TensorProto.DataType code.
_ONNX_CODES: dict[str, int] = {
    "float32": 1,
    "uint8": 2,
    "int8": 3,
    "uint16": 4,
    "int16": 5,
    "int32": 6,
    "int64": 7,
    "bool": 9,
    "float16": 10,
    "float64": 11,
    "uint32": 12,
    "uint64": 13,
}
_NAMES_BY_CODE: dict[int, str] = {code: name for name, code in _ONNX_CODES.items()}
_ONNX_TYPE_STRINGS: dict[str, str] = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "bool": "tensor(bool)",
}

#: Every dtype name the IR knows, in ONNX code order.
DTYPES: tuple[str, ...] = tuple(_ONNX_CODES)
FLOAT_DTYPES: frozenset[str] = frozenset({"float16", "float32", "float64"})
INT_DTYPES: frozenset[str] = frozenset(
    {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
)
#: Dtypes QuantizeLinear may produce (and DequantizeLinear may consume besides int32).
QUANT_DTYPES: frozenset[str] = frozenset({"int8", "uint8", "int16", "uint16"})


def normalize_dtype(dtype: str | np.dtype | type) -> str:
    """Return the IR name of ``dtype`` (a name, a numpy dtype or a numpy scalar type).

    >>> normalize_dtype("float32"), normalize_dtype(np.dtype("int64"))
    ('float32', 'int64')
    """
    if isinstance(dtype, str) and dtype in _ONNX_CODES:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise DTypeError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}") from None
    if name not in _ONNX_CODES:
        raise DTypeError(f"dtype {name!r} is not supported by the IR; known: {', '.join(DTYPES)}")
    return name


def to_numpy(name: str) -> np.dtype:
    """The numpy dtype of an IR dtype name."""
    return np.dtype(normalize_dtype(name))


def from_numpy(dtype: np.dtype | type) -> str:
    """The IR name of a numpy dtype."""
    return normalize_dtype(dtype)


def to_onnx(name: str) -> int:
    """The ``onnx.TensorProto`` data type code of an IR dtype name."""
    return _ONNX_CODES[normalize_dtype(name)]


def from_onnx(code: int) -> str:
    """The IR dtype name of an ``onnx.TensorProto`` data type code."""
    try:
        return _NAMES_BY_CODE[int(code)]
    except (KeyError, TypeError, ValueError):
        known = ", ".join(f"{c} ({n})" for c, n in _NAMES_BY_CODE.items())
        raise DTypeError(f"ONNX data type code {code!r} is not supported; known: {known}") from None


def onnx_type_string(name: str) -> str:
    """onnxruntime's spelling of a tensor type, e.g. ``"tensor(float)"`` for float32."""
    name = normalize_dtype(name)
    return _ONNX_TYPE_STRINGS.get(name, f"tensor({name})")


def is_float(name: str) -> bool:
    return name in FLOAT_DTYPES


def is_int(name: str) -> bool:
    return name in INT_DTYPES


__all__ = [
    "DTYPES",
    "FLOAT_DTYPES",
    "INT_DTYPES",
    "QUANT_DTYPES",
    "from_numpy",
    "from_onnx",
    "is_float",
    "is_int",
    "normalize_dtype",
    "onnx_type_string",
    "to_numpy",
    "to_onnx",
]

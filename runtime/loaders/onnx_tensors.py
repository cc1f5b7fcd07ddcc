"""Safe decoding of ONNX ``TensorProto`` and ``TypeProto`` messages into numpy and IR types.

Model files are untrusted: a tensor's ``dims`` may promise far more elements than its data
holds, or more than any device has memory for. Everything here checks sizes with Python
integers *before* numpy sees them, so a corrupt file costs an error message, never an
allocation. External data is read only from a file beside the model (see
:func:`tensor_to_array`).

>>> from onnx import numpy_helper
>>> tensor_to_array(numpy_helper.from_array(np.arange(3, dtype=np.int64), "k"), "test")
array([0, 1, 2])
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw.errors import ModelFormatError
from edgefw.ir.dtypes import DTYPES, from_onnx

#: A tensor (declared, inferred or stored) may not hold more elements than this: 2^31 is
#: 8 GiB of float32, more than any edge device has.
MAX_TENSOR_ELEMENTS = 2**31
#: Largest dim value accepted anywhere (dims beyond it are corrupt files, not models).
MAX_DIM = 2**40

# ONNX type codes the IR has no dtype for, by name (for messages).
_UNSUPPORTED_TYPES = {
    0: "UNDEFINED", 8: "STRING", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16",
    17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ",
    21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0",
}
# The repeated field that holds a tensor's values when raw_data is not used.
_TYPED_FIELD = {
    "float32": "float_data", "float64": "double_data", "int64": "int64_data",
    "uint32": "uint64_data", "uint64": "uint64_data",
    "int32": "int32_data", "int16": "int32_data", "int8": "int32_data",
    "uint16": "int32_data", "uint8": "int32_data", "bool": "int32_data",
    "float16": "int32_data",
}


def onnx_dtype(code: int, what: str) -> str:
    """IR dtype name of an ONNX element type code; ModelFormatError naming ``what``."""
    try:
        return from_onnx(code)
    except Exception:  # noqa: BLE001 - DTypeError, or a code that is not even an int
        name = _UNSUPPORTED_TYPES.get(code, f"code {code}")
        raise ModelFormatError(f"{what} has element type {name}, which edgefw does not support "
                               f"(supported: {', '.join(DTYPES)})") from None


def element_count(dims: Sequence[int], what: str, limit: int = MAX_TENSOR_ELEMENTS) -> int:
    """Product of ``dims`` after checking each is in [0, MAX_DIM] and the product <= limit."""
    for d in dims:
        if not 0 <= d <= MAX_DIM:
            raise ModelFormatError(f"{what} has invalid dim {d} in shape {list(dims)}")
    count = math.prod(dims)
    if count > limit:
        raise ModelFormatError(f"{what} has shape {list(dims)} ({count:.3g} elements); more than "
                               f"the {limit:.3g} elements a tensor may have")
    return count


def tensor_to_array(tensor: Any, what: str, base_dir: str | None = None) -> np.ndarray:
    """The numpy array held by an ONNX ``TensorProto`` (read-only when it views the file).

    Sizes are checked before anything is allocated: the data must hold exactly
    ``prod(dims)`` elements. ``base_dir`` is the folder of the model file: external data
    (``data_location = EXTERNAL``) is read only from a file inside it, at the offset and
    length the tensor declares, checked against the file's size. Models given as bytes
    have no folder, so their external data is refused.
    """
    name = tensor.name or what
    label = f"{what} {name!r}" if tensor.name and tensor.name != what else what
    if tensor.HasField("segment"):
        raise ModelFormatError(f"{label} is segmented, which is not supported")
    dtype_name = onnx_dtype(tensor.data_type, label)
    dims = [int(d) for d in tensor.dims]
    count = element_count(dims, label)
    dtype = np.dtype(dtype_name)
    if tensor.data_location == 1:  # EXTERNAL
        raw = _read_external(tensor, label, count * dtype.itemsize, base_dir)
    elif tensor.data_location != 0:
        raise ModelFormatError(f"{label} has unknown data_location {tensor.data_location}")
    elif tensor.HasField("raw_data"):
        raw = tensor.raw_data
    else:
        return _typed_values(tensor, label, dtype, dims, count)
    if len(raw) != count * dtype.itemsize:
        raise ModelFormatError(f"{label}: raw data has {len(raw)} bytes but shape {dims} of "
                               f"{dtype_name} needs {count * dtype.itemsize}")
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count)
    if dtype_name == "bool" and count and array.view(np.uint8).max() > 1:
        array = array.view(np.uint8) != 0  # protobuf writers may store any nonzero byte
    return array.astype(dtype, copy=False).reshape(dims)


def _typed_values(tensor: Any, label: str, dtype: np.dtype, dims: list[int],
                  count: int) -> np.ndarray:
    field = _TYPED_FIELD[dtype.name]
    values = getattr(tensor, field)
    if len(values) != count:
        other = [f for f in set(_TYPED_FIELD.values()) if f != field and len(getattr(tensor, f))]
        hint = f" (it fills {other[0]} instead)" if other else ""
        raise ModelFormatError(f"{label}: shape {dims} needs {count} values in {field}, the "
                               f"file holds {len(values)}{hint}")
    if dtype.name == "float16":  # float16 values travel as their bit patterns in int32_data
        return np.array(values, dtype=np.int64).astype(np.uint16).view(np.float16).reshape(dims)
    if dtype.name == "bool":
        return (np.array(values, dtype=np.int64) != 0).reshape(dims)
    if dtype.kind in "iu":
        wide = np.array(values, dtype=np.uint64 if dtype.name == "uint64" else np.int64)
        info = np.iinfo(dtype)
        if count and (wide.min() < info.min or wide.max() > info.max):
            raise ModelFormatError(f"{label}: values out of range for {dtype.name}")
        return wide.astype(dtype).reshape(dims)
    return np.array(values, dtype=dtype).reshape(dims)


def _read_external(tensor: Any, label: str, nbytes: int, base_dir: str | None) -> bytes:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise ModelFormatError(f"{label} keeps its data in an external file ({location!r}); "
                               "load the model from its path (not bytes) so the file beside it "
                               "can be found")
    if not location or os.path.isabs(location):
        raise ModelFormatError(f"{label}: external data location {location!r} must be a "
                               "relative file name")
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.dirname(path) != root and not path.startswith(root + os.sep):
        raise ModelFormatError(f"{label}: external data {location!r} is outside the model's "
                               f"folder {root}; only files beside the model are read")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else nbytes
    except ValueError:
        raise ModelFormatError(f"{label}: external data offset/length are not integers: "
                               f"{info}") from None
    if not os.path.isfile(path):
        raise ModelFormatError(f"{label}: external data file {path} not found")
    size = os.path.getsize(path)
    if offset < 0 or length != nbytes or offset + length > size:
        raise ModelFormatError(f"{label}: external data {location!r} (offset {offset}, length "
                               f"{length}) does not fit: the tensor needs {nbytes} bytes and "
                               f"the file has {size}")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def value_info_type(info: Any, what: str) -> tuple[str | None, tuple | None]:
    """(dtype, shape) of a ``ValueInfoProto``: dims are ints, symbols (dim_param) or None.

    A value without a type, or without a shape, gives None for that part.
    """
    if not info.HasField("type"):
        return None, None
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ModelFormatError(f"{what} {info.name!r} is a {kind or 'value of unknown type'}; "
                               "only tensors are supported")
    tensor_type = info.type.tensor_type
    dtype = onnx_dtype(tensor_type.elem_type, f"{what} {info.name!r}") \
        if tensor_type.elem_type else None
    if not tensor_type.HasField("shape"):
        return dtype, None
    dims: list[int | str | None] = []
    for d in tensor_type.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            dims.append(int(d.dim_value))
        elif which == "dim_param" and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    element_count([d for d in dims if isinstance(d, int)], f"{what} {info.name!r}")
    return dtype, tuple(dims)


__all__ = ["MAX_DIM", "MAX_TENSOR_ELEMENTS", "element_count", "onnx_dtype", "tensor_to_array",
           "value_info_type"]

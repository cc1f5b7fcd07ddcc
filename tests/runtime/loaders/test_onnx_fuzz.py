"""Fuzzing the ONNX loader: valid fixtures mutated (bytes, and protobuf fields: dims, data
types, attribute values, names, op types, node order, opset) with a fixed seed; each case
is loaded AND run on a small input. Only edgefw errors may come out: no other exception,
no crash, no hang (each case runs under a wall-clock alarm).

The default run does 300 cases in about a second; ``-m slow`` runs 9000 more.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import onnx
import pytest

from tests.fuzzing import flip_bytes, fuzz_model_files, truncate
from tests.runtime.loaders.onnx_fixtures import path_of

BASES = ("mlp_ts17", "dynamic_ts9", "dynamic_ts17", "dynamic_dynamo", "mobilenet_ts9",
         "lenet_qop", "matmul_mlp_dyn", "matmul_mlp_qop", "matmul_mlp_qdq_u8",
         "transformer_ts11")
OP_TYPES = ("Relu", "Conv", "Gemm", "MatMul", "Reshape", "Softmax", "Concat", "Slice", "Pad",
            "Split", "Squeeze", "Unsqueeze", "ReduceMean", "Clip", "QLinearConv", "Expand",
            "QLinearMatMul", "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "Cast",
            "Gather", "Transpose", "Flatten", "Constant", "ConstantOfShape", "If", "NoSuchOp")
INTERESTING_INTS = (-(2**63), -(2**31), -1000, -2, -1, 0, 1, 2, 3, 7, 64, 2**31 - 1, 2**40,
                    10**12)


def _insert_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return data[:at] + junk + data[at:], f"insert {len(junk)} bytes at {at}"


def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    return tensors + [a.t for n in model.graph.node for a in n.attribute if a.type == 4]


def _pick_tensor_holder(model: onnx.ModelProto, rng: random.Random):
    tensors = _tensors(model)
    return rng.choice(tensors) if tensors else None


def _mutate_dims(model, rng):
    t = _pick_tensor_holder(model, rng)
    if t is None or not len(t.dims):
        return "no tensor"
    i = rng.randrange(len(t.dims))
    t.dims[i] = rng.choice(INTERESTING_INTS[2:])
    return f"tensor {t.name!r} dim {i} = {t.dims[i]}"


def _mutate_data_type(model, rng):
    t = _pick_tensor_holder(model, rng)
    if t is None:
        return "no tensor"
    t.data_type = rng.randrange(0, 30)
    return f"tensor {t.name!r} data_type = {t.data_type}"


def _mutate_raw_data(model, rng):
    t = _pick_tensor_holder(model, rng)
    if t is None or not t.raw_data:
        return "no raw data"
    t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))] if rng.random() < 0.5 \
        else t.raw_data + bytes(rng.randint(1, 9))
    return f"tensor {t.name!r} raw_data resized"


def _mutate_values(model, rng):
    """Overwrite one element of a small integer tensor (shapes, axes, pads, indices...)."""
    small = [t for t in _tensors(model) if t.data_type in (6, 7) and 0 < len(t.raw_data) <= 64]
    if not small:
        return "no small integer tensor"
    t = rng.choice(small)
    try:
        array = onnx.numpy_helper.to_array(t).copy()
    except Exception:  # noqa: BLE001 - an earlier mutation broke it; that is its own case
        return "tensor already broken"
    if not array.size:
        return "empty tensor"
    info = np.iinfo(array.dtype)
    value = rng.choice([v for v in INTERESTING_INTS if info.min <= v <= info.max])
    array.reshape(-1)[rng.randrange(array.size)] = value
    t.raw_data = array.tobytes()
    return f"tensor {t.name!r} values = {array.reshape(-1).tolist()}"


def _mutate_input_type(model, rng):
    info = rng.choice(list(model.graph.input) + list(model.graph.output))
    tensor_type = info.type.tensor_type
    if rng.random() < 0.3 or not len(tensor_type.shape.dim):
        tensor_type.elem_type = rng.randrange(0, 17)
        return f"value {info.name!r} elem_type = {tensor_type.elem_type}"
    dim = rng.choice(tensor_type.shape.dim)
    if rng.random() < 0.7:
        dim.dim_value = rng.choice(INTERESTING_INTS[2:])
    else:
        dim.dim_param = rng.choice(("batch", "other", ""))
    return f"value {info.name!r} dim changed"


def _mutate_attribute(model, rng):
    nodes = [n for n in model.graph.node if len(n.attribute)]
    if not nodes:
        return "no attributes"
    node = rng.choice(nodes)
    attr = rng.choice(node.attribute)
    choice = rng.random()
    if choice < 0.15:
        node.attribute.remove(attr)
        return f"{node.op_type}: remove attribute {attr.name}"
    if choice < 0.25:
        attr.type = rng.randrange(0, 15)
        return f"{node.op_type}: attribute {attr.name} type = {attr.type}"
    if attr.type == 2:
        attr.i = rng.choice(INTERESTING_INTS)
    elif attr.type == 1:
        attr.f = rng.choice((0.0, -1.0, 1e30, float("nan"), float("inf"), 0.5))
    elif attr.type == 7:
        values = list(attr.ints)
        if values and rng.random() < 0.6:
            values[rng.randrange(len(values))] = rng.choice(INTERESTING_INTS)
        else:
            values = values[:-1] if values and rng.random() < 0.5 else values + [rng.randint(-2, 5)]
        attr.ClearField("ints")
        attr.ints.extend(values)
    elif attr.type == 3:
        attr.s = rng.choice((b"", b"SAME_UPPER", b"VALID", b"\xff\xfe", b"reflect", b"bogus"))
    elif attr.type == 6:
        attr.floats.append(rng.choice((0.0, 1e30)))
    elif attr.type == 4:
        attr.t.dims.append(rng.randint(0, 3))
    return f"{node.op_type}: attribute {attr.name} changed"


def _all_names(model) -> list[str]:
    names = [v.name for v in model.graph.input] + [t.name for t in model.graph.initializer]
    return names + [o for n in model.graph.node for o in n.output]


def _mutate_input_name(model, rng):
    node = rng.choice(model.graph.node)
    if not len(node.input):
        return "no inputs"
    i = rng.randrange(len(node.input))
    node.input[i] = rng.choice(_all_names(model) + ["", "undefined_value"])
    return f"{node.op_type} input {i} = {node.input[i]!r}"


def _mutate_output_name(model, rng):
    node = rng.choice(model.graph.node)
    i = rng.randrange(len(node.output))
    node.output[i] = rng.choice(_all_names(model) + [""])
    return f"{node.op_type} output {i} = {node.output[i]!r}"


def _mutate_op_type(model, rng):
    node = rng.choice(model.graph.node)
    old, node.op_type = node.op_type, rng.choice(OP_TYPES)
    return f"op {old} -> {node.op_type}"


def _mutate_structure(model, rng):
    nodes = model.graph.node
    choice = rng.random()
    if choice < 0.3 and len(nodes) > 1:
        del nodes[rng.randrange(len(nodes))]
        return "remove a node"
    if choice < 0.5:
        nodes.append(onnx.NodeProto())
        nodes[-1].CopyFrom(rng.choice(nodes))
        return "duplicate a node"
    if choice < 0.7 and len(nodes) > 1:
        i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(nodes[i])
        b.CopyFrom(nodes[j])
        nodes[i].CopyFrom(b)
        nodes[j].CopyFrom(a)
        return "swap two nodes"
    if choice < 0.8 and len(model.graph.initializer):
        del model.graph.initializer[rng.randrange(len(model.graph.initializer))]
        return "remove an initializer"
    if choice < 0.9:
        model.opset_import[0].version = rng.choice((0, 1, 6, 9, 10, 12, 13, 18, 21, 99))
        return f"opset = {model.opset_import[0].version}"
    node = rng.choice(nodes)
    node.input.append(rng.choice(_all_names(model)))
    return f"{node.op_type}: extra input"


FIELD_MUTATIONS: tuple[Callable, ...] = (
    _mutate_dims, _mutate_data_type, _mutate_raw_data, _mutate_values, _mutate_values,
    _mutate_input_type,
    _mutate_attribute, _mutate_attribute, _mutate_input_name, _mutate_output_name,
    _mutate_op_type, _mutate_structure,
)
BYTE_MUTATIONS: tuple[Callable, ...] = (flip_bytes, truncate, _insert_bytes)


def make_case(bases: dict[str, bytes], rng: random.Random) -> tuple[bytes, str]:
    stem = rng.choice(sorted(bases))
    data = bases[stem]
    if rng.random() < 0.3:
        mutated, what = rng.choice(BYTE_MUTATIONS)(data, rng)
        return mutated, f"{stem}: {what}"
    model = onnx.load_model_from_string(data)
    whats = [rng.choice(FIELD_MUTATIONS)(model, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
    return model.SerializeToString(), f"{stem}: " + "; ".join(whats)


# --------------------------------------------------------------------------- running
def fuzz(iterations: int, seed: int) -> dict[str, int]:
    bases = {stem: path_of(stem).read_bytes() for stem in BASES}
    return fuzz_model_files(bases, make_case, iterations, seed, int_range=(0, 3))


def test_fuzzed_models_raise_only_edgefw_errors():
    outcomes = fuzz(300, seed=2024)
    # The mix must exercise every stage, not only the protobuf parser.
    assert outcomes.get("refused at load", 0) > 50 and outcomes.get("ran", 0) > 30, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_models_raise_only_edgefw_errors_long(seed):
    fuzz(3000, seed=seed)

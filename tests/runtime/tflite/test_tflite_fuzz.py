"""Fuzzing the .tflite loader: the converter fixtures mutated (bytes, and FlatBuffer fields
through the object API: shapes, types, buffer indices, quantization, operator inputs and
outputs, operator codes and versions, option values, subgraph inputs/outputs, operator
order) with a fixed seed; each case is loaded AND run on a small input. Only edgefw errors
may come out: no other exception, no crash, no hang (each case runs under an alarm).

The default run does 300 cases in a few seconds; ``-m slow`` runs 9000 more.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.fuzzing import flip_bytes, fuzz_model_files, truncate
from tests.runtime.tflite.tflite_builder import FIXTURE_STEMS, FIXTURES, pack, unpack

INTERESTING_INTS = (-(2**31), -1000, -2, -1, 0, 1, 2, 3, 7, 64, 1000, 2**16, 2**31 - 1)


def _overwrite_word(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """An aligned 32-bit word (offsets, lengths, indices live there) set to a small or
    extreme value."""
    buf = bytearray(data)
    at = rng.randrange(len(buf) // 4) * 4
    value = rng.choice(INTERESTING_INTS)
    buf[at:at + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(buf), f"word at {at} = {value}"


def _subgraph(model):
    return model.subgraphs[0]


def _mutate_tensor(model, rng):
    t = rng.choice(_subgraph(model).tensors)
    choice = rng.random()
    if choice < 0.35 and t.shape is not None and len(t.shape):
        shape = list(t.shape)
        shape[rng.randrange(len(shape))] = rng.choice(INTERESTING_INTS)
        t.shape = shape
    elif choice < 0.5:
        t.shape = [rng.randint(0, 4) for _ in range(rng.randint(0, 6))]
    elif choice < 0.65:
        t.type = rng.randrange(0, 20)
    elif choice < 0.8:
        t.buffer = rng.choice((0, 1, len(model.buffers) - 1, len(model.buffers), 2**31))
    elif t.shapeSignature is not None and len(t.shapeSignature):
        sig = list(t.shapeSignature)
        sig[rng.randrange(len(sig))] = rng.choice((-1, -2, 0, 5))
        t.shapeSignature = sig
    return f"tensor {t.name!r} changed"


def _mutate_quantization(model, rng):
    quantized = [t for t in _subgraph(model).tensors if t.quantization is not None
                 and t.quantization.scale is not None]
    if not quantized:
        return "no quantized tensor"
    q = rng.choice(quantized).quantization
    choice = rng.random()
    if choice < 0.3:
        q.scale = [rng.choice((0.0, -1.0, 1e-30, 1e30, float("nan"), 0.5))] * len(q.scale)
    elif choice < 0.6:
        q.zeroPoint = [rng.choice((-129, 128, 1000, 0, -128))] * len(q.zeroPoint)
    elif choice < 0.8:
        q.quantizedDimension = rng.choice((-1, 0, 1, 3, 7))
    else:
        q.scale = list(q.scale) + [0.1]
    return "quantization changed"


def _mutate_operator(model, rng):
    ops = _subgraph(model).operators
    op = rng.choice(ops)
    count = len(_subgraph(model).tensors)
    choice = rng.random()
    if choice < 0.35 and op.inputs is not None and len(op.inputs):
        inputs = list(op.inputs)
        inputs[rng.randrange(len(inputs))] = rng.choice((-1, 0, count - 1, count, -5))
        op.inputs = inputs
    elif choice < 0.5 and op.outputs is not None and len(op.outputs):
        outputs = list(op.outputs)
        outputs[rng.randrange(len(outputs))] = rng.randrange(-1, count + 1)
        op.outputs = outputs
    elif choice < 0.65:
        op.opcodeIndex = rng.randrange(len(model.operatorCodes) + 2)
    elif choice < 0.8 and op.inputs is not None:
        op.inputs = list(op.inputs)[:-1] if rng.random() < 0.5 else list(op.inputs) + [0]
    elif op.builtinOptions is not None:
        fields = {k: v for k, v in vars(op.builtinOptions).items()
                  if isinstance(v, (bool, int, float))}
        if fields:
            field = rng.choice(sorted(fields))
            # values every option field's type (int8 included) can hold
            value = rng.random() < 0.5 if isinstance(fields[field], bool) \
                else rng.choice((-100, -1, 0, 1, 2, 3, 5, 6, 100, 127))
            setattr(op.builtinOptions, field, value)
            return f"option {field} = {value}"
    return "operator changed"


def _mutate_codes(model, rng):
    code = rng.choice(model.operatorCodes)
    choice = rng.random()
    if choice < 0.5:
        code.builtinCode = rng.randrange(0, 210)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    elif choice < 0.7:
        code.deprecatedBuiltinCode = rng.randrange(-128, 128)
    else:
        code.version = rng.choice((0, 1, 2, 99, -1))
    return "operator code changed"


def _mutate_buffers(model, rng):
    with_data = [b for b in model.buffers if b.data is not None and len(b.data)]
    if not with_data:
        return "no data"
    b = rng.choice(with_data)
    if rng.random() < 0.5:
        b.data = list(b.data)[: rng.randrange(len(b.data))]
    else:
        b.data = list(b.data) + [0] * rng.randint(1, 9)
    return "buffer resized"


def _mutate_structure(model, rng):
    sg = _subgraph(model)
    count = len(sg.tensors)
    choice = rng.random()
    if choice < 0.25 and len(sg.operators) > 1:
        del sg.operators[rng.randrange(len(sg.operators))]
        return "remove an operator"
    if choice < 0.45 and len(sg.operators) > 1:
        i, j = rng.randrange(len(sg.operators)), rng.randrange(len(sg.operators))
        sg.operators[i], sg.operators[j] = sg.operators[j], sg.operators[i]
        return "swap two operators"
    if choice < 0.6:
        sg.inputs = list(sg.inputs) + [rng.randrange(count)]
        return "extra input"
    if choice < 0.8:
        sg.outputs = [rng.randrange(-1, count + 1)]
        return "other output"
    sg.tensors = sg.tensors[: rng.randrange(1, count + 1)]
    return "drop tensors"


FIELD_MUTATIONS: tuple[Callable, ...] = (
    _mutate_tensor, _mutate_tensor, _mutate_quantization, _mutate_operator, _mutate_operator,
    _mutate_codes, _mutate_buffers, _mutate_structure,
)
BYTE_MUTATIONS: tuple[Callable, ...] = (flip_bytes, truncate, _overwrite_word)


def make_case(bases: dict[str, bytes], rng: random.Random) -> tuple[bytes, str]:
    stem = rng.choice(sorted(bases))
    data = bases[stem]
    if rng.random() < 0.35:
        mutated, what = rng.choice(BYTE_MUTATIONS)(data, rng)
        return mutated, f"{stem}: {what}"
    model = unpack(data)
    whats = [rng.choice(FIELD_MUTATIONS)(model, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
    return pack(model), f"{stem}: " + "; ".join(whats)


# --------------------------------------------------------------------------- running
def fuzz(iterations: int, seed: int) -> dict[str, int]:
    bases = {stem: (FIXTURES / f"{stem}.tflite").read_bytes() for stem in FIXTURE_STEMS}
    return fuzz_model_files(bases, make_case, iterations, seed, int_range=(-3, 4))


@pytest.mark.skipif(not FIXTURE_STEMS, reason="no TFLite fixtures")
def test_fuzzed_models_raise_only_edgefw_errors():
    outcomes = fuzz(300, seed=2024)
    # The mix must exercise every stage, not only the FlatBuffer reader.
    assert outcomes.get("refused at load", 0) > 50 and outcomes.get("ran", 0) > 30, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_models_raise_only_edgefw_errors_long(seed):
    fuzz(3000, seed=seed)

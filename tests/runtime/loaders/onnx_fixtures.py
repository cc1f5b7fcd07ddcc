"""The committed third-party ONNX fixtures (``tests/fixtures/onnx``, made by
``tests/fixtures/make_onnx_fixtures.py``) and references to compare against."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "onnx"
MODELS = ("matmul_mlp", "mlp", "lenet", "mobilenet", "transformer", "dynamic")
FLOAT_KINDS = ("ts17", "ts9", "ts11", "dynamo")
QUANTIZED_KINDS = ("qdq_u8", "qdq_s8c", "qop", "dyn")

ort.set_default_logger_severity(3)  # old exporters' weights-as-inputs warnings


def path_of(stem: str) -> Path:
    return FIXTURES / f"{stem}.onnx"


def model_of(stem: str) -> str:
    """``lenet_qdq_u8`` -> ``lenet``."""
    return next(m for m in MODELS if stem.startswith(m + "_"))


def stems(kinds: tuple[str, ...]) -> list[str]:
    found = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
    return [s for s in found if s[len(model_of(s)) + 1:] in kinds]


@cache
def _expected(model: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{model}.npz") as data:
        return {k: data[k] for k in data.files}


def stored_inputs(model: str) -> dict[str, np.ndarray]:
    return {k[len("input_"):]: v for k, v in _expected(model).items() if k.startswith("input_")}


def torch_outputs(model: str) -> list[np.ndarray]:
    data = _expected(model)
    return [data[f"output_{i}"] for i in range(sum(k.startswith("output_") for k in data))]


def onnxruntime_outputs(stem: str, feed: dict[str, np.ndarray], optimize: bool = True
                        ) -> list[np.ndarray]:
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path_of(stem)), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def output_steps(stem: str) -> list[float | None]:
    """Per graph output: the quantization step (scale) of the DequantizeLinear producing it,
    None when a float op produces it."""
    model = onnx.load(str(path_of(stem)))
    producers = {o: n for n in model.graph.node for o in n.output}
    constants = {t.name: t for t in model.graph.initializer}
    steps: list[float | None] = []
    for out in model.graph.output:
        node = producers.get(out.name)
        if node is None or node.op_type != "DequantizeLinear":
            steps.append(None)
            continue
        steps.append(float(np.max(numpy_helper.to_array(constants[node.input[1]]))))
    return steps


def random_inputs(stem: str, batch: int, seq: int | None = None, seed: int = 1
                  ) -> dict[str, np.ndarray]:
    """Inputs like the stored ones with another batch size (and sequence length)."""
    rng = np.random.default_rng(seed)
    feed = {}
    for name, stored in stored_inputs(model_of(stem)).items():
        shape = (batch,) + stored.shape[1:]
        if seq is not None:
            shape = (batch, seq) + stored.shape[2:]
        feed[name] = rng.standard_normal(shape).astype(np.float32)
    return feed

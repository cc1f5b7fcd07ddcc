"""The real-model tests shipped in the onnx wheel (onnx/backend/test/data/light).

Each model must match its shipped output on onnx's runner inputs and match onnxruntime with
random weights and inputs (the shipped outputs alone are a uniform softmax, see
``runtime.conformance.randomized_weights``).
"""

from __future__ import annotations

import onnx
import pytest

from runtime.conformance import light_models, randomized_weights, run_light_model

_MODELS = {m.name: m for m in light_models()}
FAST = ("squeezenet", "shufflenet")
EXPECTED = {"bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
            "shufflenet", "squeezenet", "vgg19", "zfnet512"}


def test_the_wheel_ships_the_nine_light_models():
    assert set(_MODELS) == EXPECTED
    assert all(m.expected_paths for m in _MODELS.values())


@pytest.mark.parametrize("name", FAST)
def test_small_light_model(name):
    result = run_light_model(_MODELS[name])
    assert result.status == "passed", result.detail
    assert result.onnxruntime_error is not None and result.onnxruntime_error < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED - set(FAST)))
def test_light_model(name):
    result = run_light_model(_MODELS[name])
    assert result.status == "passed", result.detail


def test_randomized_weights_replace_every_constant_fill():
    model = onnx.load(_MODELS["squeezenet"].path)
    random_model = randomized_weights(model)
    assert not [n for n in random_model.graph.node if n.op_type == "ConstantOfShape"]
    names = {t.name for t in random_model.graph.initializer}
    fills = [n.output[0] for n in model.graph.node if n.op_type == "ConstantOfShape"]
    assert set(fills) <= names
    # The dropped shape initializers leave no graph input behind: only the image is fed.
    assert [i.name for i in random_model.graph.input if i.name not in names] == ["data_0"]

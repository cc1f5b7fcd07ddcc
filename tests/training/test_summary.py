"""model.summary(): rows, output shapes and parameter counts against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw import models, nn
from edgefw.errors import ConfigError, ShapeError
from edgefw.nn import module as module_lib
from tests.training.fixtures import brief_mlp


def _rows(text: str) -> list[list[str]]:
    """The table's body: each row split on runs of 2+ spaces."""
    lines = text.splitlines()
    first, last = [i for i, line in enumerate(lines) if line.startswith("=")][:2]
    return [[c for c in line.strip().split("  ") if c] for line in lines[first + 1:last]]


def _clean(row: list[str]) -> list[str]:
    return [c.strip() for c in row]


def test_brief_mlp_summary_counts():
    printed = []
    text = brief_mlp().summary(print_fn=printed.append)
    assert "\n".join(printed) == text
    assert text.splitlines()[0] == 'Model: "Sequential"'
    assert [_clean(r) for r in _rows(text)] == [
        ["0 (Flatten)", "(None, 784)", "0"],
        ["1 (Dense)", "(None, 128)", "100,480"],  # 784 * 128 + 128
        ["2 (Dense)", "(None, 10)", "1,290"],  # 128 * 10 + 10
    ]
    # 101,770 float32 parameters = 407,080 bytes = 397.54 KiB
    assert "Total params: 101,770 (397.54 KiB)" in text
    assert "Trainable params: 101,770 (397.54 KiB)" in text
    assert "Non-trainable params: 0 (0.00 B)" in text


def test_lenet_with_an_input_shape():
    text = models.build("lenet").summary(input_shape=(1, 28, 28), print_fn=None)
    rows = {r[0].strip(): (r[1].strip(), r[2].strip()) for r in _rows(text)}
    assert rows["features.0 (Conv2d)"] == ("(None, 6, 28, 28)", "156")  # 6*1*5*5 + 6
    assert rows["features.2 (MaxPool2d)"] == ("(None, 6, 14, 14)", "0")
    assert rows["features.3 (Conv2d)"] == ("(None, 16, 10, 10)", "2,416")  # 16*6*25 + 16
    assert rows["flatten (Flatten)"] == ("(None, 400)", "0")
    assert rows["classifier.0 (Linear)"] == ("(None, 120)", "48,120")
    assert rows["classifier.4 (Linear)"] == ("(None, 10)", "850")
    assert "Total params: 61,706 " in text
    # The batch axis may be given as None, as Keras prints it.
    assert models.build("lenet").summary(input_shape=(None, 1, 28, 28), print_fn=None) == text


def test_batchnorm_statistics_are_non_trainable():
    model = nn.Sequential([nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2)])
    text = model.summary(input_shape=(1, 3, 3), print_fn=None)
    rows = {r[0].strip(): (r[1].strip(), r[2].strip()) for r in _rows(text)}
    assert rows["1 (BatchNorm2d)"] == ("(None, 8, 1, 1)", "32")  # weight, bias, mean, var
    assert "Trainable params: 114 (456.00 B)" in text  # conv 80 + bn 16 + linear 18
    assert "Non-trainable params: 16 (64.00 B)" in text
    assert "Total params: 130 " in text


def test_summary_runs_in_eval_mode_and_leaves_no_trace():
    model = nn.Sequential([nn.Flatten(input_shape=(4,)), nn.Dense(3), nn.Dropout(0.5)])
    model[2].eval()
    before = [m.training for m in model.modules()]
    running = model[1].weight.data.copy()
    model.summary(print_fn=None)
    assert [m.training for m in model.modules()] == before
    assert module_lib._call_observers == []
    np.testing.assert_array_equal(model[1].weight.data, running)


def test_without_an_input_shape_the_table_lists_parameters():
    text = models.build("mlp").summary(print_fn=None)
    assert [r[1].strip() for r in _rows(text)] == ["?"] * 4
    assert "Output shapes need an input shape" in text
    assert "Total params: 101,770" in text


def test_lazy_layers_before_and_after_building():
    model = nn.Sequential([nn.Flatten(), nn.Dense(8, activation="relu"), nn.Dense(2)])
    text = model.summary(print_fn=None)
    assert [r[2].strip() for r in _rows(text)] == ["0", "unbuilt", "unbuilt"]
    assert "create their parameters on their first call" in text
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 3, 5), np.float32), np.zeros((4, 2), np.float32), verbose=0)
    # fit recorded the sample shape, so the shapes are known now.
    rows = [_clean(r) for r in _rows(model.summary(print_fn=None))]
    assert rows == [["0 (Flatten)", "(None, 15)", "0"], ["1 (Dense)", "(None, 8)", "128"],
                    ["2 (Dense)", "(None, 2)", "18"]]


def test_composite_modules_show_their_layers_and_own_parameters():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(3, 2)
            self.scale = nn.Linear(2, 2).weight  # a Parameter of its own

        def forward(self, x):
            return self.body(x) @ self.scale

    text = Scaled().summary(input_shape=(3,), print_fn=None)
    assert [_clean(r) for r in _rows(text)] == [["Scaled", "(None, 2)", "4"],
                                                 ["body (Linear)", "(None, 2)", "8"]]
    assert "Total params: 12 " in text


def test_bad_input_shapes():
    with pytest.raises(ConfigError, match="input_shape must be the positive sizes"):
        brief_mlp().summary(input_shape=(28, -1))
    with pytest.raises(ShapeError, match=r"summary: the model cannot run on input of shape "
                                         r"\(None, 1, 5, 5\)"):
        models.build("lenet").summary(input_shape=(1, 5, 5), print_fn=None)

"""Bad input to compile/fit/evaluate/predict, and NaN losses, give clear edgefw errors."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import F, models, nn
from edgefw.errors import ConfigError, DataError, ShapeError, TrainingError
from edgefw.training.callbacks import TerminateOnNaN
from tests.training.fixtures import brief_mlp, line_model, line_problem, weights


@pytest.fixture
def compiled():
    model = brief_mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _images(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def test_x_and_y_lengths_must_match(compiled):
    x, y = _images()
    with pytest.raises(DataError, match="x has 40 samples but y has 39"):
        compiled.fit(x, y[:39], verbose=0)
    with pytest.raises(DataError, match="x has 40 samples but y has 39"):
        compiled.evaluate(x, y[:39])


def test_y_is_required_with_arrays(compiled):
    with pytest.raises(ConfigError, match="y is missing"):
        compiled.fit(_images()[0], verbose=0)


def test_y_must_be_none_with_a_dataloader(compiled):
    x, y = _images()
    loader = edgefw.data.DataLoader(edgefw.data.TensorDataset(x, y), batch_size=8)
    with pytest.raises(ConfigError, match="y must be None when x is a DataLoader"):
        compiled.fit(loader, y, verbose=0)
    with pytest.raises(ConfigError, match="validation_split needs x and y arrays"):
        compiled.fit(loader, validation_split=0.2, verbose=0)


def test_input_shape_of_the_first_layer_is_checked(compiled):
    x, y = _images()
    with pytest.raises(ShapeError, match=r"input_shape=\(28, 28\), so x must have shape "
                                         r"\(N, 28, 28\); got x of shape \(40, 784\)"):
        compiled.fit(x.reshape(40, 784), y, verbose=0)


def test_wrong_input_rank_names_the_batch_shape():
    x, y = _images()
    net = models.build("lenet")  # wants (N, 1, 28, 28)
    net.compile("sgd", "cross_entropy")
    with pytest.raises(ShapeError, match=r"fit: the model cannot run on a batch of shape "
                                         r"\(32, 28, 28\)"):
        net.fit(x, y, verbose=0)
    with pytest.raises(ShapeError, match=r"predict: the model cannot run on a batch of shape"):
        net.predict(x)


def test_targets_that_do_not_fit_the_loss():
    x, _ = _images()
    net = models.build("mlp")
    net.compile("sgd", "cross_entropy")
    with pytest.raises(ShapeError, match=r"the loss cannot compare predictions of shape "
                                         r"\(32, 10\) with targets of shape \(32, 2\)"):
        net.fit(x, np.zeros((40, 2), np.int64), verbose=0)


@pytest.mark.parametrize("split", [1.0, -0.1, 1.5, "0.2", True])
def test_bad_validation_split(compiled, split):
    x, y = _images()
    with pytest.raises(ConfigError, match="validation_split must be a fraction in"):
        compiled.fit(x, y, validation_split=split, verbose=0)


def test_validation_split_that_leaves_nothing(compiled):
    x, y = _images(1)
    with pytest.raises(ConfigError, match="validation_split=0.5 of 1 samples leaves 0 for "
                                          "training and 1 for validation"):
        compiled.fit(x, y, validation_split=0.5, verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"metrics": ["accuracy", "f1_score"]}, "unknown metric 'f1_score'; known: acc, accuracy"),
    ({"metrics": ["acc", "acc"]}, "metric names must be distinct"),
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'; known: adam, adamw, rmsprop, sgd"),
    ({"optimizer": 0.1}, "optimizer must be a name or an edgefw.optim Optimizer"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"loss": None}, "a loss is required"),
    ({"run_eagerly": True}, r"compile\(\) got unsupported arguments \['run_eagerly'\]"),
])
def test_bad_compile_arguments(kwargs, message):
    args = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", **kwargs}
    with pytest.raises(ConfigError, match=message):
        brief_mlp().compile(**args)


def test_fit_needs_compile_and_known_arguments(compiled):
    x, y = _images()
    with pytest.raises(ConfigError, match="not compiled; call model.compile"):
        brief_mlp().fit(x, y)
    with pytest.raises(ConfigError, match="not compiled"):
        brief_mlp().evaluate(x, y)
    with pytest.raises(ConfigError, match=r"fit\(\) got unsupported arguments \['class_weight'\]"):
        compiled.fit(x, y, class_weight={0: 1.0})
    for bad in ({"epochs": -1}, {"batch_size": 0}, {"epochs": 1.5}, {"verbose": 3},
                {"seed": -2}):
        with pytest.raises(ConfigError):
            compiled.fit(x, y, **bad)
    with pytest.raises(ConfigError, match="validation_data must be"):
        compiled.fit(x, y, validation_data=(x, y, np.ones(40)), verbose=0)
    with pytest.raises(ConfigError, match="callbacks\\[0\\] is a str"):
        compiled.fit(x, y, callbacks=["early"], verbose=0)


def test_non_numeric_and_empty_data(compiled):
    x, y = _images()
    with pytest.raises(DataError, match="x must hold numbers"):
        compiled.fit(np.array(["a"] * 40), y, verbose=0)
    with pytest.raises(DataError, match="x has no samples"):
        compiled.predict(np.zeros((0, 28, 28), np.float32))


def test_label_out_of_range_error_reaches_the_user_unchanged(compiled):
    x, y = _images()
    y[17] = 10
    with pytest.raises(DataError) as from_fit:
        compiled.fit(x, y, shuffle=False, verbose=0)
    with pytest.raises(DataError) as from_loss:
        F.cross_entropy(edgefw.zeros(8, 10), y[16:24])
    assert str(from_fit.value) == str(from_loss.value)
    assert "label 10, outside the class range [0, 10)" in str(from_fit.value)


def _nan_on_call(call: int):
    """MSE that turns into NaN on its ``call``-th use (1-based)."""
    calls = []

    def loss(pred, target):
        calls.append(1)
        value = F.mse_loss(pred, target)
        return value * float("nan") if len(calls) == call else value

    return loss


def test_nan_loss_names_epoch_and_step_and_skips_that_update():
    x, y = line_problem(40)
    model = line_model()
    model.compile(model._optimizer, _nan_on_call(4 + 3))  # epoch 2, step 3 of 4
    kept = []

    class Snapshot(edgefw.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            kept.append(weights(self.model))

    with pytest.raises(TrainingError) as err:
        model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0,
                  callbacks=[Snapshot()])
    message = str(err.value)
    assert message.startswith("loss became nan at epoch 2/3, step 3/4 (batch of 10 samples")
    assert "TerminateOnNaN" in message
    assert len(kept) == 6
    np.testing.assert_array_equal(model.weight.data, kept[-1]["weight"])


def test_terminate_on_nan_stops_without_an_error(capsys):
    x, y = line_problem(40)
    model = line_model()
    model.compile(model._optimizer, _nan_on_call(4 + 3))
    stopper = TerminateOnNaN()
    history = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0,
                        callbacks=[stopper])
    assert history.epoch == [0, 1]
    assert np.isnan(history.history["loss"][1])
    assert stopper.stopped_batch == 2
    assert np.isfinite(model.weight.data).all()
    assert "Epoch 2, batch 3/4: invalid loss nan, terminating training" in capsys.readouterr().out


def test_inf_loss_is_caught_too():
    x, y = line_problem(8)
    model = nn.Linear(1, 1)
    model.compile(edgefw.optim.SGD(model.parameters(), lr=0.1),
                  lambda pred, target: F.mse_loss(pred, target) * float("inf"))
    with pytest.raises(TrainingError, match="loss became inf at epoch 1/1, step 1/1"):
        model.fit(x, y, batch_size=8, verbose=0)

"""The Keras workflow of the brief (section 3.2): compile, fit, evaluate, predict."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models, nn, optim
from edgefw.data import DataLoader, TensorDataset
from tests.training.fixtures import assert_same_weights, brief_mlp, weights


def _subset(mnist, n_train: int, n_test: int):
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:n_train] / 255.0, y_train[:n_train]), (x_test[:n_test] / 255.0,
                                                           y_test[:n_test])


def test_brief_workflow_on_a_subset(mnist, capsys):
    (x_train, y_train), (x_test, y_test) = _subset(mnist, 3000, 1000)
    model = brief_mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=1, batch_size=32,
                        validation_data=(x_test, y_test))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert history.epoch == [0]
    assert model.history is history
    assert history.history["lr"] == [pytest.approx(1e-3)]
    assert history.history["val_accuracy"][0] > 0.7  # chance is 0.1
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n94/94 [==============================] - ")
    assert "val_accuracy: " in out and "\r" not in out  # captured stdout is not a terminal

    # evaluate after the last epoch sees the same weights as that epoch's validation.
    loss, accuracy = model.evaluate(x_test, y_test, verbose=2)
    assert loss == pytest.approx(history.history["val_loss"][0], rel=1e-12)
    assert accuracy == history.history["val_accuracy"][0]
    assert capsys.readouterr().out.startswith("32/32 - ")

    # Against references computed from predict(): -mean(log p[label]) and argmax accuracy.
    probs = model.predict(x_test)
    assert probs.shape == (1000, 10) and probs.dtype == np.float32
    expected_loss = -np.mean(np.log(np.clip(probs[np.arange(1000), y_test], 1e-7, 1)))
    assert loss == pytest.approx(expected_loss, rel=1e-4)
    assert accuracy == pytest.approx(np.mean(probs.argmax(1) == y_test), abs=1e-12)
    assert model.evaluate(x_test, y_test, return_dict=True) == {"loss": loss,
                                                               "accuracy": accuracy}


def test_ci_sized_training_reaches_93_percent(mnist):
    """The issue's CI-sized run: the brief's MLP and settings (Adam 1e-3, batch 32) on the
    first 10k training images, scored on the 10k test images.

    One epoch (313 steps) reaches 90.7-91.7% over seeds 0-3, and a hand-written numpy
    MLP+Adam gives the same (90.5-92.3%): 93% needs more steps, so this runs 3 epochs
    (93.6-94.1% over seeds 0-3)."""
    (x_train, y_train), (x_test, y_test) = mnist
    model = brief_mlp(seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train[:10000] / 255.0, y_train[:10000], epochs=3, verbose=0, seed=0,
                        validation_data=(x_test / 255.0, y_test), validation_batch_size=1000)
    assert history.history["val_accuracy"][0] > 0.89
    assert history.history["val_accuracy"][-1] >= 0.93


def test_unshuffled_fit_equals_a_hand_written_loop(mnist):
    """fit must do exactly the PyTorch-style loop of the brief, nothing more."""
    (x, y), _ = _subset(mnist, 200, 0)
    model = brief_mlp(seed=3)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)

    reference = brief_mlp(seed=3)
    opt = optim.Adam(reference.parameters(), lr=1e-3, eps=1e-7)  # Keras' Adam defaults
    loss_fn = nn.SparseCategoricalCrossentropy()
    for _ in range(2):
        total = 0.0
        for low in range(0, 200, 32):
            out = reference(x[low:low + 32].astype(np.float32))
            loss = loss_fn(out, y[low:low + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.data) * len(out.data)
    assert_same_weights(weights(model), weights(reference))
    assert history.history["loss"][-1] == pytest.approx(total / 200, rel=1e-12)


def test_uint8_and_float64_inputs_are_cast_to_float32(mnist):
    (x, y), _ = mnist
    x, y = x[:256], y[:256]
    results = []
    for images in (x, x.astype(np.float64), x.astype(np.float32)):
        model = brief_mlp(seed=1)
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(images, y, epochs=1, verbose=0, seed=5)
        results.append(weights(model))
    assert_same_weights(results[0], results[2])
    assert_same_weights(results[1], results[2])
    assert all(v.dtype == np.float32 for v in results[0].values())


def test_validation_split_holds_out_the_last_fraction(mnist):
    (x, y), _ = _subset(mnist, 400, 0)
    model = brief_mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc", "lr"}
    val_loss, val_acc = model.evaluate(x[300:], y[300:])
    assert history.history["val_loss"] == [val_loss]
    assert history.history["val_acc"] == [val_acc]


def test_seeded_shuffling_is_reproducible_and_differs_by_seed(mnist):
    (x, y), _ = _subset(mnist, 256, 0)
    runs = []
    for seed in (11, 11, 12):
        model = brief_mlp()
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, verbose=0, seed=seed)
        runs.append(weights(model))
    assert_same_weights(runs[0], runs[1])
    assert not np.array_equal(runs[0]["1.weight"], runs[2]["1.weight"])


def test_pytorch_style_model_with_optimizer_instance_and_dataloader(mnist):
    (x, y), (xt, yt) = _subset(mnist, 1024, 256)
    x, xt = x.astype(np.float32)[:, None], xt.astype(np.float32)[:, None]
    edgefw.manual_seed(0)
    net = models.build("mlp")
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.compile(opt, nn.CrossEntropyLoss(), metrics=["accuracy"])
    assert net._optimizer is opt
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0)
    val_loader = DataLoader(TensorDataset(xt, yt), batch_size=128)
    history = net.fit(loader, epochs=2, validation_data=val_loader, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.75
    # A DataLoader yielding (x, y) is evaluated like the arrays it holds.
    assert net.evaluate(val_loader, return_dict=True) == net.evaluate(xt, yt, batch_size=128,
                                                                      return_dict=True)
    np.testing.assert_array_equal(net.predict(val_loader), net.predict(xt, batch_size=128))


def test_lazily_built_model_gets_its_optimizer_when_fit_builds_it(mnist):
    (x, y), _ = _subset(mnist, 128, 0)
    edgefw.manual_seed(0)
    model = nn.Sequential([nn.Flatten(), nn.Dense(32, activation="relu"), nn.Dense(10)])
    model.compile("rmsprop", nn.SparseCategoricalCrossentropy(from_logits=True))
    assert model._optimizer is None  # no parameters exist before the first call
    model.fit(x, y, epochs=1, verbose=0)
    opt = model._optimizer
    assert isinstance(opt, optim.RMSprop)
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["alpha"] == 0.9
    assert sum(p.data.size for p in opt.param_groups[0]["params"]) == 784 * 32 + 32 + 330


@pytest.mark.parametrize("name, cls, lr", [("adam", optim.Adam, 1e-3), ("sgd", optim.SGD, 0.01),
                                           ("rmsprop", optim.RMSprop, 1e-3),
                                           ("AdamW", optim.AdamW, 1e-3)])
def test_optimizer_names_use_keras_defaults(name, cls, lr):
    model = models.build("mlp")
    model.compile(name, "cross_entropy")
    assert type(model._optimizer) is cls
    assert model._optimizer.param_groups[0]["lr"] == lr


def test_evaluate_and_predict_restore_each_modules_mode(mnist):
    (x, y), _ = _subset(mnist, 64, 0)
    model = nn.Sequential([nn.Flatten(input_shape=(28, 28)), nn.Dense(16), nn.Dropout(0.5),
                           nn.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model[2].eval()  # a frozen sub-module stays as the user left it
    before = [m.training for m in model.modules()]
    first = model.predict(x)
    assert np.array_equal(first, model.predict(x))  # eval mode: dropout off, deterministic
    model.evaluate(x, y)
    assert [m.training for m in model.modules()] == before
    model.fit(x, y, verbose=0)
    assert [m.training for m in model.modules()] == before
    model.eval()
    model.fit(x, y, verbose=0)  # trains in training mode, then gives eval mode back
    assert not any(m.training for m in model.modules())


def test_predict_batches_match_one_big_batch(mnist):
    (x, _), _ = _subset(mnist, 100, 0)
    model = brief_mlp()
    whole = model.predict(x, batch_size=100)
    np.testing.assert_allclose(model.predict(x, batch_size=7), whole, rtol=1e-6, atol=1e-7)
    assert model.predict(x, batch_size=7).shape == (100, 10)


def test_binary_classification_with_sigmoid_output():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    edgefw.manual_seed(0)
    model = nn.Sequential([nn.Dense(1, activation="sigmoid", input_shape=(2,))])
    model.compile(optimizer=optim.Adam(model.parameters(), lr=0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, verbose=0, seed=0)
    probs = model.predict(x)[:, 0]
    assert history.history["accuracy"][-1] > 0.9
    assert model.evaluate(x, y)[1] == pytest.approx(np.mean((probs > 0.5) == (y > 0.5)))


def test_lazy_model_fed_by_a_dataloader_of_uint8_images(mnist):
    (x, y), _ = mnist
    loader = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=32, shuffle=True, seed=0)
    edgefw.manual_seed(0)
    model = nn.Sequential([nn.Flatten(), nn.Dense(16, activation="relu"), nn.Dense(10)])
    model.compile("adam", "cross_entropy", metrics=["accuracy"])
    history = model.fit(loader, epochs=2, verbose=0)
    assert history.epoch == [0, 1] and model._optimizer is not None
    assert model[1].weight.shape == (16, 784)
    # The same batches replayed from a plain iterable (no dataset to peek at, so the model
    # is built by its first training step) give the same training.
    edgefw.manual_seed(0)
    twin = nn.Sequential([nn.Flatten(), nn.Dense(16, activation="relu"), nn.Dense(10)])
    twin.compile("adam", "cross_entropy")
    replay = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=32, shuffle=True, seed=0)
    for _ in range(2):
        twin.fit(_Batches([(xb.numpy(), yb.numpy()) for xb, yb in replay]), verbose=0)
    assert_same_weights(weights(model), weights(twin))


class _Batches:
    """A re-iterable list of (x, y) batches, without a dataset."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def test_a_generator_runs_out_after_one_epoch(mnist):
    (x, y), _ = _subset(mnist, 64, 0)
    model = brief_mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    batches = ((x[i:i + 32], y[i:i + 32]) for i in range(0, 64, 32))
    with pytest.raises(edgefw.errors.DataError, match="yielded no batches in epoch 2"):
        model.fit(batches, epochs=2, verbose=0)

"""The edgefw command line: help, train, demo, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import edgefw
from edgefw.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "train"):
        assert command in out


def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "edgefw.cli", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "--model {mlp,lenet,mobilenet}" in proc.stdout


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "mlp.npz"
    code = main(["train", "--model", "mlp", "--epochs", "1", "--limit", "2000",
                 "--batch-size", "64", "--verbose", "0", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy:" in text
    acc = float(text.split("test accuracy:")[1].split("%")[0])
    assert acc > 70.0
    model = edgefw.load(out)
    assert model(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)


def test_fashion_mnist_without_data_path_is_a_clear_error(capsys):
    code = main(["train", "--dataset", "fashion-mnist", "--epochs", "1"])
    assert code == 2
    assert "needs --data PATH" in capsys.readouterr().err


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epochs", "0"])
    assert exc.value.code == 2
    assert "--epochs must be positive" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_end_to_end(capsys, tmp_path):
    assert main(["demo", "--epochs", "1", "--verbose", "0", "--out", str(tmp_path)]) == 0
    assert "MNIST test accuracy after 1 epochs" in capsys.readouterr().out

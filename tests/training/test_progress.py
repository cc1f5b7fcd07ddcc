"""The Keras-like progress output of fit/evaluate: terminal, log file, verbose levels."""

from __future__ import annotations

import io
import re
import sys

import pytest

from edgefw.training.progress import (
    ProgressBar,
    format_duration,
    format_logs,
    format_step_time,
)
from tests.training.fixtures import line_model, line_problem


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_formats():
    assert [format_duration(s) for s in (0.4, 7, 62, 3723)] == ["0s", "7s", "1:02", "1:02:03"]
    assert [format_step_time(s) for s in (2.0, 0.0013, 0.00048)] == [
        "2s/step", "1ms/step", "480us/step"]
    assert format_logs({"loss": 0.29114, "acc": 0.0001, "x": float("nan")}) == (
        " - loss: 0.2911 - acc: 1.0000e-04 - x: nan")


def test_live_bar_on_a_terminal():
    out = Terminal()
    bar = ProgressBar(1875, verbose=1, stream=out, interval=0.0)
    bar.update(1200, {"loss": 0.2911, "accuracy": 0.9163})
    line = out.getvalue()
    assert re.fullmatch(r"\r1200/1875 \[={18}>\.{11}\] - ETA: \d+s - loss: 0\.2911 - "
                        r"accuracy: 0\.9163", line), line
    bar.update(1875, {"loss": 0.25})
    bar.finish({"loss": 0.25, "val_loss": 0.2})
    last = out.getvalue().split("\r")[-1]
    assert re.fullmatch(r"1875/1875 \[={30}\] - \d+s \d+us/step - loss: 0\.2500 - "
                        r"val_loss: 0\.2000 *\n", last), last


def test_redraws_are_rate_limited():
    out = Terminal()
    bar = ProgressBar(10, verbose=1, stream=out, interval=3600.0)
    assert bar.next_update > bar.start + 3000  # the caller skips update() until then
    assert ProgressBar(10, verbose=1, stream=io.StringIO()).next_update == float("inf")


def _fit_output(monkeypatch, stream, verbose):
    monkeypatch.setattr(sys, "stdout", stream)
    x, y = line_problem(64)
    line_model().fit(x, y, epochs=2, batch_size=16, validation_data=(x, -y), verbose=verbose)
    return stream.getvalue()


def test_log_file_gets_the_final_line_of_each_epoch_only(monkeypatch):
    text = _fit_output(monkeypatch, io.StringIO(), 1)
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(r"4/4 \[={30}\] - \d+s \d+(us|ms)/step - loss: \d\.\d{4} - "
                        r"val_loss: \d\.\d{4}", lines[1]), lines[1]


def test_verbose_2_writes_one_line_per_epoch(monkeypatch):
    lines = _fit_output(monkeypatch, io.StringIO(), 2).splitlines()
    assert len(lines) == 4 and "[" not in lines[1]
    assert re.fullmatch(r"4/4 - \d+s \d+(us|ms)/step - loss: \d\.\d{4} - val_loss: \d\.\d{4}",
                        lines[3]), lines[3]


def test_verbose_0_is_silent(monkeypatch):
    assert _fit_output(monkeypatch, io.StringIO(), 0) == ""


def test_terminal_output_ends_each_epoch_with_a_newline(monkeypatch):
    text = _fit_output(monkeypatch, Terminal(), 1)
    assert text.startswith("Epoch 1/2\n")
    assert text.count("\n") == 4 and text.endswith("\n")


@pytest.mark.parametrize("verbose", [1, 2])
def test_evaluate_verbose(monkeypatch, verbose):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    x, y = line_problem(64)
    loss = line_model().evaluate(x, y, batch_size=16, verbose=verbose)
    assert stream.getvalue().rstrip().endswith(f"loss: {loss:.4f}")
    assert stream.getvalue().startswith("4/4 ")

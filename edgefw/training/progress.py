"""Keras' progress bar: ``1200/1875 [=================>....] - ETA: 3s - loss: 0.2911``.

On a terminal (or in Jupyter) the line is redrawn in place with a carriage return, at most
every ``interval`` seconds so that drawing costs nothing next to training. When the stream is
not a terminal (a log file, CI), only the final line of each epoch is written, so logs get no
carriage-return spam. ``verbose=2`` writes one line per epoch, ``verbose=0`` nothing.

>>> import io
>>> out = io.StringIO()
>>> bar = ProgressBar(4, verbose=1, stream=out)
>>> bar.finish({"loss": 0.25})
>>> out.getvalue().startswith("4/4 [==============================] - ")
True
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    """Keras' ETA format: ``7s``, ``1:02`` (minutes), ``1:02:03`` (hours)."""
    seconds = int(max(seconds, 0.0))
    if seconds >= 3600:
        return f"{seconds // 3600}:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def format_step_time(seconds: float) -> str:
    """Time per step with a readable unit: ``2s/step``, ``1ms/step``, ``480us/step``."""
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def format_logs(values: dict[str, Any]) -> str:
    """`` - loss: 0.2911 - accuracy: 0.9163`` (tiny values in scientific notation)."""
    parts = []
    for key, value in values.items():
        value = float(value)
        text = f"{value:.4f}" if abs(value) > 1e-3 or not math.isfinite(value) else f"{value:.4e}"
        parts.append(f" - {key}: {text}")
    return "".join(parts)


def stream_is_interactive(stream: Any) -> bool:
    """True when ``\\r`` redraws a line: a terminal, or a Jupyter/IPython kernel."""
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except (ValueError, OSError):  # a closed or detached stream
        return False
    return "ipykernel" in sys.modules


class ProgressBar:
    """The progress line of one epoch (or one ``evaluate``/``predict`` pass).

    ``target`` is the number of steps (``None`` if unknown). The caller checks
    ``time.perf_counter() >= bar.next_update`` before building the values to show, so a
    training step that does not redraw pays one clock read.
    """

    def __init__(self, target: int | None, verbose: int = 1, stream: TextIO | None = None,
                 width: int = 30, interval: float = 0.1) -> None:
        self.target = target
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.width = width
        self.interval = interval
        self.dynamic = verbose == 1 and stream_is_interactive(self.stream)
        self.start = time.perf_counter()
        # Never redraw when nothing would show; otherwise the first draw waits one interval.
        self.next_update = self.start + interval if self.dynamic else math.inf
        self._drawn_width = 0

    def _bar(self, current: int) -> str:
        if self.target is None:
            return f"{current}/Unknown"
        digits = len(str(self.target))
        done = min(int(self.width * current / self.target), self.width) if self.target else 0
        arrow = "=" * max(done - 1, 0) + (">" if current < self.target else "=") if done else ""
        return f"{current:{digits}d}/{self.target} [{arrow}{'.' * (self.width - len(arrow))}]"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def update(self, current: int, values: dict[str, Any]) -> None:
        """Redraw the live line at step ``current`` (steps done) with running ``values``."""
        now = time.perf_counter()
        self.next_update = now + self.interval
        if not self.dynamic:
            return
        elapsed = now - self.start
        line = self._bar(current)
        if self.target is not None and current:
            line += f" - ETA: {format_duration(elapsed / current * (self.target - current))}"
        else:
            line += f" - {format_duration(elapsed)}"
        line += format_logs(values)
        padding = " " * max(self._drawn_width - len(line), 0)
        self._drawn_width = len(line)
        self._write("\r" + line + padding)

    def close(self) -> None:
        """End a live line that will get no final line (training stopped by an error)."""
        if self._drawn_width:
            self._write("\n")
            self._drawn_width = 0

    def finish(self, values: dict[str, Any], current: int | None = None) -> None:
        """Write the epoch's final line: steps, total time, time per step and ``values``."""
        if self.verbose not in (1, 2):
            return
        current = self.target if current is None else current
        current = current if current is not None else 0
        elapsed = time.perf_counter() - self.start
        per_step = f" {format_step_time(elapsed / current)}" if current else ""
        head = self._bar(current) if self.verbose == 1 else f"{current}/{self.target or current}"
        line = f"{head} - {format_duration(round(elapsed))}{per_step}{format_logs(values)}"
        if self.dynamic:
            line = "\r" + line + " " * max(self._drawn_width - len(line), 0)
        self._write(line + "\n")

"""The shared harness of the model-file fuzz tests (ONNX and TFLite loaders): byte-level
mutations, a random feed for whatever inputs a mutated model declares, and the loop that
loads and runs each case under a time limit and collects everything that escapes edgefw's
error hierarchy."""

from __future__ import annotations

import random
import signal
import time
import warnings
from collections.abc import Callable

import numpy as np

from edgefw.errors import EdgeFWError
from runtime import InferenceSession

CASE_SECONDS = 10.0  # a case past this is a hang
MAX_FEED_ELEMENTS = 1 << 20  # declared inputs bigger than this are not fed (not a crash)


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so no ``except Exception`` swallows it."""


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf), "flip bytes"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.randrange(len(data))
    return data[:cut], f"truncate at {cut}"


def random_feed(session: InferenceSession, rng: np.random.Generator,
                int_range: tuple[int, int]) -> dict[str, np.ndarray] | None:
    """Random inputs of the declared shapes (symbolic dims -> 2); None when too large."""
    feed = {}
    for arg in session.get_inputs():
        shape = [2 if not isinstance(d, int) else d for d in (arg.shape or [2])]
        if int(np.prod(shape, dtype=np.float64)) > MAX_FEED_ELEMENTS:
            return None
        dtype = np.dtype(arg.dtype)
        if dtype.kind == "f":
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feed[arg.name] = rng.random(shape) < 0.5
        else:
            feed[arg.name] = rng.integers(*int_range, shape).astype(dtype)
    return feed


def run_case(data: bytes, rng: np.random.Generator, int_range: tuple[int, int]) -> str:
    """Load and run one case; the outcome's name. Non-edgefw exceptions propagate."""
    try:
        session = InferenceSession(data)
    except EdgeFWError:
        return "refused at load"
    feed = random_feed(session, rng, int_range)
    if feed is None:
        return "loaded (input too large to feed)"
    try:
        session.run(None, feed)
    except EdgeFWError:
        return "refused at run"
    return "ran"


def _on_alarm(signum, frame):
    raise _Timeout()


def fuzz_model_files(bases: dict[str, bytes],
                     make_case: Callable[[dict[str, bytes], random.Random], tuple[bytes, str]],
                     iterations: int, seed: int, int_range: tuple[int, int]
                     ) -> dict[str, int]:
    """Run ``iterations`` mutated cases; assert none escaped edgefw's errors or hung.
    Returns how many cases ended in each outcome."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    outcomes: dict[str, int] = {}
    failures: list[str] = []
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for i in range(iterations):
            data, what = make_case(bases, rng)
            start = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    outcome = run_case(data, np_rng, int_range)
            except _Timeout:
                failures.append(f"case {i} ({what}): no result after {CASE_SECONDS} s (hang)")
                continue
            except Exception as exc:  # noqa: BLE001 - collecting what escapes is the point
                failures.append(f"case {i} ({what}): {type(exc).__name__}: {str(exc)[:300]}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert time.perf_counter() - start < CASE_SECONDS
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not failures, f"{len(failures)} of {iterations} cases escaped edgefw's errors:\n" \
        + "\n".join(failures[:30])
    return outcomes

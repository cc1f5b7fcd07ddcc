"""Calibration: run the float graph on representative data in the runtime and feed every
activation to be quantized to a streaming observer.

Calibration data may be given as

- one array (a single-input graph) or a dict ``{input name: array}``: split into batches
  of ``batch_size`` samples along the first axis;
- a list (or tuple) of batches, a :class:`edgefw.data.DataLoader`, or any iterable of
  batches. A batch is an array or edgefw Tensor (single input), a dict by input name, or a
  tuple/list whose first items are the inputs in order (so ``(images, labels)`` batches
  from a DataLoader work; the labels are ignored).

Every batch is checked against the graph's inputs (names, rank, static dims) before it
runs; problems raise :class:`~edgefw.errors.QuantizationError` naming the batch and input.
Memory stays flat in the number of batches: each batch's activations are reduced into
the observers and dropped (onnxruntime's calibrator keeps them all).

    >>> import numpy as np, edgefw
    >>> from edgefw import models
    >>> graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    >>> result = calibrate(graph, np.random.rand(100, 1, 28, 28).astype(np.float32),
    ...                    ["input", "2"], batch_size=50)
    >>> result.num_batches, result.num_samples, result.range("input", "int8")[1] <= 1.0
    (2, 100, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefw.errors import InvalidInputError, QuantizationError
from edgefw.ir import Graph
from edgefw.ir.graph import Value
from quantize.observers import DEFAULT_BINS, Observer, make_observer

DEFAULT_BATCH_SIZE = 64


# ------------------------------------------------------------------------- batches
def _as_array(x: Any) -> np.ndarray | None:
    """The numpy array behind ``x`` (an ndarray or an edgefw Tensor), else None."""
    if isinstance(x, np.ndarray):
        return x
    data = getattr(x, "data", None)
    if isinstance(data, np.ndarray) and hasattr(x, "requires_grad"):
        return data
    return None


def _is_whole_dataset(data: Any) -> bool:
    return _as_array(data) is not None or isinstance(data, Mapping)


def is_one_shot(data: Any) -> bool:
    """True for iterators that a second ``iter()`` would find exhausted (generators)."""
    try:
        return iter(data) is data
    except TypeError:
        return False


class BatchReader:
    """Turns calibration data into feed dicts ``{input name: array}`` matching ``inputs``.

    ``batch_size`` splits whole arrays; ``max_batches`` stops early; ``what`` names the
    argument in error messages.
    """

    def __init__(self, inputs: Sequence[Value], data: Any, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, max_batches: int | None = None,
                 what: str = "calibration_data") -> None:
        from runtime.input_check import InputChecker

        if data is None:
            raise QuantizationError(f"{what} is None; give an array, a list of batches, a dict "
                                    "{input name: array} or a DataLoader")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise QuantizationError(f"batch_size must be a positive int, got {batch_size!r}")
        if max_batches is not None and (isinstance(max_batches, bool)
                                        or not isinstance(max_batches, int) or max_batches < 1):
            raise QuantizationError(f"num_calibration_batches must be a positive int or None, "
                                    f"got {max_batches!r}")
        if isinstance(data, str | bytes) or not (_is_whole_dataset(data)
                                                 or isinstance(data, Iterable)):
            raise QuantizationError(f"{what} must be an array, a list of batches, a dict "
                                    f"{{input name: array}} or a DataLoader; got "
                                    f"{type(data).__name__}")
        self.inputs = list(inputs)
        self.data = data
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.what = what
        self._checker = InputChecker(self.inputs)

    @property
    def one_shot(self) -> bool:
        return is_one_shot(self.data)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for feed, _ in self.with_targets():
            yield feed

    def with_targets(self) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray | None]]:
        """``(feed, targets)`` per batch; targets are the item after the inputs in tuple
        batches (``(images, labels)``), else None."""
        count = 0
        for index, batch in enumerate(self._raw_batches()):
            if self.max_batches is not None and count >= self.max_batches:
                return
            feed = self._feed(batch, index)
            if self._batch_len(feed) == 0:
                continue
            targets = None
            if isinstance(batch, tuple | list) and len(batch) > len(self.inputs):
                targets = _as_array(batch[len(self.inputs)])
                if targets is None:
                    targets = np.asarray(batch[len(self.inputs)])
            yield feed, targets
            count += 1
        if count == 0:
            raise QuantizationError(f"{self.what} is empty: it gave no batch with samples")

    def _raw_batches(self) -> Iterator[Any]:
        data = self.data
        if isinstance(data, Mapping):
            arrays = {k: self._array(v, k, "the dict") for k, v in data.items()}
            n = {len(a) if a.ndim else 1 for a in arrays.values()}
            if len(n) > 1:
                sizes = {k: a.shape for k, a in arrays.items()}
                raise QuantizationError(f"{self.what}: the arrays have different numbers of "
                                        f"samples (first axis): {sizes}")
            total = n.pop() if n else 0
            for start in range(0, total, self.batch_size):
                yield {k: a[start:start + self.batch_size] for k, a in arrays.items()}
            return
        array = _as_array(data)
        if array is not None:
            if array.ndim == 0:
                raise QuantizationError(f"{self.what} is a scalar; give an array whose first "
                                        "axis is the samples")
            for start in range(0, len(array), self.batch_size):
                yield array[start:start + self.batch_size]
            return
        yield from data

    def _array(self, x: Any, name: str, where: str) -> np.ndarray:
        array = _as_array(x)
        if array is None:
            try:
                array = np.asarray(x)
            except Exception as exc:  # noqa: BLE001 - whatever the object raised
                raise QuantizationError(f"{self.what}: {where} holds {type(x).__name__} for "
                                        f"input {name!r}, which is not an array: {exc}") from None
        if array.dtype.kind not in "biuf":
            raise QuantizationError(f"{self.what}: {where} holds a {array.dtype} array for "
                                    f"input {name!r}; expected numbers")
        return array

    def _feed(self, batch: Any, index: int) -> dict[str, np.ndarray]:
        where = f"batch {index}"
        names = [v.name for v in self.inputs]
        if isinstance(batch, Mapping):
            unknown = [k for k in batch if k not in names]
            missing = [n for n in names if n not in batch]
            if unknown or missing:
                raise QuantizationError(
                    f"{self.what} {where}: input names {sorted(map(str, batch))} do not match "
                    f"the graph's inputs {names}"
                    + (f" (unknown: {unknown})" if unknown else "")
                    + (f" (missing: {missing})" if missing else ""))
            raw = [batch[n] for n in names]
        elif _as_array(batch) is not None:
            if len(names) != 1:
                raise QuantizationError(f"{self.what} {where}: the graph has {len(names)} inputs "
                                        f"{names}; give each batch as a dict or a tuple")
            raw = [batch]
        elif isinstance(batch, tuple | list):
            if len(batch) < len(names):
                raise QuantizationError(f"{self.what} {where}: a tuple of {len(batch)} items for "
                                        f"a graph with {len(names)} inputs {names}")
            raw = list(batch[:len(names)])
        else:
            raise QuantizationError(f"{self.what} {where} is a {type(batch).__name__}; a batch "
                                    "is an array, a dict {input name: array} or a tuple whose "
                                    "first items are the inputs")
        feed = {}
        for value, x in zip(self.inputs, raw, strict=True):
            array = self._array(x, value.name, where)
            dtype = np.dtype(value.dtype or "float32")
            if array.dtype != dtype:
                array = array.astype(dtype)
            feed[value.name] = array
        try:
            self._checker.check_slowly(feed)
        except InvalidInputError as exc:
            hint = ("" if not isinstance(self.data, list | tuple)
                    else " (a list or tuple is read as a list of batches)")
            raise QuantizationError(f"{self.what} {where}: {exc}{hint}") from None
        return feed

    @staticmethod
    def _batch_len(feed: Mapping[str, np.ndarray]) -> int:
        first = next(iter(feed.values()), None)
        return 1 if first is None or first.ndim == 0 else len(first)


# --------------------------------------------------------------------- calibration
@dataclass
class CalibrationResult:
    """The observers of every calibrated tensor (by value name), and how much data they saw."""

    observers: dict[str, Observer]
    method: str
    num_batches: int = 0
    num_samples: int = 0
    _ranges: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict,
                                                                 repr=False)

    def range(self, name: str, dtype: str) -> tuple[float, float]:
        """The real range of tensor ``name`` for quantization to ``dtype`` (cached: the
        entropy search is not free)."""
        key = (name, dtype)
        if key not in self._ranges:
            observer = self.observers.get(name)
            if observer is None:
                raise QuantizationError(f"tensor {name!r} was not calibrated")
            self._ranges[key] = tuple(float(v) for v in observer.range(dtype))
        return self._ranges[key]


def observation_graph(graph: Graph, names: Sequence[str]) -> Graph:
    """A copy of ``graph`` whose outputs are the non-input values ``names``, so one run
    exposes every activation to observe."""
    copy = graph.copy()
    inputs = {v.name for v in copy.inputs}
    copy.set_outputs([copy.value(n) for n in names if n not in inputs])
    return copy


def calibrate(graph: Graph, data: Any, tensor_names: Sequence[str], *, method: str = "minmax",
              percentile: float = 99.99, num_bins: int = DEFAULT_BINS,
              batch_size: int = DEFAULT_BATCH_SIZE, num_batches: int | None = None,
              providers: Sequence[str] | None = None) -> CalibrationResult:
    """Run the float ``graph`` on ``data`` (see the module docstring) and observe the tensors
    ``tensor_names`` (graph inputs or node outputs) with ``method``'s observer."""
    from runtime import InferenceSession

    names = list(dict.fromkeys(tensor_names))
    for n in names:
        if not graph.has_value(n):
            raise QuantizationError(f"cannot calibrate tensor {n!r}: graph '{graph.name}' has "
                                    "no such value")
    observers = {n: make_observer(method, percentile=percentile, num_bins=num_bins)
                 for n in names}
    input_names = {v.name for v in graph.inputs}
    reader = BatchReader(graph.inputs, data, batch_size=batch_size, max_batches=num_batches)
    observed = observation_graph(graph, names)
    output_names = [v.name for v in observed.outputs]
    session = InferenceSession(observed, providers=providers, optimization="none") \
        if output_names else None
    result = CalibrationResult(observers, method)
    for feed in reader:
        for n in names:
            if n in input_names:
                observers[n].update(feed[n])
        if session is not None:
            for n, array in zip(output_names, session.run(None, feed), strict=True):
                try:
                    observers[n].update(array)
                except QuantizationError as exc:
                    raise QuantizationError(f"tensor {n!r}: {exc}") from None
        result.num_batches += 1
        result.num_samples += BatchReader._batch_len(feed)
    return result


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "BatchReader",
    "CalibrationResult",
    "calibrate",
    "is_one_shot",
    "observation_graph",
]

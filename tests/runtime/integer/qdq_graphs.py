"""Hand-built QDQ graphs for the integer-execution tests (the quantizer's contract, written
out with the IR builder so the tests do not depend on ``quantize/``).

``QDQBuilder`` wraps a Graph: ``quantized_input`` adds a float input with Q -> DQ,
``weight``/``bias`` add int8/int32 constants behind DequantizeLinear, ``requantize`` puts
Q -> DQ after an activation. ``sessions(graph)`` runs the graph at "basic" (simulated
QDQ in float) and "all" (fused integer kernels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefw.ir import Graph, Value
from runtime import InferenceSession
from tests.runtime.integer import tflite_reference as ref


@dataclass
class Q:
    """Per-tensor parameters of one activation."""

    scale: float
    zero_point: int
    dtype: str = "int8"

    def quantize(self, x: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.dtype)
        q = np.rint(np.asarray(x, np.float32) / np.float32(self.scale)) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return ((q.astype(np.int64) - self.zero_point) * np.float32(self.scale)).astype(
            np.float32)


def params_for(lo: float, hi: float, dtype: str = "int8") -> Q:
    """Asymmetric parameters covering [lo, hi] (symmetric, zero point 0, for int16)."""
    info = np.iinfo(dtype)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if dtype == "int16":
        return Q(float(np.float32(max(abs(lo), abs(hi)) / info.max)), 0, dtype)
    scale = float(np.float32((hi - lo) / (int(info.max) - int(info.min))))
    zero_point = int(np.clip(round(info.min - lo / scale), info.min, info.max))
    return Q(scale, zero_point, dtype)


class QDQBuilder:
    """Builds a QDQ graph step by step (see the module docstring)."""

    def __init__(self, name: str = "qdq") -> None:
        self.g = Graph(name)
        self._n = 0

    def _name(self, base: str) -> str:
        self._n += 1
        return f"{base}{self._n}"

    def qdq(self, value: Value, q: Q) -> Value:
        """``value -> QuantizeLinear -> DequantizeLinear`` with parameters ``q``."""
        scale = self.g.add_constant(self._name("s"), np.float32(q.scale))
        zp = self.g.add_constant(self._name("z"), np.array(q.zero_point, q.dtype))
        quantized = self.g.add_node("QuantizeLinear", [value, scale, zp],
                                    name=self._name("q")).output
        return self.g.add_node("DequantizeLinear", [quantized, scale, zp],
                               name=self._name("dq")).output

    def quantized_input(self, name: str, shape: tuple, q: Q) -> Value:
        return self.qdq(self.g.add_input(name, "float32", shape), q)

    def weight(self, w: np.ndarray, axis: int | None, zero_point: int = 0
               ) -> tuple[Value, np.ndarray, np.ndarray]:
        """int8 weight, symmetric per ``axis`` (None: per tensor): (DQ output, w_q, scale)."""
        w = np.asarray(w, np.float32)
        if axis is None:
            scale = np.float32(np.abs(w).max() / 127.0)
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            scale_value, zp_value = np.float32(scale), np.int8(zero_point)
        else:
            reduce = tuple(a for a in range(w.ndim) if a != axis)
            scale = (np.abs(w).max(axis=reduce) / 127.0).astype(np.float32)
            shape = [1] * w.ndim
            shape[axis] = -1
            q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
            scale_value = scale
            zp_value = np.full(scale.shape, zero_point, np.int8)
        attrs = {"axis": axis} if axis is not None else None
        out = self.g.add_node("DequantizeLinear", [q, scale_value, zp_value], attrs,
                              name=self._name("wdq")).output
        return out, q, np.asarray(scale_value, np.float32)

    def bias(self, b: np.ndarray, scale: np.ndarray) -> tuple[Value, np.ndarray]:
        """int32 bias at ``scale`` (per channel) behind DequantizeLinear."""
        b = np.asarray(b, np.float64)
        scale = np.ascontiguousarray(np.broadcast_to(np.asarray(scale, np.float32), b.shape))
        q = np.rint(b / scale).astype(np.int32)
        zp = np.zeros(q.shape, np.int32)
        out = self.g.add_node("DequantizeLinear", [q, scale, zp], {"axis": 0},
                              name=self._name("bdq")).output
        return out, q

    def output(self, value: Value, q: Q) -> Value:
        """``value -> Q -> DQ`` as the graph output."""
        out = self.qdq(value, q)
        self.g.set_outputs([out])
        return out


    def quantized_output(self, value: Value, q: Q) -> Value:
        """``value -> QuantizeLinear`` as the graph output: the session returns integers."""
        scale = self.g.add_constant(self._name("s"), np.float32(q.scale))
        zp = self.g.add_constant(self._name("z"), np.array(q.zero_point, q.dtype))
        out = self.g.add_node("QuantizeLinear", [value, scale, zp], name=self._name("q")).output
        self.g.set_outputs([out])
        return out


def multipliers(x_scale: float, w_scale: np.ndarray, y_scale: float) -> tuple[list, list]:
    """TFLite's per-channel (multiplier, shift) lists, from the test's own reference."""
    pairs = [ref.quantize_multiplier(float(np.float32(x_scale)) * float(s)
                                     / float(np.float32(y_scale)))
             for s in np.asarray(w_scale, np.float32).reshape(-1)]
    return [m for m, _ in pairs], [s for _, s in pairs]


def sessions(graph: Graph) -> tuple[InferenceSession, InferenceSession]:
    """(simulated QDQ float session, fused integer session) of ``graph``."""
    return InferenceSession(graph, optimization="basic"), InferenceSession(graph,
                                                                           optimization="all")


def op_types(session: InferenceSession) -> list[str]:
    return [n.op_type for n in session.graph.nodes]


def lsb_difference(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    """Largest difference of two dequantized outputs, in units of the output scale."""
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) / scale) \
        if a.size else 0.0

"""Compute pipelines, cached per device by (kernel, dtype, shape class), and the pieces of
WGSL every kernel shares: the parameter struct, the dispatch grid, fused activations.

Shapes are not baked into shaders: they travel in a small uniform buffer described by a
:class:`ParamLayout`, so one pipeline serves batch 1 and batch 4096. The *shape class* in
the key names the few shape facts a kernel does specialize on (e.g. a GEMM whose B is
packed int8, a reduction long enough to use a whole workgroup per output).

    >>> layout = ParamLayout([("n", "u32"), ("alpha", "f32"), ("dims", "u32[8]")])
    >>> print(layout.wgsl())
    struct Params {
      dims: array<vec4<u32>, 2>,
      n: u32,
      alpha: f32,
    }
    >>> len(layout.pack(n=3, alpha=0.5, dims=[2, 3]))
    48
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from edgefw.errors import DeviceError, UnsupportedOpError

#: Threads per workgroup of the one-thread-per-element kernels.
WORKGROUP = 256

GRID_WGSL = """
// Linear workgroup index of a dispatch spread over x and y (at most 65535 groups each).
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}
"""


class ParamLayout:
    """A WGSL uniform struct of scalars (``u32``, ``i32``, ``f32``) and tables
    (``u32[8]``/``i32[8]``: ``array<vec4<...>, 2>``, read as ``p.t[i >> 2u][i & 3u]``)."""

    def __init__(self, fields: Sequence[tuple[str, str]]) -> None:
        tables = [f for f in fields if "[" in f[1]]
        scalars = [f for f in fields if "[" not in f[1]]
        #: (name, element kind, byte offset, table length or 0 for a scalar)
        self.fields: list[tuple[str, str, int, int]] = []
        offset = 0
        for name, kind in tables + scalars:  # tables first: they need 16-byte alignment
            if "[" in kind:
                base, count = kind[:-1].split("[")
                length = -(-int(count) // 4) * 4
                self.fields.append((name, base, offset, length))
                offset += 4 * length
            else:
                self.fields.append((name, kind, offset, 0))
                offset += 4
        self.nbytes = max(16, -(-offset // 16) * 16)

    def wgsl(self) -> str:
        lines = ["struct Params {"]
        for name, kind, _, length in self.fields:
            wgsl_type = f"array<vec4<{kind}>, {length // 4}>" if length else kind
            lines.append(f"  {name}: {wgsl_type},")
        lines.append("}")
        return "\n".join(lines)

    def pack(self, **values: Any) -> bytes:
        out = bytearray(self.nbytes)
        for name, kind, offset, length in self.fields:
            value = values.get(name, () if length else 0)
            items = list(value) if length else [value]
            if len(items) > max(length, 1):
                raise DeviceError(f"kernel parameter {name!r} has {len(items)} entries; the "
                                  f"table holds {length}")
            code = {"u32": "<I", "i32": "<i", "f32": "<f"}[kind]
            for j, item in enumerate(items):
                struct.pack_into(code, out, offset + 4 * j,
                                 float(item) if kind == "f32" else int(item))
        return bytes(out)


def grid(groups: int, max_groups: int) -> tuple[int, int, int]:
    """Workgroup counts (x, y, 1) covering ``groups`` (``group_index`` recovers the index)."""
    groups = max(1, int(groups))
    x = min(groups, max_groups)
    y = -(-groups // x)
    if y > max_groups:
        raise DeviceError(f"a dispatch of {groups} workgroups exceeds the adapter's grid "
                          f"({max_groups} x {max_groups})")
    return (x, y, 1)


def f32_literal(value: float) -> str:
    """An exact WGSL literal for a float32 value (hex float)."""
    import numpy as np

    v = float(np.float32(value))
    if v != v or v in (float("inf"), float("-inf")):
        raise UnsupportedOpError(f"the GPU provider cannot bake {value} into a shader")
    return f"{v.hex()}f"


def activation_key(spec: Any) -> tuple:
    """A fused-activation mark (``node.meta["fused_activation"]``) as a cache-key part."""
    if spec is None:
        return ()
    from runtime.providers.cpu.kernels.fused_activation import parse_activation

    name, args = parse_activation(spec)
    return (name, *[None if a is None else float(a) for a in args])


def activation_wgsl(key: tuple) -> str:
    """``fn act(v: f32) -> f32`` for an :func:`activation_key` (identity when empty)."""
    if not key:
        body = "return v;"
    elif key[0] == "Relu":
        body = "return max(v, 0.0);"
    elif key[0] == "Clip":
        lo, hi = (list(key[1:]) + [None, None])[:2]
        body = "var r = v;"
        if lo is not None:
            body += f" r = max(r, {f32_literal(lo)});"
        if hi is not None:
            body += f" r = min(r, {f32_literal(hi)});"
        body += " return r;"
    elif key[0] == "LeakyRelu":
        alpha = key[1] if len(key) > 1 else 0.01
        body = f"return select(v, v * {f32_literal(alpha)}, v < 0.0);"
    elif key[0] == "Sigmoid":
        body = "return sigmoid(v);"
    elif key[0] == "Tanh":
        body = "return tanh_safe(v);"
    else:
        raise UnsupportedOpError(f"fused activation {key[0]!r} has no GPU form")
    return MATH_WGSL + f"\nfn act(v: f32) -> f32 {{ {body} }}\n"


MATH_WGSL = """
fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }
// tanh saturates to +-1 in float32 past |v| = 9; clamping keeps exp() finite on every driver.
fn tanh_safe(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }
// erfc with fractional error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit).
fn erfc_nr(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(2.0 - r, r, x >= 0.0);
}
fn erf_nr(x: f32) -> f32 {
  // erf(x) = 1 - erfc(x) loses digits near 0, where a short series is exact enough.
  if (abs(x) < 0.5) {
    let x2 = x * x;
    return x * (1.1283791671 + x2 * (-0.3761263890 + x2 * (0.1128379167
           + x2 * (-0.0268661706 + x2 * 0.0052239776))));
  }
  return 1.0 - erfc_nr(x);
}
"""


class PipelineCache:
    """Compiled compute pipelines of one device, keyed by ``(kernel, dtype, shape class,
    ...)``; the WGSL is generated only on a miss."""

    def __init__(self, device: Any) -> None:
        self._device = device
        self._pipelines: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self.compiled = 0
        self.hits = 0

    def get(self, key: Hashable, make_wgsl: Callable[[], str]) -> Any:
        with self._lock:
            pipeline = self._pipelines.get(key)
            if pipeline is not None:
                self.hits += 1
                return pipeline
            source = make_wgsl()
            try:
                module = self._device.create_shader_module(code=source)
                pipeline = self._device.create_compute_pipeline(
                    layout="auto", compute={"module": module, "entry_point": "main"})
            except Exception as exc:
                raise DeviceError(f"the GPU driver rejected the shader for {key}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            self._pipelines[key] = pipeline
            self.compiled += 1
            return pipeline

    def __len__(self) -> int:
        return len(self._pipelines)


__all__ = ["GRID_WGSL", "MATH_WGSL", "WORKGROUP", "ParamLayout", "PipelineCache",
           "activation_key", "activation_wgsl", "f32_literal", "grid"]

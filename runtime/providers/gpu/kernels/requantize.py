"""TFLite's fixed-point requantization, bit-exact, on the GPU (WGSL has no 64-bit integers).

``MultiplyByQuantizedMultiplier(x, M, shift)`` (gemmlowp's doubling high multiply, then a
rounding right shift) equals one rounding of the 64-bit product (see
``runtime/providers/cpu/requantize.py``, ``closed_form``):

- ``shift <= 0``: ``floor((x * M + D) / 2**(31 - shift))`` with ``D = D_neg`` when the
  high multiply is negative (``x < negative_below``), else ``D_pos``;
- ``shift > 0``: ``x`` is first shifted left (wrapping in int32, like the C++), then
  ``floor((x * M + 2**30) / 2**31)``;
- single rounding (FULLY_CONNECTED, ruy's): ``floor((x * M + 2**(S-1)) / 2**S)``,
  ``S = 31 - shift``, any shift.

The host computes per channel (``requantize_table``) eight words — M, the total shift,
the left shift, ``negative_below``, and ``D_pos``/``D_neg`` as (low, high) word pairs — and
the shader does the 32 x 32 -> 64-bit multiply in 16-bit limbs.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError

INT32_MIN = -(1 << 31)
WORDS_PER_CHANNEL = 8

REQUANTIZE_WGSL = """
// (low, high) words of the 64-bit product a * b.
fn mul_wide(a: i32, b: i32) -> vec2<u32> {
  let ua = select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
  let ub = select(bitcast<u32>(b), 0u - bitcast<u32>(b), b < 0);
  let a0 = ua & 0xffffu;
  let a1 = ua >> 16u;
  let b0 = ub & 0xffffu;
  let b1 = ub >> 16u;
  let ll = a0 * b0;
  let lh = a0 * b1;
  let hl = a1 * b0;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  var lo = (ll & 0xffffu) | (mid << 16u);
  var hi = a1 * b1 + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  if ((a < 0) != (b < 0)) {
    lo = ~lo + 1u;
    hi = ~hi + select(0u, 1u, lo == 0u);
  }
  return vec2<u32>(lo, hi);
}

// TFLite's MultiplyByQuantizedMultiplier with channel c's parameters (table `requant`).
fn requantize(c: u32, value: i32) -> i32 {
  let at = c * 8u;
  let x = bitcast<i32>(bitcast<u32>(value) << requant[at + 2u]);
  var d = vec2<u32>(requant[at + 4u], requant[at + 5u]);
  if (x < bitcast<i32>(requant[at + 3u])) { d = vec2<u32>(requant[at + 6u], requant[at + 7u]); }
  let prod = mul_wide(x, bitcast<i32>(requant[at]));
  let lo = prod.x + d.x;
  let hi = prod.y + d.y + select(0u, 1u, lo < prod.x);
  let total = requant[at + 1u];
  if (total >= 32u) { return bitcast<i32>(hi) >> (total - 32u); }
  return bitcast<i32>((hi << (32u - total)) | (lo >> total));
}
"""


def requantize_table(multiplier, shift, single_rounding: bool = False) -> np.ndarray:
    """The per-channel words ``REQUANTIZE_WGSL`` reads (uint32, 8 per channel);
    ``single_rounding``: ``runtime.providers.cpu.requantize.
    multiply_by_quantized_multiplier_single`` (FULLY_CONNECTED) instead of gemmlowp's."""
    m = np.asarray(multiplier, np.int64).reshape(-1)
    s = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), m.shape)
    table = np.zeros((m.size, WORDS_PER_CHANNEL), np.int64)
    for c, (mc, sc) in enumerate(zip(m.tolist(), s.tolist(), strict=True)):
        if single_rounding:
            left, total, below = 0, 31 - sc, INT32_MIN
            d_pos = d_neg = 1 << (total - 1)
        elif sc > 0:
            left, total, d_pos, d_neg, below = sc, 31, 1 << 30, 1 << 30, INT32_MIN
        else:
            right = -sc
            if right > 31:
                raise UnsupportedOpError(f"requantization right shift {right} (at most 31)")
            half = (1 << (right - 1)) if right else 0
            left, total = 0, 31 + right
            d_pos = (1 << 30) + half * (1 << 31)
            d_neg = d_pos - ((1 << 31) if right else 0)
            below = -((1 << 30) // mc) if mc > 0 else INT32_MIN
        table[c] = [mc, total, left, below, d_pos & 0xFFFFFFFF, d_pos >> 32,
                    d_neg & 0xFFFFFFFF, d_neg >> 32]
    return (table & 0xFFFFFFFF).astype(np.uint32).reshape(-1)


def requantize_reference(x, multiplier: int, shift: int, single_rounding: bool = False
                         ) -> np.ndarray:
    """What the shader computes, in int64 numpy (tests compare it with the CPU's)."""
    x = np.asarray(x, np.int64)
    words = requantize_table([multiplier], [shift], single_rounding).astype(np.int64)
    m, total, left, below = int(multiplier), int(words[1]), int(words[2]), words[3]
    below = int(below) - (1 << 32) if below >= 1 << 31 else int(below)
    d_pos, d_neg = int(words[4] | (words[5] << 32)), int(words[6] | (words[7] << 32))
    shifted = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap
    d = np.where(shifted < below, d_neg, d_pos)
    return (shifted * m + d) >> total


__all__ = ["REQUANTIZE_WGSL", "WORDS_PER_CHANNEL", "requantize_reference", "requantize_table"]

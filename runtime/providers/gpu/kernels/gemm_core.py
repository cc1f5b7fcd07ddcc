"""The tiled GEMM shader every matrix kernel is built from: Gemm, MatMul and Conv
(as an implicit GEMM: the im2col matrix is read on the fly, never stored).

A 16x16 workgroup computes a 64x64 tile of C, each thread a 4x4 block, staging 64x16
tiles of A and 16x64 tiles of B in workgroup memory. Variants differ only in three
small functions:

- ``load_a(z, m, k)``: rows of a matrix (Gemm/MatMul, any strides) or im2col (Conv);
- ``load_b(z, k, n)``: float32 weights, or int8/uint8 weights packed four per u32 word
  and dequantized in the kernel (``q - zero_point``; the scale is applied per column in
  the epilogue, so the inner loop stays one multiply-add);
- ``store(z, m, n, v)``: row-major C, or NCHW for Conv.

The epilogue computes ``act(acc * colscale[n] + colbias[n])``; ``colscale`` carries alpha
and the int8 weight scales, ``colbias`` the bias (beta * C).
"""

from __future__ import annotations

from runtime.providers.gpu.pipelines import ParamLayout, activation_wgsl

TILE_M = 64
TILE_N = 64

FIELDS = [
    ("m", "u32"), ("n", "u32"), ("k", "u32"),
    # rows of A / B / C (Gemm, MatMul)
    ("sam", "u32"), ("sak", "u32"), ("sbk", "u32"), ("sbn", "u32"), ("b_z", "u32"),
    ("col_z", "u32"), ("nz", "u32"),
    ("zdims", "u32[8]"), ("za", "u32[8]"), ("zb", "u32[8]"),
    # Conv (im2col)
    ("cin", "u32"), ("h", "u32"), ("w", "u32"), ("ow", "u32"), ("pix", "u32"),
    ("kh", "u32"), ("kw", "u32"), ("sh", "u32"), ("sw", "u32"), ("pt", "i32"), ("pl", "i32"),
    ("dh", "u32"), ("dw", "u32"), ("cin_g", "u32"), ("cout", "u32"),
    # integer kernels (QGemm/QConv): zero points and the activation clamp
    ("x_zero", "i32"), ("y_zero", "i32"), ("act_min", "i32"), ("act_max", "i32"),
]
LAYOUT = ParamLayout(FIELDS)

# A batch index z -> element offsets of A and B through the broadcast batch tables.
_BATCH = """
fn batch_offset(z: u32, which: u32) -> u32 {
  var rest = z;
  var at = 0u;
  for (var d = i32(p.nz) - 1; d >= 0; d--) {
    let u = u32(d);
    let dim = p.zdims[u >> 2u][u & 3u];
    let idx = rest % dim;
    rest /= dim;
    if (which == 0u) { at += idx * p.za[u >> 2u][u & 3u]; }
    else { at += idx * p.zb[u >> 2u][u & 3u]; }
  }
  return at;
}
"""

LOAD_A_ROWS = """
fn load_a(z: u32, m: u32, k: u32) -> f32 {
  return a[batch_offset(z, 0u) + m * p.sam + k * p.sak];
}
"""

LOAD_A_IM2COL = """
fn load_a(z: u32, m: u32, k: u32) -> f32 {
  let b = m / p.pix;
  let q = m % p.pix;
  let oh = q / p.ow;
  let ow = q % p.ow;
  let taps = p.kh * p.kw;
  let ci = k / taps;
  let r = k % taps;
  let ih = i32(oh * p.sh + (r / p.kw) * p.dh) - p.pt;
  let iw = i32(ow * p.sw + (r % p.kw) * p.dw) - p.pl;
  if (ih < 0 || iw < 0 || ih >= i32(p.h) || iw >= i32(p.w)) { return 0.0; }
  return a[((b * p.cin + z * p.cin_g + ci) * p.h + u32(ih)) * p.w + u32(iw)];
}
"""

LOAD_B_F32 = """
fn load_b(z: u32, k: u32, n: u32) -> f32 {
  return bw[z * p.b_z + batch_offset(z, 1u) + k * p.sbk + n * p.sbn];
}
"""

# int8/uint8: the element index picks a byte of a packed word; zero point per column.
LOAD_B_PACKED = """
fn load_b(z: u32, k: u32, n: u32) -> f32 {
  let e = z * p.b_z + k * p.sbk + n * p.sbn;
  let byte = (bw[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu;
  return f32(DECODE) - wzero[z * p.col_z + n];
}
"""

STORE_ROWS = """
fn store(z: u32, m: u32, n: u32, v: f32) {
  c[z * p.m * p.n + m * p.n + n] = v;
}
"""

STORE_NCHW = """
fn store(z: u32, m: u32, n: u32, v: f32) {
  let b = m / p.pix;
  c[(b * p.cout + z * p.col_z + n) * p.pix + m % p.pix] = v;
}
"""

MAIN = """
var<workgroup> tile_a: array<ACC, 1024>;  // [k][m], 16 x 64
var<workgroup> tile_b: array<ACC, 1024>;  // [k][n], 16 x 64

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.y * 16u + lid.x;
  let n0 = wid.x * 64u;
  let m0 = wid.y * 64u;
  let z = wid.z;
  var acc: array<ACC, 16>;
  for (var k0 = 0u; k0 < p.k; k0 += 16u) {
    for (var r = 0u; r < 4u; r++) {
      let e = t + r * 256u;
      let am = e / 16u;
      let ak = e % 16u;
      var av = ZERO;
      if (m0 + am < p.m && k0 + ak < p.k) { av = load_a(z, m0 + am, k0 + ak); }
      tile_a[ak * 64u + am] = av;
      let bk = e / 64u;
      let bn = e % 64u;
      var bv = ZERO;
      if (k0 + bk < p.k && n0 + bn < p.n) { bv = load_b(z, k0 + bk, n0 + bn); }
      tile_b[bk * 64u + bn] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a0 = tile_a[kk * 64u + lid.y];
      let a1 = tile_a[kk * 64u + lid.y + 16u];
      let a2 = tile_a[kk * 64u + lid.y + 32u];
      let a3 = tile_a[kk * 64u + lid.y + 48u];
      let b0 = tile_b[kk * 64u + lid.x];
      let b1 = tile_b[kk * 64u + lid.x + 16u];
      let b2 = tile_b[kk * 64u + lid.x + 32u];
      let b3 = tile_b[kk * 64u + lid.x + 48u];
      acc[0] += a0 * b0; acc[1] += a0 * b1; acc[2] += a0 * b2; acc[3] += a0 * b3;
      acc[4] += a1 * b0; acc[5] += a1 * b1; acc[6] += a1 * b2; acc[7] += a1 * b3;
      acc[8] += a2 * b0; acc[9] += a2 * b1; acc[10] += a2 * b2; acc[11] += a2 * b3;
      acc[12] += a3 * b0; acc[13] += a3 * b1; acc[14] += a3 * b2; acc[15] += a3 * b3;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 16u * j;
      if (m < p.m && n < p.n) {
        let col = z * p.col_z + n;
        store(z, m, n, EPILOGUE);
      }
    }
  }
}
"""


# Few rows (batch-1 inference): a 64x64 tile would be 1/64 full. One thread per output,
# reading A and B straight from memory (B coalesced along n), no workgroup memory or
# barriers.
MAIN_FEW_ROWS = """
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let z = wid.z;
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= p.m * p.n) { return; }
  let m = i / p.n;
  let n = i % p.n;
  var total = ZERO;
  for (var k = 0u; k < p.k; k++) { total += load_a(z, m, k) * load_b(z, k, n); }
  let col = z * p.col_z + n;
  store(z, m, n, EPILOGUE);
}
"""
#: GEMMs with at most this many rows use ``MAIN_FEW_ROWS``.
FEW_ROWS = 16


# Integer variants (QGemm, QConv): x is int8/uint8 held one per word, zero-centred on load
# (im2col padding is 0 = the zero point); w is int8 packed four per word.
LOAD_A_ROWS_INT = """
fn load_a(z: u32, m: u32, k: u32) -> i32 {
  return a[m * p.sam + k * p.sak] - p.x_zero;
}
"""

LOAD_A_IM2COL_INT = LOAD_A_IM2COL.replace("-> f32", "-> i32").replace(
    "return 0.0;", "return 0;").replace(
    "return a[((b * p.cin + z * p.cin_g + ci) * p.h + u32(ih)) * p.w + u32(iw)];",
    "return a[((b * p.cin + z * p.cin_g + ci) * p.h + u32(ih)) * p.w + u32(iw)] - p.x_zero;")

LOAD_B_INT8 = """
fn load_b(z: u32, k: u32, n: u32) -> i32 {
  let e = z * p.b_z + k * p.sbk + n * p.sbn;
  return bitcast<i32>(((bw[e >> 2u] >> ((e & 3u) * 8u)) & 0xffu) << 24u) >> 24u;
}
"""


def _main(few_rows: bool, acc: str, zero: str, epilogue: str) -> str:
    if few_rows:
        return MAIN_FEW_ROWS.replace("ZERO", zero).replace("EPILOGUE",
                                                           epilogue.replace("ACCV", "total"))
    return MAIN.replace("ACC", acc).replace("ZERO", zero).replace(
        "EPILOGUE", epilogue.replace("ACCV", "acc[i * 4u + j]"))


def gemm_wgsl(a_kind: str, b_kind: str, store_kind: str, act: tuple,
              few_rows: bool = False) -> str:
    """The WGSL of one float variant: ``a_kind`` "rows"|"im2col", ``b_kind`` "float32"|
    "int8"|"uint8", ``store_kind`` "rows"|"nchw"; ``few_rows``: no tiling."""
    packed = b_kind in ("int8", "uint8")
    decode = "bitcast<i32>(byte << 24u) >> 24u" if b_kind == "int8" else "byte"
    bindings = [
        "@group(0) @binding(0) var<uniform> p: Params;",
        "@group(0) @binding(1) var<storage, read> a: array<f32>;",
        f"@group(0) @binding(2) var<storage, read> bw: array<{'u32' if packed else 'f32'}>;",
        "@group(0) @binding(3) var<storage, read> colscale: array<f32>;",
        "@group(0) @binding(4) var<storage, read> colbias: array<f32>;",
        "@group(0) @binding(5) var<storage, read_write> c: array<f32>;",
    ]
    if packed:
        bindings.append("@group(0) @binding(6) var<storage, read> wzero: array<f32>;")
    main = _main(few_rows, "f32", "0.0", "act(ACCV * colscale[col] + colbias[col])")
    return "\n".join([
        LAYOUT.wgsl(), *bindings, _BATCH, activation_wgsl(act),
        LOAD_A_ROWS if a_kind == "rows" else LOAD_A_IM2COL,
        LOAD_B_PACKED.replace("DECODE", decode) if packed else LOAD_B_F32,
        STORE_ROWS if store_kind == "rows" else STORE_NCHW,
        main,
    ])


def integer_gemm_wgsl(a_kind: str, store_kind: str, few_rows: bool = False) -> str:
    """The WGSL of the integer variant (int32 accumulation, TFLite requantization)."""
    from runtime.providers.gpu.kernels.requantize import REQUANTIZE_WGSL

    bindings = [
        "@group(0) @binding(0) var<uniform> p: Params;",
        "@group(0) @binding(1) var<storage, read> a: array<i32>;",
        "@group(0) @binding(2) var<storage, read> bw: array<u32>;",
        "@group(0) @binding(3) var<storage, read> requant: array<u32>;",
        "@group(0) @binding(4) var<storage, read> bias: array<i32>;",
        "@group(0) @binding(5) var<storage, read_write> c: array<i32>;",
    ]
    store = STORE_ROWS if store_kind == "rows" else STORE_NCHW
    main = _main(few_rows, "i32", "0", "clamp(requantize(col, ACCV + bias[col]) + p.y_zero, "
                                       "p.act_min, p.act_max)")
    return "\n".join([
        LAYOUT.wgsl(), *bindings, REQUANTIZE_WGSL,
        LOAD_A_ROWS_INT if a_kind == "rows" else LOAD_A_IM2COL_INT, LOAD_B_INT8,
        store.replace("v: f32", "v: i32"), main,
    ])


def tile_groups(m: int, n: int, few_rows: bool = False,
                max_groups: int = 65535) -> tuple[int, int]:
    """(x, y) workgroup counts for an m x n output: 64x64 tiles, or 64 outputs per group
    spread over x and y for the few-rows kernel."""
    if few_rows:
        groups = -(-m * n // 64)
        x = min(groups, max_groups)
        return x, -(-groups // x)
    return -(-n // TILE_N), -(-m // TILE_M)


__all__ = ["FEW_ROWS", "FIELDS", "LAYOUT", "TILE_M", "TILE_N", "gemm_wgsl",
           "integer_gemm_wgsl", "tile_groups"]

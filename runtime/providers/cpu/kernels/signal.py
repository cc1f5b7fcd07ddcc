"""HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix, DFT and STFT (numpy's FFT).

Complex values travel as a trailing axis of 2 (real, imaginary); real signals may have a
trailing axis of 1.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.creation import MAX_ELEMENTS
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _scalar(x: np.ndarray) -> int:
    return int(x.reshape(-1)[0])


def _window_kernel(formula) -> callable:
    def build(ctx: KernelContext) -> Kernel:
        dtype = ctx.output_dtype()
        periodic = bool(ctx.attr("periodic"))

        def window(size):
            n = _scalar(size)
            if not 0 <= n <= MAX_ELEMENTS:
                raise ShapeError(f"window size {n} is negative or absurdly large")
            span = n if periodic else n - 1
            i = np.arange(n, dtype=np.float64)
            return formula(i, span).astype(dtype)

        return window

    return build


cpu_kernel("HannWindow", since=17)(_window_kernel(
    lambda i, n: np.sin(np.pi * i / n) ** 2))
cpu_kernel("HammingWindow", since=17)(_window_kernel(
    lambda i, n: 25 / 46 - (21 / 46) * np.cos(2 * np.pi * i / n)))
cpu_kernel("BlackmanWindow", since=17)(_window_kernel(
    lambda i, n: 0.42 - 0.5 * np.cos(2 * np.pi * i / n) + 0.08 * np.cos(4 * np.pi * i / n)))


def mel_weight_matrix(bins: int, dft_length: int, sample_rate: int, low_hz: float,
                      high_hz: float) -> np.ndarray:
    """Triangular mel filters as ONNX's reference builds them ([dft/2 + 1, bins])."""
    edges = np.arange(bins + 2)
    low_mel = 2595 * np.log10(1 + low_hz / 700)
    high_mel = 2595 * np.log10(1 + high_hz / 700)
    step = (high_mel - low_mel) / (bins + 2)
    hz = 700 * (10 ** ((edges * step + low_mel) / 2595) - 1)
    edges = (((dft_length + 1) * hz) // sample_rate).astype(np.int64)
    out = np.zeros((dft_length // 2 + 1, bins))
    for i in range(bins):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        if mid == lo:
            out[mid, i] = 1
        else:
            j = np.arange(lo, mid + 1)
            out[j, i] = (j - lo) / (mid - lo)
        if hi > mid:
            j = np.arange(mid, hi)
            out[j, i] = (hi - j) / (hi - mid)
    return out


@cpu_kernel("MelWeightMatrix", since=17)
def mel_weight_matrix_kernel(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()

    def mel(num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz):
        bins, length = _scalar(num_mel_bins), _scalar(dft_length)
        if not (0 < bins and 0 < length and (length // 2 + 1) * bins <= MAX_ELEMENTS):
            raise ShapeError(f"MelWeightMatrix of {bins} bins for DFT length {length} is empty "
                             "or absurdly large")
        return mel_weight_matrix(bins, length, _scalar(sample_rate),
                                 float(lower_edge_hertz.reshape(-1)[0]),
                                 float(upper_edge_hertz.reshape(-1)[0])).astype(dtype)

    return mel


def as_complex(x: np.ndarray) -> np.ndarray:
    """[..., 1] real or [..., 2] (real, imaginary) -> complex [...], in x's precision (numpy's
    FFT then computes in single precision for float32, as onnxruntime does)."""
    ctype = np.complex64 if x.dtype in (np.float16, np.float32) else np.complex128
    if x.shape[-1] == 1:
        return x[..., 0].astype(ctype)
    z = np.empty(x.shape[:-1], ctype)
    z.real, z.imag = x[..., 0], x[..., 1]
    return z


def as_pairs(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


@cpu_kernel("DFT", since=20)
def dft(ctx: KernelContext) -> Kernel:
    inverse, onesided = bool(ctx.attr("inverse")), bool(ctx.attr("onesided"))
    dtype = ctx.output_dtype()

    def dft_(x, dft_length=None, axis=None):
        a = normalize_axis(-2 if axis is None else _scalar(axis), x.ndim - 1, "DFT axis")
        signal = as_complex(x)
        if dft_length is not None:
            n = _scalar(dft_length)
        else:
            n = 2 * (x.shape[a] - 1) if inverse and onesided else x.shape[a]
        if n < 1:
            raise ShapeError(f"DFT length must be positive, got {n}")
        if inverse and onesided:  # one-sided spectrum in, real signal out
            return np.fft.irfft(signal, n=n, axis=a)[..., None].astype(dtype)
        z = (np.fft.ifft if inverse else np.fft.fft)(signal, n=n, axis=a)
        if onesided and not inverse:
            z = np.take(z, np.arange(n // 2 + 1), axis=a)
        return as_pairs(z, dtype)

    return dft_


@cpu_kernel("STFT", since=17)
def stft(ctx: KernelContext) -> Kernel:
    onesided = bool(ctx.attr("onesided"))
    dtype = ctx.output_dtype()

    def stft_(signal, frame_step, window=None, frame_length=None):
        length = signal.shape[1]
        frame = _scalar(frame_length) if frame_length is not None else (
            window.shape[0] if window is not None else length)
        step = _scalar(frame_step)
        if step < 1 or not 0 < frame <= length:
            raise ShapeError(f"STFT frame_step {step} / frame_length {frame} do not fit a "
                             f"signal of length {length}")
        weights = np.ones(frame) if window is None else window.astype(np.float64)
        if weights.shape[0] != frame:
            raise ShapeError(f"STFT window has {weights.shape[0]} values, frame_length {frame}")
        frames = 1 + (length - frame) // step
        starts = np.arange(frames) * step
        z = as_complex(signal)  # [batch, length]
        framed = z[:, starts[:, None] + np.arange(frame)[None, :]] * weights
        spectrum = np.fft.fft(framed, n=frame, axis=-1)
        if onesided:
            spectrum = spectrum[..., : frame // 2 + 1]
        return as_pairs(spectrum, dtype)

    return stft_

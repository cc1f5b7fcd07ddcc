#!/usr/bin/env python3
"""Classify digit images with an edgefw model on a Raspberry Pi (or anything with numpy).

    python3 classify.py mlp_int8.tflite digit.png
    python3 classify.py lenet.onnx seven.pgm three.png --top 3 --providers gpu,cpu

Needs only numpy, flatbuffers and edgefw's ``runtime`` package (with the ``edgefw.ir`` and
``edgefw.errors`` modules it uses) — no trainer, no onnxruntime, no TensorFlow. Loading a
``.onnx`` model also needs the ``onnx`` package; ``.tflite`` models need nothing more.

Images: PNG (8-bit greyscale, grey+alpha, RGB, RGBA or palette; not interlaced) read with
the tiny zlib-based reader below, or PGM (binary P5 or text P2, maxval <= 255). The
model's input contract (layout, normalisation, dtype, quantization: stored in the file at
export) turns the pixels into the model's input; see ``runtime.preprocess``. MNIST models
expect a white digit on black: ``--invert auto`` (the default) inverts an image whose
border is bright (a dark digit on paper). ``--resize`` scales other sizes to the model's
(nearest neighbour: crop the digit first for best results).
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

try:
    import runtime
except ImportError:  # running from a checkout of the repository: use its runtime package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import runtime

from edgefw.errors import EdgeFWError
from runtime.preprocess import InputContract, prepare_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type -> channels (8-bit samples): grey, RGB, palette, grey+alpha, RGBA.
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
MAX_PIXELS = 1 << 26  # a corrupt header must not ask for gigabytes


class ImageError(EdgeFWError, ValueError):
    """An image file this script cannot read; the message says why."""


# ------------------------------------------------------------------------ PNG
def read_png(data: bytes, name: str = "image") -> np.ndarray:
    """8-bit, non-interlaced PNG -> uint8 HxW (grey) or HxWxC (grey+alpha, RGB, RGBA)."""
    if not data.startswith(PNG_SIGNATURE):
        raise ImageError(f"{name}: not a PNG file")
    pos, header, palette, compressed, ended = len(PNG_SIGNATURE), None, None, [], False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ImageError(f"{name}: truncated PNG chunk {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            ended = True
            break
        pos += 12 + length
    if header is None or not ended:
        missing = "IHDR" if header is None else "IEND"
        raise ImageError(f"{name}: truncated PNG (no {missing} chunk)")
    if not compressed:
        raise ImageError(f"{name}: PNG without image data")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in PNG_CHANNELS or interlace != 0:
        raise ImageError(f"{name}: PNG with bit depth {depth}, colour type {color}, interlace "
                         f"{interlace}; this reader takes 8-bit non-interlaced PNGs (save as "
                         "8-bit greyscale or RGB, or as PGM)")
    if not 0 < width * height <= MAX_PIXELS:
        raise ImageError(f"{name}: {width}x{height} pixels is not a size this reader accepts")
    channels = PNG_CHANNELS[color]
    stride = width * channels
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(compressed), height * (stride + 1) + 1)
    except zlib.error as exc:
        raise ImageError(f"{name}: corrupt PNG data ({exc})") from None
    if len(raw) != height * (stride + 1):
        raise ImageError(f"{name}: truncated or corrupt PNG: its data holds {len(raw)} bytes, "
                         f"{width}x{height} needs {height * (stride + 1)}")
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    pixels = _unfilter(rows, channels, name).reshape(height, width, channels)
    if color == 3:
        if palette is None or int(pixels.max()) >= len(palette):
            raise ImageError(f"{name}: palette PNG whose pixels index past its palette")
        return palette[pixels[..., 0]]
    return pixels[..., 0] if channels == 1 else pixels


def _unfilter(rows: np.ndarray, bpp: int, name: str) -> np.ndarray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    out = np.zeros((rows.shape[0], rows.shape[1] - 1), np.uint8)
    previous = np.zeros(rows.shape[1] - 1, np.int32)
    for y, row in enumerate(rows):
        kind, line = int(row[0]), row[1:].astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 1:  # Sub: a running sum per channel
            current = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:
            current = (line + previous) & 0xFF
        elif kind in (3, 4):
            current = _unfilter_sequential(line, previous, bpp, kind)
        else:
            raise ImageError(f"{name}: unknown PNG filter {kind} in row {y}")
        out[y] = current
        previous = current.astype(np.int32)
    return out


def _unfilter_sequential(line: np.ndarray, up: np.ndarray, bpp: int, kind: int) -> np.ndarray:
    """Average (3) and Paeth (4) depend on the byte just decoded: one pass per byte."""
    result = [0] * len(line)
    values, above = line.tolist(), up.tolist()
    for i, value in enumerate(values):
        left = result[i - bpp] if i >= bpp else 0
        if kind == 3:
            predictor = (left + above[i]) >> 1
        else:
            upper_left = above[i - bpp] if i >= bpp else 0
            p = left + above[i] - upper_left
            pa, pb, pc = abs(p - left), abs(p - above[i]), abs(p - upper_left)
            predictor = left if pa <= pb and pa <= pc else above[i] if pb <= pc else upper_left
        result[i] = (value + predictor) & 0xFF
    return np.asarray(result, np.int32)


# ------------------------------------------------------------------------ PGM
def read_pgm(data: bytes, name: str = "image") -> np.ndarray:
    """Binary (P5) or text (P2) PGM with maxval <= 255 -> uint8 HxW."""
    magic = data[:2]
    if magic not in (b"P5", b"P2"):
        raise ImageError(f"{name}: not a PGM file (P5 or P2)")
    fields, pos = [], 2
    while len(fields) < 3:  # width, height, maxval, with comments between them
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise ImageError(f"{name}: malformed PGM header")
        fields.append(int(data[start:pos]))
    width, height, maxval = fields
    if not 0 < width * height <= MAX_PIXELS or not 0 < maxval <= 255:
        raise ImageError(f"{name}: PGM {width}x{height}, maxval {maxval}: this reader takes "
                         "8-bit PGMs (maxval <= 255)")
    if magic == b"P5":
        body = data[pos + 1:pos + 1 + width * height]
        if len(body) != width * height:
            raise ImageError(f"{name}: truncated PGM ({len(body)} of {width * height} bytes)")
        pixels = np.frombuffer(body, np.uint8).reshape(height, width)
    else:
        values = data[pos:].split()
        if len(values) < width * height:
            raise ImageError(f"{name}: truncated PGM ({len(values)} of {width * height} values)")
        pixels = np.array([int(v) for v in values[:width * height]], np.int64)
        pixels = pixels.clip(0, maxval).astype(np.uint8).reshape(height, width)
    if maxval != 255:
        pixels = (pixels.astype(np.uint32) * 255 // maxval).astype(np.uint8)
    return pixels


def read_image(path: str | Path) -> np.ndarray:
    """A PNG or PGM file -> uint8 pixels (by content, not by suffix)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from None
    if data.startswith(PNG_SIGNATURE):
        return read_png(data, str(path))
    if data[:2] in (b"P5", b"P2"):
        return read_pgm(data, str(path))
    raise ImageError(f"{path}: not a PNG or PGM image")


# ------------------------------------------------------------------- classify
def fit_image(image: np.ndarray, contract: InputContract, invert: str, resize: bool,
              name: str) -> np.ndarray:
    """The image at the model's size, white-on-black when the model wants that."""
    height, width, _ = contract.image_shape
    if resize and height and width and image.shape[:2] != (height, width):
        rows = np.arange(height) * image.shape[0] // height
        cols = np.arange(width) * image.shape[1] // width
        image = image[rows][:, cols]
    grey = image if image.ndim == 2 else image[..., :3].mean(axis=-1)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 127):
        image = 255 - image
        if image.ndim == 3 and image.shape[-1] in (2, 4):  # keep alpha as it was
            image[..., -1] = 255 - image[..., -1]
    if height and width and image.shape[:2] != (height, width):
        raise ImageError(f"{name}: {image.shape[1]}x{image.shape[0]} pixels, the model takes "
                         f"{width}x{height}; pass --resize or resize the image")
    return image


def probabilities(output: np.ndarray) -> np.ndarray:
    """The model's scores as probabilities (softmax unless they already are)."""
    scores = np.asarray(output, np.float64).reshape(-1)
    if scores.min() >= 0 and abs(scores.sum() - 1.0) < 1e-3:
        return scores
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help=".tflite or .onnx model exported by edgefw")
    parser.add_argument("images", nargs="+", help="PNG or PGM image files")
    parser.add_argument("--top", type=int, default=1, help="show the top K classes")
    parser.add_argument("--providers", default="cpu",
                        help="execution providers in order, e.g. gpu,cpu (default cpu)")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="white-on-black conversion (default: when the border is bright)")
    parser.add_argument("--resize", action="store_true",
                        help="scale images to the model's size (nearest neighbour)")
    args = parser.parse_args(argv)
    try:
        start = time.perf_counter()
        session = runtime.InferenceSession(args.model, providers=args.providers.split(","))
        contract = InputContract.from_session(session)
        labels = contract.class_labels
        dims = ", ".join("?" if d is None else str(d) for d in contract.shape)
        layout = f" {contract.layout}" if contract.layout else ""
        print(f"{args.model}: input {contract.name!r} {contract.dtype}[{dims}]{layout}, "
              f"pixels x {contract.scale:.6g}, loaded in {time.perf_counter() - start:.2f} s "
              f"on {', '.join(session.get_providers())}")
        for name in args.images:
            image = fit_image(read_image(name), contract, args.invert, args.resize, name)
            x = prepare_image(image, contract)
            start = time.perf_counter()
            (output,) = session.run(None, {contract.name: x})[:1]
            ms = 1000 * (time.perf_counter() - start)
            quant = session.graph.outputs[0].quant
            if output.dtype.kind in "iu" and quant is not None:  # int8 output: real values
                output = (output.astype(np.float32) - quant.zero_point) * quant.scale
            p = probabilities(output)
            best = np.argsort(-p)[:max(1, args.top)]
            shown = ", ".join(f"{labels[i] if labels else i} ({100 * p[i]:.1f}%)" for i in best)
            print(f"{name}: {shown}  [{ms:.2f} ms]")
    except EdgeFWError as exc:
        print(f"classify.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

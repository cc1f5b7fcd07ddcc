"""samples/: the Raspberry Pi classifier (its PNG/PGM readers, its answers against
onnxruntime and LiteRT, and that it runs with numpy + flatbuffers + runtime alone, in a
fresh virtual environment) and the training samples, run on a few hundred images."""

from __future__ import annotations

import importlib.util
import os
import re
import runpy
import shutil
import struct
import subprocess
import sys
import venv
import zlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgefw
import quantize
from edgefw import datasets, models, nn, optim
from edgefw.demo.artifacts import export_with_golden
from edgefw.demo.runners import tflite_interpreter_class

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
CLASSIFY = SAMPLES / "raspberry_pi" / "classify.py"
RNG = np.random.default_rng(7)
#: What the device script must never import.
FORBIDDEN = ("edgefw.nn", "edgefw.autograd", "edgefw.optim", "edgefw.training", "edgefw.ops",
             "onnxruntime", "tensorflow", "ai_edge_litert", "tflite_runtime", "torch")


def _classify_module():
    spec = importlib.util.spec_from_file_location("classify_sample", CLASSIFY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


classify = _classify_module()


# ------------------------------------------------------------------ PNG writer
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray, color: int, filters: tuple[int, ...] = (0,),
               palette: np.ndarray | None = None, depth: int = 8, interlace: int = 0) -> bytes:
    """A PNG whose rows use ``filters`` in turn (the encoder side of the spec's filters)."""
    height, width = pixels.shape[:2]
    bpp = classify.PNG_CHANNELS.get(color, 1)
    rows = pixels.reshape(height, -1).astype(np.int32)
    previous = np.zeros(rows.shape[1], np.int32)
    raw = bytearray()
    for y, line in enumerate(rows):
        kind = filters[y % len(filters)]
        left = np.concatenate([np.zeros(bpp, np.int32), line[:-bpp]])
        upper_left = np.concatenate([np.zeros(bpp, np.int32), previous[:-bpp]])
        if kind == 0:
            out = line
        elif kind == 1:
            out = line - left
        elif kind == 2:
            out = line - previous
        elif kind == 3:
            out = line - (left + previous) // 2
        else:
            p = left + previous - upper_left
            pa, pb, pc = np.abs(p - left), np.abs(p - previous), np.abs(p - upper_left)
            out = line - np.where((pa <= pb) & (pa <= pc), left,
                                  np.where(pb <= pc, previous, upper_left))
        raw += bytes([kind]) + (out & 0xFF).astype(np.uint8).tobytes()
        previous = line
    data = zlib.compress(bytes(raw))
    png = classify.PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, depth, color, 0, 0, interlace))
    if palette is not None:
        png += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    half = len(data) // 2  # two IDAT chunks: the reader must join them
    return png + _chunk(b"IDAT", data[:half]) + _chunk(b"IDAT", data[half:]) + \
        _chunk(b"IEND", b"")


@pytest.mark.parametrize("color, channels", [(0, 1), (2, 3), (4, 2), (6, 4)])
def test_png_reader_undoes_every_filter(color, channels):
    pixels = RNG.integers(0, 256, (9, 7, channels), dtype=np.uint8)
    png = encode_png(pixels, color, filters=(0, 1, 2, 3, 4, 4, 3, 1, 2))
    decoded = classify.read_png(png)
    np.testing.assert_array_equal(decoded, pixels[..., 0] if channels == 1 else pixels)


def test_png_palette_and_refusals():
    palette = RNG.integers(0, 256, (4, 3), dtype=np.uint8)
    index = RNG.integers(0, 4, (5, 6, 1), dtype=np.uint8)
    np.testing.assert_array_equal(classify.read_png(encode_png(index, 3, (1, 4), palette)),
                                  palette[index[..., 0]])
    grey = RNG.integers(0, 256, (4, 4, 1), dtype=np.uint8)
    for bad, words in [(encode_png(grey, 0, depth=16), "bit depth 16"),
                       (encode_png(grey, 0, interlace=1), "interlace 1"),
                       (encode_png(grey, 0)[:60], "truncated|without"),
                       (encode_png(index + 9, 3, palette=palette), "palette"),
                       (b"GIF89a", "not a PNG")]:
        with pytest.raises(classify.ImageError, match=words):
            classify.read_png(bad)


def test_pgm_reader(tmp_path):
    pixels = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    p5 = b"P5\n# a comment\n4 3\n255\n" + pixels.tobytes()
    np.testing.assert_array_equal(classify.read_pgm(p5), pixels)
    p2 = b"P2 4 3 15\n" + " ".join(str(v) for v in (pixels // 17).ravel()).encode()
    np.testing.assert_array_equal(classify.read_pgm(p2), (pixels // 17) * 17)
    with pytest.raises(classify.ImageError, match="maxval"):
        classify.read_pgm(b"P5 2 2 65535\n" + bytes(8))
    with pytest.raises(classify.ImageError, match="truncated"):
        classify.read_pgm(b"P5 4 4 255\n" + bytes(3))
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(classify.ImageError, match="not a PNG or PGM"):
        classify.read_image(tmp_path / "x.jpg")


# --------------------------------------------------------------- a digit model
@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The zoo MLP trained one epoch on 2,000 MNIST images, as int8 .tflite (NHWC input)
    and float .onnx (NCHW input), plus four test digits written as PNG and PGM files."""
    folder = tmp_path_factory.mktemp("digits")
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x = (x_train[:2000] / 255.0).astype(np.float32)[:, None]
    edgefw.manual_seed(0)
    model = models.build("mlp")
    model.compile(optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss())
    model.fit(x, y_train[:2000].astype(np.int64), epochs=1, batch_size=32, verbose=0, seed=0)
    graph = edgefw.trace(model, x[:1])
    meta = {"normalization": {"scale": 1 / 255}, "class_labels": [str(d) for d in range(10)]}
    tflite = export_with_golden(quantize.quantize_static(graph, x[:256]),
                                folder / "mlp_int8.tflite", golden_inputs=[x[:4]],
                                reference_graph=graph, metadata=meta)
    onnx_file = export_with_golden(graph, folder / "mlp.onnx", golden_inputs=[x[:4]],
                                   metadata={**meta, "input_layout": "NCHW"})
    images = x_test[:4]
    paths = [folder / "d0.png", folder / "d1_rgb.png", folder / "d2.pgm",
             folder / "d3_paper.png"]
    paths[0].write_bytes(encode_png(images[0][..., None], 0, (4, 1, 2)))
    paths[1].write_bytes(encode_png(np.repeat(images[1][..., None], 3, -1), 2, (3,)))
    paths[2].write_bytes(b"P5\n28 28\n255\n" + images[2].tobytes())
    paths[3].write_bytes(encode_png((255 - images[3])[..., None], 0))  # dark ink on paper
    return tflite, onnx_file, paths, images


def _reference_predictions(model: Path, images: np.ndarray) -> list[int]:
    """onnxruntime / LiteRT on pixels / 255 laid out by hand: an independent reference."""
    x = (images / 255.0).astype(np.float32)
    if model.suffix == ".onnx":
        return ort.InferenceSession(str(model)).run(None, {"input": x[:, None]})[0] \
            .argmax(1).tolist()
    interpreter_class, _ = tflite_interpreter_class()
    interp = interpreter_class(model_path=str(model))
    detail = interp.get_input_details()[0]
    interp.resize_tensor_input(detail["index"], [len(x), 28, 28, 1])
    interp.allocate_tensors()
    interp.set_tensor(detail["index"], x[..., None])
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).argmax(1).tolist()


def _predictions(stdout: str, paths: list[Path]) -> list[int]:
    found = {}
    for line in stdout.splitlines():
        match = re.match(r"(.+): (\d) \((\d+\.\d)%\)", line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return [found[str(p)] for p in paths]


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line} - {"package"}


@pytest.mark.parametrize("which", [0, 1])
def test_classify_answers_like_the_reference_runtimes_without_the_trainer(digits, which):
    model, paths = digits[which], digits[2]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(CLASSIFY), str(model), *map(str, paths),
         "--top", "2"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert _predictions(result.stdout, paths) == _reference_predictions(model, digits[3])
    imported = _imported(result.stderr)
    assert "runtime" in imported and "numpy" in imported
    leaked = sorted(m for m in imported if any(m == f or m.startswith(f + ".")
                                               for f in FORBIDDEN))
    assert leaked == [], f"classify.py imported {leaked}"
    if model.suffix == ".tflite":
        assert "onnx" not in imported


def test_classify_refuses_a_wrong_size_image_with_a_clear_message(digits, tmp_path):
    small = tmp_path / "small.pgm"
    small.write_bytes(b"P5 10 10 255\n" + bytes(100))
    result = subprocess.run([sys.executable, str(CLASSIFY), str(digits[0]), str(small)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert "10x10 pixels, the model takes 28x28; pass --resize" in result.stderr


def test_classify_in_a_fresh_venv_with_only_numpy_and_flatbuffers(digits, tmp_path):
    """The device install: a virtual environment holding numpy and flatbuffers, next to a
    copy of runtime/ and the two edgefw modules it uses — no trainer, no onnx."""
    env = tmp_path / "venv"
    venv.create(env, with_pip=False, symlinks=True)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    installed = Path(np.__file__).parents[1]
    for package in ("numpy", "numpy.libs", "flatbuffers"):  # as pip would unpack them
        if (installed / package).exists():
            (site / package).symlink_to(installed / package)
    app = tmp_path / "app"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "runtime", app / "runtime", ignore=ignore)
    shutil.copytree(ROOT / "edgefw" / "ir", app / "edgefw" / "ir", ignore=ignore)
    for name in ("__init__.py", "errors.py"):
        shutil.copy(ROOT / "edgefw" / name, app / "edgefw" / name)
    shutil.copy(CLASSIFY, app / "classify.py")
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    probe = subprocess.run([str(python), "-E", "-s", "-c",
                            "import importlib.util as u; print([m for m in ('onnxruntime', "
                            "'onnx', 'tensorflow', 'ai_edge_litert', 'torch') if u.find_spec(m)])"],
                           capture_output=True, text=True, env=clean, cwd=app, check=True)
    assert probe.stdout.strip() == "[]"
    assert not (app / "edgefw" / "nn").exists() and not (app / "edgefw" / "autograd.py").exists()

    tflite, onnx_file, paths, images = digits
    result = subprocess.run([str(python), "-E", "-s", str(app / "classify.py"), str(tflite),
                             *map(str, paths)], capture_output=True, text=True, env=clean,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _predictions(result.stdout, paths) == _reference_predictions(tflite, images)
    # .onnx needs the onnx package, and says so
    result = subprocess.run([str(python), "-E", "-s", str(app / "classify.py"), str(onnx_file),
                             str(paths[0])], capture_output=True, text=True, env=clean,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert "needs the 'onnx' package (pip install onnx)" in result.stderr


# ------------------------------------------------------------- training samples
@pytest.fixture
def tiny_mnist(monkeypatch, tmp_path):
    """The samples on 384 training / 128 test images, run in a scratch folder."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    tiny = ((x_train[:384], y_train[:384]), (x_test[:128], y_test[:128]))
    monkeypatch.setattr(datasets, "load_mnist", lambda path=None: tiny)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_keras_sample(tiny_mnist, capsys):
    runpy.run_path(str(SAMPLES / "keras_mnist.py"), run_name="__main__")
    out = capsys.readouterr().out
    for name in ("mlp_float32.tflite", "mlp_float32.onnx", "mlp_int8.tflite", "mlp_int8.onnx"):
        assert (tiny_mnist / "keras-mnist" / name).is_file()
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", out).group(1))
    assert accuracy > 40.0  # 5 epochs on 384 images: far above chance (10%)
    from edgefw.demo.verification import verify_model

    assert verify_model(tiny_mnist / "keras-mnist" / "mlp_int8.tflite",
                        runtimes=["edgefw cpu", "TFLite interpreter"]).passed


def test_pytorch_sample(tiny_mnist, capsys):
    runpy.run_path(str(SAMPLES / "pytorch_mnist.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("mean loss") == 5
    losses = [float(v) for v in re.findall(r"mean loss ([\d.]+)", out)]
    assert losses[-1] < losses[0]
    difference = float(re.search(r"max \|difference\| ([\d.e+-]+)", out).group(1))
    assert difference < 1e-4
    assert "same predictions for 100.00%" in out


def test_quantize_and_compare_sample(tiny_mnist, capsys):
    runpy.run_path(str(SAMPLES / "quantize_and_compare.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "| int8_per_channel |" in out
    assert (tiny_mnist / "quantize-compare" / "comparison.json").is_file()
    assert "SQNR" in out

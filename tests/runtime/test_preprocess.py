"""The input contract: read from exported files' metadata, and prepare_image computing the
model's input exactly as a hand-written reference does."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
import exporter
from edgefw import models
from edgefw.errors import DTypeError, EdgeFWError, ModelFormatError, ShapeError
from runtime import InferenceSession
from runtime.preprocess import InputContract, prepare_image, prepare_images

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def lenet_graph():
    edgefw.manual_seed(0)
    return edgefw.trace(models.build("lenet"), np.zeros((1, 1, 28, 28), np.float32))


@pytest.fixture(scope="module")
def lenet_files(lenet_graph, tmp_path_factory):
    folder = tmp_path_factory.mktemp("contract")
    meta = {"normalization": {"scale": 1 / 255}, "class_labels": list("abcdefghij")}
    onnx_path, tflite_path = folder / "lenet.onnx", folder / "lenet.tflite"
    exporter.to_onnx(lenet_graph, onnx_path, metadata={**meta, "input_layout": "NCHW"})
    exporter.to_tflite(lenet_graph, tflite_path, metadata=meta)
    calibration = RNG.random((32, 1, 28, 28), np.float32)
    int8_path = folder / "lenet_int8_io.tflite"
    exporter.to_tflite(lenet_graph, int8_path, quantize="int8", calibration_data=calibration,
                       int8_io=True, metadata=meta)
    return onnx_path, tflite_path, int8_path


def test_contract_of_an_onnx_file_is_nchw_float(lenet_files):
    contract = InputContract.from_file(lenet_files[0])
    assert (contract.name, contract.shape, contract.dtype, contract.layout) == \
        ("input", (None, 1, 28, 28), "float32", "NCHW")
    assert contract.scale == pytest.approx(1 / 255)
    assert contract.class_labels == tuple("abcdefghij")
    assert contract.image_shape == (28, 28, 1)


def test_contract_of_a_tflite_file_is_nhwc(lenet_files):
    contract = InputContract.from_file(lenet_files[1])
    assert (contract.shape, contract.layout, contract.dtype) == ((None, 28, 28, 1), "NHWC",
                                                                 "float32")
    assert contract.quant_scale is None


def test_prepare_image_matches_hand_preprocessing_in_every_layout(lenet_graph, lenet_files):
    """The same raw digit through each file's contract gives the float graph's output."""
    image = RNG.integers(0, 256, (28, 28), dtype=np.uint8)
    by_hand = (image.astype(np.float32) / 255)[None, None]  # NCHW, the traced graph's input
    expected = InferenceSession(lenet_graph).run(None, {"input": by_hand})[0]
    for path in lenet_files[:2]:
        session = InferenceSession(path)
        contract = InputContract.from_session(session)
        x = prepare_image(image, contract)
        assert x.dtype == np.float32 and x.shape == ((1, 1, 28, 28) if path.suffix == ".onnx"
                                                     else (1, 28, 28, 1))
        np.testing.assert_allclose(x.reshape(-1), by_hand.reshape(-1), rtol=0, atol=0)
        np.testing.assert_allclose(session.run(None, {contract.name: x})[0], expected,
                                   atol=1e-5)


def test_int8_input_is_quantized_with_the_files_parameters(lenet_files):
    contract = InputContract.from_file(lenet_files[2])
    assert contract.dtype == "int8" and contract.quant_scale > 0
    image = np.array([[0, 1, 2, 127, 128, 254, 255] * 4] * 28, np.uint8)
    q = prepare_image(image, contract)
    real = image.astype(np.float64) / 255
    ref = np.clip(np.floor(real / contract.quant_scale + 0.5) + contract.quant_zero_point,
                  -128, 127)  # all values >= 0: half away from zero == floor(x + 0.5)
    assert q.dtype == np.int8 and q.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(q[0, ..., 0], ref)
    np.testing.assert_allclose(contract.dequantize(q)[0, ..., 0], real,
                               atol=contract.quant_scale / 2 + 1e-7)


def test_mean_std_normalisation_per_channel_and_rgb_to_grey():
    contract = InputContract("x", (None, 3, 2, 2), "float32", "NCHW", scale=1 / 255,
                             mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    image = RNG.integers(0, 256, (2, 2, 3), dtype=np.uint8)
    x = prepare_image(image, contract)
    ref = (image / 255 - np.array([0.5, 0.25, 0.0])) / np.array([0.5, 0.25, 1.0])
    np.testing.assert_allclose(x[0], ref.transpose(2, 0, 1), rtol=1e-6)
    grey_model = InputContract("x", (None, 2, 2), "float32")
    y = prepare_image(image, grey_model)
    luma = np.floor(image @ np.array([0.299, 0.587, 0.114]) + 0.5)
    np.testing.assert_allclose(y[0], luma, atol=1.0)  # float32 vs float64 rounding of .5
    # grey image into a 3-channel model: repeated
    z = prepare_image(image[..., 0], InputContract("x", (None, 2, 2, 3), layout="NHWC"))
    np.testing.assert_array_equal(z[0], np.repeat(image[..., :1], 3, -1).astype(np.float32))


def test_flat_input_takes_the_pixels_row_major():
    contract = InputContract("x", (None, 784), "float32", scale=0.5)
    batch = RNG.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(prepare_images(batch, contract),
                                  batch.reshape(3, 784).astype(np.float32) * 0.5)


@pytest.mark.parametrize("image, contract, error, words", [
    (np.zeros((20, 20), np.uint8), InputContract("x", (None, 1, 28, 28), layout="NCHW"),
     ShapeError, "28x28"),
    (np.zeros((28, 28), np.float32), InputContract("x", (None, 28, 28)), DTypeError, "uint8"),
    (np.zeros((28, 28, 2), np.uint8), InputContract("x", (None, 28, 28, 3), layout="NHWC"),
     ShapeError, "3-channel"),
    (np.zeros((2, 2, 2, 2, 2), np.uint8), InputContract("x", (None, 28, 28)), ShapeError,
     "HxW"),
    (np.zeros((10, 10), np.uint8), InputContract("x", (None, 784)), ShapeError, "784"),
])
def test_bad_images_raise_clear_errors(image, contract, error, words):
    with pytest.raises(error, match=words):
        prepare_image(image, contract)


def test_bad_metadata_raises_model_format_errors():
    with pytest.raises(ModelFormatError, match="quantization"):
        InputContract("x", (None, 4), "int8")
    with pytest.raises(ModelFormatError, match="normalisation"):
        InputContract.from_metadata({"normalization": '{"std": [0]}'},
                                    [_Arg("x", ["batch", 4], "float32")])
    with pytest.raises(ModelFormatError, match="no input 0"):
        InputContract.from_metadata({}, [])
    with pytest.raises(EdgeFWError, match="not found"):
        InputContract.from_file("/nonexistent/model.tflite")


def test_metadata_as_loaders_keep_it_json_text():
    meta = {"inputs": '[{"name": "img", "dtype": "uint8", "shape": [-1, 8, 8, 1], '
                      '"layout": "NHWC", "scale": 0.5, "zero_point": 3}]',
            "normalization": '{"scale": 0.00392156862745098}',
            "class_labels": "cat, dog"}
    contract = InputContract.from_metadata(meta)
    assert (contract.name, contract.shape, contract.dtype, contract.layout) == \
        ("img", (None, 8, 8, 1), "uint8", "NHWC")
    assert (contract.quant_scale, contract.quant_zero_point) == (0.5, 3)
    assert contract.class_labels == ("cat", "dog")
    assert contract.to_metadata()["normalization"] == {"scale": 1 / 255}


class _Arg:
    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, shape, dtype

import numpy as np
import pytest
from PIL import Image

from mri_cyclegan.errors import InputError
from mri_cyclegan.io import read_image, write_image


def test_16bit_keeps_full_precision(tmp_path):
    a = (np.arange(40 * 30, dtype=np.uint32).reshape(40, 30) * 50 + 3).astype(np.uint16)  # up to ~60k, odd values
    Image.fromarray(a).save(tmp_path / "a.png")
    arr, info = read_image(tmp_path / "a.png")
    assert info.dtype == "uint16" and arr.shape == (40, 30)
    np.testing.assert_array_equal(arr, a.astype(np.float32))
    write_image(tmp_path / "b.png", arr, info.dtype)
    back = np.array(Image.open(tmp_path / "b.png"))
    np.testing.assert_array_equal(back.astype(np.uint16), a)
    assert Image.open(tmp_path / "b.png").mode.startswith("I")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P"])
def test_8bit_modes_to_one_channel(tmp_path, mode):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (7, 1))
    img = Image.fromarray(gray).convert(mode)
    img.save(tmp_path / "x.png")
    arr, info = read_image(tmp_path / "x.png")
    assert arr.ndim == 2 and arr.shape == gray.shape and info.dtype == "uint8"
    np.testing.assert_allclose(arr, gray, atol=1.0)


def test_tiff_float(tmp_path):
    a = np.random.default_rng(0).random((9, 11)).astype(np.float32) * 1e4
    Image.fromarray(a, mode="F").save(tmp_path / "f.tif")
    arr, info = read_image(tmp_path / "f.tif")
    assert info.dtype == "float32"
    np.testing.assert_array_equal(arr, a)


def test_corrupt_and_truncated(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    Image.fromarray(np.zeros((64, 64), np.uint8) + 7).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")

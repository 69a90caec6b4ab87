"""The TensorFlow-free preprocessing (edgeface.data.images) against training's tf.data ops: same pixels."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeface.data.images import read_image, square_resize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface" / "UTKFace"


def _tf_pixels(path, size):
    import tensorflow as tf

    from edgeface.data.pipeline import decode, decode_and_resize

    decoded = decode(tf.constant(str(path))).numpy()
    return decoded, decode_and_resize(str(path), size).numpy()


def _assert_same(path, sizes=(128, 64, 250)):
    decoded, _ = _tf_pixels(path, sizes[0])
    np.testing.assert_array_equal(read_image(path), decoded, err_msg=f"decode {path}")
    for size in sizes:
        np.testing.assert_array_equal(square_resize(read_image(path), size), _tf_pixels(path, size)[1],
                                      err_msg=f"resize {path} to {size}")


def _save(tmp_path, name, array, **kwargs):
    path = tmp_path / name
    Image.fromarray(array).save(path, **kwargs)
    return path


@pytest.fixture
def photo():
    """A smooth colour image with edges (JPEG chroma subsampling and the resize kernel both matter on it)."""
    y, x = np.mgrid[0:150, 0:210]
    rgb = np.stack([x * 255 / 210, y * 255 / 150, (x + y) % 64 * 4], -1)
    rgb[40:90, 60:120] = (250, 10, 30)
    return rgb.astype(np.uint8)


@pytest.mark.parametrize("name,kwargs", [
    ("q90.jpg", {"quality": 90}),
    ("444.jpg", {"quality": 95, "subsampling": 0}),
    ("progressive.jpg", {"quality": 80, "progressive": True}),
    ("plain.png", {}), ("plain.bmp", {}), ("plain.webp", {"quality": 80}),
])
def test_formats_decode_and_resize_like_tensorflow(tmp_path, photo, name, kwargs):
    _assert_same(_save(tmp_path, name, photo, **kwargs))


def test_special_modes_like_tensorflow(tmp_path, photo):
    gray = photo[..., 0]
    _assert_same(_save(tmp_path, "gray.jpg", gray, quality=90))
    _assert_same(_save(tmp_path, "gray.png", gray))
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 7, np.uint8)], -1)
    _assert_same(_save(tmp_path, "rgba.png", rgba))  # alpha dropped, not composited
    Image.fromarray(photo).convert("P").save(tmp_path / "palette.png")
    _assert_same(tmp_path / "palette.png")
    Image.fromarray(photo).convert("P").save(tmp_path / "first.gif")
    _assert_same(tmp_path / "first.gif")
    Image.fromarray((gray.astype(np.uint16) * 257 + 3)).save(tmp_path / "sixteen.png")  # 16-bit grey
    _assert_same(tmp_path / "sixteen.png")


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not present (the UTKFace chips)")
def test_utkface_chips_like_tensorflow():
    for path in sorted(SHARED.glob("*.jpg"))[::400][:40]:
        _assert_same(path, sizes=(128, 96, 160))


def test_corrupt_image_is_one_line(tmp_path):
    from edgeface.errors import EdgefaceError

    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    with pytest.raises(EdgefaceError, match="broken.jpg: unreadable image"):
        read_image(path)


def test_predict_with_an_artifact_does_not_import_tensorflow(tmp_path, photo):
    """Commands that run a TFLite/ONNX artifact start without TensorFlow (issue 21: ~4 s of every start)."""
    image = _save(tmp_path, "face.jpg", photo, quality=90)
    code = ("import sys; from edgeface.cli import main; sys.argv = ['edgeface', 'predict', sys.argv[1], '--json'];"
            "\ntry: main()\nexcept SystemExit as e: assert not e.code, e.code"
            "\nassert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    out = subprocess.run([sys.executable, "-c", code, str(image)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"prob_male"' in out.stdout

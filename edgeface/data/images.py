"""The preprocessing every consumer outside training uses (eval, predict, calibration, export checks, benchmarks),
without TensorFlow: file -> uint8 RGB -> centre square crop -> antialiased bilinear resize -> normalize.

Training decodes and resizes inside tf.data (edgeface.data.pipeline); this module computes the same pixels:
JPEGs are decoded by libjpeg-turbo with the accurate integer IDCT (ISLOW) and fancy upsampling, byte for byte
what Chromium's and the phone platforms' decoders give (TensorFlow's default fast IDCT differs by about one level
on 64% of pixels), the resize uses the weights of TensorFlow's antialiased scale-and-translate (triangle kernel
widened by the downscale factor, each row normalized, float32 sums in the kernel's order: rows, then columns).
tests/test_images.py holds both paths to the same bytes."""
from __future__ import annotations

import functools
import io
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import simplejpeg
from PIL import Image

from edgeface.errors import EdgefaceError

JPEG_MAGIC = b"\xff\xd8"
MAX_FILE_BYTES = 64 << 20  # an image file larger than this is refused before it is read
# What the model card says of decoding and resizing, so an app reproduces these pixels without reading this code
# (webapp/preprocess.js does, and its test holds it to this module byte for byte).
DECODE_CARD = {
    "jpeg": "libjpeg-turbo, accurate integer IDCT (JDCT_ISLOW), fancy upsampling: what Chromium, Android's "
            "BitmapFactory and iOS' ImageIO give; not TensorFlow's default fast IDCT",
    "other": "PNG, GIF (first frame), BMP, WebP: 8-bit RGB as stored, alpha dropped, 16-bit samples shifted to 8",
    "colour": "no colour management (an embedded ICC profile is ignored)",
    "exif": "face chips are used as stored; `predict --detect` turns photos upright by their EXIF orientation",
}
RESIZE_CARD = {
    "crop": "centre square: side = min(h, w), top = (h - side) // 2, left = (w - side) // 2",
    "kernel": "TensorFlow's antialiased bilinear (tf.image.resize(..., 'bilinear', antialias=True), the triangle "
              "kernel of scale_and_translate): per axis, output x samples the source at s = (x + 0.5) * in / out; "
              "radius r = max(in / out, 1); source pixels i from ceil(s - r - 0.5) to floor(s + r - 0.5) "
              "(clamped to the image) weigh max(0, 1 - |i + 0.5 - s| / r), divided by their sum; all in float32, "
              "sums in source order; rows first, then columns",
    "rounding": "round half to even, then clamp to 0-255 (uint8)",
    "reference": "edgeface/data/images.py (Python), webapp/preprocess.js (JavaScript, the same bytes)",
    "warning": "a canvas or bitmap scaler (drawImage, createScaledBitmap, UIGraphics) is another kernel: it moves "
               "the predicted age by about 0.4 years on average and up to several years (BENCHMARKS.md, apps)",
}


def regular_file_problem(path: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Why a path may not be read as a data file (not a regular file: a FIFO would block; too large), or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "file not found"
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > max_bytes:
        return f"{info.st_size / 2 ** 20:.0f} MiB, above the {max_bytes >> 20} MiB limit for an image"
    return None


def read_image(path) -> np.ndarray:
    """uint8 (H, W, 3) RGB pixels of a JPEG, PNG, GIF (first frame), BMP or WebP file, as TensorFlow's
    pipeline's `decode` gives them (alpha dropped, no EXIF rotation, 16-bit samples shifted to 8)."""
    problem = regular_file_problem(str(path))  # every path read, recorded splits included: a FIFO would block
    if problem:
        raise EdgefaceError(f"{path}: {problem}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        if data[:2] == JPEG_MAGIC:
            # tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE"): JDCT_ISLOW and fancy upsampling
            return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False)
        with Image.open(io.BytesIO(data)) as image:  # the bytes already read, not the file again
            if image.mode.startswith("I;16") or image.mode == "I":
                return np.repeat((np.asarray(image, np.uint32) >> 8).astype(np.uint8)[..., None], 3, axis=-1)
            return np.asarray(image.convert("RGB"))
    except Exception as err:  # decoders raise many types for corrupt files
        raise EdgefaceError(f"{path}: unreadable image ({type(err).__name__}: {str(err)[:80]})") from None


@functools.lru_cache(maxsize=64)
def image_size(path) -> tuple[int, int]:
    """(width, height) from the file's header, nothing decoded (call after the image check)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _spans(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source start (n_out,) and weights (n_out, span) of TensorFlow's antialiased bilinear resize along one
    axis (tensorflow/core/kernels/image/scale_and_translate_op.cc, ComputeSpansCore with the triangle kernel)."""
    f32 = np.float32
    inv_scale = f32(1.0 / float(f32(n_out) / f32(n_in)))  # the kernel divides in double, stores a float
    kernel_scale = max(inv_scale, f32(1))
    one_over_kernel_scale = f32(1) / kernel_scale
    span = min(2 * int(np.ceil(kernel_scale)) + 1, n_in)
    starts = np.zeros(n_out, np.int64)
    weights = np.zeros((n_out, span), np.float32)
    for x in range(n_out):
        sample = (f32(x) + f32(0.5)) * inv_scale
        start = min(max(int(np.ceil(sample - kernel_scale - f32(0.5))), 0), n_in - 1)
        end = min(max(int(np.floor(sample + kernel_scale - f32(0.5))), 0), n_in - 1) + 1
        source = np.arange(start, end, dtype=np.float32)
        k = np.maximum(f32(0), f32(1) - np.abs((source + f32(0.5) - sample) * one_over_kernel_scale))
        total = f32(0)
        for value in k:  # summed in order, in float32, as the kernel does
            total = f32(total + value)
        if total > 0:
            starts[x] = min(start, n_in - span)
            weights[x, start - starts[x]:end - starts[x]] = k * (f32(1) / total)
    return starts, weights


def _gather(image: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Resamples one axis, each output a float32 sum over its span in source order (zero weights add nothing)."""
    starts, weights = _spans(image.shape[axis], n_out)
    out = np.zeros(image.shape[:axis] + (n_out,) + image.shape[axis + 1:], np.float32)
    shape = [1] * image.ndim
    shape[axis] = n_out
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape(shape) * np.take(image, starts + k, axis=axis)
    return out


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> (size, size, 3): centre-crop to square, antialiased bilinear resize (rows, then
    columns, as TensorFlow's kernel gathers them)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side].astype(np.float32)
    out = _gather(_gather(square, 0, size), 1, size)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def load_image(path, size: int) -> np.ndarray:
    return square_resize(read_image(path), size)


def load_images(paths, size: int, threads: int = 4) -> np.ndarray:
    """Decoded, square-cropped, resized uint8 images for a list of files (N, size, size, 3)."""
    paths = [str(p) for p in paths]
    if not paths:
        return np.zeros((0, size, size, 3), np.uint8)
    with ThreadPoolExecutor(threads) as pool:  # the decoder and numpy release the GIL
        return np.stack(list(pool.map(functools.partial(load_image, size=size), paths)))


def normalize(images, config):
    """uint8/float 0-255 RGB pixels -> what the network expects (numpy arrays, or tf tensors inside tf.data).
    `config` is anything with mean, std (per channel, 0-255 scale) and channel_order: a backbone's registered
    config or a model card's input."""
    mean = np.asarray(config.mean, np.float32)
    std = np.asarray(config.std, np.float32)
    if isinstance(images, np.ndarray):
        images = images.astype(np.float32)
    else:
        import tensorflow as tf  # a tensor: TensorFlow is loaded already

        images = tf.cast(images, tf.float32)
    if config.channel_order == "BGR":
        images = images[..., ::-1]
    return (images - mean) / std

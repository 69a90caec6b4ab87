"""The tf.data input pipeline for training. `decode_and_resize` is edgeface.data.images' preprocessing
(what eval, predict, calibration, export checks and benchmarks use, without TensorFlow) as graph ops;
tests/test_images.py holds the two to the same pixels, so train and deploy cannot drift apart."""
from __future__ import annotations

import functools
import math

import tensorflow as tf

from edgeface.data.augment import AugmentConfig
from edgeface.data.images import normalize

AUTOTUNE = tf.data.AUTOTUNE


# ---- preprocessing (edgeface.data.images as graph ops) -----------------------------------------------
def decode(path):
    """File -> uint8 RGB (H, W, 3). JPEGs with libjpeg-turbo's accurate integer IDCT (ISLOW), what browsers and
    phone decoders produce, not TensorFlow's default fast one (no measurable accuracy difference, BENCHMARKS.md
    apps section; 0.3 years of age noise per image between the two)."""
    data = tf.io.read_file(path)
    return tf.cond(tf.io.is_jpeg(data),
                   lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                   lambda: tf.io.decode_image(data, channels=3, expand_animations=False))


def decode_and_resize(path, size: int):
    """File -> uint8 (size, size, 3): decode, centre-crop to square, antialiased bilinear resize."""
    return square_resize(decode(path), size)


def square_resize(image, size: int):
    """uint8 RGB (H, W, 3) -> (size, size, 3): centre-crop to square, antialiased bilinear resize."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


# ---- augmentation ----------------------------------------------------------------------------------------
def _affine(image, angle, zoom, shear, tx, ty):
    """One projective warp for rotation (radians), zoom (scale), shear and translation (pixels)."""
    h = tf.cast(tf.shape(image)[0], tf.float32)
    w = tf.cast(tf.shape(image)[1], tf.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    a0, a1 = cos, -sin + cos * shear
    b0, b1 = sin, cos + sin * shear
    transform = tf.stack([a0, a1, cx - a0 * cx - a1 * cy + tx, b0, b1, cy - b0 * cx - b1 * cy + ty, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    return out[0]


def _uniform(seed, limit):
    return tf.random.stateless_uniform([], seed, -limit, limit)


def _randaugment_op(image, seed, magnitude: float):
    m = magnitude / 10.0
    size = tf.cast(tf.shape(image)[0], tf.float32)
    s = tf.random.experimental.stateless_split(seed, 2)
    sign = tf.where(tf.random.stateless_uniform([], s[0]) < 0.5, -1.0, 1.0)
    zero = tf.constant(0.0)

    def warp(angle=zero, shear=zero, tx=zero, ty=zero):
        return lambda: _affine(image, angle, tf.constant(1.0), shear, tx, ty)

    branches = [
        lambda: image,
        warp(angle=sign * m * math.radians(30)),
        warp(shear=sign * m * 0.3),
        lambda: tf.transpose(_affine(tf.transpose(image, [1, 0, 2]), zero, tf.constant(1.0),
                                     sign * m * 0.3, zero, zero), [1, 0, 2]),
        warp(tx=sign * m * 0.3 * size),
        warp(ty=sign * m * 0.3 * size),
        lambda: image + sign * m * 0.5 * 255,
        lambda: (image - tf.reduce_mean(image)) * (1 + sign * m * 0.9) + tf.reduce_mean(image),
        lambda: tf.where(image < 255 * (1 - m), image, 255 - image),  # solarize
        lambda: tf.floor(image / 2 ** tf.round(4 * m)) * 2 ** tf.round(4 * m),  # posterize
        lambda: (image - tf.reduce_min(image)) * 255 / tf.maximum(tf.reduce_max(image) - tf.reduce_min(image), 1.0),
        lambda: tf.image.adjust_saturation(image, 1 + sign * m * 0.9),
    ]
    index = tf.random.stateless_uniform([], s[1], 0, len(branches), dtype=tf.int32)
    return tf.clip_by_value(tf.switch_case(index, branches), 0, 255)


def augment_image(image, seed, cfg: AugmentConfig):
    """uint8 image + per-image seed -> augmented float 0-255 image. Stateless: same seed, same result."""
    image = tf.cast(image, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 8 + cfg.randaugment)
    size = tf.cast(tf.shape(image)[0], tf.float32)
    if cfg.flip:
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if cfg.rotation or cfg.zoom or cfg.shear or cfg.translate:
        image = _affine(
            image, _uniform(seeds[1], math.radians(cfg.rotation)), 1.0 + _uniform(seeds[2], cfg.zoom),
            _uniform(seeds[3], cfg.shear), _uniform(seeds[4], cfg.translate) * size,
            _uniform(seeds[5], cfg.translate) * size)
    if cfg.brightness:
        image = image + _uniform(seeds[6], cfg.brightness) * 255
    if cfg.contrast:
        image = tf.image.stateless_random_contrast(image, 1 - cfg.contrast, 1 + cfg.contrast, seeds[7])
    for i in range(cfg.randaugment):
        image = _randaugment_op(image, seeds[8 + i], float(cfg.randaugment_magnitude))
    if cfg.framing != "none":
        image = _detector_framing(image, tf.random.experimental.stateless_fold_in(seed, 1001), cfg.framing)
    return tf.clip_by_value(image, 0, 255)


def _detector_framing(image, seed, detector: str):
    """The chip re-cut as the detector's crop could cut it: Gaussian crop size, centre and angle errors with the
    standard deviations measured on training chips (edgeface.data.framing), edges reflected."""
    from edgeface.data.framing import CONTRACTS

    size_sd, right_sd, down_sd, angle_sd = CONTRACTS[detector].spread
    draw = tf.random.stateless_normal([4], seed) * tf.constant([size_sd, right_sd, down_sd, math.radians(angle_sd)])
    size = tf.cast(tf.shape(image)[0], tf.float32)
    # a crop larger by (1 + e) shows the content smaller by that factor; a crop shifted right moves it left
    return _affine(image, draw[3], 1.0 / (1.0 + draw[0]), tf.constant(0.0), draw[1] * size, draw[2] * size)


def _mixup(seed, alpha):
    def mix(images, targets, weights):
        s = tf.random.experimental.stateless_split(tf.stack([seed, tf.cast(tf.shape(images)[0], tf.int64)]), 2)
        a = tf.random.stateless_gamma([], s[0], alpha)
        b = tf.random.stateless_gamma([], s[1], alpha)
        lam = a / (a + b)

        def blend(x):
            return lam * x + (1 - lam) * tf.reverse(x, [0])

        return blend(images), {k: blend(v) for k, v in targets.items()}, {k: blend(v) for k, v in weights.items()}

    return mix


# ---- datasets -------------------------------------------------------------------------------------------
def make_dataset(records, spec, *, training: bool, batch_size: int, seed: int = 0,
                 augment: AugmentConfig | None = None, class_weight: dict | None = None,
                 band_weight: dict | None = None, cache: bool = True, epochs: tuple[int, int] = (0, 1)
                 ) -> tf.data.Dataset:
    """(normalized images, targets, sample weights) batches; shuffled and augmented only when training. `spec`
    (a ModelSpec) gives the input size, the normalization and the targets its heads train on.

    Training: the batches of epochs `epochs[0]` up to (not including) `epochs[1]`, one after the other (fit them
    with steps_per_epoch = ceil(len(records) / batch_size)). Each epoch's order and augmentation come from (seed,
    epoch) alone, not from how many epochs this process iterated, so a run resumed at epoch k sees exactly the
    batches the uninterrupted run saw at k (issue 32 item 6). Images are decoded once (the cache is shared)."""
    config = spec.backbone_config
    size = spec.input_size
    targets, weights = (spec.encode_targets(records, class_weight, band_weight) if training
                        else spec.encode_targets(records))
    ds = tf.data.Dataset.from_tensor_slices(([r.path for r in records], targets, weights))
    ds = ds.map(lambda p, t, w: (decode_and_resize(p, size), t, w), num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if training:
        augment = augment or AugmentConfig()
        base, n = ds, len(records)

        def one_epoch(epoch: int):
            key = seed * 1_000_003 + epoch  # a Python int: a tensor seed trips tf.data when the global seed is 0
            shuffled = base.shuffle(n, seed=key, reshuffle_each_iteration=False).enumerate()
            out = shuffled.map(
                lambda i, item: (normalize(augment_image(item[0], tf.stack([i, tf.constant(key, tf.int64)]),
                                                         augment), config), item[1], item[2]),
                num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size)
            if augment.mixup:
                out = out.enumerate().map(lambda j, b: _mixup(key * 7919 + j, augment.mixup)(*b),
                                          num_parallel_calls=AUTOTUNE, deterministic=True)
            return out

        ds = functools.reduce(lambda a, b: a.concatenate(b), (one_epoch(e) for e in range(*epochs)))
    else:
        ds = ds.map(lambda x, t, w: (normalize(x, config), t, w), num_parallel_calls=AUTOTUNE,
                    deterministic=True).batch(batch_size)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)

import numpy as np
import pytest
import tensorflow as tf

from edgeface.data import load_data
from edgeface.data.augment import AugmentConfig
from edgeface.data.images import load_images, normalize
from edgeface.data.pipeline import augment_image, make_dataset
from edgeface.models import ModelSpec, get_backbone_config


@pytest.fixture
def records(csv_manifest):
    return load_data(f"csv:{csv_manifest}")["train"]


def batches(ds):
    return [(x.numpy(), {k: v.numpy() for k, v in t.items()}) for x, t, w in ds]


def test_training_pipeline_is_deterministic_per_seed(records):
    spec = ModelSpec(backbone="compact_cnn", input_size=32, weights="none")
    cfg = AugmentConfig(randaugment=2, mixup=0.2)
    first = batches(make_dataset(records, spec, training=True, batch_size=8, seed=5, augment=cfg))
    again = batches(make_dataset(records, spec, training=True, batch_size=8, seed=5, augment=cfg))
    other = batches(make_dataset(records, spec, training=True, batch_size=8, seed=6, augment=cfg))
    for (x1, t1), (x2, t2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(t1["age"], t2["age"])
    assert not np.array_equal(first[0][0], other[0][0])


def test_augmentation_changes_between_epochs_but_eval_does_not(records):
    spec = ModelSpec(backbone="compact_cnn", input_size=32, weights="none")
    steps = -(-len(records) // 64)
    two = batches(make_dataset(records, spec, training=True, batch_size=64, seed=1, epochs=(0, 2)))
    assert len(two) == 2 * steps
    epoch1, epoch2 = two[0][0], two[steps][0]
    assert not np.array_equal(epoch1, epoch2)
    # a run resumed at epoch 1 gets exactly the batches the uninterrupted run got there (issue 32 item 6)
    resumed = batches(make_dataset(records, spec, training=True, batch_size=64, seed=1, epochs=(1, 2)))
    for (x1, t1), (x2, t2) in zip(two[steps:], resumed, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(t1["age"], t2["age"])
    evaluation = make_dataset(records, spec, training=False, batch_size=64)
    np.testing.assert_array_equal(batches(evaluation)[0][0], batches(evaluation)[0][0])
    expected = normalize(load_images([r.path for r in records], 32), spec.backbone_config)
    np.testing.assert_allclose(batches(evaluation)[0][0], expected, atol=1e-6)


def test_normalize_matches_between_numpy_and_tf_and_honours_bgr():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    for name in ("mobilenet_v2", "resnet50", "efficientnet_b0"):
        config = get_backbone_config(name)
        np.testing.assert_allclose(normalize(pixels, config), normalize(tf.constant(pixels), config).numpy(),
                                   atol=1e-5)
    bgr = normalize(pixels, get_backbone_config("resnet50"))
    np.testing.assert_allclose(bgr[..., 0], pixels[..., 2] - 103.939, atol=1e-4)


def test_augment_keeps_range_and_shape():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (48, 48, 3)), tf.uint8)
    out = augment_image(image, tf.constant([1, 2], tf.int64), AugmentConfig(shear=0.2, randaugment=3))
    assert out.shape == (48, 48, 3) and 0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255


def test_missing_labels_get_zero_weight(records):
    from dataclasses import replace
    spec = ModelSpec(backbone="compact_cnn", input_size=32, weights="none")
    unlabelled = [replace(records[0], gender=None, age=None, age_group=None)] + records[1:3]
    _, _, weights = next(iter(make_dataset(unlabelled, spec, training=False, batch_size=3)))
    assert weights["gender"].numpy().tolist() == [0, 1, 1] and weights["age"].numpy().tolist() == [0, 1, 1]


def test_non_square_images_are_centre_cropped(tmp_path):
    from PIL import Image
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, 20:40] = 255  # the centre square is white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    out = load_images([tmp_path / "wide.png"], 16)
    assert out.shape == (1, 16, 16, 3) and out.min() == 255


def test_detector_framing_augmentation_moves_the_crop_reproducibly():
    from edgeface.errors import EdgefaceError
    from edgeface.run.train_config import TrainConfig

    image = tf.constant(np.random.default_rng(2).integers(0, 256, (48, 48, 3)), tf.uint8)
    still = AugmentConfig(flip=False, rotation=0, zoom=0, translate=0, brightness=0, contrast=0)
    seed = tf.constant([3, 4], tf.int64)
    np.testing.assert_array_equal(augment_image(image, seed, still).numpy(), image.numpy().astype(np.float32))
    framed = still.replace(framing="blazeface")
    once, again = augment_image(image, seed, framed), augment_image(image, seed, framed)
    np.testing.assert_array_equal(once.numpy(), again.numpy())
    assert float(tf.reduce_mean(tf.abs(once - tf.cast(image, tf.float32)))) > 1.0
    assert TrainConfig(augment={"framing": "blazeface-full"}).augment.framing == "blazeface-full"
    with pytest.raises(EdgefaceError, match="augment.framing"):
        TrainConfig(augment={"framing": "yolo"})

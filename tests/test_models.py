import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import IMAGENET, require_shared
from edgeface.errors import EdgefaceError
import edgeface
from edgeface.labels import AGE_GROUPS, age_to_group
from edgeface.models import ModelSpec, create_model, get_backbone_config, list_backbones
from edgeface.models.age_heads import AGE_HEADS, age_head
from edgeface.utils import write_json


def tiny_size(name):
    return max(32, get_backbone_config(name).min_input_size)


# the two largest graphs take 5-10 s each to build: slow tier
@pytest.mark.parametrize("backbone", [pytest.param(b, marks=pytest.mark.slow) if b in ("inception_resnet_v2", "vgg19")
                                      else b for b in list_backbones()])
def test_every_backbone_builds_runs_and_trains(backbone):
    spec = ModelSpec(backbone=backbone, input_size=tiny_size(backbone), weights="none")
    model = create_model(spec)
    x = tf.random.uniform((2, spec.input_size, spec.input_size, 3), -1, 1, seed=0)
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(out["gender"]) + tf.reduce_mean(out["age"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert out["gender"].shape == (2, 1) and out["age"].shape == (2, spec.head().units())
    assert all(g is not None for g in grads), "some trainable weights get no gradient"
    assert all(np.isfinite(g.numpy()).all() for g in grads if not isinstance(g, tf.IndexedSlices))


def test_spec_round_trips_and_model_reloads(tmp_path):
    spec = ModelSpec(backbone="compact_cnn", input_size=48, weights="none", age_head="ordinal")
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert ModelSpec.from_config(spec.get_config()) == spec
    model = create_model(spec)
    model.save(tmp_path / "model.keras")
    write_json(tmp_path / "model.json", spec.to_dict())
    predictor = edgeface.load(tmp_path / "model.keras")
    loaded = predictor.runner.model
    x = np.random.default_rng(0).uniform(-1, 1, (3, 48, 48, 3)).astype("float32")
    assert predictor.spec == spec and predictor.card is None
    np.testing.assert_allclose(loaded(x)["age"], model(x)["age"], atol=1e-6)
    assert loaded(x)["age"].shape == (3, 100)


@pytest.mark.parametrize("head,units", [("groups", len(AGE_GROUPS)), ("ordinal", len(AGE_GROUPS) - 1)])
def test_age_heads_for_group_labels(head, units):
    model = create_model(backbone="compact_cnn", input_size=32, weights="none", age_head=head, numeric_age=False)
    assert model.output["age"].shape[-1] == units


@pytest.mark.parametrize("backbone,keras_preprocess", [
    ("resnet50", "resnet50"), ("vgg16", "vgg16"), ("mobilenet_v2", "mobilenet_v2"), ("mobilenet_v1", "mobilenet"),
    ("efficientnet_b0", "efficientnet"), ("inception_v3", "inception_v3"), ("vgg19", "vgg19"),
    ("efficientnet_v2_b0", "efficientnet_v2")])
def test_config_carries_normalization(backbone, keras_preprocess):
    """The normalization a backbone's config declares (and its card records) is what Keras' own preprocess_input
    for those ImageNet weights does: an independent oracle (a BGR/mean mix-up fails here)."""
    import importlib

    from edgeface.data.images import normalize

    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    oracle = importlib.import_module(f"tf_keras.applications.{keras_preprocess}").preprocess_input(pixels.copy())
    np.testing.assert_allclose(normalize(pixels, get_backbone_config(backbone)), oracle, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kwargs,message", [
    ({"backbone": "mobilenet_v9"}, "unknown backbone"),
    ({"backbone": "compact_cnn", "alpha": 0.5}, "no width multiplier"),
    ({"backbone": "inception_v3", "input_size": 32}, "outside"),
    ({"backbone": "compact_cnn", "numeric_age": False}, "needs numeric ages"),
    ({"backbone": "compact_cnn", "tasks": ("smile",)}, "tasks must be"),
])
def test_bad_specs_fail_clearly(kwargs, message):
    with pytest.raises(EdgefaceError, match=message):
        ModelSpec(**kwargs)


@pytest.mark.parametrize("how", ["weights_dir", "environment"])
def test_imagenet_weights_load_from_local_folder(monkeypatch, tmp_path, how):
    """The folder comes with the build (create_model(..., weights_dir), a run's --weights-dir), not from a
    process-wide setting; EDGEFACE_WEIGHTS_DIR is the fallback."""
    folder = require_shared(IMAGENET)
    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras cache to fall back to
    if how == "environment":
        monkeypatch.setenv("EDGEFACE_WEIGHTS_DIR", str(folder))
    model = create_model(backbone="mobilenet_v1", alpha=0.25, input_size=64, weights="imagenet",
                         weights_dir=str(folder) if how == "weights_dir" else None)
    scratch = create_model(backbone="mobilenet_v1", alpha=0.25, input_size=64, weights="none")
    k = model.get_layer("conv1").kernel.numpy()
    assert k.std() > 0 and not np.allclose(k, scratch.get_layer("conv1").kernel.numpy())


def test_imagenet_weights_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EDGEFACE_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(EdgefaceError, match="ImageNet weights for efficientnet_b0"):
        create_model(backbone="efficientnet_b0", input_size=32, weights="imagenet")


def test_age_groups_and_ordinal_decoding():
    assert list(age_to_group([0, 3, 4, 13, 22, 30, 40, 50, 80])) == [0, 0, 1, 2, 3, 4, 5, 6, 7]
    years = np.array([0, 1, 37, 100, 116], np.float32)
    ordinal = age_head("ordinal", numeric_age=True)
    targets = ordinal.targets(years, age_to_group(years))
    decoded = ordinal.decode(targets * 0.9 + 0.05)
    assert list(decoded["years"]) == [0, 1, 37, 100, 100]
    groups = age_head("groups", numeric_age=False).decode(np.eye(8)[[2, 7]])
    assert list(groups["group"]) == [2, 7] and not groups["numeric"]


@pytest.mark.parametrize("name", list(AGE_HEADS))
@pytest.mark.parametrize("numeric_age", [True, False])
def test_every_age_head_encodes_decodes_and_describes_itself(name, numeric_age):
    """One registry entry per head kind: layer width, targets, decoding and card output agree."""
    if AGE_HEADS[name].needs_years and not numeric_age:
        with pytest.raises(EdgefaceError, match="needs numeric ages"):
            ModelSpec(backbone="compact_cnn", age_head=name, numeric_age=False)
        return
    spec = ModelSpec(backbone="compact_cnn", input_size=32, weights="none", age_head=name, numeric_age=numeric_age)
    head = spec.head()
    years = np.array([8.0, 25.0, 47.0, 70.0], np.float32)  # away from 0 and 100, where a Gaussian is cut off
    groups = age_to_group(years)
    targets = head.targets(years, groups).reshape(4, -1)
    model = create_model(spec)
    assert model.output["age"].shape[-1] == head.units()
    card = head.card_output()
    assert card["shape"] == [-1, head.units()] and card["decoding"] == head.decoding()
    if name in ("groups", "ordinal"):  # a perfect output decodes back to the label
        decoded = head.decode(targets)
        want = years if numeric_age and name == "ordinal" else groups
        assert list(decoded["years" if numeric_age and name == "ordinal" else "group"]) == list(want)
    if head.needs_years:
        y = tf.constant(years[:, None])
        np.testing.assert_allclose(head.years(head.from_years(y)).numpy()[:, 0], years, atol=0.01)


def test_age_distribution_loss_is_lowest_at_the_true_age_and_decodes_to_its_mean():
    from edgeface.models.age_losses import ExpectedAgeMAE
    ages = np.arange(101, dtype=np.float32)

    def peaked(center):
        p = np.exp(-0.5 * ((ages - center) / 2.0) ** 2)
        return (p / p.sum())[None].astype(np.float32)

    loss = age_head("distribution").loss()
    y = tf.constant([[30.0]])
    at, near, far = (float(loss(y, tf.constant(peaked(c)))) for c in (30, 33, 60))
    assert at < 1e-3 < near < far
    assert age_head("distribution").decode(peaked(30) * 0.5)["years"][0] == pytest.approx(30, abs=1e-3)
    mae = ExpectedAgeMAE()
    mae.update_state(y, tf.constant(peaked(33)))
    assert float(mae.result()) == pytest.approx(3.0, abs=1e-3)

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import IMAGENET, require_shared
from edgeface.errors import EdgefaceError
from edgeface.models import ModelSpec, create_model, get_backbone_config, list_backbones, load_model
from edgeface.models.heads import AGE_GROUPS, age_to_group, decode_age, ordinal_targets


def tiny_size(name):
    return max(32, get_backbone_config(name).min_input_size)


@pytest.mark.parametrize("backbone", list_backbones())
def test_every_backbone_builds_runs_and_trains(backbone):
    spec = ModelSpec(backbone=backbone, input_size=tiny_size(backbone), weights="none")
    model = create_model(spec)
    x = tf.random.uniform((2, spec.input_size, spec.input_size, 3), -1, 1, seed=0)
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(out["gender"]) + tf.reduce_mean(out["age"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert out["gender"].shape == (2, 1) and out["age"].shape == (2, 1)
    assert all(g is not None for g in grads), "some trainable weights get no gradient"
    assert all(np.isfinite(g.numpy()).all() for g in grads if not isinstance(g, tf.IndexedSlices))


def test_spec_round_trips_and_model_reloads(tmp_path):
    spec = ModelSpec(backbone="compact_cnn", input_size=48, weights="none", age_head="ordinal")
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    model = create_model(spec)
    model.save(tmp_path / "best.keras")
    spec.save(tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 48, 48, 3)).astype("float32")
    assert loaded_spec == spec
    np.testing.assert_allclose(loaded(x)["age"], model(x)["age"], atol=1e-6)
    assert loaded(x)["age"].shape == (3, 100)


@pytest.mark.parametrize("head,units", [("groups", len(AGE_GROUPS)), ("ordinal", len(AGE_GROUPS) - 1)])
def test_age_heads_for_group_labels(head, units):
    model = create_model(backbone="compact_cnn", input_size=32, weights="none", age_head=head, numeric_age=False)
    assert model.output["age"].shape[-1] == units


def test_config_carries_normalization():
    assert get_backbone_config("resnet50").channel_order == "BGR"
    assert get_backbone_config("mobilenet_v2").mean == (127.5, 127.5, 127.5)


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


def test_imagenet_weights_load_from_local_folder(monkeypatch):
    folder = require_shared(IMAGENET)
    monkeypatch.setenv("EDGEFACE_WEIGHTS_DIR", str(folder))
    model = create_model(backbone="mobilenet_v1", alpha=0.25, input_size=64, weights="imagenet")
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
    years = np.array([0, 1, 37, 100, 116])
    targets = ordinal_targets(years, 100)
    decoded = decode_age(targets * 0.9 + 0.05, "ordinal", numeric_age=True)
    assert list(decoded["years"]) == [0, 1, 37, 100, 100]
    groups = decode_age(np.eye(8)[[2, 7]], "groups", numeric_age=False)
    assert list(groups["group"]) == [2, 7]


def test_age_distribution_loss_is_lowest_at_the_true_age_and_decodes_to_its_mean():
    import tensorflow as tf
    from edgeface.train.losses import AgeDistributionLoss, ExpectedAgeMAE
    ages = np.arange(101, dtype=np.float32)

    def peaked(center):
        p = np.exp(-0.5 * ((ages - center) / 2.0) ** 2)
        return (p / p.sum())[None].astype(np.float32)

    loss = AgeDistributionLoss()
    y = tf.constant([[30.0]])
    at, near, far = (float(loss(y, tf.constant(peaked(c)))) for c in (30, 33, 60))
    assert at < 1e-3 < near < far
    assert decode_age(peaked(30) * 0.5, "distribution", numeric_age=True)["years"][0] == pytest.approx(30, abs=1e-3)
    mae = ExpectedAgeMAE()
    mae.update_state(y, tf.constant(peaked(33)))
    assert float(mae.result()) == pytest.approx(3.0, abs=1e-3)

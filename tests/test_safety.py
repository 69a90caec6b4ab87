"""No Keras model file can make edgeface call a function it names (fault sweep 2, item 1). Each attack is first
shown to work on plain Keras (so the test can fail), then refused by edgeface before Keras reads the file."""
from __future__ import annotations

import json
import zipfile

import pytest
import tf_keras as keras

from edgeface.errors import EdgefaceError
from edgeface.models import create_model, list_backbones, load_keras
from edgeface.models.registry import get_backbone_config
from edgeface.models.safety import MAX_DEPTH, check_config, check_model_file


def _tiny(tmp_path):
    inputs = keras.Input((4,), name="x")
    out = keras.layers.Activation("relu", name="act")(keras.layers.Dense(2, name="dense")(inputs))
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, out).save(path)
    return path


def _rewrite(src, dst, edit):
    """A copy of a .keras zip whose config.json went through `edit`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return dst


def _layer(config, name):
    return next(l for l in config["config"]["layers"] if l["config"]["name"] == name)


def _lambda_function(config):
    act = _layer(config, "act")
    act["class_name"], act["module"], act["registered_name"] = "Lambda", "keras.layers", None
    act["config"] = {"name": "act", "trainable": True, "dtype": "float32", "function": {
                         "module": "pprint", "class_name": "function", "config": "pprint", "registered_name": "function"},
                     "function_type": "function", "module": "pprint", "output_shape": None,
                     "output_shape_type": "raw", "output_shape_module": None, "arguments": {}}


def test_a_lambda_naming_a_module_function_is_refused(tmp_path, capfd):
    """The issue's vector: plain Keras in safe mode accepts it and calls pprint.pprint while loading or predicting."""
    evil = _rewrite(_tiny(tmp_path), tmp_path / "evil.keras", _lambda_function)
    keras.models.load_model(evil, compile=False, safe_mode=True)  # pprint runs while the graph is rebuilt
    assert "Tensor" in capfd.readouterr().out
    with pytest.raises(EdgefaceError, match="is a Lambda"):
        load_keras(evil)
    assert "Tensor" not in capfd.readouterr().out


def test_a_lambda_is_refused_in_hdf5_too(tmp_path, capfd):
    h5 = tmp_path / "model.h5"
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(keras.activations.relu)(inputs)).save(h5)
    with pytest.raises(EdgefaceError, match="is a Lambda"):
        load_keras(h5, hdf5="scan")  # what a run does for its own .h5 files
    assert "tf.Tensor" not in capfd.readouterr().out


def test_tfoplambda_may_name_only_pure_tensor_ops(tmp_path):
    inputs = keras.Input((4,), name="x")
    path = tmp_path / "op.keras"
    keras.Model(inputs, inputs + 3.0).save(path)  # a TFOpLambda '__operators__.add': allowed
    assert load_keras(path) is not None

    def to_write_file(config):
        op = next(l for l in config["config"]["layers"] if l["class_name"] == "TFOpLambda")
        op["config"]["function"] = "io.write_file"

    evil = _rewrite(path, tmp_path / "evil.keras", to_write_file)
    with pytest.raises(EdgefaceError, match="calls tf.io.write_file"):
        load_keras(evil)


def test_unregistered_classes_and_foreign_modules_are_refused(tmp_path):
    def foreign(config):
        dense = _layer(config, "dense")
        dense["class_name"], dense["module"] = "StringLookup", "keras.layers"  # reads a vocabulary file

    with pytest.raises(EdgefaceError, match="names 'StringLookup'"):
        load_keras(_rewrite(_tiny(tmp_path), tmp_path / "a.keras", foreign))

    def module(config):
        _layer(config, "dense")["module"] = "antigravity"  # importing a module runs it

    with pytest.raises(EdgefaceError, match="names module 'antigravity'"):
        load_keras(_rewrite(_tiny(tmp_path), tmp_path / "b.keras", module))


def test_zip_bomb_is_refused_before_anything_is_extracted(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(_tiny(tmp_path)) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item))
        zout.writestr("model.weights.h5", bytes(100 << 20))  # 100 MiB of zeros, ~100 KiB packed
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(EdgefaceError, match="zip bomb"):
        load_keras(bomb)
    assert not any((tmp_path / "tmp").iterdir())


def test_deep_configs_and_broken_zips_are_one_line_errors(tmp_path):
    deep = {"a": None}
    for _ in range(MAX_DEPTH * 50):
        deep = {"class_name": "Dense", "config": deep}
    with pytest.raises(EdgefaceError, match="nested deeper"):
        check_config(deep, "deep.keras")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(EdgefaceError, match="not a readable .keras"):
        load_keras(broken)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", list_backbones())
def test_every_registered_backbone_passes_the_allow_list(backbone, tmp_path):
    """The allow-list must never refuse what edgeface itself saves."""
    size = max(32, get_backbone_config(backbone).min_input_size)
    path = tmp_path / "m.keras"
    create_model(backbone=backbone, input_size=size, weights="none").save(path)
    check_model_file(path)


def test_a_compiled_models_training_config_is_not_read(tmp_path):
    """Runs save their optimizer, losses and metrics (custom ones too); loading never compiles, so they are not
    deserialized and not refused."""
    @keras.utils.register_keras_serializable(package="test_safety")
    class Custom(keras.metrics.Mean):
        pass

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("adam", "mse", metrics=[Custom()])
    model.save(tmp_path / "compiled.keras")
    assert load_keras(tmp_path / "compiled.keras") is not None


def _saved_model(folder, body):
    """A SavedModel whose serving signature runs `body(x)` before returning the edgeface outputs."""
    import tensorflow as tf

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")])
        def serve(self, image):
            body(image)
            pooled = tf.reduce_mean(image, [1, 2])
            return {"gender": tf.sigmoid(pooled[:, :1]), "age": pooled[:, :1]}

    module = Hostile()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.mark.parametrize("attack", ["write_file", "print_to_file"])
def test_a_saved_model_whose_graph_touches_files_is_refused(tmp_path, attack):
    """A SavedModel is a program: tf.io.write_file (or tf.print to a file) in its signature runs on every call.
    The attack is shown to work when TensorFlow loads the folder itself; edgeface refuses it before loading."""
    import tensorflow as tf

    from edgeface.runtime import open_runner
    from edgeface.runtime.graph_safety import saved_model_problem

    victim = tmp_path / "written.txt"
    if attack == "write_file":
        body = lambda x: tf.io.write_file(str(victim), tf.strings.as_string(tf.reduce_sum(x)))  # noqa: E731
    else:
        body = lambda x: tf.print(tf.reduce_sum(x), output_stream=f"file://{victim}")  # noqa: E731
    folder = _saved_model(tmp_path / "hostile", body)
    tf.saved_model.load(str(folder)).signatures["serving_default"](image=tf.zeros([1, 8, 8, 3]))
    assert victim.exists()  # plain TensorFlow ran it
    victim.unlink()
    assert "acts outside the model's tensors" in saved_model_problem(folder)
    with pytest.raises(EdgefaceError, match="acts outside the model's tensors"):
        open_runner(folder)
    assert not victim.exists()
    harmless = _saved_model(tmp_path / "harmless", lambda x: None)
    assert saved_model_problem(harmless) is None  # its saver's checkpoint functions are allowed their ops

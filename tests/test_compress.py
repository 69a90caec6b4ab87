"""Pruning (magnitude, structured) and distillation: each writes a fine-tuned child run that names its parent and
its teachers, resumes from its folder, and reports both models on the same images (QAT: test_qat.py)."""
import numpy as np
import pytest
from click.testing import CliRunner

from compress_runs import distilled, interrupted, resume
from edgeface.cli import main
from edgeface.compress import prune_run, qat_run, structured_prune_run
from edgeface.compress.stats import count_macs, sparsity
from edgeface.compress.structured import prune_channels
from edgeface.errors import EdgefaceError
from edgeface.models import create_model
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.train.trainer import train

pytestmark = pytest.mark.slow  # trains parents and fine-tunes children


@pytest.fixture(scope="module")
def pruned(cnn_parent):
    """Magnitude pruning of the compact CNN that also learns a teacher's soft outputs (its own: any run will do;
    a MobileNetV2 here cost two minutes of the suite, its pruning wrappers are the same tfmot ones)."""
    return prune_run(cnn_parent, sparsity=0.5, schedule="constant", epochs=1, teacher=cnn_parent).path


def test_magnitude_pruning_reaches_target_and_strips(cnn_parent, pruned):
    model = Run(pruned).load_model()
    assert not any("prune_low_magnitude" in l.name for l in model.layers)
    per_layer = sparsity(model)["per_layer"]
    assert per_layer["block3_conv"] == pytest.approx(0.5, abs=0.02)
    assert per_layer["block1_conv"] < 0.05 and per_layer["gender"] < 0.05  # first conv and heads skipped
    config = Run(pruned).config
    assert config.parents == [str(cnn_parent)] and config.compression["method"] == "magnitude"
    assert distilled(Run(pruned), cnn_parent)
    report = Run(pruned).compression
    assert report["model"]["gzip_weights_kb"] < 0.8 * report["parent_model"]["gzip_weights_kb"]


def test_compression_report_scores_both_on_the_same_images_and_flags_a_collapse(cnn_parent, pruned, tmp_path,
                                                                                   caplog):
    import shutil

    from edgeface.compress.reports import compression_report

    report = Run(pruned).compression
    assert report["val_summary"]["images"] == len(Run(pruned).split("val"))
    collapsed = Run(shutil.copytree(pruned, tmp_path / "collapsed"))
    collapsed.write_metrics({**collapsed.metrics, "gender": {**collapsed.metrics["gender"], "accuracy": 0.0}})
    assert "collapsed" in compression_report(collapsed, Run(cnn_parent), {})["warning"] and "collapsed" in caplog.text


@pytest.mark.parametrize("backbone,kw", [("mobilenet_v2", {"alpha": 0.35}), ("resnet50", {}), ("levi_hassner", {}),
                                         ("efficientnet_b0", {})])
def test_structured_pruning_at_ratio_zero_is_exact(backbone, kw):
    model = create_model(backbone=backbone, input_size=32 if backbone != "levi_hassner" else 64, weights="none", **kw)
    x = np.random.default_rng(0).uniform(-1, 1, (2,) + model.input_shape[1:]).astype("float32")
    slim, _ = prune_channels(model, ratio=0.0)
    for key in ("gender", "age"):
        np.testing.assert_array_equal(slim(x)[key], model(x)[key])


def test_structured_pruning_removes_channels_consistently(parent):
    run = structured_prune_run(parent, ratio=0.5, epochs=1)  # teachers: the magnitude and QAT tests (same code)
    assert run.compression["method"] == "structured" and "teacher" not in run.compression
    model = run.load_model()
    before = Run(parent).load_model()
    assert model.count_params() < 0.75 * before.count_params() and count_macs(model) < count_macs(before)
    kept = run.compression["filters_kept"]
    assert all(n % 8 == 0 or n == before.get_layer(name).filters for name, n in kept.items())
    # residual blocks stay consistent: both inputs of every Add have the same channel count
    for layer in model.layers:
        if type(layer).__name__ == "Add":
            assert len({tuple(s) for s in layer.input_shape}) == 1
    out = model(np.zeros((1, 32, 32, 3), np.float32))
    assert out["gender"].shape == (1, 1)


def test_pruned_constant_channel_is_folded_into_its_reader():
    """A channel that never varies carries no information but shifts what reads it: with calibration images it
    ranks last and its mean moves into the next layer's bias, so the slim model computes the same outputs."""
    import tf_keras as keras

    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(4, 1, activation="relu", name="a")(inputs)
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 1, name="b")(hidden))
    model = keras.Model(inputs, {"out": keras.layers.Dense(1, name="out")(features)})
    kernel, bias = model.get_layer("a").get_weights()
    kernel[..., 3], bias[3] = 0.0, 0.7  # channel 3 is constantly 0.7
    model.get_layer("a").set_weights([kernel, bias])
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    slim, counts = prune_channels(model, ratio=0.25, multiple=1, min_filters=1, images=x, exclude=("b",))
    assert counts["a"] == 3
    np.testing.assert_allclose(slim(x)["out"], model(x)["out"], atol=1e-5)
    blind, _ = prune_channels(model, ratio=0.25, multiple=1, min_filters=1, exclude=("b",))
    assert not np.allclose(blind(x)["out"], model(x)["out"], atol=1e-3)


def test_structured_options_are_validated(parent):
    model = Run(parent).load_model()
    with pytest.raises(EdgefaceError, match="either a ratio or a threshold"):
        prune_channels(model, ratio=0.3, threshold=0.1)
    with pytest.raises(EdgefaceError, match="--exclude names no layer"):
        prune_channels(model, ratio=0.3, exclude=("nope",))
    slim, counts = prune_channels(model, ratio=0.5, exclude=("block_1_expand",))
    assert "block_1_expand" not in counts


def test_prune_preserving_qat_with_a_teacher_keeps_zeros_and_learns_soft_outputs(parent, pruned):
    """One QAT run checks both: a magnitude-pruned parent keeps its zeros, and a teacher's soft outputs (here
    another network's, the MobileNetV2 parent) are learned."""
    run = qat_run(pruned, epochs=1, teacher=parent, kd_weight=0.7, name="pruned-qatkd")
    report = run.compression
    assert report["preserve_sparsity"] is True
    assert report["model"]["sparsity"]["per_layer"]["block3_conv"] == pytest.approx(0.5, abs=0.02)
    assert run.model_path().suffix == ".h5"  # saved as the quantized student, not the distillation wrapper
    assert distilled(run, parent) and report["method"] == "qat" and report["kd_weight"] == 0.7


def test_cli_prune_flags(parent):
    result = CliRunner().invoke(main, ["prune", str(parent), "--method", "magnitude", "--ratio", "0.3"])
    assert result.exit_code == 2 and "ratio: not an option of magnitude pruning" in result.output
    result = CliRunner().invoke(main, ["prune", "/no/run"])
    assert result.exit_code == 2 and "not an edgeface run folder" in result.output
    result = CliRunner().invoke(main, ["prune", str(parent), "--method", "structured", "--temperature", "3"])
    assert result.exit_code == 2 and "apply with --teacher" in result.output


def test_distillation_trains_a_student_from_a_teacher(cnn_parent):
    from edgeface.compress import distill_run
    run = distill_run(cnn_parent, backbone="compact_cnn", input_size=48, weights="none", epochs=1, temperature=3.0,
                      age_head="regression")  # the compact CNN parent: the default distribution head
    model, spec = run.load_model(), run.spec
    assert spec.backbone == "compact_cnn" and model.input_shape == (None, 48, 48, 3)
    assert spec.age_head == "regression" and model(np.zeros((2, 48, 48, 3), np.float32))["age"].shape == (2, 1)
    assert not any(l.name == "distiller" for l in model.layers)
    config = run.config
    assert config.compression["method"] == "distillation" and config.parents[0] == str(cnn_parent)
    history = run.history_file.read_text().splitlines()
    assert "distill_soft_loss" in history[0] and len(history) == 2
    summary = run.compression["val_summary"]  # the teacher scored on the student's own validation images
    assert summary["images"] == len(run.split("val")) and summary["teacher"].startswith("gender acc")


def test_an_interrupted_distillation_resumes_from_its_folder(cnn_parent, tmp_path, monkeypatch):
    """Killed after its first epoch's checkpoint, a distillation continues with `train --resume`: the method and
    teacher are rebuilt from the run's config, nothing re-stated."""
    from edgeface.compress import distill_run

    interrupted(monkeypatch, lambda: distill_run(cnn_parent, backbone="compact_cnn", input_size=40, weights="none",
                                                      epochs=2, age_head="regression", name="student",
                                                      runs_dir=str(tmp_path)))
    run = Run(tmp_path / "student")
    assert run.state["epochs_done"] == 1 and run.metrics is None and run.compression is None
    assert "resumed phase 0 at epoch 1" in resume(run.path).output
    rows = run.history_file.read_text().splitlines()
    assert len(rows) == 3 and "distill_soft_loss" in rows[0]  # the teacher came back with the method
    assert run.state["epochs_done"] == 2 and run.metrics["split"] == "val"
    assert run.compression["teacher"] == str(cnn_parent)


def test_an_ensemble_of_teachers_distils_their_averaged_outputs(parent, tmp_path):
    from edgeface.compress.distill import Distiller
    other = train(TrainConfig(data="synthetic:120", backbone="compact_cnn", input_size=48, weights="none", epochs=1,
                              batch_size=16, age_head="regression", runs_dir=str(tmp_path), name="other", verbose=0))
    # 32 px distribution head; 48 px regression head
    (t1, s1), (t2, s2) = [(r.load_model(), r.spec) for r in (Run(parent), other)]
    student = create_model(backbone="compact_cnn", input_size=40, weights="none", age_head="regression")
    spec = s2.replace(input_size=40)  # the student's spec
    other = other.path
    x = np.random.default_rng(0).uniform(-1, 1, (4, 40, 40, 3)).astype(np.float32)
    alone = [Distiller(student, [t], spec, [s])._teacher_outputs(x) for t, s in ((t1, s1), (t2, s2))]
    both = Distiller(student, [t1, t2], spec, [s1, s2])._teacher_outputs(x)
    for task in ("gender", "age"):
        assert both[task].shape == (4, 1)
        np.testing.assert_allclose(both[task], (alone[0][task] + alone[1][task]) / 2, rtol=1e-5)
    result = CliRunner().invoke(main, ["distill", str(parent), str(other), "--backbone", "compact_cnn",
                                       "--input-size", "40", "--weights", "none", "--epochs", "1",
                                       "--age-head", "regression", "--name", "ensemble-student"])
    assert result.exit_code == 0, result.output
    config = Run(parent.parent / "ensemble-student").config
    assert config.compression["teacher"] == [str(parent), str(other)] and config.parents[:2] == [
        str(parent), str(other)]


def test_soft_losses_are_zero_when_student_matches_teacher():
    import tensorflow as tf
    from edgeface.compress.distill import soft_loss
    from edgeface.models import ModelSpec
    spec = ModelSpec(backbone="compact_cnn", age_head="regression")
    p = tf.constant([[0.2], [0.9]])
    same = soft_loss("gender", spec, p, p, 2.0)
    other = soft_loss("gender", spec, p, 1 - p, 2.0)
    assert float(other) > float(same)
    assert float(soft_loss("age", spec, tf.constant([[30.0]]), tf.constant([[30.0]]), 2.0)) == 0.0


def test_student_age_head_may_switch_between_numeric_heads_only():
    import tensorflow as tf
    from edgeface.compress.distill import as_student_age
    from edgeface.models import ModelSpec
    from edgeface.models.age_heads import check_distillable
    from edgeface.models.age_losses import expected_age
    regression, distribution = (ModelSpec(backbone="compact_cnn", age_head=h) for h in ("regression", "distribution"))
    peaked = tf.one_hot([30], 101)
    assert float(as_student_age(peaked, distribution, regression)[0, 0]) == pytest.approx(30.0)
    spread = as_student_age(tf.constant([[42.0]]), regression, distribution)
    assert spread.shape == (1, 101) and float(expected_age(spread)[0, 0]) == pytest.approx(42.0, abs=1e-3)
    with pytest.raises(EdgefaceError, match="cannot distill a groups age head into a regression one"):
        check_distillable("groups", "regression")

"""The CLI: user mistakes give one 'error: ...' line and exit code 2, never a traceback."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import face_image, photo_with_chip
from edgeface.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def assert_user_error(code, output, fragment):
    assert code == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], output


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    code, output = run("train", "--recipe", "smoke", "--data", "synthetic:120", "--epochs", "1",
                       "--input-size", "32", "--runs-dir", runs, "--name", "cli")
    assert code == 0, output
    return runs / "cli"


def test_default_train_is_a_loud_smoke_run(trained_run):
    assert (trained_run / "best.keras").is_file()
    config = json.loads((trained_run / "config.json").read_text())
    assert config["data"] == "synthetic:120" and config["model"]["backbone"] == "compact_cnn"


def test_eval_and_predict(trained_run, tmp_path):
    code, output = run("eval", trained_run, "--data", "synthetic:120", "--split", "test")
    assert code == 0 and "gender acc" in output and "by age band" in output
    image = face_image(tmp_path / "face.png", 0, size=50)
    code, output = run("predict", image, "--model", trained_run, "--json")
    rows = json.loads(output)
    assert code == 0 and rows[0]["gender"] in ("male", "female") and 0 <= rows[0]["prob_male"] <= 1
    assert isinstance(rows[0]["age"], float)


def test_backbones_lists_the_registry():
    code, output = run("backbones")
    assert code == 0 and "mobilenet_v2" in output and "levi_hassner" in output


@pytest.mark.parametrize("args,fragment", [
    (["train", "--data", "utkface:/no/such/folder"], "/no/such/folder: no such file or folder"),
    (["train", "--data", "synthetic:40", "--backbone", "mobilenet_v9"], "unknown backbone 'mobilenet_v9'"),
    (["train", "--data", "synthetic:40", "--backbone", "compact_cnn", "--alpha", "0.5"], "no width multiplier"),
    (["train", "--data", "mystery:/tmp"], "bad --data 'mystery:/tmp'"),
    (["train", "--resume"], "--resume needs --name"),
    (["train", "--data", "synthetic:40", "--set", "learning_rate=1"], "unknown config key 'learning_rate'"),
    (["train", "--data", "synthetic:40", "--set", "lr=fast"], "config key 'lr': Input should be a valid number"),
    (["train", "--data", "synthetic:40", "--set", "model.dropout=1.5"], "config key 'model.dropout'"),
    (["train", "--data", "synthetic:40", "--set", "x=!!python/object:os.system ls"], "not a plain YAML value"),
    (["train", "--config", "/no/config.yaml"], "/no/config.yaml: config file not found"),
    (["eval", "/no/run", "--data", "synthetic:40"], "/no/run: no such model file, run folder or exported"),
    (["eval", "/tmp", "--data", "synthetic:40"], "/tmp: not an edgeface run folder"),
    (["tune", "--backbone", "compact_cnn"], "tune needs --data"),
    (["tune", "--data", "synthetic:40", "--factor", "1"], "--max-epochs and --factor must be at least 2"),
])
def test_user_mistakes_are_one_line_errors(args, fragment, tmp_path):
    code, output = run(*args, *(["--runs-dir", tmp_path] if args[0] in ("train", "tune") and "--resume" not in args else []))
    assert_user_error(code, output, fragment)
    assert not list(tmp_path.iterdir())  # a failed start leaves no run folder behind


def test_wrong_label_format_names_file_and_line(tmp_path):
    face_image(tmp_path / "a.png", 0)
    (tmp_path / "m.csv").write_text("path,gender,age\na.png,m,thirty\n")
    code, output = run("train", "--data", f"csv:{tmp_path / 'm.csv'}", "--runs-dir", tmp_path)
    assert_user_error(code, output, "m.csv:2: wrong label format: age 'thirty'")


def test_default_age_head_on_group_labels_is_refused_with_the_alternatives(tmp_path):
    face_image(tmp_path / "a.png", 0)
    (tmp_path / "m.csv").write_text("path,gender,age\n" + "a.png,m,\"(25, 32)\"\n" * 10)
    code, output = run("train", "--data", f"csv:{tmp_path / 'm.csv'}", "--runs-dir", tmp_path, "--weights", "none",
                       "--backbone", "compact_cnn")
    assert_user_error(code, output, "age distribution needs numeric ages; these labels are age groups: use --age-head")


def test_predict_corrupt_image(trained_run, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, output = run("predict", bad, "--model", trained_run)
    assert_user_error(code, output, "broken.jpg: unreadable image")


def test_cli_predict_detect(trained_run, tmp_path):
    path, _ = photo_with_chip(tmp_path)
    code, output = run("predict", path, "--model", trained_run, "--detect", "--json")
    rows = json.loads(output)
    assert code == 0 and len(rows) == 1 and rows[0]["face"] == 0 and len(rows[0]["box"]) == 4
    assert rows[0]["gender"] in ("male", "female")
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(wall)
    code, output = run("predict", wall, "--model", trained_run, "--detect")
    assert code == 0 and "no face found" in output


def test_predict_uses_the_bundled_model_by_default(tmp_path):
    from edgeface.bundled import bundled_model

    model = bundled_model()
    card = json.loads(model.with_suffix(".json").read_text())
    assert model.stat().st_size <= 1_000_000 and card["input"]["dtype"] == "int8"
    assert {o["name"] for o in card["outputs"]} == {"gender", "age"}
    code, output = run("predict", face_image(tmp_path / "face.png", 0, size=128), "--json")
    rows = json.loads(output)
    assert code == 0 and rows[0]["gender"] in ("male", "female") and 0 <= rows[0]["age"] <= 120

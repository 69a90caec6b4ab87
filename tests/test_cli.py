"""The CLI: user mistakes give one 'error: ...' line and exit code 2, never a traceback."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import ASTRONAUT, face_image
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
def smoke(tmp_path_factory):
    """`edgeface train` with neither --recipe nor --data (smaller and shorter, the rest as a new user gets it)."""
    runs = tmp_path_factory.mktemp("runs")
    code, output = run("train", "--limit", "40", "--epochs", "1", "--input-size", "32", "--runs-dir", runs,
                       "--name", "cli")
    assert code == 0, output
    return runs / "cli", output


@pytest.fixture(scope="module")
def trained_run(smoke):
    return smoke[0]


def test_default_train_is_a_loud_smoke_run(smoke):
    """No --recipe, no --data: the smoke recipe on synthetic faces, said loudly before and after."""
    folder, output = smoke
    assert (folder / "best.keras").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["data"] == "synthetic" and config["model"]["backbone"] == "compact_cnn"
    assert output.startswith("*** SMOKE RUN on generated synthetic faces") and "smoke run finished" in output


def test_the_command_line_config_is_one_library_call():
    """What `train`/`tune` flags ask for, Python gets from `command_config` (issue 31: the CLI only parses): the
    config file, then the recipe, the flags given, --tasks and --set, each over the one before; `--recipe`
    offers exactly the recipes the library ships."""
    from edgeface.recipes import SMOKE, command_config, names, recipe_overrides
    from edgeface.run.train_config import TrainConfig

    cfg = command_config(None, SMOKE, {"epochs": 3, "backbone": "compact_cnn", "lr": None},
                         ["augment.mixup=0.2", "epochs=4"], "gender")
    smoke = recipe_overrides(SMOKE)
    assert cfg.epochs == 4 and cfg.augment.mixup == 0.2 and tuple(cfg.model.tasks) == ("gender",)
    assert cfg.data == smoke["data"] and cfg.lr == smoke["lr"]  # lr None: not given, the recipe's stands
    assert command_config().lr == TrainConfig().lr  # nothing asked: the defaults
    from edgeface.cli import train

    recipe = next(p for p in train.params if p.name == "recipe")
    assert list(recipe.type.choices) == names() and {"default", SMOKE} <= set(names())


def test_eval_and_predict(trained_run, tmp_path):
    code, output = run("eval", trained_run, "--data", "synthetic:120", "--split", "test")
    assert code == 0 and "gender acc" in output and "by age band" in output
    image = face_image(tmp_path / "face.png", 0, size=50)
    code, output = run("predict", image, "--model", trained_run, "--json")
    result = json.loads(output)
    rows = result["predictions"]
    assert code == 0 and rows[0]["gender"] in ("male", "female") and 0 <= rows[0]["prob_male"] <= 1
    assert isinstance(rows[0]["age"], float) and result["model"]["format"] == "keras"


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


def test_predict_reports_an_unreadable_image_and_predicts_the_others(trained_run, tmp_path):
    folder = tmp_path / "photos"
    bad = folder / "broken.jpg"
    face_image(folder / "good.png", 0, size=50)
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, output = run("predict", folder, tmp_path / "nothing*.png", "--model", trained_run)
    lines = output.splitlines()
    assert code == 1 and "Traceback" not in output  # one image failed; the good one was still predicted
    assert any(l.startswith(f"{bad}  error: unreadable image") for l in lines)
    assert any(l.startswith(str(folder / "good.png")) and "P(male)" in l for l in lines)
    assert any("nothing*.png  error: no file matches" in l for l in lines)
    code, output = run("predict", folder / "good.png", "--model", trained_run, "--json")
    (row,) = json.loads(output)["predictions"]
    assert code == 0 and set(row) == {"image", "status", "face", "box", "score", "keypoints", "gender", "prob_male",
                                      "age", "age_group", "error", "note"}


def test_cli_predict_detect(trained_run, tmp_path):
    path = ASTRONAUT  # a real photo, in the repository
    code, output = run("predict", path, "--model", trained_run, "--detect", "--json")
    rows = json.loads(output)["predictions"]
    assert code == 0 and len(rows) == 1 and rows[0]["face"] == 1 and len(rows[0]["box"]) == 4
    assert rows[0]["gender"] in ("male", "female") and len(rows[0]["keypoints"]) == 6 and rows[0]["score"] > 0.5
    assert json.loads(output)["model"]["detector"] == "blazeface"
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(wall)
    code, output = run("predict", wall, "--model", trained_run, "--detect", "--json")
    (row,) = json.loads(output)["predictions"]  # same keys as a face row
    assert code == 0 and row["face"] is None and row["status"] == "no face" and row["error"] is None
    assert row["note"].startswith("no face found by blazeface (try --detector blazeface-full") and row["gender"] is None
    code, output = run("predict", wall, "--model", trained_run, "--detect", "--detector", "blazeface-full")
    assert code == 0 and "no face found by blazeface-full (pass a face crop" in output  # no hint to itself


def test_predict_detect_saves_annotated_photos_crops_and_csv(trained_run, tmp_path):
    """--save writes each photo with its boxes and answers and each face's crop as the model saw it; --csv the
    rows; --min-score above the detector's score drops the face (issue 32 item 10)."""
    import csv

    path = ASTRONAUT
    out, table = tmp_path / "out", tmp_path / "rows.csv"
    code, output = run("predict", path, "--model", trained_run, "--detect", "--save", out, "--csv", table)
    assert code == 0, output
    annotated = Image.open(out / f"{path.stem}.annotated.png")
    assert annotated.size == Image.open(path).size
    assert np.abs(np.asarray(annotated, int) - np.asarray(Image.open(path).convert("RGB"), int)).max() > 100
    assert Image.open(out / f"{path.stem}.face1.png").size == (32, 32)  # the model's input size
    (row,) = list(csv.DictReader(open(table)))
    assert row["status"] == "ok" and row["face"] == "1" and len(row["box"].split()) == 4 and row["gender"]
    code, output = run("predict", path, "--model", trained_run, "--detect", "--min-score", "1.0", "--json")
    (row,) = json.loads(output)["predictions"]
    assert code == 0 and row["status"] == "no face"
    code, output = run("predict", path, "--save", out)
    assert_user_error(code, output, "--save is for photos: add --detect")


def test_predict_without_detect_says_when_the_input_is_no_face_chip(tmp_path):
    """A grey 1920x1080 picture still gets an answer (the model always answers) but with a note that it is not a
    face chip and --detect is for photos (issue 32 item 10); a square chip gets no note."""
    wide, chip = tmp_path / "wide.png", tmp_path / "chip.png"
    Image.fromarray(np.full((108, 192, 3), 128, np.uint8)).save(wide)
    face_image(chip, 0, size=64)
    code, output = run("predict", wide, chip, "--json")
    rows = {Path(r["image"]).name: r for r in json.loads(output)["predictions"]}
    assert code == 0 and rows["wide.png"]["gender"] and "192x108 is not a face chip" in rows["wide.png"]["note"]
    assert rows["chip.png"]["note"] is None


def test_predict_uses_the_bundled_model_by_default(tmp_path):
    from edgeface.bundled import bundled_model

    model = bundled_model()
    card = json.loads(model.with_suffix(".json").read_text())
    assert model.stat().st_size <= 1_000_000 and card["input"]["dtype"] == "uint8"
    assert card["input"]["encoding"] == "raw_pixels"  # the app form ships
    assert {o["name"] for o in card["outputs"]} == {"gender", "age"}
    code, output = run("predict", face_image(tmp_path / "face.png", 0, size=128), "--json")
    rows = json.loads(output)["predictions"]
    assert code == 0 and rows[0]["gender"] in ("male", "female") and 0 <= rows[0]["age"] <= 120


def test_calibrate_a_csv_dataset_then_read_it_back(csv_manifest, tmp_path):
    from edgeface.export.calibration import read_manifest

    code, output = run("calibrate", "--data", f"csv:{csv_manifest}", "--name", "small", "--size", "8",
                       "--folder", tmp_path / "cal")
    assert code == 0, output
    manifest = read_manifest(tmp_path / "cal" / "small.txt")
    assert manifest.meta["root"] == str(csv_manifest.parent) and len(manifest.resolve()) == 8


def test_data_reports_label_counts():
    code, output = run("data", "--data", "synthetic:60")
    assert code == 0 and "train: female" in output and "age 0-2" in output and "no gender 0" in output


def test_epoch_summary_starts_its_own_line_after_the_progress_bar(tmp_path):
    code, output = run("train", "--recipe", "smoke", "--data", "synthetic:120", "--epochs", "1", "--input-size",
                       "32", "--runs-dir", tmp_path, "--set", "verbose=1")  # the bar a terminal shows
    assert code == 0 and "[====" in output, output
    assert any(line.startswith("epoch 1/1 ") for line in output.replace("\r", "\n").splitlines())
    assert "epoch 1/1" not in output.split("\n", 1)[0] and not any(
        "]" in line and "epoch 1/1" in line for line in output.splitlines())  # not glued onto the bar's line


def test_tune_help_names_what_the_search_searches():
    """The CLI's words for the search space are the library's (edgeface.train.tune.SEARCHED, which the log uses)."""
    from edgeface.train.tune import SEARCHED

    text = " ".join(CliRunner().invoke(main, ["tune", "--help"]).output.split())
    assert f"Hyperband search over {', '.join(SEARCHED[:-1])} and {SEARCHED[-1]}" in text


def test_data_help_names_every_dataset_kind_the_library_reads():
    """--data's help is built from the readers (it had gone stale: lfw, imdbwiki and mix were missing)."""
    from edgeface.data import DATASETS

    for command in ("train", "eval", "tune"):
        text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
        assert all(kind in text for kind in DATASETS), (command, text)

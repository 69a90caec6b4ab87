"""The verified loader on the bundled model (no training needed): every load checks the card's schema, the copy
embedded in the file, the artifact's hash and the card's contract; no model file runs code."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import edgeface
from edgeface.bundled import bundled_model
from edgeface.card import card_path, embedded_card, seal
from edgeface.card.embed import embed_bytes
from edgeface.cli import main
from edgeface.errors import EdgefaceError

TFLITE = bundled_model()
ONNX = next(TFLITE.parent.glob("*.onnx"))


def copy(artifact, folder):
    shutil.copy(artifact, folder / artifact.name)
    shutil.copy(card_path(artifact), card_path(folder / artifact.name))
    return folder / artifact.name


def images(n=6, size=128):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("artifact", [TFLITE, ONNX], ids=["tflite", "onnx"])
def test_card_is_built_once_and_embedded(artifact):
    assert embedded_card(artifact) == json.loads(card_path(artifact).read_text())


@pytest.mark.parametrize("artifact", [TFLITE, ONNX], ids=["tflite", "onnx"])
def test_a_lost_json_card_is_read_from_the_file(artifact, tmp_path):
    lost = copy(artifact, tmp_path)
    card_path(lost).unlink()
    np.testing.assert_array_equal(edgeface.load(lost).predict(images())["prob_male"],
                                  edgeface.load(artifact).predict(images())["prob_male"])


def test_overwritten_weights_are_refused(tmp_path):
    tampered = copy(TFLITE, tmp_path)
    data = bytearray(tampered.read_bytes())
    data[200_000:220_000] = bytes(20_000)  # 20 KB of weights zeroed: the file still runs, and answers wrongly
    tampered.write_bytes(bytes(data))
    with pytest.raises(EdgefaceError, match="sha256 .* differs from its model card"):
        edgeface.load(tampered)


def relabel(artifact, folder, edit):
    """A copy whose card was edited to lie and re-sealed as an export would (JSON and embedded copies agree, the
    hash is recomputed): only the contract check can tell."""
    target = copy(artifact, folder)
    card = json.loads(card_path(target).read_text())
    edit(card)
    try:
        card = seal(target, card)
    except EdgefaceError:  # a card broken beyond the schema cannot be sealed: embed it as it is
        target.write_bytes(embed_bytes(target, target.read_bytes(), card))
    card_path(target).write_text(json.dumps(card))
    return target


def _set(path, value):
    def edit(card):
        node = card
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _swap_gender(card):
    card["outputs"][0]["meaning"] = "probability that the face is female (index 0 of this output)"


@pytest.mark.parametrize("edit,fragment", [
    (_set(("input", "color_order"), "BGR"), "input.color_order"),
    (_set(("input", "normalization", "mean"), [0.0, 0.0, 0.0]), "normalization.mean"),
    (_swap_gender, "output gender.meaning"),
    (_set(("model", "spec", "age_head"), "distribution"), "age_head"),
    (_set(("model", "spec", "input_size"), 96), "input"),
    (_set(("input", "quantization", "scale"), 0.01), "input.quantization"),
    (_set(("outputs", 1, "decoding", "rule"), "expectation"), "decoding"),
    (lambda card: card.pop("outputs"), "schema"),
], ids=["bgr", "mean0", "gender-swapped", "spec-head", "spec-size", "quant", "decoding", "schema"])
def test_a_card_that_lies_is_caught(edit, fragment, tmp_path):
    liar = relabel(TFLITE, tmp_path, edit)
    with pytest.raises(EdgefaceError, match=fragment):
        edgeface.load(liar)


def test_an_edited_json_card_differs_from_the_embedded_one(tmp_path):
    target = copy(TFLITE, tmp_path)
    card = json.loads(card_path(target).read_text())
    card["input"]["color_order"] = "BGR"
    card_path(target).write_text(json.dumps(card))
    with pytest.raises(EdgefaceError, match="differs from the card embedded.*input.color_order"):
        edgeface.load(target)


def test_the_bundled_app_form_is_fed_raw_pixels_and_read_by_card_names():
    """An app that reads only the card copies pixel bytes in (uint8, batch 1), reads float outputs by the card's
    names, in the card's order, from LiteRT and from ONNX Runtime, and gets the answers edgeface gets."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    x = images()
    for artifact in (TFLITE, ONNX):
        card = json.loads(card_path(artifact).read_text())
        inp, names = card["input"], [o["name"] for o in card["outputs"]]
        assert (inp["encoding"], inp["dtype"], inp["shape"]) == ("raw_pixels", "uint8", [1, 128, 128, 3])
        assert all(o["dtype"] == "float32" and o["shape"][0] == 1 for o in card["outputs"])
        if artifact.suffix == ".tflite":
            interpreter = Interpreter(model_path=str(artifact))
            assert [d["name"] for d in interpreter.get_output_details()] == names  # graph order = card order
            assert [o["tensor"]["tflite_tensor"] for o in card["outputs"]] == names
            runner = interpreter.get_signature_runner()
            raw = [runner(**{inp["name"]: image[None]}) for image in x]
        else:
            session = ort.InferenceSession(str(artifact))
            assert [o.name for o in session.get_outputs()] == names
            raw = [dict(zip(names, session.run(names, {inp["name"]: image[None]}))) for image in x]
        ours = edgeface.load(artifact).predict(x)
        np.testing.assert_array_equal([r["gender"][0, 0] for r in raw], ours["prob_male"])
        np.testing.assert_array_equal([r["age"][0, 0] for r in raw], ours["age_years"])


def test_hdf5_models_never_run_their_code(tmp_path):
    """A Lambda layer's Python runs when Keras rebuilds the model: an .h5 file is refused unless trusted, and a
    run folder opens only the HDF5 files whose hash it recorded itself (and without code even then)."""
    import tf_keras as keras

    from edgeface.models import ModelSpec
    from edgeface.utils import write_json

    marker = tmp_path / "ran"
    inputs = keras.Input((4,))
    code = eval(f"lambda t: t if __import__('pathlib').Path({str(marker)!r}).touch() is None else t")  # no closure
    evil = keras.layers.Lambda(code)
    keras.Model(inputs, evil(inputs)).save(tmp_path / "evil.h5")
    marker.unlink(missing_ok=True)  # saving traced the lambda; only loading matters here
    write_json(tmp_path / "model.json", ModelSpec(backbone="compact_cnn").to_dict())
    with pytest.raises(EdgefaceError, match="HDF5 models can run code"):
        edgeface.load(tmp_path / "evil.h5")
    result = CliRunner().invoke(main, ["predict", str(TFLITE), "--model", str(tmp_path / "evil.h5")])
    assert result.exit_code == 2 and "--trust-hdf5" in result.output
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tmp_path / "evil.h5", run / "best.h5")
    shutil.copy(tmp_path / "model.json", run / "model.json")
    (run / "config.json").write_text("{}")
    with pytest.raises(EdgefaceError, match="HDF5 models can run code"):  # no recorded hash: not the run's own
        edgeface.load(run)
    from edgeface.run import Run, _sha256

    (run / "run.json").write_text(json.dumps({"format_version": 2, "models": {
        "best": {"file": "best.h5", "sha256": _sha256(run / "best.h5")}}}))
    with pytest.raises(EdgefaceError, match="is a Lambda"):
        Run(run).load_model()
    assert not marker.exists()


def test_verify_command_reports_each_check(tmp_path):
    result = CliRunner().invoke(main, ["verify", str(TFLITE)])  # the bundle's parent run is not on this machine
    assert result.exit_code == 1 and "parent not found" in result.output and "--skip-parent" in result.output
    result = CliRunner().invoke(main, ["verify", str(TFLITE), "--skip-parent"])
    assert result.exit_code == 0 and "verified" in result.output and "card, hash and contract" in result.output
    assert "ok    test vectors: 4 images" in result.output
    liar = relabel(TFLITE, tmp_path, _swap_gender)
    result = CliRunner().invoke(main, ["verify", str(liar), "--skip-parent"])
    assert result.exit_code == 1 and "FAIL" in result.output and "NOT verified" in result.output


def test_passing_a_card_instead_of_its_artifact_says_so():
    with pytest.raises(EdgefaceError, match="a model card; pass the artifact it describes"):
        edgeface.load(card_path(TFLITE))


def test_eval_of_a_bundled_model_writes_into_the_working_folder(csv_manifest, tmp_path, monkeypatch):
    """The package folder is not the user's (and may be read-only in site-packages): a report about a bundled
    model goes to the working folder; one about the user's own artifact goes beside it (issue 32 item 5)."""
    from edgeface.eval import evaluate, write_report

    monkeypatch.chdir(tmp_path)
    report = evaluate(bundled_model(), f"csv:{csv_manifest}", "train")
    out = write_report(report)
    assert out.parent.resolve() == tmp_path.resolve() and out.name.endswith(".eval-csv-train.json")
    assert not list(bundled_model().parent.glob("*.eval-*.json"))
    mine = tmp_path / "mine"
    mine.mkdir()
    for f in bundled_model().parent.glob(bundled_model().stem + ".*"):
        shutil.copy(f, mine / f.name)
    out = write_report(evaluate(mine / bundled_model().name, f"csv:{csv_manifest}", "train"))
    assert out.parent == mine


def test_info_reads_the_card_and_says_whether_the_file_verifies(tmp_path):
    """`edgeface info`: the card in words (input, outputs with their decoding, crop, training, metrics, parity),
    the verification first; a tampered copy still shows its card, marked NOT verified; --json is the card."""
    code, output = _cli("info", bundled_model())
    assert code == 0 and "check      verified" in output.splitlines()[1]
    for fragment in ("input      image [1, 128, 128, 3] uint8", "output     gender", "decode: male if output[0] >= 0.5",
                     "output     age", "crop       trained on", "training   utkface:", "metrics    keras val",
                     "parity     parity vs source: passed"):
        assert fragment in output, fragment
    tampered = tmp_path / bundled_model().name
    data = bytearray(bundled_model().read_bytes())
    data[200_000:200_100] = bytes(100)
    tampered.write_bytes(bytes(data))
    shutil.copy(card_path(bundled_model()), card_path(tampered))
    code, output = _cli("info", tampered)
    assert code == 0 and "NOT verified" in output and "sha256" in output and "output     age" in output
    code, output = _cli("info", bundled_model(), "--json")
    assert code == 0 and json.loads(output) == json.loads(card_path(bundled_model()).read_text())


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_predict_files_names_the_age_group(tmp_path):
    """A Python user gets the group's name beside its index, consistent with the years (issue 32)."""
    from PIL import Image

    from edgeface.labels import AGE_GROUP_LABELS, age_to_group

    paths = []
    for i, img in enumerate(images(3)):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    pred = edgeface.load(TFLITE).predict_files(paths)
    assert list(pred["age_group"]) == list(age_to_group(pred["age_years"]))
    assert list(pred["age_group_label"]) == [AGE_GROUP_LABELS[g] for g in pred["age_group"]]

"""The verified loader on the bundled model (no training needed): every load checks the card's schema, the copy
embedded in the file, the artifact's hash and the card's contract; no model file runs code."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import edgeface
from edgeface.bundled import bundled_model
from edgeface.card import _embed_bytes, card_path, embedded_card, seal
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
        target.write_bytes(_embed_bytes(target, target.read_bytes(), card))
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


def test_app_contract_int8_decodes_from_card_numbers_alone():
    """An app that reads only the card (normalization, quantization, decoding rules) and calls LiteRT directly
    gets the answers edgeface gets."""
    from ai_edge_litert.interpreter import Interpreter

    card = json.loads(card_path(TFLITE).read_text())
    x = images()
    inp = card["input"]
    mean, std = (np.array(inp["normalization"][k], np.float32) for k in ("mean", "std"))
    pixels = (x[..., ::-1] if inp["color_order"] == "BGR" else x).astype(np.float32)
    q = inp["quantization"]
    scale = np.float32(q["scale"])
    quantized = np.clip(np.round((pixels - mean) / std / scale) + q["zero_point"], -128, 127).astype(np.int8)
    runner = Interpreter(model_path=str(TFLITE)).get_signature_runner()
    answers = {"prob_male": [], "age": []}
    for image in quantized:
        raw = runner(**{inp["name"]: image[None]})
        for out in card["outputs"]:
            value = (raw[out["name"]].astype(np.float32) - out["quantization"]["zero_point"]) \
                * out["quantization"]["scale"]
            rule = out["decoding"]
            assert rule["rule"] in ("probability", "value")  # the bundled model's heads
            answers["prob_male" if out["name"] == "gender" else "age"].append(value[0, 0])
    ours = edgeface.load(TFLITE).predict(x)
    np.testing.assert_allclose(answers["prob_male"], ours["prob_male"], atol=1e-6)
    np.testing.assert_allclose(answers["age"], ours["age_years"], atol=1e-4)


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
    result = CliRunner().invoke(main, ["verify", str(TFLITE)])
    assert result.exit_code == 0 and "verified" in result.output and "card, hash and contract" in result.output
    liar = relabel(TFLITE, tmp_path, _swap_gender)
    result = CliRunner().invoke(main, ["verify", str(liar)])
    assert result.exit_code == 1 and "FAIL" in result.output and "NOT verified" in result.output

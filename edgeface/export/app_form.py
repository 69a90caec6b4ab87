"""The app form of an already exported int8 TFLite or ONNX file, without its run (`export FILE --io app`)."""
from __future__ import annotations

from pathlib import Path

from edgeface.card import PARITY_KEYS, build_card, card_path, seal
from edgeface.data.images import load_images
from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.export.app import APP_IO, app_ready_onnx, app_tflite
from edgeface.export.install import install, write_vectors
from edgeface.export.options import ExportResult
from edgeface.export.parity_images import parity_records
from edgeface.runtime import open_runner
from edgeface.runtime.formats import check_tolerances
from edgeface.runtime.parity import compare
from edgeface.utils import scratch_dir


def export_app(artifact, output_dir=None, parity_data: str | None = None, parity_images: int = 256,
               tolerances: dict | None = None) -> ExportResult:
    """An exported int8 TFLite or ONNX artifact rewritten to the app form (edgeface.export.app) without its run:
    the integer arithmetic inside is kept bit for bit, parity is checked against the source artifact on real
    labelled images (the card's training data, or `parity_data`), and the new card records the source."""
    import onnx

    from edgeface.models import ModelSpec
    from edgeface.predictor import load

    tolerances = check_tolerances(tolerances)
    artifact = Path(artifact)
    source = load(artifact)  # verified: card, hash, contract
    card = source.card
    if card["input"].get("encoding") == "raw_pixels":
        raise EdgefaceError(f"{artifact}: already in the app form")
    fmt, precision = card["artifact"]["format"], card["artifact"]["precision"]
    spec = ModelSpec(**card["model"]["spec"])
    folder = Path(output_dir) if output_dir else artifact.parent
    path = folder / f"{artifact.name.removesuffix(artifact.suffix)}-app{artifact.suffix}"
    spec_data = parity_data or card["training"]["data"]
    records = parity_records(spec_data, parity_images)
    images = load_images([r.path for r in records], spec.input_size)
    true_age = label_arrays(records)[1]
    order = [o["name"] for o in card["outputs"]]
    folder.mkdir(parents=True, exist_ok=True)
    with scratch_dir(folder) as staging:  # beside the destination
        staged = Path(staging) / path.name
        if fmt == "tflite" and precision == "int8":
            staged.write_bytes(app_tflite(artifact.read_bytes(), source.normalization, spec.input_size,
                                          card["outputs"], path.name))
        elif fmt == "onnx":
            model = app_ready_onnx(onnx.load(str(artifact)), source.normalization.mean, source.normalization.std,
                                   order, channels_first=card["input"]["layout"] == "NCHW")
            onnx.save(model, str(staged))
        else:
            raise EdgefaceError(f"{artifact}: the app form is made from int8 TFLite or ONNX, not {fmt} {precision}")
        runner = open_runner(staged, pixels=source.normalization)
        parity = compare(source.outputs(images), runner.predict(source.preprocess(images)), source.decodings,
                         precision, true_age, tolerances)
        options = {**card["artifact"].get("options", {}), "io": APP_IO,
                   "source": {"file": artifact.name, "sha256": card["artifact"]["sha256"],
                              "sha256_of": card["artifact"]["sha256_of"]}}
        vectors, options["test_vectors"] = write_vectors(staged, runner, spec, source.normalization, source.decodings)
        training = {**card["training"], "parents": [*card["training"].get("parents", []), artifact.name]}
        new = seal(staged, build_card(
            file_name=path.name, fmt=fmt, precision=precision, runtime=card["artifact"]["runtime"], spec=spec,
            parameters=card["model"]["parameters"], io=runner.io(), training=training,
            layout=card["input"]["layout"], calibration=card["calibration"],
            metrics={**{("source_" + k if k in PARITY_KEYS else k): v for k, v in card["metrics"].items()},
                     "parity_vs_source": {**parity, "images": f"{len(records)} of {spec_data}"}},
            options=options, raw_pixels=True))
        install(staged, path, new, [vectors])
    return ExportResult(fmt, precision, path, card_path(path), parity, new["artifact"]["size_bytes"], source=artifact)

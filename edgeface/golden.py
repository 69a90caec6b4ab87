"""Golden test vectors beside every exported artifact (NAME.vectors.json), for app developers to unit-test their own
pipeline stage by stage, and for `edgeface verify` to check the artifact without its parent run:

    image bytes (base64)  ->  decoded RGB (shape, sha256)  ->  model input exactly as fed (dtype, shape, sha256,
    base64)  ->  raw outputs by card name  ->  decoded answers (P(male), years)

The images are generated (a drawn face, gradients, edges, a non-square PNG), so they carry no licence of their
own; they exercise the decoder (JPEG 4:2:0 and 4:4:4, PNG), the centre crop and the resize kernel. The expected
outputs are the artifact's own, so they test a pipeline, not accuracy.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np

from edgeface.runtime.decode import male_decisions

VECTORS_VERSION = 1
# How far another runtime's outputs may be from the recorded ones: probabilities, and values in their own unit
# (years). Integer kernels differ across runtimes by a quantization step at most.
TOLERANCE = {"probability_atol": 2e-2, "value_atol": 0.5, "gender_decisions": "equal"}


def vectors_path(artifact) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name.removesuffix(artifact.suffix) + ".vectors.json")


def _images() -> list[tuple[str, bytes]]:
    """(name, encoded bytes) of the reference images, made the same way every time."""
    from PIL import Image

    from edgeface.data.synthetic import draw_face

    y, x = np.mgrid[0:240, 0:320]
    gradient = np.stack([x * 255 / 320, y * 255 / 240, (x + y) % 64 * 4], -1).astype(np.uint8)
    gradient[60:140, 90:200] = (250, 10, 30)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    out = []
    for name, image, kwargs in (
            ("face-420.jpg", draw_face(random.Random(0), True, 35).convert("RGB"), {"quality": 90}),
            ("face-444.jpg", draw_face(random.Random(1), False, 8).convert("RGB"), {"quality": 95, "subsampling": 0}),
            ("gradient-320x240.png", Image.fromarray(gradient), {}),
            ("noise-200.jpg", Image.fromarray(noise), {"quality": 75})):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG" if name.endswith(".png") else "JPEG", **kwargs)
        out.append((name, buffer.getvalue()))
    return out


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _decode(data: bytes, name: str, workdir: Path) -> np.ndarray:
    from edgeface.data.images import read_image

    path = workdir / name
    path.write_bytes(data)
    return read_image(path)


def compute(runner, normalization, decodings: dict, size: int, workdir: Path) -> list[dict]:
    """The vectors of an artifact's runner; the input recorded is the exact tensor the runner gives the model."""
    from edgeface.data.images import normalize, square_resize
    from edgeface.runtime import decode_outputs

    vectors = []
    for name, data in _images():
        rgb = _decode(data, name, workdir)
        pixels = square_resize(rgb, size)[None]
        normalized = normalize(pixels, normalization).astype(np.float32)
        tensor = runner.feed(normalized)
        outputs = runner(normalized)
        answers = decode_outputs(outputs, decodings)
        vectors.append({
            "image": name, "bytes_base64": base64.b64encode(data).decode(),
            "decoded": {"shape": list(rgb.shape), "sha256": _sha(rgb)},
            "resized": {"shape": list(pixels.shape), "sha256": _sha(pixels)},
            "input": {"dtype": str(tensor.dtype), "shape": list(tensor.shape), "sha256": _sha(tensor),
                      "base64": base64.b64encode(np.ascontiguousarray(tensor).tobytes()).decode()},
            "outputs": {k: [float(v) for v in np.asarray(o).reshape(-1)] for k, o in outputs.items()},
            "answers": {k: float(np.asarray(v).reshape(-1)[0]) for k, v in answers.items()
                        if k != "male"},  # the decision follows from prob_male and the card's threshold
        })
    return vectors


def document(artifact_name: str, vectors: list[dict]) -> dict:
    return {"version": VECTORS_VERSION, "artifact": artifact_name, "tolerance": TOLERANCE,
            "how": "decode bytes_base64 with your image decoder and compare decoded.sha256 (sha256 of the H x W x 3 "
                   "uint8 RGB bytes, row-major); crop and resize per the card and compare resized.sha256; build the "
                   "model input and compare input.sha256 (its raw bytes, little-endian); run the model and compare "
                   "outputs (by card name) within tolerance; answers are the card's decoding of them",
            "vectors": vectors}


def write(path: Path, doc: dict) -> str:
    """Writes the vectors file; returns its sha256 (which the card records)."""
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def check(path: Path, predictor, recorded_sha: str | None, workdir: Path) -> list[str]:
    """Problems found replaying the vectors through edgeface's pipeline and the artifact; empty when they hold."""
    if not path.is_file():
        return [f"{path.name} is missing"]
    text = path.read_text()
    if recorded_sha and hashlib.sha256(text.encode()).hexdigest() != recorded_sha:
        return [f"{path.name} differs from the one the card records (sha256)"]
    try:
        doc = json.loads(text)
        vectors = doc["vectors"]
    except (ValueError, KeyError, TypeError):
        return [f"{path.name}: not a vectors file"]
    from edgeface.data.images import square_resize

    problems = []
    tol = doc.get("tolerance", TOLERANCE)
    for v in vectors:
        rgb = _decode(base64.b64decode(v["bytes_base64"]), Path(v["image"]).name, workdir)
        if _sha(rgb) != v["decoded"]["sha256"]:
            problems.append(f"{v['image']}: decoded pixels differ from the recorded ones (decoder changed)")
            continue
        pixels = square_resize(rgb, predictor.input_size)[None]
        if _sha(pixels) != v["resized"]["sha256"]:
            problems.append(f"{v['image']}: resized pixels differ from the recorded ones")
            continue
        tensor = predictor.runner.feed(predictor.preprocess(pixels))
        if _sha(tensor) != v["input"]["sha256"]:
            problems.append(f"{v['image']}: the model input built from the card differs from the recorded one "
                            "(normalization or quantization in the card changed)")
            continue
        outputs = predictor.outputs(pixels)
        for name, expected in v["outputs"].items():
            got = np.asarray(outputs.get(name, []), np.float32).reshape(-1)
            expected = np.asarray(expected, np.float32)
            rule = predictor.decodings.get(name, {}).get("rule")
            atol = tol["probability_atol"] if rule in ("probability", "expectation", "count_above", "argmax") \
                else tol["value_atol"]
            if got.shape != expected.shape or np.abs(got - expected).max() > atol:
                problems.append(f"{v['image']}: output {name} differs from the recorded one by more than {atol}")
        answers = predictor.decode(outputs)
        threshold = predictor.decodings.get("gender", {}).get("threshold")
        if "prob_male" in answers and male_decisions(answers)[0] != (v["answers"]["prob_male"] >= threshold):
            problems.append(f"{v['image']}: the gender decision differs from the recorded one")
    return problems


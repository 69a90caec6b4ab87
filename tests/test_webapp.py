"""The reference web app in a real browser (headless Chromium through Playwright; skipped with the reason where
none is installed): it loads the bundled app-form artifacts and the bundled detector unmodified, reproduces the
golden test vectors, and on 200 UTKFace test chips decoded and resized by the page itself answers exactly as
`edgeface predict` does in every runtime; through MediaPipe Tasks' FaceDetector on composite photos, too."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import UTKFACE, require_shared
from edgeface.bundled import bundled_model
from edgeface.card import card_path
from edgeface.data.images import read_image
from edgeface.detect import model_path
from edgeface.detect.composites import composite

pytestmark = pytest.mark.slow


def _browser():
    from edgeface.webapp.check import chromium

    if chromium() is None:
        pytest.skip("no Chromium installed (CI installs Debian's chromium; set EDGEFACE_CHROMIUM elsewhere)")
    pytest.importorskip("playwright", reason="playwright is a dev dependency (pip install -e '.[dev]')")
    if shutil.which("npm") is None:
        pytest.skip("npm is needed once to install the web app's pinned packages")


def _chips(n):
    folder = require_shared(UTKFACE)
    names = (folder / "splits" / "test.txt").read_text().split()
    rng = np.random.default_rng(0)
    return [folder / "UTKFace" / names[i] for i in sorted(rng.choice(len(names), n, replace=False))]


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_the_page_answers_as_edgeface_predict(tmp_path, suffix):
    from edgeface.webapp.check import browser_check

    _browser()
    artifact = next(bundled_model().parent.glob(f"*{suffix}"))
    chips = _chips(200)
    photos = []
    rng = np.random.default_rng(1)
    for i, chip in enumerate(chips[:100]):
        photo, _ = composite(read_image(chip), rng)
        photos.append(tmp_path / f"{i:03d}.jpg")
        Image.fromarray(photo).save(photos[-1], quality=92)
    report = browser_check(artifact, chips, photos)
    assert report["artifact_sha256_served"] == hashlib.sha256(artifact.read_bytes()).hexdigest()  # unmodified
    assert report["detector_sha256_served"] == hashlib.sha256(model_path("blazeface").read_bytes()).hexdigest()
    expected = {".tflite": {"litert.js", "tfjs-tflite"}, ".onnx": {"onnxruntime-web"}}[suffix]
    assert set(report["runtimes"]) == expected
    for runtime, r in report["runtimes"].items():
        assert r["decoded_equal"] == r["input_equal"] == r["gender_equal"] == 200, (runtime, r)
        assert r["age_mean_abs_diff"] <= 0.05, (runtime, r)
        assert all(v["decoded"] and v["input"] and v["max_abs_diff"] < 1e-3 for v in report["vectors"][runtime])
    assert {r["runtime"] for r in report["bench_page"]["rows"]} == expected  # the benchmark page times each
    assert all(r["status"] == "ok" and r["backend"] and r["p50_ms"] > 0 for r in report["bench_page"]["rows"])
    photo = report["photos"]
    assert photo["faces_matched"] >= 90 and photo["gender_equal"] >= 0.98 * photo["faces_matched"], photo


def test_webapp_refuses_artifacts_that_are_not_in_the_app_form(tmp_path):
    from click.testing import CliRunner

    from edgeface.cli import main

    card = card_path(bundled_model())
    import json

    doc = json.loads(card.read_text())
    assert doc["input"]["encoding"] == "raw_pixels"  # the bundle is; a run's plain int8 export is not
    result = CliRunner().invoke(main, ["webapp", str(tmp_path / "missing.tflite"), "--no-serve"])
    assert result.exit_code == 2 and "missing.tflite" in result.output

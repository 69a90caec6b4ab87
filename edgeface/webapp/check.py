"""The web app against `edgeface predict`, in a real browser (headless Chromium through Playwright): face chips
decoded and resized by the page itself, in every runtime the artifact runs in, and photos through MediaPipe
Tasks' FaceDetector and the card's crop contract. tests/test_webapp.py asserts the targets on it;
tools/webapp_check.py records the figures (BENCHMARKS.md, apps)."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError

CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str | None:
    """Debian's chromium (what CI installs), or $EDGEFACE_CHROMIUM."""
    path = os.environ.get("EDGEFACE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_CHIPS_JS = """async ([runtime, files]) => {
  const a = window.edgefaceApp, m = await a.ef.loadModel(a.config, runtime), rows = [];
  for (const f of files) {
    const blob = await (await fetch(f)).blob();
    const r = await a.ef.predictChip(m, blob);
    const canvas = a.ef.canvasResize(r.image.bitmap, m.size);
    const c = m.decodeOutputs(await m.run(canvas));
    rows.push({file: f, decoded_sha256: r.decoded_sha256, input_sha256: r.input_sha256, prob_male: r.prob_male,
               age_years: r.age_years, ms: r.ms, canvas_prob_male: c.prob_male, canvas_age_years: c.age_years});
  }
  return {backend: m.backend, rows};
}"""
_PHOTOS_JS = """async ([runtime, files]) => {
  const a = window.edgefaceApp, m = await a.ef.loadModel(a.config, runtime), rows = [];
  for (const f of files) {
    const image = await a.ef.decode(await (await fetch(f)).blob());
    const faces = await a.ef.predictFaces(a.config, m, a.detector, image);
    rows.push({file: f, faces: faces.map((x) => ({box: x.box, score: x.score, prob_male: x.prob_male,
                                                  age_years: x.age_years}))});
  }
  return rows;
}"""
_VECTORS_JS = """async ([runtime, file]) => {
  const a = window.edgefaceApp, m = await a.ef.loadModel(a.config, runtime), doc = await (await fetch(file)).json();
  const rows = [];
  for (const v of doc.vectors) {
    const bytes = Uint8Array.from(atob(v.bytes_base64), (c) => c.charCodeAt(0));
    const r = await a.ef.predictChip(m, new Blob([bytes]));
    const diff = Math.max(...Object.keys(v.outputs).map((k) => Math.max(...v.outputs[k].map((x, i) => Math.abs(x - r.raw[k][i])))));
    rows.push({image: v.image, decoded: r.decoded_sha256 === v.decoded.sha256, input: r.input_sha256 === v.input.sha256,
               max_abs_diff: diff});
  }
  return rows;
}"""
_SHA_JS = """async (files) => { const a = window.edgefaceApp, out = {};
  for (const f of files) out[f] = await a.ef.sha256(await (await fetch(f)).arrayBuffer());
  return out; }"""


def _python_side(artifact: Path, chips: list[Path], photos: list[Path]) -> tuple[dict, list]:
    from edgeface.data.images import read_image, square_resize
    from edgeface.detect import detect_faces
    from edgeface.predictor import load

    predictor = load(artifact)
    size = predictor.input_size
    decoded = [read_image(p) for p in chips]
    pixels = np.stack([square_resize(d, size) for d in decoded])
    answers = predictor.predict(pixels)
    chip_side = {"decoded_sha256": [hashlib.sha256(d.tobytes()).hexdigest() for d in decoded],
                 "input_sha256": [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels],
                 "prob_male": answers["prob_male"], "age_years": answers.get("age_years")}
    photo_side = []
    for photo in photos:
        faces = detect_faces(photo)
        crops = np.stack([square_resize(f.crop, size) for f in faces]) if faces else None
        found = predictor.predict(crops) if faces else {"prob_male": []}
        photo_side.append([{"box": f.box, "prob_male": float(p)} for f, p in zip(faces, found["prob_male"])])
    return chip_side, photo_side


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


def browser_check(artifact, chips: list, photos: list = (), runtimes: list | None = None) -> dict:
    """Runs the page on the chips (and photos) in headless Chromium and compares it with edgeface's Python."""
    from playwright.sync_api import sync_playwright

    from edgeface.golden import vectors_path
    from edgeface.webapp import RUNTIMES, build, server

    artifact = Path(artifact)
    browser_path = chromium()
    if browser_path is None:
        raise EdgefaceError("no Chromium found (install Debian's chromium, or set EDGEFACE_CHROMIUM)")
    chips, photos = [Path(c) for c in chips], [Path(p) for p in photos]
    runtimes = runtimes or RUNTIMES[artifact.suffix.lstrip(".")]
    with tempfile.TemporaryDirectory() as where:
        folder = build(artifact, Path(where) / "app", link=True)
        for sub, files in (("chips", chips), ("photos", photos)):
            (folder / sub).mkdir()
            for i, file in enumerate(files):
                (folder / sub / f"{i:04d}{file.suffix}").symlink_to(file.resolve())
        chip_urls = [f"chips/{i:04d}{c.suffix}" for i, c in enumerate(chips)]
        photo_urls = [f"photos/{i:04d}{p.suffix}" for i, p in enumerate(photos)]
        port = _free_port()
        httpd = server(folder, port=port)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=browser_path, args=list(CHROMIUM_FLAGS), headless=True)
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/index.html")
                page.wait_for_function("window.appReady === true", timeout=180_000)
                served = page.evaluate(_SHA_JS, [f"model/{artifact.name}", "config.json"])
                config = page.evaluate("window.edgefaceApp.config")
                detector_sha = page.evaluate(_SHA_JS, [config["detector_file"]])[config["detector_file"]]
                browser_runs = {}
                for runtime in runtimes:
                    browser_runs[runtime] = page.evaluate(_CHIPS_JS, [runtime, chip_urls])
                vectors = vectors_path(artifact)
                vector_rows = {runtime: page.evaluate(_VECTORS_JS, [runtime, f"model/{vectors.name}"])
                               for runtime in browser_runs} if vectors.is_file() else {}
                photo_rows = page.evaluate(_PHOTOS_JS, [runtimes[0], photo_urls]) \
                    if photos else []
                user_agent = page.evaluate("navigator.userAgent")
                page.goto(f"http://127.0.0.1:{port}/bench.html")
                page.wait_for_function("window.benchReady === true", timeout=60_000)
                bench = page.evaluate("window.bench(50, 5)")
                browser.close()
        finally:
            httpd.shutdown()
    py_chips, py_photos = _python_side(artifact, chips, photos)
    report = {"artifact": artifact.name, "chromium": user_agent, "chips": len(chips), "vectors": vector_rows,
              "bench_page": bench,
              "artifact_sha256_served": served[f"model/{artifact.name}"],
              "detector_sha256_served": detector_sha, "runtimes": {}}
    for runtime, result in browser_runs.items():
        rows = result["rows"]
        male = np.array([r["prob_male"] for r in rows]) >= 0.5
        ours = np.asarray(py_chips["prob_male"]) >= 0.5
        entry = {"backend": result["backend"],
                 "decoded_equal": sum(r["decoded_sha256"] == s for r, s in zip(rows, py_chips["decoded_sha256"])),
                 "input_equal": sum(r["input_sha256"] == s for r, s in zip(rows, py_chips["input_sha256"])),
                 "gender_equal": int((male == ours).sum()),
                 "prob_male_max_abs_diff": float(np.abs(np.array([r["prob_male"] for r in rows])
                                                        - np.asarray(py_chips["prob_male"])).max()),
                 "ms_per_face_median": float(np.median([r["ms"] for r in rows])),
                 "canvas_gender_equal": int(((np.array([r["canvas_prob_male"] for r in rows]) >= 0.5) == ours).sum())}
        if py_chips["age_years"] is not None:
            diff = np.abs(np.array([r["age_years"] for r in rows]) - np.asarray(py_chips["age_years"]))
            canvas = np.abs(np.array([r["canvas_age_years"] for r in rows]) - np.asarray(py_chips["age_years"]))
            entry.update(age_mean_abs_diff=float(diff.mean()), age_max_abs_diff=float(diff.max()),
                         canvas_age_mean_abs_diff=float(canvas.mean()), canvas_age_max_abs_diff=float(canvas.max()))
        report["runtimes"][runtime] = entry
    if photos:
        pairs = equal = only_browser = only_python = 0
        for rows, ours in zip(photo_rows, py_photos):
            matched = set()
            for face in rows["faces"]:
                best = max(range(len(ours)), key=lambda k: _iou(face["box"], ours[k]["box"]), default=None)
                if best is None or _iou(face["box"], ours[best]["box"]) < 0.5 or best in matched:
                    only_browser += 1
                    continue
                matched.add(best)
                pairs += 1
                equal += (face["prob_male"] >= 0.5) == (ours[best]["prob_male"] >= 0.5)
            only_python += len(ours) - len(matched)
        report["photos"] = {"photos": len(photos), "faces_matched": pairs, "gender_equal": int(equal),
                            "only_in_browser": only_browser, "only_in_python": only_python}
    return report

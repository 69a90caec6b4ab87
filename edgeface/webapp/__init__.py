"""The reference web app (`edgeface webapp ARTIFACT`): static HTML/JS written only from the model card, which
runs an app-form artifact in the browser (onnxruntime-web for .onnx; LiteRT.js and tfjs-tflite for .tflite)
behind MediaPipe Tasks' FaceDetector, plus a benchmark page (bench.html) that reports per-face latency and the
backend that ran on whatever device opens it. `build` writes a self-contained folder any static host can serve;
`serve` serves it on localhost. The npm packages are pinned by package-lock.json and installed with `npm ci`
(once per lockfile, into edgeface's cache) - the only step that needs Node.js."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from edgeface.errors import EdgefaceError

FOLDER = Path(__file__).parent
STATIC = ("index.html", "bench.html", "edgeface.js", "resize.js")
# What the pages load from each npm package (files or folders under node_modules/)
RUNTIME_FILES = (
    "onnxruntime-web/dist/ort.wasm.min.mjs", "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    "@litertjs/core/dist", "@litertjs/core/wasm", "@litertjs/wasm-utils/dist",
    "@mediapipe/tasks-vision/vision_bundle.mjs", "@mediapipe/tasks-vision/wasm",
    "@tensorflow/tfjs-core/dist/tf-core.min.js", "@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js",
    "@tensorflow/tfjs-tflite/dist/tf-tflite.min.js", "@tensorflow/tfjs-tflite/wasm",
)
# The browser runtimes the pages offer per artifact format (config.json carries them to the pages)
RUNTIMES = {"onnx": ["onnxruntime-web"], "tflite": ["litert.js", "tfjs-tflite"]}
log = logging.getLogger(__name__)


def node_modules() -> Path:
    """The installed npm packages: the checkout's own (npm ci run in edgeface/webapp), or a cache per lockfile."""
    lock = FOLDER / "package-lock.json"
    local = FOLDER / "node_modules"
    if (local / ".package-lock.json").is_file():
        return local
    key = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("EDGEFACE_CACHE", Path.home() / ".cache" / "edgeface")) / f"webapp-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.with_name(cache.name + ".lock")):  # two commands at once: one installs, the other waits
        if not (cache / "node_modules" / ".package-lock.json").is_file():
            npm = shutil.which("npm")
            if npm is None:
                raise EdgefaceError("the web app needs its npm packages: install Node.js (npm), then run this again")
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(FOLDER / name, cache / name)
            log.info(f"installing the web app's pinned npm packages into {cache} (npm ci, once)")
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=cache,
                                  capture_output=True, text=True)
            if done.returncode:
                raise EdgefaceError(f"npm ci failed in {cache}: "
                                    f"{(done.stderr or done.stdout).strip().splitlines()[-1]}")
    return cache / "node_modules"


def build(artifact, out, detector: str = "blazeface", link: bool = False) -> Path:
    """Writes the web app for an app-form artifact into `out` (verified first); `link` symlinks the npm files
    instead of copying them (for serving from this machine)."""
    from edgeface.detect import model_path
    from edgeface.golden import vectors_path
    from edgeface.predictor import load

    artifact, out = Path(artifact), Path(out)
    predictor = load(artifact)
    card = predictor.card
    if card is None or card["input"].get("encoding") != "raw_pixels":
        raise EdgefaceError(f"{artifact}: the web app runs app-form artifacts (raw pixels in); make one with "
                            f"edgeface export {artifact} --io app")
    if card["artifact"]["format"] not in ("tflite", "onnx"):
        raise EdgefaceError(f"{artifact}: the web app runs .tflite and .onnx artifacts")
    crop = card["input"].get("crop")
    if not crop or detector not in crop["detectors"] or not crop["detectors"][detector]["detector_model"]["sha256"]:
        raise EdgefaceError(f"{artifact}: its card has no {detector} crop contract with a detector file")
    modules = node_modules()
    out.mkdir(parents=True, exist_ok=True)
    for name in STATIC:
        shutil.copyfile(FOLDER / name, out / name)
    (out / "model").mkdir(exist_ok=True)
    from edgeface.card import card_path

    for file in (artifact, card_path(artifact), vectors_path(artifact)):
        if file.is_file():
            shutil.copyfile(file, out / "model" / file.name)
    detector_file = model_path(detector)
    (out / "detector").mkdir(exist_ok=True)
    shutil.copyfile(detector_file, out / "detector" / detector_file.name)
    for rel in RUNTIME_FILES:
        source, target = modules / rel, out / "node_modules" / rel
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            target.symlink_to(source.resolve(), target_is_directory=source.is_dir())
        elif source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    config = {"model_file": f"model/{artifact.name}", "card_file": f"model/{card_path(artifact).name}",
              "detector": detector, "detector_file": f"detector/{detector_file.name}",
              "runtimes": RUNTIMES[card["artifact"]["format"]]}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def server(folder, host: str = "127.0.0.1", port: int = 8000):
    """A threaded static server for a built folder (correct types for .mjs and .wasm), not yet serving."""
    import functools
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                          ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
                          ".json": "application/json", ".tflite": "application/octet-stream"}

        def log_message(self, *args):  # quiet: the CLI prints the address once
            pass

    return http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(folder)))

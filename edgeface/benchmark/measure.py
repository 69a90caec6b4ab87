"""One row measured: the model made (exported or opened), sized, scored on the shared images and timed once;
the paired comparison of every scored row with the reference."""
from __future__ import annotations

import dataclasses
import gzip
import io
from pathlib import Path

from edgeface.benchmark.rows import Row, Settings, one_line
from edgeface.benchmark.sources import Images
from edgeface.benchmark.timing import round_sizes, set_timing, time_on_host
from edgeface.card import failed_parity
from edgeface.runtime.decode import male_decisions


def gzip_size(files) -> int:
    total = 0
    for file in files:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(Path(file).read_bytes())
        total += buffer.tell()
    return total


def _score(row: Row, model, images: Images) -> dict:
    """Fills the row's accuracy; returns its per-image outcomes for the paired comparison."""
    from edgeface.eval.metrics import gender_metrics
    from edgeface.stats import per_image, summarize

    pred = model.predict(images.at(model.input_size))
    outcome = per_image(pred, images.gender, images.age)
    summary = summarize(outcome)
    row.gender_acc, row.age_mae = summary["gender_accuracy"], summary["age_mae"]
    if "prob_male" in pred:
        known = images.gender >= 0
        row.balanced_acc = gender_metrics(images.gender[known], male_decisions(pred)[known])["balanced_accuracy"]
    return outcome


def paired(rows, outcomes: dict, reference) -> None:
    """Each scored row against the reference row, paired on the same images (seeded bootstrap, McNemar)."""
    from edgeface.stats import paired_deltas

    if reference is None or id(reference) not in outcomes:
        return
    for r in rows:
        if r is reference or id(r) not in outcomes:
            continue
        d = paired_deltas(outcomes[id(reference)], outcomes[id(r)])
        if "gender_accuracy" in d:
            g = d["gender_accuracy"]
            r.gender_acc_delta, r.gender_acc_delta_low, r.gender_acc_delta_high = g["delta"], g["low"], g["high"]
            r.gender_mcnemar_p = g["mcnemar_p"]
        if "age_mae" in d:
            a = d["age_mae"]
            r.age_mae_delta, r.age_mae_delta_low, r.age_mae_delta_high = a["delta"], a["low"], a["high"]


def _accelerators(card: dict | None) -> str:
    """What the artifact's card says accelerators would run: the GPU delegate for TFLite (TensorFlow's analyzer),
    NNAPI and CoreML for ONNX (ONNX Runtime's mobile usability checker)."""
    options = (card or {}).get("artifact", {}).get("options", {})
    gpu, eps = options.get("gpu_delegate"), options.get("mobile_eps")
    if gpu:
        return "GPU: all ops" if gpu["compatible"] else f"GPU: {len(gpu['cpu_fallback_ops'])} op(s) on CPU"
    if eps:
        return ", ".join(f"{'NNAPI' if name == 'nnapi' else 'CoreML'} {e['verdict']}" for name, e in eps.items())
    return ""


def measure(row: Row, make, exports: bool, images: Images, s: Settings, device):
    """The measured row, its per-image outcomes (None when it was not scored), and the model with its first
    timing round when it is timed on this host (None otherwise: later rounds time it again). `make` opens the
    model (any BasePredictor); `exports`: making it runs an export, so failing there is 'export failed'."""
    outcome = None
    try:
        model = make()
    except Exception as err:
        return dataclasses.replace(row, status="export failed" if exports else "validation failed",
                                   error=one_line(err)), None, None
    if row.format == "?":  # given directly (artifact, peer, ensemble): the model knows what it is
        row.model, row.format, row.precision = model.name, model.format, model.precision
    try:
        row.path = str(model.path)
        row.accelerators = _accelerators(model.card)
        row.size_kb = model.size_bytes() / 1000
        row.gzip_kb = gzip_size(model.files()) / 1000
        outcome = _score(row, model, images)
        timed = None
        if device is not None and model.format == "tflite":
            set_timing(row, [device.benchmark(Path(model.path), s.threads, s.runs, s.warmup)], s)
            row.where = f"adb:{device.serial}"
        else:
            timed = (model, [time_on_host(model, images, s, round_sizes(s)[0])])
            set_timing(row, timed[1], s)
        failed = failed_parity(model.card)
        if failed:  # exported, measured, but it does not match Keras
            row.status, row.error = "validation failed", f"its model card records a failed parity check ({failed})"
    except Exception as err:  # a broken artifact is a failed row, never a crashed benchmark
        row.status, row.error, timed = "validation failed", one_line(err), None
    return row, outcome, timed

"""`benchmark(...)`: every exported variant of our models (and peers) on the same images, one table.

Rows never abort the run: each gets a status (ok / export failed / validation failed) with its error. Accuracy
is scored in this process; latency and peak memory in a fresh process per row (fixed threads, warm-up,
preprocessed input in memory), or on an Android device over adb for TFLite rows.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import datetime
import gzip
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeface.benchmark.probe import summarize_times
from edgeface.errors import EdgefaceError
from edgeface.run import Run
from edgeface.runtime.decode import male_decisions
from edgeface.utils import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

@dataclasses.dataclass
class Row:
    model: str
    format: str
    precision: str
    status: str = "ok"
    error: str = ""
    path: str = ""
    size_kb: float | None = None
    gzip_kb: float | None = None
    gender_acc: float | None = None
    balanced_acc: float | None = None
    age_mae: float | None = None
    # paired against the reference row on the same images (edgeface.stats): Δ and its 95% bootstrap interval
    gender_acc_delta: float | None = None
    gender_acc_delta_low: float | None = None
    gender_acc_delta_high: float | None = None
    gender_mcnemar_p: float | None = None
    age_mae_delta: float | None = None
    age_mae_delta_low: float | None = None
    age_mae_delta_high: float | None = None
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    # (slowest - fastest round median) / median over every round: how much the host drifted while this row ran
    latency_drift: float | None = None
    throughput_ips: float | None = None
    peak_memory_mb: float | None = None  # the probe process's peak (Python and TensorFlow included)
    load_ms: float | None = None  # cold start: open + verify + allocate + first inference, in a fresh process
    model_memory_mb: float | None = None  # resident memory the model added (weights, tensor arena, checks)
    latency_ratio: float | None = None
    size_ratio: float | None = None
    accelerators: str = ""  # from the card: TFLite GPU delegate coverage, ONNX Runtime NNAPI / CoreML verdicts
    detection_rate: float | None = None  # pipeline rows (--photos): photos in which the detector found a face
    runs: int | None = None
    threads: int | None = None
    batch: int | None = None
    where: str = "host"


COLUMNS = tuple(field.name for field in dataclasses.fields(Row))  # benchmark.csv: every Row field, in order


@dataclasses.dataclass
class Settings:
    data: str | None = None  # None: the split the first run among the sources recorded
    split: str = "test"
    formats: tuple | None = None
    precisions: tuple | None = None
    threads: int = 1
    thread_sweep: tuple = ()  # more thread counts: every timed row is timed again at each (a row per count)
    batch: int = 1
    runs: int = 100
    warmup: int = 10
    rounds: int = 3  # host timing: the runs are split into rounds, every row timed once per round, rows interleaved
    limit: int | None = None
    peers_dir: str | None = None
    calibration: str | None = None
    device: str | None = None
    device_binary: str | None = None
    photos: str | None = None  # dataset spec of full photos, one labelled face each: adds detector + model rows


def _gzip_size(files) -> int:
    total = 0
    for file in files:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(Path(file).read_bytes())
        total += buffer.tell()
    return total


class _Images:
    """Eval images decoded once per input size, through the shared decode/resize op."""

    def __init__(self, records):
        from edgeface.data.images import load_images
        from edgeface.data.records import label_arrays

        self.records, self.load_images, self.cache = records, load_images, {}
        self.gender, self.age = label_arrays(records)

    def at(self, size: int) -> np.ndarray:
        if size not in self.cache:
            self.cache[size] = self.load_images([r.path for r in self.records], size)
        return self.cache[size]


def _score(row: Row, candidate, images: _Images) -> dict:
    """Fills the row's accuracy; returns its per-image outcomes for the paired comparison."""
    from edgeface.eval.metrics import gender_metrics
    from edgeface.stats import per_image

    pred = candidate.predict(images.at(candidate.load_size))
    if "prob_male" in pred:
        known = images.gender >= 0
        g = gender_metrics(images.gender[known], male_decisions(pred)[known])
        row.gender_acc, row.balanced_acc = g["accuracy"], g["balanced_accuracy"]
    if "age_years" in pred:
        known = ~np.isnan(images.age)
        if known.any():
            row.age_mae = float(np.abs(pred["age_years"][known] - images.age[known]).mean())
    return per_image(pred, images.gender, images.age)


def _paired(rows, outcomes: dict, reference) -> None:
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


def _rounds(s: Settings) -> list[int]:
    """Timed runs per round: --runs split over at most --rounds rounds, summing to --runs."""
    count = max(1, min(s.rounds, s.runs))
    return [s.runs // count + (i < s.runs % count) for i in range(count)]


def _time_on_host(candidate, images: _Images, s: Settings, runs: int) -> dict:
    """One round of timing in a fresh process (its own thread settings and peak memory)."""
    batch = images.at(candidate.load_size)
    batch = np.resize(batch, (s.batch,) + batch.shape[1:]) if len(batch) < s.batch else batch[:s.batch]
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", batch)
        cmd = [sys.executable, "-m", "edgeface.benchmark.probe", json.dumps(candidate.descriptor()),
               str(Path(tmp) / "x.npy"), "--threads", str(s.threads), "--warmup", str(s.warmup),
               "--runs", str(runs)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    line = next((l for l in result.stdout.splitlines() if l.startswith("PROBE ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"latency probe failed: {(result.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    return json.loads(line[len("PROBE "):])


def _set_timing(row: Row, rounds: list[dict], s: Settings) -> None:
    """Latency columns from every round of a row (host) or from the device's single report."""
    times = [t for r in rounds for t in r.get("times_ms", [])]
    timing = {**rounds[0], **summarize_times(times)} if times else rounds[0]  # no times: the device's report
    for key in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "runs"):
        setattr(row, key, timing.get(key))
    for key in ("peak_memory_mb", "model_memory_mb"):
        setattr(row, key, max((r[key] for r in rounds if r.get(key) is not None), default=None))
    loads = [r["load_ms"] for r in rounds if r.get("load_ms") is not None]
    row.load_ms = float(np.median(loads)) if loads else None
    medians = [r["latency_p50_ms"] for r in rounds if r.get("latency_p50_ms")]
    row.latency_drift = (max(medians) - min(medians)) / row.latency_p50_ms if len(medians) > 1 else None
    row.throughput_ips = s.batch * 1000 / row.latency_mean_ms
    row.threads, row.batch = s.threads, s.batch


def _measure(row: Row, make, exports: bool, images: _Images, s: Settings, device):
    """The measured row, its per-image outcomes (None when it was not scored), and the candidate with its first
    timing round when it is timed on this host (None otherwise: later rounds time it again). `exports`: making
    the candidate runs an export, so failing there is 'export failed'."""
    outcome = None
    try:
        candidate = make()
    except Exception as err:
        return dataclasses.replace(row, status="export failed" if exports else "validation failed",
                                   error=_one_line(err)), None, None
    if row.format == "?":  # given directly (artifact or peer): the candidate knows what it is
        row.model, row.format, row.precision = candidate.name, candidate.format, candidate.precision
    try:
        files = candidate.files()
        row.path = str(getattr(candidate, "path", getattr(candidate, "folder", "")))
        row.accelerators = _accelerators(candidate)
        row.size_kb = candidate.size_bytes() / 1000
        row.gzip_kb = _gzip_size(files) / 1000
        outcome = _score(row, candidate, images)
        timed = None
        if device is not None and candidate.format == "tflite":
            _set_timing(row, [device.benchmark(Path(candidate.path), s.threads, s.runs, s.warmup)], s)
            row.where = f"adb:{device.serial}"
        else:
            timed = (candidate, [_time_on_host(candidate, images, s, _rounds(s)[0])])
            _set_timing(row, timed[1], s)
        if getattr(candidate, "parity_error", None):  # exported, measured, but it does not match Keras
            row.status, row.error = "validation failed", candidate.parity_error
    except Exception as err:  # a broken artifact is a failed row, never a crashed benchmark
        row.status, row.error, timed = "validation failed", _one_line(err), None
    return row, outcome, timed


def _later_rounds(timed: list, images: _Images, s: Settings) -> None:
    """Rounds 2..N, every host-timed row once per round in table order, so a host that speeds up or slows down
    during the benchmark moves every row alike and the ratios within the run hold (BENCHMARKS.md section 14)."""
    runs = _rounds(s)
    for number in range(2, len(runs) + 1):
        log.info(f"timing round {number}/{len(runs)}")
        for row, (candidate, rounds) in timed:
            try:
                rounds.append(_time_on_host(candidate, images, s, runs[number - 1]))
            except Exception as err:
                row.status, row.error = "validation failed", f"timing round {number}: {_one_line(err)}"
                continue
            _set_timing(row, rounds, s)


def _thread_rows(timed: list, images: _Images, s: Settings) -> list[Row]:
    """Each timed row again at every thread count of the sweep, all its rounds in fresh probes; accuracy and size
    are the row's own (threads change the speed, not the answers)."""
    out = []
    for threads in s.thread_sweep:
        swept = dataclasses.replace(s, threads=threads)
        log.info(f"thread sweep: {threads} thread(s)")
        for row, (candidate, _) in timed:
            clone = dataclasses.replace(row, threads=threads, latency_ratio=None)
            try:
                rounds = [_time_on_host(candidate, images, swept, runs) for runs in _rounds(swept)]
            except Exception as err:
                clone.status, clone.error = "validation failed", f"{threads} threads: {_one_line(err)}"
                out.append(clone)
                continue
            _set_timing(clone, rounds, swept)
            out.append(clone)
            log.info(format_row(clone))
    return out


def _pipeline_rows(reference: Row | None, s: Settings) -> list[Row]:
    """The whole photo pipeline with the reference model, one row per face detector: detection rate, gender
    accuracy over all photos (a photo whose face is missed counts as wrong), age MAE over the detected ones, and
    milliseconds per photo for detection + crop + model (in this process, decoding excluded). Photos are decoded
    one at a time (a folder of large photos never sits in memory at once); each one left out is named."""
    import time

    from edgeface.benchmark.candidates import EdgefaceCandidate
    from edgeface.data import load_data
    from edgeface.data.images import square_resize
    from edgeface.detect import DETECTORS, detect_faces, model_path, read_photo

    if reference is None:
        log.warning("--photos: no ok row of ours to run behind the detectors")
        return []
    bundle = load_data(s.photos, verbose=False, check=False)  # read_photo checks each photo as it streams
    records = [r for name in bundle.splits for r in bundle[name]]
    dropped = [f"{path} ({why})" for path, why in bundle.skipped]
    predictor = EdgefaceCandidate(reference.path, s.threads).predictor
    log.info(f"pipeline: {', '.join(DETECTORS)} + {reference.model} {reference.format} {reference.precision} on "
             f"{len(records)} photos ...")
    stats = {d: {"times": [], "right": 0, "errors": [], "found": 0, "failed": None} for d in DETECTORS}
    used = []
    for record in records:
        try:
            photo = read_photo(record.path)
        except EdgefaceError as err:
            dropped.append(str(err))
            continue
        used.append(record)
        for detector, st in stats.items():
            if st["failed"]:
                continue
            try:
                if len(used) == 1:
                    detect_faces(photo, detector)  # the detector loads outside the timing
                start = time.perf_counter()
                faces = detect_faces(photo, detector)
                pred = predictor.predict(square_resize(faces[0].crop, predictor.input_size)[None]) if faces else None
                st["times"].append(1000 * (time.perf_counter() - start))
            except Exception as err:  # a failing pipeline is a failed row, never a crashed benchmark
                st["failed"] = _one_line(err)
                continue
            if pred is None:
                continue
            st["found"] += 1
            if "prob_male" in pred and record.gender is not None:
                st["right"] += int(male_decisions(pred)[0] == record.gender)
            if "age_years" in pred and record.age is not None:
                st["errors"].append(abs(float(pred["age_years"][0]) - record.age))
    if dropped:
        log.warning(f"--photos: {len(dropped)} of {len(records) + len(bundle.skipped)} photos left out: "
                    + "; ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""))
    rows = []
    labelled = sum(r.gender is not None for r in used)
    for detector, st in stats.items():
        row = Row(f"pipeline: {detector} + {reference.model}", reference.format, reference.precision,
                  path=reference.path, threads=s.threads, batch=1, runs=len(used))
        if st["failed"] or not used:
            row.status, row.error = "validation failed", st["failed"] or "no readable photo"
        else:
            times = st["times"]
            row.detection_rate = st["found"] / len(used)
            row.gender_acc = st["right"] / labelled if labelled else None
            row.age_mae = float(np.mean(st["errors"])) if st["errors"] else None
            row.latency_mean_ms = float(np.mean(times))
            row.latency_p50_ms, row.latency_p90_ms = (float(v) for v in np.percentile(times, [50, 90]))
            row.throughput_ips = 1000 / row.latency_mean_ms
            row.size_kb = reference.size_kb + model_path(detector).stat().st_size / 1000
        rows.append(row)
        log.info(format_row(row) + ("" if row.detection_rate is None else f"  faces found {100 * row.detection_rate:.1f}%"))
    return rows


def _accelerators(candidate) -> str:
    """What the artifact's card says accelerators would run: the GPU delegate for TFLite (TensorFlow's analyzer),
    NNAPI and CoreML for ONNX (ONNX Runtime's mobile usability checker)."""
    options = (getattr(getattr(candidate, "predictor", None), "card", None) or {}).get("artifact", {}).get("options", {})
    gpu, eps = options.get("gpu_delegate"), options.get("mobile_eps")
    if gpu:
        return "GPU: all ops" if gpu["compatible"] else f"GPU: {len(gpu['cpu_fallback_ops'])} op(s) on CPU"
    if eps:
        return ", ".join(f"{'NNAPI' if name == 'nnapi' else 'CoreML'} {e['verdict']}" for name, e in eps.items())
    return ""


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:240]}" if text else type(err).__name__


def _sources(sources, s: Settings, workdir: Path):
    """(Row, factory, exports) triples: per run its Keras model then every export variant (exported once per run,
    so the fp32 ONNX model is converted once for all its derivatives); artifacts as given; peers."""
    from edgeface.benchmark.candidates import EdgefaceCandidate
    from edgeface.benchmark.peers import find_peers, load_peer
    from edgeface.export import export_variants
    from edgeface.runtime.formats import qat_variants
    from edgeface.runtime.tensorrt import cuda_available

    gpu = cuda_available()[0]
    for source in sources:
        path = Path(source)
        if not path.exists():
            yield Row(str(source), "?", "?"), lambda p=path: _raise(EdgefaceError(f"{p}: no such run or artifact")), \
                False
            continue
        if not Run.is_run(path):
            yield Row(path.name, "?", "?"), lambda p=path: EdgefaceCandidate(p, s.threads), False
            continue
        yield Row(path.name, "keras", "fp32"), lambda p=path: EdgefaceCandidate(p, s.threads), False
        variants = export_variants(s.formats, s.precisions, gpu)
        try:
            if Run.open(path).quantization_aware:  # the benchmark takes what applies, the rest stays as asked
                variants = qat_variants(variants, explicit=False)
        except EdgefaceError as err:
            yield Row(path.name, "?", "?"), lambda e=err: _raise(e), True
            continue
        exported = _export_once(path, variants, workdir / path.name, s)
        for fmt, precision in variants:
            def make(key=(fmt, precision), exported=exported):
                result = exported()[key]
                if result.error:
                    raise EdgefaceError(result.error)
                return EdgefaceCandidate(result.path, s.threads)

            yield Row(path.name, fmt, precision), make, True
    if s.peers_dir:
        for folder in find_peers(Path(s.peers_dir)):
            yield Row(f"peer:{folder.name}", "?", "fp32"), lambda f=folder: load_peer(f, s.threads), False


def _raise(err: Exception):
    raise err


def _export_once(run: Path, variants: list, folder: Path, s: Settings):
    """A function giving {(format, precision): ExportResult} for a run, exporting every variant in one call on
    first use (one fp32 ONNX conversion for all its derivatives)."""
    from edgeface.export import ExportOptions, export_run

    done = {}

    def results() -> dict:
        if not done:
            done.update({(r.format, r.precision): r for r in export_run(
                run, output_dir=folder, options=ExportOptions(calibration=s.calibration), variants=variants)})
        return done

    return results


def scoring_records(sources, s: Settings) -> tuple[list, str]:
    """The images every row is scored on: --data's split, or else the split the first run among the sources
    recorded (a model is then never scored on images it trained on); eval's records_to_score decides."""
    from edgeface.eval import records_to_score

    runs = [Run.open(p) for p in sources if Run.is_run(p)]
    records, _ = records_to_score(runs[0] if runs else None, s.data, s.split, limit=s.limit, others=runs[1:],
                                  no_run="no run folder among the sources")
    return records, (f"{s.data} [{s.split}]" if s.data else f"the {s.split} split recorded by {runs[0].path}")


def benchmark(sources, settings: Settings, output) -> dict:
    """Runs every row, writes benchmark.json / .csv / pareto.png under `output`, returns the JSON payload."""
    from edgeface.benchmark.adb import DEFAULT_BINARY, Device

    s = settings
    records, scored_on = scoring_records(sources, s)
    if not records:
        raise EdgefaceError(f"{scored_on}: no images to score")
    device = Device(s.device, s.device_binary or DEFAULT_BINARY) if s.device else None
    images = _Images(records)
    output = Path(output)
    rows, outcomes, timed = [], {}, []
    log.info(f"benchmark on {scored_on}, {len(records)} images; latency: batch {s.batch}, {s.threads} thread(s), "
             f"{s.warmup} warm-up + {s.runs} timed runs per row in {s.rounds} interleaved round(s)")
    for index, (row, make, exports) in enumerate(_sources(sources, s, output / "artifacts"), start=1):
        known = " ".join(x for x in (row.format, row.precision) if x != "?")  # an export's are known after it
        log.info(f"row {index}: {row.model}{' ' + known if known else ''} ...")
        row, outcome, timing = _measure(row, make, exports, images, s, device)
        rows.append(row)
        if outcome is not None and row.status == "ok":
            outcomes[id(row)] = outcome
        if timing is not None:
            timed.append((row, timing))
        log.info(format_row(row) + (f"  (round 1 of {s.rounds}; final figures at the end)" if s.rounds > 1 and
                                     row.latency_mean_ms else ""))
    _later_rounds(timed, images, s)
    reference = _reference([r for r in rows if r.latency_mean_ms], compiled=True)
    rows += _thread_rows(timed, images, s)
    if s.photos:
        rows += _pipeline_rows(reference, s)
    _ratios(rows, reference)
    _paired(rows, outcomes, reference)
    payload = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "data": s.data, "split": s.split,
               "scored_on": scored_on, "images": len(records), "host": host(),
               "reference": reference and f"{reference.model} {reference.format} {reference.precision}",
               "settings": dataclasses.asdict(s),
               "sources": [str(x) for x in sources], "rows": [dataclasses.asdict(r) for r in rows]}
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "benchmark.json", payload)
    with atomic_path(output / "benchmark.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
    from edgeface.benchmark.plot import pareto_plot

    limit = f", --limit {s.limit}" if s.limit else ""
    pareto_plot(rows, output / "pareto.png", f"{scored_on} ({len(records)} images{limit}), batch {s.batch}, "
                                              f"{s.threads} thread(s)")
    write_text(output / "table.md", markdown_table(rows))
    return payload


def host() -> dict:
    """The machine the latencies belong to: CPU model, the vector instructions int8 kernels use, runtime
    versions (int8 speed depends on them: figures from different hosts are not comparable)."""
    import platform
    from importlib import metadata

    cpu, flags = platform.processor(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    versions = {}
    for package in ("tensorflow", "ai-edge-litert", "onnxruntime", "tensorrt"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    isa = [f for f in ("sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp")
           if f in flags]
    return {"cpu": cpu, "machine": platform.machine(), "cores": os.cpu_count(), "isa": isa, "python":
            platform.python_version(), "runtimes": versions}


def _ratios(rows, reference) -> None:
    if reference is None:
        return
    for r in rows:
        if r.latency_mean_ms:
            r.latency_ratio = r.latency_mean_ms / reference.latency_mean_ms
        if r.size_kb:
            r.size_ratio = r.size_kb / reference.size_kb


def _reference(rows, compiled: bool = False):
    """The row others are compared with: our first ok row, preferring a compiled runtime (LiteRT, ONNX Runtime,
    TensorRT) whose latency is not Python-call overhead, as the Keras row's is."""
    ours = [r for r in rows if r.status == "ok" and not r.model.startswith("peer:")]
    fast = [r for r in ours if r.format in ("tflite", "onnx", "trt")] if compiled else []
    return (fast or ours or [None])[0]


def _exclusion(r: Row, needs: list, budget_ms, budget_kb) -> str | None:
    """Why a row cannot be the pick, or None."""
    if r.detection_rate is not None:
        return "photo pipeline"  # scored on other images
    if r.status != "ok":
        return "not ok"
    if not all(getattr(r, m) is not None for m in needs):
        return "lacks a task"
    if budget_ms is not None and (r.latency_mean_ms or 1e18) > budget_ms:
        return "over the latency budget"
    if budget_kb is not None and (r.size_kb or 1e18) > budget_kb:
        return "over the size budget"
    return None


def pick_best(rows, budget_ms: float | None = None, budget_kb: float | None = None) -> tuple[Row | None, str]:
    """The most accurate ok row (gender accuracy, then lower age MAE) within the latency and size budgets, among
    the rows that answer every task the reference row answers (a gender-only peer cannot replace a gender and
    age model); and why the others were left out (e.g. "3 lack a task, 2 over the size budget")."""
    reference = _reference(rows)
    needs = [m for m in ("gender_acc", "age_mae") if reference is None or getattr(reference, m) is not None]
    why = [_exclusion(r, needs, budget_ms, budget_kb) for r in rows]
    fits = [r for r, reason in zip(rows, why) if reason is None]
    left_out = ", ".join(f"{n} {reason}" for reason, n in collections.Counter(r for r in why if r).items())
    best = max(fits, key=lambda r: (r.gender_acc if r.gender_acc is not None else 0.0,
                                    -(r.age_mae if r.age_mae is not None else 1e9)), default=None)
    return best, f"left out of {len(rows)} rows: {left_out}" if left_out else f"all {len(rows)} rows considered"


def format_table(rows) -> str:
    """The final figures (every timing round, every row) as the terminal shows them."""
    return "\n".join(format_row(r) for r in rows)


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def format_row(r: Row) -> str:
    acc = "acc      —" if r.gender_acc is None else f"acc {100 * r.gender_acc:6.2f}%"
    line = (f"{r.model:28} {r.format:11} {r.precision:8} {r.status:17} {_fmt(r.threads, 'd')}t "
            f"{_fmt(r.size_kb, '9.0f')} KB "
            f"{acc} MAE {_fmt(r.age_mae, '5.2f')} "
            f"{_fmt(r.latency_mean_ms, '8.2f')} ms (p50 {_fmt(r.latency_p50_ms, '.2f')}, "
            f"p90 {_fmt(r.latency_p90_ms, '.2f')}) load {_fmt(r.load_ms, '.0f')} ms, "
            f"+{_fmt(r.model_memory_mb, '.1f')} MB")
    return line + (f"  [{r.error}]" if r.error else "")


def _interval(metric: str, delta, low, high, scale: float) -> str:
    """'+0.12 [-0.20, +0.45] noise' with the paired verdict (real / noise / negligible, edgeface.stats)."""
    if delta is None:
        return "—"
    from edgeface.stats import interval_text, verdict

    return f"{interval_text(delta, low, high, scale)} {verdict(metric, delta, low, high)}"


def markdown_table(rows) -> str:
    head = ("| model | format | precision | status | size KB | gzip KB | gender acc | balanced | age MAE | "
            "Δ acc vs ref, pt [95% CI] | Δ MAE vs ref [95% CI] | faces found | "
            "latency ms (mean / p50 / p90) | drift | img/s | cold start ms | model MB | probe peak MB | latency vs ref | "
            "size vs ref | accelerators |")
    lines = [head, "|" + "---|" * head.count(" |")]
    for r in rows:
        acc = None if r.gender_acc is None else 100 * r.gender_acc
        bal = None if r.balanced_acc is None else 100 * r.balanced_acc
        status = r.status if not r.error else f"{r.status}: {r.error}".replace("|", "\\|")
        d_acc = _interval("gender_accuracy", r.gender_acc_delta, r.gender_acc_delta_low, r.gender_acc_delta_high, 100)
        d_mae = _interval("age_mae", r.age_mae_delta, r.age_mae_delta_low, r.age_mae_delta_high, 1)
        lines.append(f"| {r.model} | {r.format} | {r.precision} | {status} | {_fmt(r.size_kb, '.0f')} | "
                     f"{_fmt(r.gzip_kb, '.0f')} | {_fmt(acc, '.2f')} | {_fmt(bal, '.2f')} | {_fmt(r.age_mae, '.2f')} | "
                     f"{d_acc} | {d_mae} | "
                     f"{'—' if r.detection_rate is None else f'{100 * r.detection_rate:.1f}%'} | "
                     f"{_fmt(r.latency_mean_ms, '.2f')} / {_fmt(r.latency_p50_ms, '.2f')} / "
                     f"{_fmt(r.latency_p90_ms, '.2f')} | {_fmt(r.latency_drift, '.0%')} | "
                     f"{_fmt(r.throughput_ips, '.0f')} | "
                     f"{_fmt(r.load_ms, '.0f')} | {_fmt(r.model_memory_mb, '.1f')} | "
                     f"{_fmt(r.peak_memory_mb, '.0f')} | {_fmt(r.latency_ratio, '.2f')} | "
                     f"{_fmt(r.size_ratio, '.2f')} | {r.accelerators or '—'} |")
    return "\n".join(lines) + "\n"

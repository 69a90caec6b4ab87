"""The photo-pipeline rows (`--photos`): each face detector followed by the reference model on full photos."""
from __future__ import annotations

import logging

import numpy as np

from edgeface.benchmark.report import format_row
from edgeface.benchmark.rows import Row, Settings, one_line
from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.stats import per_image, summarize

log = logging.getLogger(__name__)

def pipeline_rows(reference: Row | None, s: Settings) -> list[Row]:
    """The whole photo pipeline with the reference model, one row per face detector: detection rate, gender
    accuracy over all photos (a photo whose face is missed counts as wrong), age MAE over the detected ones, and
    milliseconds per photo for detection + crop + model (in this process, decoding excluded). Photos are decoded
    one at a time (a folder of large photos never sits in memory at once); each one left out is named."""
    import time

    from edgeface.data import load_data
    from edgeface.data.images import square_resize
    from edgeface.detect import DETECTORS, detect_faces, model_path, read_photo
    from edgeface.predictor import load

    if reference is None:
        log.warning("--photos: no ok row of ours to run behind the detectors")
        return []
    bundle = load_data(s.photos, verbose=False, check=False)  # read_photo checks each photo as it streams
    records = [r for name in bundle.splits for r in bundle[name]]
    dropped = [f"{path} ({why})" for path, why in bundle.skipped]
    predictor = load(reference.path, s.threads)
    log.info(f"pipeline: {', '.join(DETECTORS)} + {reference.model} {reference.format} {reference.precision} on "
             f"{len(records)} photos ...")
    stats = {d: {"times": [], "preds": [], "failed": None} for d in DETECTORS}
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
                st["failed"] = one_line(err)
                continue
            st["preds"].append(pred)
    if dropped:
        log.warning(f"--photos: {len(dropped)} of {len(records) + len(bundle.skipped)} photos left out: "
                    + "; ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""))
    rows = []
    gender, age = label_arrays(used)
    for detector, st in stats.items():
        row = Row(f"pipeline: {detector} + {reference.model}", reference.format, reference.precision,
                  path=reference.path, threads=s.threads, batch=1, runs=len(used))
        if st["failed"] or not used:
            row.status, row.error = "validation failed", st["failed"] or "no readable photo"
        else:
            times, found = st["times"], np.array([p is not None for p in st["preds"]])
            row.detection_rate = float(found.mean())
            # scored like every row (stats.per_image); a missed face: gender wrong, age not scored
            outcome = {"gender_correct": np.where((gender >= 0) & ("gender" in predictor.decodings), 0.0, np.nan),
                       "age_error": np.full(len(used), np.nan)}
            if found.any():
                hits = [p for p in st["preds"] if p is not None]
                scored = per_image({k: np.concatenate([p[k] for p in hits]) for k in hits[0]}, gender[found],
                                   age[found])
                for key, values in outcome.items():
                    values[found] = scored[key]
            summary = summarize(outcome)
            row.gender_acc, row.age_mae = summary["gender_accuracy"], summary["age_mae"]
            row.latency_mean_ms = float(np.mean(times))
            row.latency_p50_ms, row.latency_p90_ms = (float(v) for v in np.percentile(times, [50, 90]))
            row.throughput_ips = 1000 / row.latency_mean_ms
            row.size_kb = reference.size_kb + model_path(detector).stat().st_size / 1000
        rows.append(row)
        log.info(format_row(row) + ("" if row.detection_rate is None else f"  faces found {100 * row.detection_rate:.1f}%"))
    return rows

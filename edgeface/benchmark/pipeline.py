"""The photo-pipeline rows (`--photos`): each face detector followed by the reference model on full photos."""
from __future__ import annotations

import logging

import numpy as np

from edgeface.benchmark.report import format_row
from edgeface.benchmark.rows import Row, Settings, one_line
from edgeface.errors import EdgefaceError
from edgeface.runtime.decode import male_decisions

log = logging.getLogger(__name__)

def pipeline_rows(reference: Row | None, s: Settings) -> list[Row]:
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
                st["failed"] = one_line(err)
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

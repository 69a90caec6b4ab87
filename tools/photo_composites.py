"""Detector + model on composite photos (BENCHMARKS §8): UTKFace test chips pasted, at random sizes and places,
into 640x480 photos of smooth random colour blobs (no faces), the chip's outer 6% feathered into it. Reports per
detector: detection rate, accuracy over all photos (a missed face counts as wrong), milliseconds per photo
(decode excluded: detector + crop + model), next to the model alone on the chips and on the exact chip square
cut from each composite (an oracle crop: what the composite itself costs, detector aside), with paired McNemar
tests on the same photos: each detector's detections against Haar's, its gender answers against the oracle's.

Usage: python tools/photo_composites.py [--model ARTIFACT] [--n 600] [--folder ../shared/data/utkface]
       [--output FILE.json] [--write DIR]
--write also saves the photos as DIR/*.jpg with DIR/photos.csv (path,gender,age), for
`edgeface benchmark MODEL --photos csv:DIR/photos.csv`.
"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

import edgeface
from edgeface.bundled import bundled_model
from edgeface.data.images import read_image, square_resize
from edgeface.detect import DETECTORS, detect_faces
from edgeface.detect.composites import composite
from edgeface.stats import mcnemar


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(bundled_model()))
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--folder", default="../shared/data/utkface")
    parser.add_argument("--output")
    parser.add_argument("--write")
    args = parser.parse_args()
    from edgeface.data import load_data, stratified_subset

    records = stratified_subset(load_data(f"utkface:{args.folder}", verbose=False)["test"], args.n, 0)
    predictor = edgeface.load(args.model)
    size = predictor.input_size
    rng = np.random.default_rng(0)
    chips = [read_image(r.path) for r in records]
    made = [composite(chip, rng) for chip in chips]
    photos = [photo for photo, _ in made]
    if args.write:
        folder = Path(args.write)
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["path,gender,age"]
        for index, (photo, record) in enumerate(zip(photos, records)):
            Image.fromarray(photo).save(folder / f"{index:04d}.jpg", quality=92)
            lines.append(f"{index:04d}.jpg,{'m' if record.gender else 'f'},{record.age}")
        (folder / "photos.csv").write_text("\n".join(lines) + "\n")
    gender = np.array([r.gender for r in records])
    age = np.array([r.age for r in records], np.float32)

    alone = predictor.predict(np.stack([square_resize(c, size) for c in chips]))
    oracle = predictor.predict(np.stack([square_resize(photo[t:t + s, x:x + s], size)
                                         for photo, (x, t, s) in made]))
    result = {"model": args.model, "photos": len(photos), "data": f"utkface:{args.folder} [test], {args.n} stratified (seed 0)",
              "model_alone": {"gender_accuracy": float(((alone["prob_male"] >= 0.5) == gender).mean()),
                              "age_mae": float(np.abs(alone["age_years"] - age).mean())},
              "oracle_crop": {"gender_accuracy": float(((oracle["prob_male"] >= 0.5) == gender).mean()),
                              "age_mae": float(np.abs(oracle["age_years"] - age).mean())}, "detectors": {}}
    oracle_right = (oracle["prob_male"] >= 0.5) == gender
    per_photo = {}  # detector -> (face found, gender right with a missed face counted wrong), per photo
    for detector in DETECTORS:
        detect_faces(photos[0], detector)  # load the detector outside the timing
        found, correct, errors, detect_ms, model_ms = 0, 0, [], [], []
        hits, rights = np.zeros(len(photos), bool), np.zeros(len(photos), bool)
        for index, (photo, g, a) in enumerate(zip(photos, gender, age)):
            start = time.perf_counter()
            faces = detect_faces(photo, detector)
            detect_ms.append(1000 * (time.perf_counter() - start))
            if not faces:
                continue
            found += 1
            start = time.perf_counter()
            pred = predictor.predict(square_resize(faces[0].crop, size)[None])
            model_ms.append(1000 * (time.perf_counter() - start))
            hits[index], rights[index] = True, (pred["prob_male"][0] >= 0.5) == g
            correct += int(rights[index])
            errors.append(abs(float(pred["age_years"][0]) - a))
        per_photo[detector] = (hits, rights)
        result["detectors"][detector] = {
            "detection_rate": found / len(photos), "gender_accuracy_all_photos": correct / len(photos),
            "gender_accuracy_detected": correct / max(found, 1), "age_mae_detected": float(np.mean(errors)),
            "detect_and_crop_ms_median": float(np.median(detect_ms)),
            "model_ms_median": float(np.median(model_ms)) if model_ms else None}
        r = result["detectors"][detector]
        print(f"{detector:15} detected {100 * r['detection_rate']:5.1f}%  gender (all photos) "
              f"{100 * r['gender_accuracy_all_photos']:5.2f}%  (detected) {100 * r['gender_accuracy_detected']:5.2f}%"
              f"  MAE {r['age_mae_detected']:.2f}  detect+crop {r['detect_and_crop_ms_median']:.1f} ms"
              f"  model {r['model_ms_median']:.1f} ms")
    # paired on the same photos (McNemar exact): each detector's detections against Haar's, and its gender
    # answers over all photos against the oracle crop's
    result["paired"] = {detector: {"detection_vs_haar": mcnemar(per_photo["haar"][0], hits),
                                   "gender_all_photos_vs_oracle_crop": mcnemar(oracle_right, rights)}
                        for detector, (hits, rights) in per_photo.items()}
    for detector, tests in result["paired"].items():
        d, g = tests["detection_vs_haar"], tests["gender_all_photos_vs_oracle_crop"]
        print(f"{detector:15} paired: found where Haar missed {d['only_candidate_right']}, missed where Haar found "
              f"{d['only_reference_right']} (McNemar p {d['mcnemar_p']:.3g}); gender vs oracle crop: right only here "
              f"{g['only_candidate_right']}, only with the oracle crop {g['only_reference_right']} "
              f"(McNemar p {g['mcnemar_p']:.3g})")
    for key, what in (("oracle_crop", "the exact chip square cut from each photo"), ("model_alone", "the chips")):
        m = result[key]
        print(f"{'model alone':15} on {what}: gender {100 * m['gender_accuracy']:.2f}%  MAE {m['age_mae']:.2f}")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

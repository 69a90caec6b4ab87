"""The predict use-case: gender and age for face chips, or for every face in photos (--detect), each image's
outcome a row with its status (ok / no face / error); optionally annotated photos and the crops the model saw
(--save), a detector score threshold (--min-score) and the rows as CSV (write_csv)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.labels import GENDER_LABELS
from edgeface.predictor import load
from edgeface.runtime import male_decisions
from edgeface.utils import atomic_path, write_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CHIP_ASPECT = 1.25  # an input this far from square is a photo, not a face chip


def no_face_note(detector: str) -> str:
    """What to try when a detector finds no face (the full-range detector does not suggest itself)."""
    other = "try --detector blazeface-full for small or distant faces, or " if detector != "blazeface-full" else ""
    return f"no face found by {detector} ({other}pass a face crop without --detect)"


def expand_inputs(inputs) -> list[tuple[str, str | None]]:
    """(path, problem) for every image the inputs name: files, folders (their images, sorted) and glob patterns;
    a name that gives nothing keeps a row with its problem."""
    import glob

    out = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            out += [(p, None) for p in found] or [(item, "a folder without images")]
        elif not path.exists() and any(c in item for c in "*?["):
            found = sorted(glob.glob(item))
            out += [(p, None) for p in found] or [(item, "no file matches this pattern")]
        else:
            out.append((item, None))
    return out


def _row(image: str, face=None, error: str | None = None) -> dict:
    """One prediction row; every row has the same keys. status: ok, "no face" (the detector found none; `note`
    says what to try) or error (unreadable: `error` says why). Face numbers count from 1; box, detector score and
    keypoints, in photo pixels, only with a detector; `note` also flags a non-square input without --detect."""
    row = {"image": image, "status": "error" if error else "ok", "face": None, "box": None, "score": None,
           "keypoints": None, "gender": None, "prob_male": None, "age": None, "age_group": None, "error": error,
           "note": None}
    if face is not None:
        index, found = face
        row.update(face=index, box=[round(v, 1) for v in found.box],
                   score=None if found.score is None else round(found.score, 4),
                   keypoints=None if found.keypoints is None else np.round(found.keypoints, 1).tolist())
    return row


def predict(model_path, images, detect: bool = False, trust_hdf5: bool = False, detector: str | None = None,
            min_score: float | None = None, save: str | None = None) -> dict:
    """Gender (with P(male)) and age for face crops, with a run, .keras model or exported artifact:
    {"model": what answered, "predictions": rows}. With `detect`, images are full photos: each face the detector
    (default BlazeFace short-range) finds is cropped per the crop contract and gets a row; `min_score` drops faces
    the detector scores lower (on top of its own threshold). An image that cannot be read, or holds no face, gets a
    row with its status; the other images are still predicted. `save`: a folder for each photo annotated with its
    boxes and answers (NAME.annotated.png) and each face's crop as the model saw it (NAME.faceK.png)."""
    from edgeface.data import check_image
    from edgeface.data.images import image_size, load_images, square_resize
    from edgeface.detect import DEFAULT_DETECTOR, detect_faces, upright_pixels

    for flag, value in (("--detector", detector), ("--min-score", min_score), ("--save", save)):
        if value is not None and not detect:
            raise EdgefaceError(f"{flag} is for photos: add --detect")
    detector = detector or DEFAULT_DETECTOR

    predictor = load(model_path, trust_hdf5=trust_hdf5)
    spec = predictor.spec
    rows, crops, readable = [], [], []
    for path, problem in expand_inputs(images):
        problem = problem or check_image(path)
        if problem:
            rows.append(_row(path, error=problem))
        elif not detect:
            rows.append(_row(path))
            readable.append(path)
            width, height = image_size(path)
            if max(width, height) > CHIP_ASPECT * min(width, height):
                rows[-1]["note"] = (f"{width}x{height} is not a face chip (a square crop around one face): the answer "
                                    "is for the whole picture; use --detect for photos")
        else:
            try:
                found = detect_faces(upright_pixels(path), detector)  # checked above: not twice
            except EdgefaceError as err:
                rows.append(_row(path, error=str(err)))
                continue
            if min_score is not None:
                found = [face for face in found if face.score is None or face.score >= min_score]
            rows += [_row(path, (index, face)) for index, face in enumerate(found, start=1)]
            crops += [square_resize(face.crop, spec.input_size) for face in found]
            if not found:
                rows.append({**_row(path), "status": "no face", "note": no_face_note(detector)})
    if readable:
        crops = list(load_images(readable, spec.input_size))
    answered = [row for row in rows if row["status"] == "ok"]
    if answered:
        pred = predictor.predict(np.stack(crops))
        for i, row in enumerate(answered):
            if "prob_male" in pred:
                row.update(gender=GENDER_LABELS[int(male_decisions(pred)[i])], prob_male=float(pred["prob_male"][i]))
            if "age_years" in pred:
                if spec.numeric_age:
                    row["age"] = float(pred["age_years"][i])
                row["age_group"] = str(pred["age_group_label"][i])
    if save and detect:
        _save(Path(save), answered, crops)
    model = {"path": str(model_path), "format": predictor.format, "precision": predictor.precision,
             "run": predictor.name, "detector": detector if detect else None, "min_score": min_score}
    return {"model": model, "predictions": rows}


def _label(row: dict) -> str:
    parts = [f"{row['gender']} {row['prob_male']:.2f}" if row["gender"] else "",
             f"{row['age']:.0f} y" if row["age"] is not None else (row["age_group"] or "")]
    return ", ".join(p for p in parts if p)


def _save(folder: Path, answered: list, crops: list) -> None:
    """Each photo with a face: a copy with its boxes and answers drawn; each face: the crop the model was fed."""
    from PIL import Image, ImageDraw

    from edgeface.detect import upright_pixels

    folder.mkdir(parents=True, exist_ok=True)
    crop_of = {id(row): crop for row, crop in zip(answered, crops)}
    by_photo: dict[str, list] = {}
    for row in answered:
        by_photo.setdefault(row["image"], []).append(row)
    for image, faces in by_photo.items():
        photo = Image.fromarray(upright_pixels(image))  # decoded again: holding every photo would cost more
        draw = ImageDraw.Draw(photo)
        width = max(2, round(max(photo.size) / 400))
        for row in faces:
            x, y, w, h = row["box"]
            colour = (230, 80, 40) if row["gender"] == "male" else (40, 120, 230)
            draw.rectangle([x, y, x + w, y + h], outline=colour, width=width)
            text = f"{row['face']}: {_label(row)}"
            box = draw.textbbox((x, y), text)
            top = y - (box[3] - box[1]) - 4 if y > box[3] - box[1] + 4 else y + h + 2
            draw.rectangle([x, top, x + box[2] - box[0] + 4, top + box[3] - box[1] + 4], fill=colour)
            draw.text((x + 2, top + 1), text, fill=(255, 255, 255))
            with atomic_path(folder / f"{Path(image).stem}.face{row['face']}.png") as tmp:
                Image.fromarray(crop_of[id(row)]).save(tmp, format="PNG")
        with atomic_path(folder / f"{Path(image).stem}.annotated.png") as tmp:
            photo.save(tmp, format="PNG")


CSV_COLUMNS = ("image", "status", "face", "gender", "prob_male", "age", "age_group", "box", "score", "error", "note")


def write_csv(rows: list, path) -> Path:
    """The prediction rows as CSV, one per face (or per image without one); the box as x y w h."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "box": " ".join(map(str, row["box"])) if row["box"] else ""})
    write_text(path, out.getvalue())
    return Path(path)


def describe_model(model: dict) -> str:
    """The line that says which model answered (and which detector found the faces)."""
    detector = f"; faces by {model['detector']}" if model["detector"] else ""
    return f"model: {model['path']} ({model['format']} {model['precision']}, run {model['run']}){detector}"


def format_rows(rows: list) -> str:
    """A line per row as the terminal shows it: image, face and box, answers, error or note."""
    lines = []
    for row in rows:
        parts = [row["image"]]
        if row["face"] is not None:
            parts.append(f"face {row['face']} at x,y,w,h={','.join(map(str, row['box']))}")
        if row["error"]:
            parts.append(f"error: {row['error']}")
        if row["gender"]:
            parts.append(f"{row['gender']} (P(male)={row['prob_male']:.3f})")
        if row["age"] is not None:
            parts.append(f"age {row['age']:.1f}")
        if row["age_group"]:
            parts.append(f"group {row['age_group']}")
        if row["note"]:
            parts.append(f"({row['note']})" if row["status"] == "ok" else row["note"])
        lines.append("  ".join(parts))
    return "\n".join(lines)

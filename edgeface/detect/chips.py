"""Face chips from photos (`edgeface chips`): every image of a folder through the detector and the crop contract,
written under the same relative path, so a dataset of uncropped photos (LFW's 250x250 frames, IMDB-WIKI's
margins) is framed like the training chips and like what an app cuts with the same detector. Text files (label
lists) are copied; a photo without a face is listed, not written."""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from edgeface.detect import DEFAULT_DETECTOR, detect_faces, read_photo
from edgeface.errors import EdgefaceError
from edgeface.utils import atomic_path

PICKS = ("central", "confident", "largest")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
log = logging.getLogger(__name__)


def _pick(faces, shape, rule: str):
    """The face a dataset labels: LFW and IMDB-WIKI centre their subject, so by default the one nearest the centre."""
    if rule == "confident":
        return faces[0]
    if rule == "largest":
        return max(faces, key=lambda f: f.box[2] * f.box[3])
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(faces, key=lambda f: (f.box[0] + f.box[2] / 2 - cx) ** 2 + (f.box[1] + f.box[3] / 2 - cy) ** 2)


def make_chips(source, out, detector: str = DEFAULT_DETECTOR, pick: str = "central", quality: int = 95) -> dict:
    """Writes a chip per photo under `out`; returns counts and the photos where no face was found. Re-running
    skips chips already written (the output of a killed run is resumed, never half a file: atomic writes)."""
    from PIL import Image
    from tqdm import tqdm

    source, out = Path(source), Path(out)
    if pick not in PICKS:
        raise EdgefaceError(f"unknown --pick {pick!r}; choose one of {', '.join(PICKS)}")
    if not source.is_dir():
        raise EdgefaceError(f"{source}: not a folder of photos")
    if out.resolve().is_relative_to(source.resolve()):
        raise EdgefaceError(f"{out}: the chips folder must lie outside {source}")
    files = sorted(p for p in source.rglob("*") if p.is_file())
    photos = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    for text in (p for p in files if p.suffix.lower() == ".txt" and p.stat().st_size < 16 << 20):
        target = out / text.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(text, target)
    counts, missed = {"photos": len(photos), "written": 0, "kept": 0}, []
    for photo in tqdm(photos, desc="chips", unit="photo", disable=not sys.stderr.isatty()):
        target = (out / photo.relative_to(source)).with_suffix(".jpg") if photo.suffix.lower() == ".png" else \
            out / photo.relative_to(source)
        if target.is_file():
            counts["kept"] += 1
            continue
        try:
            rgb = read_photo(photo)
            faces = detect_faces(rgb, detector)
        except EdgefaceError as err:
            missed.append((str(photo), str(err).removeprefix(f"{photo}: ")))
            continue
        if not faces:
            missed.append((str(photo), "no face found"))
            continue
        face = _pick(faces, rgb.shape, pick)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            Image.fromarray(face.crop).save(tmp, format="JPEG", quality=quality)
        counts["written"] += 1
    if missed:
        log.warning(f"no chip for {len(missed)} of {len(photos)} photos: " +
                    "; ".join(f"{p} ({why})" for p, why in missed[:5]) + (" ..." if len(missed) > 5 else ""))
    return {**counts, "missed": missed, "detector": detector, "pick": pick}

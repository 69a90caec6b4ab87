"""Framing stress (`edgeface eval --framing-stress`): how much accuracy a model loses when a face is not framed
exactly like its training chips. Each chip is re-cut around its own centre with a zoom-out (crop side / chip
side), a shift (chip sides) and a rotation, the way a detector's crop can miss; borders past the chip are
edge-replicated. One level reproduces the spread of BlazeFace's framing measured on training chips (random per
image, seeded); the others are fixed, larger misses. Every level is compared with the unstressed chips on the
same images (paired bootstrap intervals)."""
from __future__ import annotations

import dataclasses
import datetime
import logging
import math

import numpy as np

from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.stats import interval_entry_text, paired_deltas, per_image, summarize
from edgeface.version import __version__

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Stress:
    name: str
    zoom: float = 1.0  # crop side / chip side (> 1: zoomed out)
    shift: tuple = (0.0, 0.0)  # crop centre - chip centre, chip sides (right, down)
    angle: float = 0.0  # degrees, counter-clockwise
    spread: tuple | None = None  # random per image: (size, right, down, angle degrees) standard deviations


def levels(detector: str = "blazeface") -> list[Stress]:
    from edgeface.data.framing import CONTRACTS

    return [Stress("none"), Stress(f"{detector} spread", spread=CONTRACTS[detector].spread),
            Stress(f"2x {detector} spread", spread=tuple(2 * v for v in CONTRACTS[detector].spread)),
            Stress("zoom out 1.15", 1.15), Stress("zoom out 1.3", 1.3), Stress("zoom out 1.5", 1.5),
            Stress("zoom in 0.85", 0.85), Stress("shift 0.1 right", shift=(0.1, 0.0)),
            Stress("shift 0.1 down", shift=(0.0, 0.1)), Stress("shift 0.2 right", shift=(0.2, 0.0)),
            Stress("rotate 10", angle=10.0), Stress("rotate 20", angle=20.0)]


def reframe(chip: np.ndarray, zoom: float, shift, angle_deg: float) -> np.ndarray:
    """The chip re-cut as a square of side zoom x chip side, centred at the chip centre + shift, turned by the
    angle; same size in pixels as the chip."""
    from edgeface.data.framing import square_crop

    n = chip.shape[0]
    return square_crop(chip, n / 2 + shift[0] * n, n / 2 + shift[1] * n, zoom * n, -math.radians(angle_deg), n)


def framing_stress(model_path, data: str | None = None, split: str = "test", *, limit: int | None = None,
                   seed: int = 0, detector: str = "blazeface", trust_hdf5: bool = False) -> dict:
    """Accuracy per stress level on one split, each level paired with the unstressed chips."""
    from edgeface.data.images import read_image, square_resize
    from edgeface.eval import scoring_records
    from edgeface.predictor import load

    predictor = load(model_path, trust_hdf5=trust_hdf5)
    records, source = scoring_records(predictor, data, split, limit=limit, seed=seed)
    if not records:
        raise EdgefaceError(f"no images in the {split} split to stress")
    gender, age = label_arrays(records)
    # chips are square (unchanged); anything else is centre-cropped, once for every level
    chips = [square_resize(chip, min(chip.shape[:2])) for chip in map(read_image, (r.path for r in records))]
    size = predictor.input_size
    rows, baseline = [], None
    for stress in levels(detector):
        rng = np.random.default_rng(seed)
        images = []
        for chip in chips:
            zoom, shift, angle = stress.zoom, stress.shift, stress.angle
            if stress.spread:
                s = rng.normal(0.0, 1.0, 4) * np.asarray(stress.spread)
                zoom, shift, angle = zoom * (1 + s[0]), (shift[0] + s[1], shift[1] + s[2]), angle + s[3]
            images.append(square_resize(reframe(chip, zoom, shift, angle), size))
        log.info(f"{stress.name}: scoring {len(images)} re-framed images")
        outcome = per_image(predictor.predict(np.stack(images)), gender, age)
        row = {"level": stress.name, **dataclasses.asdict(stress)}
        row.update(summarize(outcome))
        if baseline is None:
            baseline = outcome
        else:
            row["vs_none"] = paired_deltas(baseline, outcome, seed=seed)
        rows.append(row)
    return {"model": str(model_path), "split": split, **source, "n": len(records), "detector": detector,
            "levels": rows, "edgeface_version": __version__, "date": datetime.date.today().isoformat()}


def format_framing(report: dict) -> str:
    lines = [f"{report['model']}: framing stress on {report['n']} images of {report['data']} [{report['split']}] "
             "(Δ against unstressed chips, paired 95% intervals)"]
    for row in report["levels"]:
        acc = "—" if row["gender_accuracy"] is None else f"{100 * row['gender_accuracy']:6.2f}%"
        mae = "—" if row["age_mae"] is None else f"{row['age_mae']:5.2f}"
        line = f"  {row['level']:24} gender {acc}  MAE {mae}"
        vs = row.get("vs_none", {})
        if "gender_accuracy" in vs:
            g = vs["gender_accuracy"]
            line += f"  Δ {interval_entry_text(g, 100, unit=' pt')}"
        if "age_mae" in vs:
            a = vs["age_mae"]
            line += f"  Δ MAE {interval_entry_text(a)}"
        lines.append(line)
    return "\n".join(lines)

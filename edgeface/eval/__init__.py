"""Evaluation and prediction: metrics overall and per age band / race, JSON plus a readable table."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

import edgeface
from edgeface.data import GENDER_LABELS, load_data
from edgeface.data.pipeline import load_images, make_dataset, normalize
from edgeface.errors import EdgefaceError
from edgeface.eval.metrics import age_band_label, age_metrics, breakdown, gender_metrics
from edgeface.models import ModelSpec, load_model
from edgeface.models.heads import decode_age
from edgeface.utils import write_json

__all__ = ["evaluate", "evaluate_records", "predict", "format_report"]


def runner_outputs(runner, spec: ModelSpec, records, batch_size: int = 64) -> dict:
    """Raw head outputs of any runtime's runner over records, through the shared preprocessing."""
    ds = make_dataset(records, spec, training=False, batch_size=batch_size, cache=False).map(lambda x, t, w: x)
    chunks = [runner(x) for x in ds.as_numpy_iterator()]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def load_any(path, threads: int | None = None):
    """(runner, spec, parameters) for a run folder, .keras model, or an exported artifact with its model card."""
    from edgeface.export.runtimes import KerasRunner, load_runner

    path = Path(path)
    if not path.exists():
        raise EdgefaceError(f"{path}: no such model file, run folder or exported artifact")
    if path.suffix in (".keras", ".h5") or (path.is_dir() and not (path / "saved_model.pb").is_file()):
        model, spec = load_model(path)
        return KerasRunner(model), spec, int(model.count_params())
    from edgeface.export.card import card_path

    card_file = card_path(path)
    if not card_file.is_file():
        raise EdgefaceError(f"{card_file}: model card missing; exported artifacts are read with the card beside them")
    card = json.loads(card_file.read_text())
    return load_runner(path, threads), ModelSpec.from_dict(card["model"]["spec"]), card["model"]["parameters"]


def decode_outputs(outputs: dict, spec: ModelSpec) -> dict:
    decoded = {}
    if "gender" in outputs:
        decoded["prob_male"] = outputs["gender"].reshape(-1)
    if "age" in outputs:
        age = decode_age(outputs["age"], spec.age_head, spec.numeric_age)
        decoded["age_years"], decoded["age_group"] = age["years"], age["group"]
    return decoded


def evaluate_records(runner, spec: ModelSpec, records, split: str = "test") -> dict:
    """Scores one runner (any runtime, see edgeface.export.runtimes) on records."""
    if not records:
        raise EdgefaceError(f"no images in the {split} split to evaluate")
    pred = decode_outputs(runner_outputs(runner, spec, records), spec)
    report = {"split": split, "n": len(records), "edgeface_version": edgeface.__version__}
    true_gender = np.array([-1 if r.gender is None else r.gender for r in records])
    bands = [None if r.age_group is None else age_band_label(r.age_group) for r in records]
    races = [r.race for r in records]
    age_parts = None
    summary = []
    if "prob_male" in pred:
        known = true_gender >= 0
        report["gender"] = gender_metrics(true_gender[known], pred["prob_male"][known])
        if report["gender"]:
            summary.append(f"gender acc {100 * report['gender']['accuracy']:.2f}% "
                           f"(balanced {100 * report['gender']['balanced_accuracy']:.2f}%)")
    if "age_years" in pred:
        true_years = np.array([np.nan if r.age is None else r.age for r in records], np.float32)
        true_group = np.array([-1 if r.age_group is None else r.age_group for r in records])
        known = true_group >= 0
        numeric = spec.numeric_age and not np.isnan(true_years[known]).any()
        report["age"] = age_metrics(true_years[known], pred["age_years"][known], true_group[known],
                                    pred["age_group"][known], numeric)
        age_parts = (true_years, pred["age_years"])
        if "mae" in report["age"]:
            summary.append(f"age MAE {report['age']['mae']:.2f}")
        if report["age"]:
            summary.append(f"age group acc {100 * report['age']['group_accuracy']:.1f}% "
                           f"(1-off {100 * report['age']['group_one_off_accuracy']:.1f}%)")
    gender_arg = true_gender if "prob_male" in pred else None
    prob = pred.get("prob_male")
    report["by_age_band"] = breakdown(bands, gender_arg, prob, age_parts, spec.numeric_age)
    if any(races):
        report["by_race"] = breakdown(races, gender_arg, prob, age_parts, spec.numeric_age)
    report["summary"] = ", ".join(summary)
    return report


def evaluate(model_path, data: str, split: str = "test", *, limit: int | None = None, seed: int = 0,
             fold: int | None = None, output: str | None = None) -> dict:
    """Evaluates a run folder, .keras file or exported artifact on a dataset split; writes and returns the report."""
    runner, spec, parameters = load_any(model_path)
    bundle = load_data(data, seed=seed, fold=fold, limit=limit)
    if split not in bundle.splits:
        raise EdgefaceError(f"split {split!r} not in {data} (has {', '.join(bundle.splits)})")
    report = evaluate_records(runner, spec, bundle[split], split)
    path = Path(model_path)
    report.update(model=str(model_path), format=runner.format, backbone=spec.backbone, input_size=spec.input_size,
                  alpha=spec.alpha, parameters=parameters, data=data, split_source=bundle.split_source,
                  date=datetime.date.today().isoformat())
    if runner.format == "keras":
        run = path if path.is_dir() else path.parent
        out = Path(output) if output else run / f"eval-{bundle.name}-{split}.json"
    else:
        out = Path(output) if output else path.with_name(f"{path.name}.eval-{bundle.name}-{split}.json")
    write_json(out, report)
    report["report_path"] = str(out)
    return report


def format_report(report: dict) -> str:
    lines = [f"{report.get('model', '')} on {report.get('data', '')} [{report['split']}], {report['n']} images",
             f"  {report['summary']}"]
    g = report.get("gender")
    if g:
        cm = g["confusion_matrix"]["counts"]
        lines.append(f"  gender: precision(male) {g['precision_male']:.3f} recall(male) {g['recall_male']:.3f} "
                     f"F1 {g['f1_male']:.3f}; confusion [true F: {cm[0]}, true M: {cm[1]}] (cols: pred F, M)")
    for title, key in (("age band", "by_age_band"), ("race", "by_race")):
        table = report.get(key)
        if not table:
            continue
        lines.append(f"  by {title}:")
        for name, entry in table["groups"].items():
            cells = [f"n={entry['n']:5d}"]
            if "gender_accuracy" in entry:
                cells.append(f"gender {100 * entry['gender_accuracy']:6.2f}%")
            if "age_mae" in entry:
                cells.append(f"MAE {entry['age_mae']:6.2f}")
            lines.append(f"    {name:>8}  " + "  ".join(cells))
        for metric, gap in table["gaps"].items():
            lines.append(f"    worst {metric}: {gap['worst']} ({gap['worst_value']:.3f}), gap {gap['gap']:.3f}")
    return "\n".join(lines)


def predict(model_path, images, detect: bool = False) -> list:
    """Gender (with P(male)) and age for face crops, with a run, .keras model or exported artifact. With
    `detect`, images are full photos: every face found is cropped like the training chips and predicted, and a
    photo without a face gets a row that says so."""
    runner, spec, _ = load_any(model_path)
    paths = [Path(p) for p in images]
    for p in paths:
        if not p.is_file():
            raise EdgefaceError(f"{p}: no such image")
    from edgeface.data import check_image

    for p in paths:
        problem = check_image(str(p))
        if problem:
            raise EdgefaceError(f"{p}: {problem}")
    if detect:
        rows, crops = _detect(paths, spec.input_size)
    else:
        rows, crops = [{"image": str(p)} for p in paths], load_images(paths, spec.input_size)
    faces = [row for row in rows if row.get("faces", 1)]
    if faces:
        pred = decode_outputs(runner.predict(normalize(crops, spec.config).astype(np.float32)), spec)
        for i, row in enumerate(faces):
            if "prob_male" in pred:
                prob = float(pred["prob_male"][i])
                row.update(gender=GENDER_LABELS[int(prob >= 0.5)], prob_male=prob)
            if "age_years" in pred:
                if spec.numeric_age:
                    row["age"] = float(pred["age_years"][i])
                row["age_group"] = age_band_label(pred["age_group"][i])
    return rows


def _detect(paths, size: int):
    """A row per detected face (image, face index, box) and their crops; a faces=0 row for a photo without."""
    from edgeface.data.pipeline import square_resize
    from edgeface.detect import detect_faces

    rows, crops = [], []
    for p in paths:
        found = detect_faces(p)
        if not found:
            rows.append({"image": str(p), "faces": 0})
        for index, face in enumerate(found):
            rows.append({"image": str(p), "face": index, "box": list(face.box)})
            crops.append(square_resize(face.crop, size).numpy())
    return rows, np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)

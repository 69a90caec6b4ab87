"""`edgeface compare A B [C ...]`: models (runs, .keras files, artifacts) scored on the same images, each
against the first with paired intervals, so a user sees which differences are real and which are noise."""
from __future__ import annotations

import datetime
import logging

from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.eval.stats import CONFIDENCE, RESAMPLES, interval_entry_text, paired_deltas, per_image, summarize
from edgeface.predictor import load
from edgeface.version import __version__

log = logging.getLogger(__name__)


def compare(models, data: str | None = None, split: str = "test", *, limit: int | None = None, seed: int = 0,
            resamples: int = RESAMPLES, confidence: float = CONFIDENCE, trust_hdf5: bool = False,
            allow_outside_root: bool = False) -> dict:
    """Scores every model on one set of images (by default the split the first model's run recorded) and
    compares each with the first: Δ gender accuracy with McNemar's exact test, Δ age MAE, each with a paired
    bootstrap interval."""
    from edgeface.eval import scoring_records, source_run

    if len(models) < 2:
        raise EdgefaceError("compare needs at least two models: the reference first, then the candidates")
    predictors = [load(m, trust_hdf5=trust_hdf5) for m in models]
    records, source = scoring_records(predictors[0], data, split, limit=limit, seed=seed,
                                      allow_outside_root=allow_outside_root)
    if not records:
        raise EdgefaceError(f"no images in the {split} split to compare on")
    for model, predictor in zip(models[1:], predictors[1:]):
        run = source_run(predictor)
        if run is not None and not {r.path for r in records} <= set(run.split_paths(split)):
            log.warning(f"{model}: some of these images are outside the {split} split its run {run.path} recorded "
                        "(it may have trained on them)")
    gender, age = label_arrays(records)
    outcomes = []
    for index, (model, predictor) in enumerate(zip(models, predictors), start=1):
        log.info(f"[{index}/{len(models)}] scoring {model} ({predictor.format} {predictor.precision}) on "
                 f"{len(records)} images")
        outcomes.append(per_image(predictor.predict_records(records, progress=f"model {index}"), gender, age))
    rows = []
    for model, predictor, outcome in zip(models, predictors, outcomes):
        row = {"model": str(model), "format": predictor.format, "precision": predictor.precision,
               **summarize(outcome)}
        if rows:
            row["vs_reference"] = paired_deltas(outcomes[0], outcome, resamples, seed, confidence)
        rows.append(row)
    return {"split": split, **source, "n": len(records), "resamples": resamples, "confidence": confidence,
            "seed": seed, "reference": str(models[0]), "models": rows, "edgeface_version": __version__,
            "date": datetime.date.today().isoformat()}


def _delta_text(entry: dict | None, scale: float, unit: str, better: str) -> str:
    if entry is None:
        return "—"
    text = interval_entry_text(entry, scale, unit=unit)
    if not entry["real"]:
        return text + " noise"
    return text + (" better" if (entry["delta"] > 0) == (better == "higher") else " worse")


def format_comparison(report: dict) -> str:
    """One line per model; intervals are the paired bootstrap's, 'noise' when they include zero."""
    pct = f"{100 * report['confidence']:.0f}%"
    lines = [f"{report['n']} images of {report['data']} [{report['split']}]; each model against the first, paired "
             f"{pct} bootstrap intervals ({report['resamples']} resamples, seed {report['seed']}), McNemar exact p"]
    for row in report["models"]:
        acc = "—" if row["gender_accuracy"] is None else f"{100 * row['gender_accuracy']:.2f}%"
        mae = "—" if row["age_mae"] is None else f"{row['age_mae']:.3f}"
        line = f"  {row['model']}  ({row['format']} {row['precision']})  gender {acc}  age MAE {mae}"
        vs = row.get("vs_reference")
        if vs is None:
            lines.append(line + "  (reference)")
            continue
        gender = vs.get("gender_accuracy")
        p = "" if gender is None else f" (McNemar p {gender['mcnemar_p']:.3g})"
        lines.append(line)
        lines.append(f"      Δ gender {_delta_text(gender, 100, ' pt', 'higher')}{p}   "
                     f"Δ MAE {_delta_text(vs.get('age_mae'), 1, ' y', 'lower')}")
    return "\n".join(lines)

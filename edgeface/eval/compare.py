"""`edgeface compare A B [C ...]`: models (runs, .keras files, artifacts) scored on the same images, each
against the first with paired intervals, so a user sees which differences are real and which are noise. An eval
report (`edgeface eval --output X.json`) stands for its model: it keeps per-image outcomes, so a model whose files
are gone can still be paired, on exactly the images it was scored on (checked by their digest). Models open through
`open_model`: `ensemble:A,B` scores several as one (edgeface.ensemble), a peer's folder scores another project's
model."""
from __future__ import annotations

import datetime
import logging

import numpy as np

from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.labels import age_band_label
from edgeface.any_model import open_model
from edgeface.stats import (CONFIDENCE, RESAMPLES, contents_digest, images_digest, interval_entry_text,
                            outcomes_from_store, paired_deltas, per_image, summarize)
from edgeface.version import __version__

log = logging.getLogger(__name__)

# what `compare --by` groups the images by
GROUPS = {"age_band": lambda r: None if r.age_group is None else age_band_label(r.age_group),
          "race": lambda r: r.race, "source": lambda r: r.source}


def compare(models, data: str | None = None, split: str = "test", *, limit: int | None = None, seed: int = 0,
            fold: int | None = None, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
            trust_hdf5: bool = False, allow_outside_root: bool = False, by: str | None = None) -> dict:
    """Scores every model on one set of images (by default the split the first model's run recorded) and
    compares each with the first: Δ gender accuracy with McNemar's exact test, Δ age MAE, each with a paired
    bootstrap interval; with `by` (GROUPS: age band, race, source) the same within each group too."""
    if by is not None and by not in GROUPS:
        raise EdgefaceError(f"--by {by}: choose one of {', '.join(GROUPS)}")
    from edgeface.eval import scoring_records

    if len(models) < 2:
        raise EdgefaceError("compare needs at least two models: the reference first, then the candidates")
    reports = {i: _stored_report(m) for i, m in enumerate(models) if str(m).endswith(".json")}
    predictors = {i: open_model(m, trust_hdf5=trust_hdf5) for i, m in enumerate(models) if i not in reports}
    if not predictors:
        raise EdgefaceError("compare needs at least one model to score (eval reports only pair with scored images)")
    first = min(predictors)
    if 0 in reports and data is None:
        raise EdgefaceError(f"{models[0]}: an eval report as the reference needs --data and --split naming the images "
                            "it was scored on")
    records, source = scoring_records(predictors[first], data, split, limit=limit, seed=seed, fold=fold,
                                      allow_outside_root=allow_outside_root)
    if not records:
        raise EdgefaceError(f"no images in the {split} split to compare on")
    for index, predictor in predictors.items():
        for member in getattr(predictor, "members", [predictor]):
            run = member.training_run()
            if index and run is not None and not run.records_all(split, [r.path for r in records]):
                log.warning(f"{models[index]}: some of these images are outside the {split} split its run "
                            f"{run.path} recorded (it may have trained on them)")
    digest = images_digest(records)
    contents = contents_digest(records) if reports else None
    for index, report in reports.items():
        stored = report["per_image"]
        if stored["images_sha256"] != digest or stored.get("contents_sha256", contents) != contents:
            raise EdgefaceError(f"{models[index]}: scored on other images than these {len(records)} of {split} "
                                f"(its split {report.get('split')}, {report.get('n')} images; names or contents "
                                "differ); pass the --data and --split it was scored on")
        if "contents_sha256" not in stored:
            log.warning(f"{models[index]}: an older report that records its images by name only; re-score it "
                        "with edgeface eval to pair by content")
    gender, age = label_arrays(records)
    outcomes, kinds = [], []
    for index, model in enumerate(models):
        if index in reports:
            try:
                outcomes.append(outcomes_from_store(reports[index]["per_image"], records))
            except ValueError as err:
                raise EdgefaceError(f"{model}: not a valid eval report: {err}") from None
            kinds.append((reports[index].get("format", "report"), reports[index].get("precision", "")))
            log.info(f"[{index + 1}/{len(models)}] {model}: per-image outcomes from the report")
            continue
        predictor = predictors[index]
        kinds.append((predictor.format, predictor.precision))
        log.info(f"[{index + 1}/{len(models)}] scoring {model} ({predictor.format} {predictor.precision}) on "
                 f"{len(records)} images")
        outcomes.append(per_image(predictor.predict_records(records, progress=f"model {index + 1}"), gender, age))
    rows = []
    for model, (fmt, precision), outcome in zip(models, kinds, outcomes):
        row = {"model": str(model), "format": fmt, "precision": precision, **summarize(outcome)}
        if rows:
            row["vs_reference"] = paired_deltas(outcomes[0], outcome, resamples, seed, confidence)
        if by:
            row["by"] = _grouped(records, by, outcomes[0], outcome, bool(rows), resamples, seed, confidence)
        rows.append(row)
    return {"split": split, **source, "n": len(records), "resamples": resamples, "confidence": confidence,
            "seed": seed, "by": by, "reference": str(models[0]), "models": rows, "edgeface_version": __version__,
            "date": datetime.date.today().isoformat()}


def _grouped(records, by: str, reference: dict, outcome: dict, paired: bool, resamples, seed, confidence) -> dict:
    """Per group (age band 0-2 ... 60-100, race, source): images, metrics and, for a candidate, its paired Δ."""
    from edgeface.eval.metrics import group_order

    keys = np.array([GROUPS[by](r) for r in records], dtype=object)
    out = {}
    for key in sorted({k for k in keys if k is not None}, key=group_order):
        m = keys == key
        sub = {k: v[m] for k, v in outcome.items()}
        entry = {"n": int(m.sum()), **summarize(sub)}
        if paired:
            entry["vs_reference"] = paired_deltas({k: v[m] for k, v in reference.items()}, sub, resamples, seed,
                                                  confidence)
        out[str(key)] = entry
    return out


def _stored_report(path) -> dict:
    """An eval report that kept its per-image outcomes (reports written before they did cannot be paired)."""
    import json
    from pathlib import Path

    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise EdgefaceError(f"{path}: not a readable eval report ({str(err).splitlines()[0][:120]})")
    stored = report.get("per_image") if isinstance(report, dict) else None
    if not isinstance(stored, dict) or not {"images_sha256", "gender_correct", "age_error"} <= set(stored):
        raise EdgefaceError(f"{path}: this report has no per-image outcomes (written before edgeface kept them); "
                            "re-score the model with `edgeface eval` to pair it")
    return report


def _delta_text(entry: dict | None, scale: float, unit: str, better: str) -> str:
    if entry is None:
        return "—"
    text = interval_entry_text(entry, scale, unit=unit)
    if not entry["real"]:
        return text + " " + entry.get("verdict", "noise")
    return text + (" better" if (entry["delta"] > 0) == (better == "higher") else " worse")


def format_comparison(report: dict) -> str:
    """One line per model; intervals are the paired bootstrap's: 'noise' when they include zero, 'negligible'
    when the difference is below the practical-equivalence margin (edgeface.stats.NEGLIGIBLE)."""
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
        for key, entry in (row.get("by") or {}).items():
            group_vs = entry.get("vs_reference", {})
            acc = "—" if entry["gender_accuracy"] is None else f"{100 * entry['gender_accuracy']:.2f}%"
            mae = "—" if entry["age_mae"] is None else f"{entry['age_mae']:.3f}"
            lines.append(f"        {key:>10} n={entry['n']:<5} gender {acc:>7} Δ "
                         f"{_delta_text(group_vs.get('gender_accuracy'), 100, ' pt', 'higher'):28}  MAE {mae:>6} Δ "
                         f"{_delta_text(group_vs.get('age_mae'), 1, ' y', 'lower')}")
    return "\n".join(lines)

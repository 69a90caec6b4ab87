"""Evaluation and prediction: metrics overall and per age band / race, JSON plus a readable table."""
from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

import numpy as np

from edgeface.any_model import open_model
from edgeface.data.records import label_arrays
from edgeface.errors import EdgefaceError
from edgeface.eval.metrics import age_metrics, breakdown, gender_metrics
from edgeface.labels import age_band_label, age_to_group
from edgeface.peers import is_peer
from edgeface.predictor import BasePredictor
from edgeface.run import Run
from edgeface.runtime import male_decisions
from edgeface.stats import per_image, stored_outcomes
from edgeface.utils import write_json
from edgeface.version import __version__

__all__ = ["evaluate", "evaluate_records", "write_report", "predict", "format_report", "scoring_records"]
log = logging.getLogger(__name__)


def evaluate_records(predictor: BasePredictor, records, split: str = "test") -> dict:
    """Scores one model (ours in any runtime, a peer, an ensemble) on labelled records."""
    if not records:
        raise EdgefaceError(f"no images in the {split} split to evaluate")
    numeric_age = predictor.numeric_age
    pred = predictor.predict_records(records, progress=f"scoring {len(records)} images")
    report = {"split": split, "n": len(records), "edgeface_version": __version__}
    true_gender, true_years = label_arrays(records)
    bands = [None if r.age_group is None else age_band_label(r.age_group) for r in records]
    races = [r.race for r in records]
    age_parts = None
    summary = []
    if "prob_male" in pred:
        known = true_gender >= 0
        report["gender"] = gender_metrics(true_gender[known], male_decisions(pred)[known])
        if report["gender"]:
            balanced = report["gender"]["balanced_accuracy"]
            summary.append(f"gender acc {100 * report['gender']['accuracy']:.2f}% "
                           + (f"(balanced {100 * balanced:.2f}%)" if balanced is not None
                              else "(balanced: undefined, the images have one gender only)"))
    if "age_years" in pred:
        true_group = np.array([-1 if r.age_group is None else r.age_group for r in records])
        known = true_group >= 0
        numeric = numeric_age and not np.isnan(true_years[known]).any()
        groups = pred["age_group"] if "age_group" in pred else age_to_group(pred["age_years"])  # peers: years only
        report["age"] = age_metrics(true_years[known], pred["age_years"][known], true_group[known], groups[known],
                                    numeric)
        age_parts = (true_years, pred["age_years"])
        if "mae" in report["age"]:
            summary.append(f"age MAE {report['age']['mae']:.2f}")
        if report["age"]:
            summary.append(f"age group acc {100 * report['age']['group_accuracy']:.1f}% "
                           f"(1-off {100 * report['age']['group_one_off_accuracy']:.1f}%)")
    gender_arg = true_gender if "prob_male" in pred else None
    male = male_decisions(pred) if "prob_male" in pred else None
    report["by_age_band"] = breakdown(bands, gender_arg, male, age_parts, numeric_age)
    if any(races):
        report["by_race"] = breakdown(races, gender_arg, male, age_parts, numeric_age)
    sources = [r.source for r in records]
    if len(set(sources)) > 1:  # a mixture's split: each source apart (a source labels only some tasks)
        report["by_source"] = breakdown(sources, gender_arg, male, age_parts, numeric_age)
    report["summary"] = ", ".join(summary)
    report["per_image"] = stored_outcomes(records, per_image(pred, true_gender, true_years))
    return report


def scoring_records(predictor, data: str | None, split: str, *, limit: int | None = None,
                    seed: int = 0, fold: int | None = None, allow_outside_root: bool = False) -> tuple[list, dict]:
    """The records to score a model on and where they came from (records_to_score with the model's run)."""
    return records_to_score(predictor.training_run(), data, split, limit=limit, seed=seed, fold=fold,
                            allow_outside_root=allow_outside_root,
                            no_run=f"{predictor.path}: its run folder is not on this machine")


def records_to_score(run: Run | None, data: str | None, split: str, *, limit: int | None = None, seed: int = 0,
                     fold: int | None = None, allow_outside_root: bool = False, others=(),
                     no_run: str = "no run folder") -> tuple[list, dict]:
    """The records to score and where they came from (eval, compare and the benchmark alike). Without `data`: the
    split `run` recorded when training (so a model is never scored on images it trained on); with `data`: that
    dataset's split, said out loud, with a warning for each run (`run`, `others`) that did not record them all."""
    from edgeface.data import load_data, stratified_subset

    if data is None:
        if run is None:
            raise EdgefaceError(f"{no_run}, so there is no recorded split to score; pass --data SPEC")
        records = run.split(split)
        if limit:
            records = stratified_subset(records, limit, seed)
        source = {"data": run.config.data, "split_source": f"recorded by {run.path} (splits/{split}.txt)"}
        log.info(f"scoring {len(records)} images of the {split} split recorded by {run.path}")
        return records, source
    bundle = load_data(data, seed=seed, fold=fold, limit=limit, allow_outside_root=allow_outside_root)
    if split not in bundle.splits:
        raise EdgefaceError(f"split {split!r} not in {data} (has {', '.join(bundle.splits)})")
    log.info(f"scoring {len(bundle[split])} images of {data} [{split}]")
    for each in [r for r in (run, *others) if r is not None]:
        if not each.records_all(split, [r.path for r in bundle[split]]):
            log.warning(f"scoring {data} [{split}] (split: {bundle.split_source}), not the split {each.path} "
                        "recorded; drop --data to score the run's own split")
    return bundle[split], {"data": data, "split_source": bundle.split_source}


def evaluate(model_path, data: str | None = None, split: str = "test", *, limit: int | None = None, seed: int = 0,
             fold: int | None = None, trust_hdf5: bool = False, allow_outside_root: bool = False) -> dict:
    """Evaluates a run folder, .keras file or exported artifact (by default on the split its run recorded), or a
    peer's folder or an ensemble (`ensemble:A,B`); returns the report (`write_report` saves it)."""
    predictor = open_model(model_path, trust_hdf5=trust_hdf5)
    records, source = scoring_records(predictor, data, split, limit=limit, seed=seed, fold=fold,
                                      allow_outside_root=allow_outside_root)
    report = evaluate_records(predictor, records, split)
    report.update(model=str(model_path), format=predictor.format, precision=predictor.precision,
                  input_size=predictor.input_size)
    spec = getattr(predictor, "spec", None)
    if spec is not None:
        report.update(backbone=spec.backbone, alpha=spec.alpha, parameters=predictor.parameters)
    report.update(**source, date=datetime.date.today().isoformat())
    return report


def write_report(report: dict, output: str | None = None) -> Path:
    """Saves an eval report: to `output`, or beside the model (a run's own reports go into its folder; an
    ensemble's in the working folder)."""
    name = report["data"].partition(":")[0]
    path = Path(report["model"])
    if output:
        out = Path(output)
    elif report["format"] == "ensemble":
        out = Path.cwd() / f"ensemble.eval-{name}-{report['split']}.json"
    elif report["format"] == "keras" and Run.is_run(path if path.is_dir() else path.parent):
        out = Run(path if path.is_dir() else path.parent).eval_report_path(name, report["split"])
    else:
        out = beside_or_here(path, f"{path.name}.eval-{name}-{report['split']}.json")
    write_json(out, report)
    return out


def beside_or_here(path: Path, name: str) -> Path:
    """`name` beside the model, or in the working folder when the model is edgeface's own (bundled in the
    installed package, which may be read-only and is not the user's), another project's (a peer's folder) or its
    folder is not writable."""
    package = Path(__file__).resolve().parents[1]
    if package in path.resolve().parents or is_peer(path) or not os.access(path.resolve().parent, os.W_OK):
        return Path.cwd() / name
    return path.with_name(name)


def group_cells(entry: dict) -> str:
    """One breakdown group (a source, an age band, a race) as `n=  190  gender  68.95%  MAE   1.54`."""
    cells = [f"n={entry['n']:5d}"]
    if "gender_accuracy" in entry:
        cells.append(f"gender {100 * entry['gender_accuracy']:6.2f}%")
    if "age_mae" in entry:
        cells.append(f"MAE {entry['age_mae']:6.2f}")
    return "  ".join(cells)


def format_report(report: dict) -> str:
    lines = [f"{report.get('model', '')} on {report.get('data', '')} [{report['split']}], {report['n']} images",
             f"  {report['summary']}"]
    g = report.get("gender")
    if g:
        cm = g["confusion_matrix"]["counts"]

        def num(value):
            return "n/a" if value is None else f"{value:.3f}"

        lines.append(f"  gender: precision(male) {num(g['precision_male'])} recall(male) {num(g['recall_male'])} "
                     f"F1 {num(g['f1_male'])}; confusion [true F: {cm[0]}, true M: {cm[1]}] (cols: pred F, M)")
    for title, key in (("source", "by_source"), ("age band", "by_age_band"), ("race", "by_race")):
        table = report.get(key)
        if not table:
            continue
        lines.append(f"  by {title}:")
        for name, entry in table["groups"].items():
            lines.append(f"    {name:>10}  {group_cells(entry)}")
        for metric, gap in table["gaps"].items():
            lines.append(f"    worst {metric}: {gap['worst']} ({gap['worst_value']:.3f}), gap {gap['gap']:.3f}")
    return "\n".join(lines)


from edgeface.eval.predict import predict  # noqa: E402,F401  the predict use-case (its own module)

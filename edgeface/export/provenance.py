"""What a card says of the run an artifact came from: its training section and the metrics already measured."""
from __future__ import annotations

from edgeface.run import Run


def training_record(run: Run, which: str = "best") -> dict:
    """The card's training section: data, split, counts and lineage, read from the run; the run is recorded by
    where it was (`run`, as given) and by content (`run_model`: the exported model file's sha256), so `verify`
    can tell the parent found elsewhere, or changed since, from the one exported."""
    data, cfg = run.data_info, run.config
    model = run.info.get("models", {}).get(which, {})
    return {"data": data.get("spec") or cfg.data, "split": data.get("split"), "counts": data.get("counts"),
            "run": str(run.path), "run_absolute": str(run.path.resolve()),
            "run_model": {"file": model.get("file"), "sha256": model.get("sha256")},
            "parents": list(cfg.parents), "compression": cfg.compression or {}}


def run_metrics(run: Run) -> dict:
    """Keras-model metrics already measured for the run: validation (training) and any test evaluations."""
    out = {}
    if run.metrics is not None:
        out["keras_val"] = _headline(run.metrics)
    for stem, report in run.eval_reports("test").items():
        out[f"keras_{stem.removeprefix('eval-')}"] = _headline(report)
    return out


def _headline(report: dict) -> dict:
    out = {"split": report.get("split"), "n": report.get("n")}
    if "gender" in report:
        out.update(gender_accuracy=report["gender"].get("accuracy"),
                   gender_balanced_accuracy=report["gender"].get("balanced_accuracy"))
    if "age" in report:
        out.update({f"age_{k}": report["age"][k] for k in ("mae", "group_accuracy") if k in report["age"]})
    return out

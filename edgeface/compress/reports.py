"""compression.json: child and parent described and scored on the same images; a collapsed child said out loud."""
from __future__ import annotations

import logging

from edgeface.compress.stats import describe
from edgeface.run import Run

log = logging.getLogger(__name__)

COLLAPSE_POINTS = 10.0  # a child this many gender-accuracy points below its parent is reported as collapsed


def compression_report(run: Run, parent: Run, extra: dict) -> dict:
    """compression.json: size and cost of child and parent, and both scored on the same images (the child's
    recorded validation split; with --limit it is smaller than the parent's own)."""
    from edgeface.eval import evaluate_records
    from edgeface.predictor import Predictor

    config = run.config
    parent_model = parent.load_model()
    parent_val = evaluate_records(Predictor.from_keras(parent_model, parent.spec), run.split("val"), "val")
    this_val = run.metrics or {}
    report = {**config.compression, **extra, "fine_tune": {"epochs": config.epochs, "lr": config.lr},
              "model": describe(run.load_model()), "parent_model": describe(parent_model),
              "val_summary": {"parent": parent_val.get("summary"), "this": this_val.get("summary"),
                              "images": parent_val["n"]}}
    warn_if_collapsed(report, parent_val, this_val, "the compressed model", "its parent",
                       "fine-tune longer, at a lower rate, or compress less")
    run.write_compression(report)
    return report


def warn_if_collapsed(report: dict, reference_val: dict, this_val: dict, what: str, against: str, advice: str):
    """Adds (and logs) report["warning"] when `this_val` is COLLAPSE_POINTS of gender accuracy below
    `reference_val`, both scored on the same images."""
    drop = 100 * (reference_val.get("gender", {}).get("accuracy", 0) - this_val.get("gender", {}).get("accuracy", 0))
    if "gender" in this_val and drop > COLLAPSE_POINTS:
        report["warning"] = (f"{what} lost {drop:.1f} points of gender accuracy against {against} on the same "
                             f"{reference_val['n']} validation images: it has collapsed ({advice})")
        log.warning(report["warning"])

"""k-fold cross-validation (Adience's 5-fold protocol): one run per held-out fold, mean ± std over folds."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.run import Run
from edgeface.run.config import TrainConfig
from edgeface.utils import write_json

FOLDS = 5
# (report section, metric) pairs summarised across folds when present
SUMMARY_METRICS = (("gender", "accuracy"), ("gender", "balanced_accuracy"), ("age", "group_accuracy"),
                   ("age", "group_one_off_accuracy"), ("age", "mae"))


def cross_validate(cfg: TrainConfig, folds: int = FOLDS) -> dict:
    """Trains one run per fold under runs_dir/NAME/foldK (finished folds are kept), scores each on its
    held-out fold, and writes NAME/crossval.json with per-fold metrics and mean ± std."""
    from edgeface.eval import evaluate
    from edgeface.train.trainer import train

    if not cfg.data.startswith("adience:"):
        raise EdgefaceError("--cross-validate follows Adience's 5-fold protocol: use --data adience:PATH")
    parent = Path(cfg.runs_dir) / (cfg.name or f"{cfg.run_name()}-cv")
    per_fold = []
    for k in range(folds):
        run = Run(parent / f"fold{k}")
        fold_cfg = cfg.replace(fold=k, name=run.name, runs_dir=str(parent))
        if not Run.is_run(run.path) or run.metrics is None:
            train(fold_cfg, resume=Run.is_run(run.path))
        report = evaluate(run.path, split="test")  # the fold's own recorded held-out split
        per_fold.append({"fold": k, **{f"{s}_{m}": report[s][m] for s, m in SUMMARY_METRICS
                                       if m in report.get(s, {})}})
        logging.getLogger(__name__).info(f"fold {k}: {report['summary']}")
    summary = {}
    for key in per_fold[0]:
        if key != "fold":
            values = np.array([f[key] for f in per_fold])
            summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1) if folds > 1 else 0.0)}
    result = {"data": cfg.data, "folds": per_fold, "summary": summary, "config": cfg.to_dict()}
    write_json(parent / "crossval.json", result)
    return result


def format_crossval(result: dict) -> str:
    lines = [f"{len(result['folds'])}-fold cross-validation on {result['data']}:"]
    for key, stats in result["summary"].items():
        scale = 1 if key.endswith("mae") else 100
        unit = "" if key.endswith("mae") else "%"
        lines.append(f"  {key:32} {scale * stats['mean']:.2f}{unit} ± {scale * stats['std']:.2f}{unit}")
    return "\n".join(lines)

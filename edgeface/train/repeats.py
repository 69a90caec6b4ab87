"""Families of runs of one recipe, summarised as mean ± std: k-fold cross-validation (Adience's 5-fold protocol,
each fold scored on its held-out fold) and seed repeats (`train --seeds`, each seed scored on validation), so a
recipe's spread is measured before a difference between recipes is believed."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.utils import write_json

log = logging.getLogger(__name__)
FOLDS = 5
# (report section, metric) pairs summarised across the family when present
SUMMARY_METRICS = (("gender", "accuracy"), ("gender", "balanced_accuracy"), ("age", "group_accuracy"),
                   ("age", "group_one_off_accuracy"), ("age", "mae"))


def _family(cfg: TrainConfig, parent: Path, members: list[tuple[str, dict]], score) -> list[dict]:
    """Trains each member (a run under `parent` with config changes) unless it finished (a started one resumes),
    then takes the metrics `score(run)` gives."""
    from edgeface.train.trainer import train

    rows = []
    for name, changes in members:
        run = Run(parent / name)
        if not Run.is_run(run.path) or run.metrics is None:
            train(cfg.replace(name=name, runs_dir=str(parent), **changes), resume=Run.is_run(run.path))
        report = score(run)
        rows.append({**changes, "run": str(run.path),
                     **{f"{s}_{m}": report[s][m] for s, m in SUMMARY_METRICS if m in report.get(s, {})}})
        log.info(f"{name}: {report['summary']}")
    return rows


def _summary(rows: list[dict], key: str) -> dict:
    summary = {}
    for metric in rows[0]:
        if metric not in (key, "run"):
            values = np.array([row[metric] for row in rows if row[metric] is not None], float)
            if len(values):  # a metric undefined on some members' images (balanced accuracy of one gender)
                summary[metric] = {"mean": float(values.mean()), "n": len(values),
                                   "std": float(values.std(ddof=1) if len(values) > 1 else 0.0)}
    return summary


def cross_validate(cfg: TrainConfig, folds: int = FOLDS) -> dict:
    """One run per fold under runs_dir/NAME/foldK, each scored on its held-out fold; NAME/crossval.json."""
    from edgeface.eval import evaluate

    if not cfg.data.startswith("adience:"):
        raise EdgefaceError("--cross-validate follows Adience's 5-fold protocol: use --data adience:PATH")
    parent = Path(cfg.runs_dir) / (cfg.name or f"{cfg.run_name()}-cv")
    rows = _family(cfg, parent, [(f"fold{k}", {"fold": k}) for k in range(folds)],
                   lambda run: evaluate(run.path, split="test"))  # the fold's own recorded held-out split
    result = {"kind": "folds", "data": cfg.data, "split": "held-out fold", "members": rows,
              "summary": _summary(rows, "fold"), "config": cfg.to_dict()}
    write_json(parent / "crossval.json", result)
    return result


def train_seeds(cfg: TrainConfig, seeds: list[int]) -> dict:
    """One run per seed under runs_dir/NAME/seedS, each scored on its validation split (its best epoch's
    metrics); NAME/seeds.json. Test stays untouched: score the chosen recipe on it once."""
    if len(set(seeds)) != len(seeds) or not seeds:
        raise EdgefaceError(f"--seeds {','.join(map(str, seeds))}: give distinct seeds, e.g. 0,1,2")
    parent = Path(cfg.runs_dir) / (cfg.name or f"{cfg.run_name()}-seeds")
    rows = _family(cfg, parent, [(f"seed{s}", {"seed": s}) for s in seeds], lambda run: run.metrics)
    result = {"kind": "seeds", "data": cfg.data, "split": "val", "members": rows,
              "summary": _summary(rows, "seed"), "config": cfg.to_dict()}
    write_json(parent / "seeds.json", result)
    return result


def format_family(result: dict) -> str:
    what = {"folds": "fold cross-validation", "seeds": "seeds"}[result["kind"]]
    lines = [f"{len(result['members'])} {what} on {result['data']} ({result['split']}), mean ± std:"]
    for key, stats in result["summary"].items():
        scale, unit = (1, "") if key.endswith("mae") else (100, "%")
        lines.append(f"  {key:32} {scale * stats['mean']:.2f}{unit} ± {scale * stats['std']:.2f}{unit}")
    return "\n".join(lines)

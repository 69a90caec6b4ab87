"""What `edgeface train` runs, above both training and compression so neither owns the other's part:
`train_job` (one run, a seed or fold family, or a resume) and `resume_run(path)`, which continues any interrupted
run where its last checkpoint left it: a plain training goes straight back to the trainer; a compressed one is
rebuilt from the method, parent and teachers its config recorded (edgeface.compress.plans)."""
from __future__ import annotations

from edgeface.errors import EdgefaceError
from edgeface.run import Run


def resume_run(path) -> Run:
    from edgeface.train.trainer import train

    run = Run.to_resume(path)
    cfg = run.config.replace(name=run.path.name, runs_dir=str(run.path.parent))
    if not cfg.compression:
        return train(cfg, resume=True)
    from edgeface.compress.plans import PLANS, execute

    if cfg.compression.get("method") not in PLANS:
        raise EdgefaceError(f"{run.path}: compression method {cfg.compression.get('method')!r} cannot be resumed")
    return execute(cfg, resume=True)


def train_job(cfg, resume: bool = False, cross_validate: bool = False, seeds=None):
    """The run (None on a multi-worker cluster's non-chief worker, which wrote nothing), or for --cross-validate /
    --seeds the family's summary table. `cfg` names the run to continue when `resume`."""
    from pathlib import Path

    if cross_validate or seeds:
        from edgeface.train.repeats import cross_validate as run_cv, format_family, train_seeds

        if resume or (cross_validate and cfg.fold is not None) or (cross_validate and seeds):
            raise EdgefaceError("--cross-validate and --seeds run every member themselves: use one of them, without "
                                "--resume or --fold (re-run the same command to continue)")
        return format_family(run_cv(cfg) if cross_validate else train_seeds(cfg, list(seeds)))
    if resume:
        return resume_run(Path(cfg.runs_dir) / cfg.run_name())
    from edgeface.train.trainer import train  # TensorFlow: after the config is known good

    return train(cfg)

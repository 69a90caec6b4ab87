"""`resume_run(path)`: continues any interrupted run where its last checkpoint left it. A plain training goes
straight back to the trainer; a compressed one is rebuilt from the method, parent and teachers its config
recorded (edgeface.compress.plans). It sits above both, so neither owns the other's resume."""
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

"""`edgeface tune`: a Hyperband search (KerasTuner) over the recipe's learning rate, batch size, dropout, head
width, age-loss weight, label smoothing, geometric augmentation strength and age head (regression vs
distribution vs ordinal), scored on the validation split only (the test split is never loaded).

KerasTuner's Keras-model tuners reject tf-keras models (keras-team/keras-tuner#1039: it always imports Keras 3),
so trials run through our own training step inside `run_trial`, while KerasTuner's Hyperband oracle chooses the
trials, hands each the weights it should continue from, and keeps the search state on disk (a re-run resumes).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.run.train_config import TrainConfig

OBJECTIVE = "val_score"  # gender error % + age MAE on the validation split, lower is better


GEOMETRIC = ("rotation", "zoom", "shear", "translate")  # scaled together by one searched factor
# what define_space searches, in words (the log line and `edgeface tune --help` say these; a test checks both)
SEARCHED = ("learning rate", "batch size", "dropout", "head width", "age-loss weight", "label smoothing",
            "geometric augmentation", "age head")


def define_space(hp, cfg: TrainConfig, numeric_age: bool) -> dict:
    """The searched hyperparameters as TrainConfig changes."""
    age_weight = hp.Float("age_loss_weight", 0.03, 1.0, sampling="log")
    jitter = hp.Choice("geometric_jitter", [0.0, 0.5, 1.0])
    model = {"dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
             "head_units": hp.Choice("head_units", [0, 128, 256])}
    augment = cfg.augment.to_dict()
    changes = {"lr": hp.Float("lr", 1e-4, 3e-3, sampling="log"),
               "batch_size": hp.Choice("batch_size", [32, 64, 128]),
               "label_smoothing": hp.Choice("label_smoothing", [0.0, 0.05, 0.1]),
               "augment": {**augment, **{k: augment[k] * jitter for k in GEOMETRIC}},
               "loss_weights": {**cfg.loss_weights, "age": age_weight}}
    if "age" in cfg.model.tasks:
        heads = ["regression", "distribution", "ordinal"] if numeric_age else ["groups", "ordinal"]
        model["age_head"] = hp.Choice("age_head", heads)
    return {**changes, "model": {**cfg.model.to_dict(), **model}}


def trial_config(cfg: TrainConfig, hp, numeric_age: bool) -> TrainConfig:
    return cfg.replace(**define_space(hp, cfg, numeric_age))


def _tuner_class():
    import keras_tuner as kt

    class RecipeSearch(kt.Hyperband):
        """Hyperband whose trials are edgeface training runs (see the module docstring)."""

        def __init__(self, cfg: TrainConfig, data, log, **kwargs):
            super().__init__(**kwargs)
            self.cfg, self.data, self.log = cfg, data, log

        def run_trial(self, trial, *args, **kwargs):
            return run_one_trial(self, trial)

    return RecipeSearch


def run_one_trial(tuner, trial) -> dict:
    """Trains one trial from `tuner/initial_epoch` to `tuner/epochs` (Hyperband's budget), warm-started from the
    trial it continues; returns the best epoch's validation logs."""
    import tensorflow as tf

    from edgeface.data.pipeline import make_dataset
    from edgeface.models import create_model
    from edgeface.train.trainer import (EpochReport, compile_model, learning_rate, loss_weight_variables,
                                        model_spec, set_bn_momentum)
    from edgeface.utils import seed_everything

    hp = trial.hyperparameters
    cfg = trial_config(tuner.cfg, hp, tuner.data.numeric_age)
    seed_everything(cfg.seed)
    data = tuner.data
    spec = model_spec(cfg, data)
    model = create_model(spec, weights_dir=cfg.weights_dir)
    set_bn_momentum(model, cfg.bn_momentum)
    first, last = hp.values.get("tuner/initial_epoch", 0), hp.values.get("tuner/epochs", cfg.epochs)
    steps = math.ceil(len(data["train"]) / cfg.batch_size)
    # one schedule over Hyperband's longest budget, so a continued trial picks up the LR where it left off
    optimizer = compile_model(model, cfg, spec, learning_rate(cfg, cfg.lr, tuner.oracle.max_epochs, steps),
                              loss_weight_variables(cfg, spec))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    if "tuner/trial_id" in hp.values:
        # weights and the optimizer's moments (KerasTuner's own Hyperband carries weights only), so a continued
        # trial trains on as an uninterrupted one would (issue 32: a continuation looked like a metric jump)
        checkpoint.read(_checkpoint_prefix(tuner, hp.values["tuner/trial_id"])).assert_existing_objects_matched()
    optimizer.iterations.assign(first * steps)
    train_ds = make_dataset(data["train"], spec, training=True, batch_size=cfg.batch_size, seed=cfg.seed,
                            augment=cfg.augment, epochs=(first, last))
    val_ds = make_dataset(data.choice_val(), spec, training=False, batch_size=cfg.batch_size)
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.values.items()
                       if not k.startswith("tuner/"))
    tuner.log(f"trial {trial_number(trial.trial_id)}: epochs {first}->{last}, {values}")
    history = model.fit(train_ds, validation_data=val_ds, epochs=last, initial_epoch=first, steps_per_epoch=steps,
                        verbose=0,
                        callbacks=[EpochReport(len(data["train"]), last)])
    checkpoint.write(_checkpoint_prefix(tuner, trial.trial_id))
    logs = [dict(zip(history.history, values)) for values in zip(*history.history.values())]
    best = min(logs, key=lambda entry: entry[OBJECTIVE])
    tuner.log(f"trial {trial_number(trial.trial_id)}: {OBJECTIVE} {best[OBJECTIVE]:.3f} (its best epoch)")
    return {k: float(v) for k, v in best.items() if k.startswith("val_")}


def trial_number(trial_id: str) -> str:
    """KerasTuner's trial ids count from 0000 while its log says "Trial #1": name trials as its log does."""
    return f"#{int(trial_id) + 1}"


def _oracle_seed(seed: int) -> int:
    """KerasTuner's oracle takes `seed or random.randint(1, 10000)`, so seed 0 (our default) drew other trials
    on every search; shifted by one, every seed is a seed."""
    return seed + 1


def _checkpoint_prefix(tuner, trial_id: str) -> str:
    prefix = Path(tuner.get_trial_dir(trial_id)) / "checkpoint"
    if not prefix.with_suffix(".index").is_file() and (prefix.parent / "weights.h5").is_file():
        raise EdgefaceError(f"{prefix.parent}: a search from an older edgeface (weights.h5, no optimizer state); "
                            "start it again under another --name")
    return str(prefix)


def tune(cfg: TrainConfig, max_epochs: int = 12, factor: int = 3, iterations: int = 1, top: int = 10,
         log=None) -> dict:
    """Runs (or resumes) the search in runs_dir/NAME and writes tune.json (ranked trials) and best.yaml (the
    winning recipe at cfg.epochs, ready for `edgeface train --config`)."""
    import keras_tuner as kt

    from edgeface.data import load_data
    from edgeface.models.weights import check_weights_dir
    import yaml

    from edgeface.utils import write_json, write_text

    log = log or logging.getLogger(__name__).info
    if max_epochs < 2 or factor < 2:
        raise EdgefaceError("--max-epochs and --factor must be at least 2 for Hyperband")
    name = cfg.name or f"tune-{cfg.run_name()}"
    folder = Path(cfg.runs_dir) / name
    check_weights_dir(cfg.weights_dir)
    data = load_data(cfg.data, seed=cfg.seed, fold=cfg.fold, dedup=cfg.dedup, limit=cfg.limit,
                     allow_outside_root=cfg.allow_outside_root)
    if not data["val"]:
        raise EdgefaceError(f"{cfg.data}: no validation split to score trials on")
    log(f"tune {folder}: Hyperband over {', '.join(SEARCHED)}; up to {max_epochs} "
        f"epochs a trial, factor {factor}; scored on val ({len(data.choice_val())} images"
        f"{f' of {data.validate_on}' if data.validate_on else ''}), test never read")
    space = kt.HyperParameters()
    define_space(space, cfg, data.numeric_age)
    tuner = _tuner_class()(cfg, data, log, hyperparameters=space, objective=kt.Objective(OBJECTIVE, "min"),
                           max_epochs=max_epochs,
                           factor=factor, hyperband_iterations=iterations, seed=_oracle_seed(cfg.seed), directory=cfg.runs_dir,
                           project_name=name, overwrite=False)
    tuner.search(verbose=0)  # KerasTuner's own per-trial tables repeat what our log lines and final table say
    ranked = []
    # ties in score (tiny searches have them) ranked by trial number, so a resumed search prints the same order
    best = sorted(tuner.oracle.get_best_trials(num_trials=10 ** 6), key=lambda t: (float("inf") if t.score is None else t.score, int(t.trial_id)))
    for rank, trial in enumerate(best, 1):
        values = trial.hyperparameters.values
        ranked.append({"rank": rank, "trial": trial_number(trial.trial_id), OBJECTIVE: trial.score,
                       "epochs": values.get("tuner/epochs"),
                       "val_gender_accuracy": _at_best_epoch(trial, "val_gender_accuracy"),
                       "val_age_mae": _at_best_epoch(trial, "val_age_mae"),
                       "hyperparameters": {k: v for k, v in values.items() if not k.startswith("tuner/")}})
    if not ranked:
        raise EdgefaceError(f"{folder}: the search finished no trial")
    best_cfg = trial_config(cfg, tuner.oracle.get_best_trials(1)[0].hyperparameters, data.numeric_age)
    # the recipe to train for real: on every image (a search capped with --limit must not cap the training)
    best_cfg = best_cfg.replace(name=None, limit=None)
    result = {"folder": str(folder), "objective": f"{OBJECTIVE} (min) on val", "max_epochs": max_epochs,
              "factor": factor, "iterations": iterations, "base_config": cfg.to_dict(), "trials": ranked,
              "best_config": str(folder / "best.yaml")}
    write_json(folder / "tune.json", result)
    note = (f"# the best trial of {folder}; searched on {cfg.limit} images per split (--limit), trains on all\n"
            if cfg.limit else f"# the best trial of {folder}\n")
    write_text(folder / "best.yaml", note + yaml.safe_dump(best_cfg.to_dict(), sort_keys=False))
    result["table"] = format_trials(ranked[:top])
    return result


def _at_best_epoch(trial, metric: str):
    """The metric at the trial's best epoch (run_trial reports that epoch's validation logs)."""
    return float(trial.metrics.get_last_value(metric)) if trial.metrics.exists(metric) else None


def format_trials(ranked: list) -> str:
    lines = [f"{'rank':>4} {'trial':>5} {OBJECTIVE:>9} {'epochs':>6} {'val acc':>8} {'val MAE':>7}  hyperparameters"]
    for t in ranked:
        acc = f"{100 * t['val_gender_accuracy']:.2f}%" if t["val_gender_accuracy"] is not None else "-"
        mae = f"{t['val_age_mae']:.2f}" if t["val_age_mae"] is not None else "-"
        hps = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in t["hyperparameters"].items())
        lines.append(f"{t['rank']:>4} {t['trial']:>5} {t[OBJECTIVE]:>9.3f} {t['epochs']!s:>6} {acc:>8} {mae:>7}  {hps}")
    return "\n".join(lines)

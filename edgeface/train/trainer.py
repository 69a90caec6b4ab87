"""`train(config)`: one run folder with resolved config, best/last models, resumable checkpoints and history."""
from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeface.data import load_data
from edgeface.data.pipeline import make_dataset
from edgeface.errors import EdgefaceError
from edgeface.labels import AGE_GROUP_LABELS, AGE_GROUPS
from edgeface.models import ModelSpec, create_model
from edgeface.models.heads import HEAD_LAYERS
from edgeface.models.weights import check_weights_dir, imagenet_problem
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.runtime import task_key
from edgeface.train.losses import WeightedLoss, base_loss, head_metrics, score
from edgeface.utils import scratch_dir, seed_everything

log = logging.getLogger(__name__)


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # reads the cluster from TF_CONFIG
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up then cosine decay to zero, by step."""

    def __init__(self, peak, total_steps, warmup_steps):
        self.peak, self.total, self.warmup = peak, max(1, total_steps), warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1) / max(1.0, float(self.warmup))
        progress = tf.clip_by_value((step - self.warmup) / max(1.0, float(self.total - self.warmup)), 0.0, 1.0)
        cosine = 0.5 * self.peak * (1 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total, "warmup_steps": self.warmup}


def learning_rate(cfg: TrainConfig, peak: float, epochs: int, steps_per_epoch: int):
    total = epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        return WarmupCosine(peak, total, int(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "multistep":
        bounds = [int(m * total) for m in cfg.milestones]
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [peak * cfg.gamma ** i for i in range(len(bounds) + 1)])
    return peak  # constant, or plateau (ReduceLROnPlateau adjusts it)


def make_optimizer(cfg: TrainConfig, lr):
    ema = {"use_ema": True, "ema_momentum": cfg.ema} if cfg.ema else {}
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, **ema)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay, **ema)
    return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True, **ema)


class AverageWeights(keras.callbacks.Callback):
    """With `ema` set, the optimizer keeps a moving average of the weights; this swaps it into the model while
    validating and saving best/last models, so the epoch is chosen on the weights that ship, while training
    (and the resumable checkpoint) keep the raw ones."""

    def swap(self):
        optimizer = self.model.optimizer
        averages = optimizer._model_variables_moving_average  # tf-keras keeps no public handle on them
        for var in self.model.trainable_variables:
            average = averages[optimizer._index_dict[optimizer._var_key(var)]]
            raw = tf.identity(var)
            var.assign(average)
            average.assign(raw)

    def on_test_begin(self, logs=None):
        self.swap()

    def on_test_end(self, logs=None):
        self.swap()


class EpochReport(keras.callbacks.Callback):
    """Adds val_score and train images/s to the logs and prints one summary line per epoch."""

    def __init__(self, n_train: int, total_epochs: int):
        super().__init__()
        self.n_train, self.total = n_train, total_epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.train_end = time.time(), None

    def on_test_begin(self, logs=None):
        self.train_end = self.train_end or time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        for key in list(logs):  # tfmot wrappers rename outputs (quant_gender, ...): log them by task
            plain = task_key(key)
            if plain != key:
                logs[plain] = logs.pop(key)
        train_time = (self.train_end or time.time()) - self.start
        logs["train_images_per_s"] = self.n_train / max(train_time, 1e-9)
        value = score(logs)
        if value is not None:
            logs["val_score"] = value
        keys = [k for k in ("loss", "gender_accuracy", "age_mae", "age_accuracy", "val_gender_accuracy",
                            "val_age_mae", "val_age_accuracy", "val_score") if k in logs]
        line = " ".join(f"{k}={logs[k]:.4f}" for k in keys)
        log.info(f"epoch {epoch + 1}/{self.total} {line} {logs['train_images_per_s']:.0f} img/s "
                 f"{time.time() - self.start:.0f}s")


class LossWeightScheduler(keras.callbacks.Callback):
    """Sets the per-task loss weights at the start of each epoch from [[epoch, {task: weight}], ...]."""

    def __init__(self, variables: dict, base: dict, schedule: list):
        super().__init__()
        self.variables, self.base, self.schedule = variables, base, sorted(schedule, key=lambda s: s[0])

    def weights_at(self, epoch: int) -> dict:
        current = dict(self.base)
        for start, weights in self.schedule:
            if epoch >= start:
                current.update(weights)
        return current

    def on_epoch_begin(self, epoch, logs=None):
        for task, weight in self.weights_at(epoch).items():
            if task in self.variables:
                self.variables[task].assign(weight)


class RunCheckpoint(keras.callbacks.Callback):
    """Keeps the best model (by the monitored value), the last one, a resumable tf.train checkpoint and the
    run's progress (state.json), in that order and after the epoch's history row, so that a kill at any point
    resumes with a complete history (rows past the checkpoint are dropped on resume)."""

    def __init__(self, run: Run, manager: tf.train.CheckpointManager, epoch_var, monitor: str, state: dict,
                 average: AverageWeights | None = None):
        super().__init__()
        self.run, self.manager, self.epoch_var, self.monitor, self.state = run, manager, epoch_var, monitor, state
        self.mode_max = "accuracy" in monitor
        self.average = average

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            raise EdgefaceError(f"monitor {self.monitor!r} is not among the logged values: {', '.join(logs)}")
        best = self.state.get("best_value")
        if self.average:
            self.average.swap()
        if best is None or (value > best if self.mode_max else value < best):
            self.state.update(best_value=float(value), best_epoch=epoch + 1)
            self.run.save_model(self.model, "best")
        self.run.save_model(self.model, "last")
        if self.average:
            self.average.swap()
        self.epoch_var.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        self.state["epochs_done"] = epoch + 1
        self.state["wall_s"] = self.state.get("wall_s", 0.0) + time.time() - self.start
        self.state.setdefault("train_images_per_s", []).append(float(logs.get("train_images_per_s", 0)))
        self.run.write_state(self.state)


def _set_trainable(model, unfreeze_from: int | None) -> None:
    """None: everything trainable. Else backbone layers before index `unfreeze_from` are frozen; heads train."""
    backbone = [l for l in model.layers if l.name not in HEAD_LAYERS]
    for i, layer in enumerate(backbone):
        layer.trainable = unfreeze_from is None or i >= unfreeze_from


def class_weights(records) -> dict:
    counts = np.bincount([r.gender for r in records if r.gender is not None], minlength=2)
    return {g: len(records) / (2 * max(c, 1)) for g, c in enumerate(counts)}


def band_weights(records, kind: str) -> dict | None:
    """Age band -> loss weight, inverse to the band's share of the training images (or its square root), scaled so
    an image of a known band weighs 1 on average; children are few in every source (issue 30)."""
    if kind == "none":
        return None
    counts = np.bincount([r.age_group for r in records if r.age_group is not None], minlength=len(AGE_GROUPS))
    raw = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0) ** (0.5 if kind == "sqrt" else 1.0)
    raw /= (raw * counts).sum() / max(counts.sum(), 1)
    return {g: float(w) for g, w in enumerate(raw) if counts[g]}


def model_spec(cfg: TrainConfig, data) -> ModelSpec:
    """The model a config asks for, fitted to the data: group-only labels, the age bias at the training split's
    mean age, and a run folder as weights resolved to its best model."""
    weights = cfg.model.weights
    if weights not in ("imagenet", "none") and Run.is_run(weights):
        weights = str(Run.open(weights, finished=True).verify_model())
    return cfg.model.replace(
        numeric_age=data.numeric_age, weights=weights,
        age_init=float(np.mean([r.age for r in data["train"] if r.age is not None] or [33.0])))


def set_bn_momentum(model, momentum: float | None) -> None:
    if momentum is not None:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = momentum


def loss_weight_variables(cfg: TrainConfig, spec: ModelSpec) -> dict:
    return {t: tf.Variable(float(cfg.loss_weights.get(t, 1.0)), trainable=False, name=f"{t}_loss_weight")
            for t in spec.tasks}


def compile_model(model, cfg: TrainConfig, spec: ModelSpec, lr, loss_vars: dict):
    """Compiles with the config's optimizer, per-task weighted losses and head metrics; returns the optimizer."""
    optimizer = make_optimizer(cfg, lr)
    losses = {t: WeightedLoss(base_loss(t, spec, cfg.age_loss, cfg.label_smoothing), loss_vars[t]) for t in spec.tasks}
    # weighted: a missing label (sample weight 0) must not count in the metrics either
    model.compile(optimizer=optimizer, loss=losses, weighted_metrics={t: head_metrics(t, spec) for t in spec.tasks})
    return optimizer


def worker_role(strategy: str) -> str | None:
    """None for the process that writes the run: the only one, or the chief of a multi-worker cluster (TF_CONFIG's
    "chief" task, else worker 0, tf.distribute's rule); otherwise the task's name, e.g. "worker 1"."""
    if strategy != "multiworker":
        return None
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    kind, index = resolver.task_type, resolver.task_id or 0
    if not kind or kind == "chief" or (kind == "worker" and index == 0
                                       and "chief" not in resolver.cluster_spec().as_dict()):
        return None
    return f"{kind} {index}"


def train(cfg: TrainConfig, resume: bool = False, build_model=None, extra_callbacks=(), finalize=None) -> Run | None:
    """Trains per `cfg`; returns the Run. With resume=True continues `runs_dir/name` where it stopped.

    Compression reuses this loop: `build_model(spec)` supplies the (wrapped) model instead of a fresh one,
    `extra_callbacks` are added to fit, and `finalize(run)` rewrites the best model (e.g. strips pruning wrappers)
    before the final validation score.

    Multi-worker training (--strategy multiworker) has one writer, the chief: every other worker runs the same
    steps (saving is collective) in a scratch copy of the run that is deleted at the end, scores nothing and
    returns None - tf.distribute's pattern of non-chief workers saving to temporary paths (issue 29 item 12)."""
    path = Path(cfg.runs_dir) / cfg.run_name()
    if resume:
        cfg = Run.to_resume(path).config.replace(name=path.name, runs_dir=str(path.parent))  # where it is now
    role = worker_role(cfg.strategy)
    if role is None:
        return _train(cfg, resume, build_model, extra_callbacks, finalize)
    with scratch_dir() as scratch:
        if resume:  # the chief's folder, on the storage the cluster shares
            shutil.copytree(path, scratch / path.name)
        log.info(f"{role}: training beside the chief, which alone writes the run")
        _train(cfg.replace(runs_dir=str(scratch), name=path.name), resume, build_model, extra_callbacks, finalize,
               score=False)
    return None


def _train(cfg: TrainConfig, resume: bool, build_model, extra_callbacks, finalize, score: bool = True) -> Run:
    if resume:
        run = Run.open(Path(cfg.runs_dir) / cfg.run_name())
        cfg = run.config
    seed_everything(cfg.seed)
    check_weights_dir(cfg.weights_dir)
    problem = cfg.model.weights == "imagenet" and imagenet_problem(cfg.model.backbone_config, cfg.model.alpha)
    if problem:  # the config must not record weights the model would not get
        raise EdgefaceError(problem)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    data = load_data(cfg.data, seed=cfg.seed, fold=cfg.fold, dedup=cfg.dedup, limit=cfg.limit,
                     allow_outside_root=cfg.allow_outside_root)
    for split in ("train", "val"):
        if not data[split]:
            raise EdgefaceError(f"{cfg.data}: the {split} split is empty ({data.summary()}); training needs "
                                "images in both train and val")
    for task in cfg.model.tasks:
        if not data.has_labels(task):
            raise EdgefaceError(f"{cfg.data}: the training split has no {task} labels; drop it with --tasks")
    for task in cfg.model.tasks:
        classes = data.label_classes(task)
        if classes == 1:
            log.warning(f"{cfg.data}: every training image has the same {task} label; the {task} head will learn "
                        "nothing useful (drop it with --tasks, or add images of the other classes)")
    if resume:
        spec = run.spec
    else:  # everything that can fail on the user's input is checked before the run folder exists
        spec = model_spec(cfg, data)
        run = Run.create(cfg)
        run.write_spec(spec)
        run.write_data(data)
    try:
        with run.writer():  # the one writer: what a killed one left can go now
            removed = run.remove_partial_files() if resume else []
            if removed:
                log.info(f"removed what a killed run left: {', '.join(removed)}")
            return _fit(run, cfg, data, spec, resume, build_model, extra_callbacks, finalize, score)
    except BaseException:
        if not resume and not run.state.get("epochs_done"):  # nothing trained: leave no folder that looks like a run
            shutil.rmtree(run.path, ignore_errors=True)
        raise


def _fit(run: Run, cfg: TrainConfig, data, spec: ModelSpec, resume: bool, build_model, extra_callbacks,
         finalize, score: bool = True) -> Run:
    log.info(f"run {run.path}\n{data.summary()}")
    for note in data.notes:
        log.info(note)

    strategy = make_strategy(cfg.strategy)
    cw = class_weights(data["train"]) if cfg.class_weight == "balanced" else None
    bw = band_weights(data["train"], cfg.band_weight)
    if bw:
        log.info("age band loss weights: " + ", ".join(f"{AGE_GROUP_LABELS[g]} {w:.2f}" for g, w in bw.items()))
    if data.validate_on:
        log.info(f"best epoch chosen on {data.validate_on} val ({len(data.choice_val())} of {len(data['val'])} "
                 "val images; every source's are scored at the end)")
    val_ds = make_dataset(data.choice_val(), spec, training=False, batch_size=cfg.batch_size)
    steps = math.ceil(len(data["train"]) / cfg.batch_size)
    phases = []  # (first epoch, end epoch, trainable-from, LR scale)
    if cfg.freeze_epochs:
        phases.append((0, cfg.freeze_epochs, "frozen", 1.0))
    phases.append((cfg.freeze_epochs, cfg.epochs, cfg.unfreeze_from if cfg.freeze_epochs else None,
                   cfg.finetune_lr_scale if cfg.freeze_epochs else 1.0))
    state = run.state if resume else {}

    with strategy.scope():
        model = build_model(spec) if build_model else create_model(spec, weights_dir=cfg.weights_dir)
        set_bn_momentum(getattr(model, "student", model), cfg.bn_momentum)
        loss_vars = loss_weight_variables(cfg, spec)
    history_file = run.history_file
    for index, (start, end, trainable, lr_scale) in enumerate(phases):
        done = state.get("epochs_done", 0)
        if done >= end:
            continue
        with strategy.scope():
            _set_trainable(model, 10 ** 9 if trainable == "frozen" else trainable)
            optimizer = compile_model(model, cfg, spec, learning_rate(cfg, cfg.lr * lr_scale, end - start, steps),
                                      loss_vars)
            epoch_var = tf.Variable(start, trainable=False, dtype=tf.int64, name="epoch")
            ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
            manager = tf.train.CheckpointManager(ckpt, str(run.checkpoints / f"phase{index}"), max_to_keep=2)
            initial = start
            if resume and manager.latest_checkpoint:
                ckpt.restore(manager.latest_checkpoint).expect_partial()
                initial = int(epoch_var.numpy())
                run.trim_history(initial)  # a row written after the last checkpoint is trained again
                log.info(f"resumed phase {index} at epoch {initial} from {manager.latest_checkpoint}: the same "
                         "batches and augmentation as an uninterrupted run; dropout draws other masks, so the "
                         "numbers can differ within seed-to-seed noise")
            elif resume and done > start:
                raise EdgefaceError(f"{run.path}: no checkpoint for phase {index}; cannot resume at epoch {done}")
            elif resume:  # killed before the phase's first checkpoint: its rows are trained again
                run.trim_history(start)
        average = AverageWeights() if cfg.ema else None
        verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 0)
        callbacks = [
            # Keras appends its progress bar after our callbacks, so our epoch line would print before the bar's
            # final newline; given first, the bar finishes its line before the epoch summary starts a new one
            *([keras.callbacks.ProgbarLogger(count_mode="steps")] if verbose == 1 else []),
            LossWeightScheduler(loss_vars, cfg.loss_weights, cfg.loss_weight_schedule),
            EpochReport(len(data["train"]), cfg.epochs),
            *([average] if average else []),
            keras.callbacks.CSVLogger(str(history_file), append=history_file.exists()),
            RunCheckpoint(run, manager, epoch_var, cfg.monitor, state, average),
            keras.callbacks.TensorBoard(str(run.logs), write_graph=False, profile_batch=0),
            *extra_callbacks,
        ]
        if cfg.schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau(cfg.monitor, factor=cfg.gamma ** 0.5, patience=2))
        if cfg.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(cfg.monitor, patience=cfg.early_stopping,
                                                           mode="max" if "accuracy" in cfg.monitor else "min"))
        train_ds = make_dataset(data["train"], spec, training=True, batch_size=cfg.batch_size, seed=cfg.seed,
                                augment=cfg.augment, class_weight=cw, band_weight=bw, epochs=(initial, end))
        model.fit(train_ds, validation_data=val_ds, epochs=end, initial_epoch=initial, steps_per_epoch=steps,
                  callbacks=callbacks, verbose=verbose)
        if any(getattr(c, "stopped_epoch", 0) for c in callbacks):
            break
    if finalize is not None:
        finalize(run)
    return finish(run, data, spec, state) if score else run


def finish(run: Run, data, spec: ModelSpec, state: dict) -> Run:
    """Scores the best model on the validation split (a mixture's: every source, each apart in by_source) and
    writes metrics.json."""
    from edgeface.eval import evaluate_records, group_cells
    from edgeface.predictor import Predictor

    model = run.load_model()
    report = evaluate_records(Predictor.from_keras(model, spec), data["val"], split="val")
    rates = state.get("train_images_per_s", [])
    report.update(best_epoch=state.get("best_epoch"), epochs_done=state.get("epochs_done"),
                  train_images_per_s=float(np.median(rates)) if rates else None, train_wall_s=state.get("wall_s"),
                  parameters=int(model.count_params()),
                  **({"best_epoch_chosen_on": data.validate_on} if data.validate_on else {}))
    run.write_metrics(report)
    log.info(f"best epoch {state.get('best_epoch')}: val {report['summary']}")
    for name, group in report.get("by_source", {}).get("groups", {}).items():
        log.info(f"  {name:>10}  {group_cells(group)}")
    return run

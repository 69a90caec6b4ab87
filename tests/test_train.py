import csv
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, UTKFACE, require_shared
from edgeface.errors import EdgefaceError
from edgeface.eval import evaluate, write_report
from edgeface.models import create_model
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig
from edgeface.train.trainer import LossWeightScheduler, RunCheckpoint, _set_trainable, train

pytestmark = pytest.mark.slow  # every test here trains

TINY = dict(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", batch_size=16,
            warmup_epochs=0, lr=3e-3, verbose=0)


def history(run):
    return list(csv.DictReader(Run(getattr(run, "path", run)).history_file.open()))


def test_train_writes_a_complete_run(tmp_path):
    run = train(TrainConfig(**TINY, epochs=2, runs_dir=str(tmp_path)))
    for name in ("run.json", "config.json", "config.yaml", "model.json", "best.keras", "last.keras", "history.csv",
                 "metrics.json", "state.json", "splits/train.csv", "data.json"):
        assert (run.path / name).exists(), name
    assert len(history(run)) == 2 and run.logs.is_dir()
    metrics = run.metrics
    assert metrics["split"] == "val" and 0 <= metrics["gender"]["accuracy"] <= 1
    assert metrics["train_images_per_s"] > 0 and metrics["parameters"] > 0
    assert run.format_version == 2 and run.config.model.backbone == "compact_cnn"
    model, spec = run.load_model(), run.spec
    assert spec.backbone == "compact_cnn" and model.input_shape == (None, 32, 32, 3)
    warm = create_model(backbone="compact_cnn", input_size=32, age_head="distribution",
                        weights=str(run.model_path()))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(warm(x)["age"], model(x)["age"], atol=1e-6)
    # a format-1 run (before run.json: no recorded model hashes, splits as path lists whose labels come from the
    # dataset) still opens and scores the same images to the same figures
    import shutil

    old = Run(shutil.copytree(run.path, tmp_path / "format1"))
    (old.path / "run.json").unlink()
    for split in ("train", "val", "test"):
        (old.path / "splits" / f"{split}.txt").write_text("\n".join(old.split_paths(split)) + "\n")
        (old.path / "splits" / f"{split}.csv").unlink()
    assert old.format_version == 1 and old.split("val") == run.split("val")
    assert evaluate(old.path, split="val")["summary"] == evaluate(run.path, split="val")["summary"]
    again = train(TrainConfig(**TINY, epochs=2, runs_dir=str(tmp_path)))
    assert again.name == run.name + "-2"
    run.model_path().write_bytes(run.model_path().read_bytes() + b"\0")  # changed after the run saved it
    with pytest.raises(EdgefaceError, match="changed since the run saved it"):
        run.load_model()


@pytest.mark.parametrize("after_checkpoint", [True, False], ids=["after-checkpoint", "before-checkpoint"])
def test_interrupted_run_resumes_with_a_complete_history(tmp_path, monkeypatch, after_checkpoint):
    """Killed just after epoch 2's checkpoint, or after its history row but before the checkpoint: the resumed
    run's history has each epoch once."""
    original = RunCheckpoint.on_epoch_end

    def crash_in_second(self, epoch, logs=None):
        if after_checkpoint:
            original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt
        if not after_checkpoint:
            original(self, epoch, logs)

    monkeypatch.setattr(RunCheckpoint, "on_epoch_end", crash_in_second)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY, epochs=3, runs_dir=str(tmp_path), name="r"))
    monkeypatch.setattr(RunCheckpoint, "on_epoch_end", original)
    assert len(history(tmp_path / "r")) == 2  # the second epoch's row was written before the crash
    run = train(TrainConfig(name="r", runs_dir=str(tmp_path)), resume=True)
    rows = history(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert run.state["epochs_done"] == 3


def test_weight_average_is_what_validates_and_ships(tmp_path):
    run = train(TrainConfig(**TINY, epochs=2, ema=0.9, runs_dir=str(tmp_path)))
    best = run.state["best_epoch"]
    logged = float(history(run)[best - 1]["val_age_mae"])
    metrics = run.metrics  # best.keras scored afresh on val
    assert metrics["age"]["mae"] == pytest.approx(logged, abs=1e-3)
    # the resumable checkpoint's raw weights
    raw = create_model(backbone="compact_cnn", input_size=32, age_head="distribution", weights="none")
    tf.train.Checkpoint(model=raw).restore(tf.train.latest_checkpoint(str(run.checkpoints / "phase0"))).expect_partial()
    shipped = run.load_model("last")
    assert not np.allclose(raw.get_layer("age").get_weights()[0], shipped.get_layer("age").get_weights()[0])


def test_eval_scores_the_split_the_run_recorded_not_a_regenerated_one(tmp_path, csv_manifest):
    """A --seed 1 run on a csv without a split column: eval (no --data) scores only images it never trained on;
    regenerating the split with seed 0, as eval once did, would score training images."""
    import edgeface
    from edgeface.data import load_data
    from edgeface.eval import scoring_records

    data = f"csv:{csv_manifest}"
    run = train(TrainConfig(**{**TINY, "data": data}, epochs=1, seed=1, runs_dir=str(tmp_path)))
    trained = set(run.split_paths("train")) | set(run.split_paths("val"))
    records, source = scoring_records(edgeface.load(run.path), None, "test")
    assert {r.path for r in records} == set(run.split_paths("test")) and not {r.path for r in records} & trained
    assert "recorded by" in source["split_source"]
    assert {r.path for r in load_data(data, seed=0)["test"]} & trained  # what a regenerated split would score
    report = evaluate(run.path, split="test")
    assert report["n"] == len(records) and report["split_source"].startswith("recorded by")


def test_two_phase_transfer_and_group_heads(tmp_path):
    """Phase 1 (freeze_epochs) trains the heads on a frozen backbone; phase 2 trains the backbone too."""
    import tf_keras as keras

    class Watch(keras.callbacks.Callback):
        seen = []

        def on_train_begin(self, logs=None):
            if not self.seen:
                self.seen.append(self._weights())

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(self._weights())

        def _weights(self):
            backbone = next(l for l in self.model.layers if l.name.endswith("conv") and l.weights)
            return backbone.weights[0].numpy().copy(), self.model.get_layer("gender").weights[0].numpy().copy()

    run = train(TrainConfig(**{**TINY, "data": "synthetic:120"}, epochs=2, freeze_epochs=1, age_head="ordinal",
                            runs_dir=str(tmp_path), loss_weight_schedule=[[1, {"gender": 0.5}]]),
                extra_callbacks=[Watch()])
    assert len(history(run)) == 2
    assert "mae" in run.metrics["age"]
    (start_conv, start_head), (frozen_conv, frozen_head), (tuned_conv, _) = Watch.seen
    np.testing.assert_array_equal(frozen_conv, start_conv)  # phase 1: the backbone did not move
    assert not np.array_equal(frozen_head, start_head)  # ... while the head trained
    assert not np.array_equal(tuned_conv, frozen_conv)  # phase 2: the backbone trains


def test_distribution_age_head_trains_and_scores_in_years(tmp_path):
    run = train(TrainConfig(**TINY, epochs=1, age_head="distribution", runs_dir=str(tmp_path)))
    metrics = run.metrics
    assert 0 < metrics["age"]["mae"] < 100
    assert float(history(run)[0]["val_age_mae"]) == pytest.approx(metrics["age"]["mae"], abs=1e-3)


def test_freezing_keeps_heads_trainable():
    from edgeface.models import create_model
    model = create_model(backbone="compact_cnn", input_size=32, weights="none")
    _set_trainable(model, 2)
    trainable = {l.name for l in model.layers if l.trainable}
    assert {"gender", "age"} <= trainable and "block1_conv" not in trainable and "block2_bn" in trainable


def test_in_fit_gender_accuracy_decides_like_the_card_at_exactly_the_threshold():
    """A fake-quantized logit of 0 gives P(male) exactly 0.5: male by the card (>= threshold), and so in the epoch
    line too (Keras' own `>` made a QAT epoch line disagree with the same model re-scored, issue 32)."""
    from edgeface.runtime.decode import male_decisions
    from edgeface.train.losses import head_metrics

    metric, = head_metrics("gender", None)
    p = np.array([[0.5], [0.5], [np.nextafter(np.float32(0.5), np.float32(0))]], np.float32)
    metric.update_state(np.array([[1.0], [1.0], [0.0]]), p)
    assert list(male_decisions({"prob_male": p[:, 0]})) == [True, True, False]
    assert metric.result().numpy() == 1.0  # Keras' `>` with 0.5: 1/3


def test_loss_weight_schedule():
    scheduler = LossWeightScheduler({}, {"gender": 1.0, "age": 0.1}, [[3, {"gender": 0.2}], [1, {"age": 1.0}]])
    assert scheduler.weights_at(0) == {"gender": 1.0, "age": 0.1}
    assert scheduler.weights_at(5) == {"gender": 0.2, "age": 1.0}


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from edgeface.run.train_config import TrainConfig
        from edgeface.train.trainer import make_strategy, train
        assert make_strategy("mirrored").num_replicas_in_sync == 2
        train(TrainConfig(**{TINY!r}, epochs=1, strategy="mirrored", runs_dir={str(tmp_path)!r}, name="m"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                            env={**__import__("os").environ, "EDGEFACE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "m" / "metrics.json").is_file()


def test_one_epoch_on_a_utkface_subset_then_eval(tmp_path):
    data = f"utkface:{require_shared(UTKFACE)}"
    run = train(TrainConfig(data=data, limit=256, backbone="mobilenet_v2", alpha=0.35, input_size=64,
                            weights="none", epochs=1, batch_size=32, runs_dir=str(tmp_path), verbose=0))
    report = evaluate(run.path, data, "test", limit=256)
    assert report["n"] == 256 and 0.3 < report["gender"]["accuracy"] <= 1
    assert 0 < report["age"]["mae"] < 60
    assert set(report["by_race"]["groups"]) <= {"White", "Black", "Asian", "Indian", "Others"}
    assert write_report(report) == run.eval_report_path("utkface", "test") and run.eval_reports()


def test_adience_cross_validation_reports_mean_and_std(adience_folder, tmp_path):
    from edgeface.train.repeats import cross_validate, format_family
    cfg = TrainConfig(**{**TINY, "data": f"adience:{adience_folder}"}, epochs=1, age_head="groups",
                      runs_dir=str(tmp_path), name="cv")
    result = cross_validate(cfg)
    assert [f["fold"] for f in result["members"]] == [0, 1, 2, 3, 4]
    assert set(result["summary"]) >= {"gender_accuracy", "age_group_accuracy", "age_group_one_off_accuracy"}
    assert "±" in format_family(result) and (tmp_path / "cv" / "crossval.json").is_file()
    assert all((tmp_path / "cv" / f"fold{k}" / "best.keras").is_file() for k in range(5))


def test_seeds_train_one_run_each_and_summarise_validation(tmp_path):
    """`train --seeds`: a run per seed (finished ones kept on re-run), mean ± sd of their validation metrics."""
    from edgeface.train.repeats import train_seeds
    cfg = TrainConfig(**TINY, epochs=1, runs_dir=str(tmp_path), name="rec")
    result = train_seeds(cfg, [0, 3])
    members = result["members"]
    assert [m["seed"] for m in members] == [0, 3] and result["split"] == "val"
    assert [Run(m["run"]).config.seed for m in members] == [0, 3]
    accs = [m["gender_accuracy"] for m in members]
    assert result["summary"]["gender_accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert result["summary"]["gender_accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert accs[0] == Run(members[0]["run"]).metrics["gender"]["accuracy"]
    stamp = (tmp_path / "rec" / "seed0" / "best.keras").stat().st_mtime_ns
    assert train_seeds(cfg, [0, 3])["summary"] == result["summary"]  # nothing retrained
    assert (tmp_path / "rec" / "seed0" / "best.keras").stat().st_mtime_ns == stamp
    with pytest.raises(EdgefaceError, match="distinct seeds"):
        train_seeds(cfg, [1, 1])


def test_tune_ranks_hyperband_trials_and_resumes(tmp_path, capsys):
    from edgeface.train.tune import tune

    cfg = TrainConfig(**TINY, epochs=3, runs_dir=str(tmp_path), name="search", limit=100)
    result = tune(cfg, max_epochs=2, factor=2, top=2)
    assert "Running Trial" not in capsys.readouterr().out  # KerasTuner's own tables beside ours (issue 32)
    trials = result["trials"]
    assert len(result["table"].splitlines()) == 3  # header + --top 2
    assert len(trials) >= 3 and [t["rank"] for t in trials] == list(range(1, len(trials) + 1))
    scores = [t["val_score"] for t in trials]
    assert scores == sorted(scores) and all(0 <= t["val_gender_accuracy"] <= 1 for t in trials)
    assert {"lr", "batch_size", "dropout", "head_units", "age_loss_weight", "label_smoothing", "geometric_jitter",
            "age_head"} <= set(trials[0]["hyperparameters"])
    best = TrainConfig.load(result["best_config"])  # the winning recipe, ready for `edgeface train --config`
    assert best.lr == pytest.approx(trials[0]["hyperparameters"]["lr"]) and best.epochs == 3
    assert best.limit is None  # the search's --limit is not the recipe's (issue 32 item 3)
    assert best.loss_weights["age"] == pytest.approx(trials[0]["hyperparameters"]["age_loss_weight"])
    assert best.model.age_head == trials[0]["hyperparameters"]["age_head"]
    jitter = trials[0]["hyperparameters"]["geometric_jitter"]
    assert best.augment.rotation == pytest.approx(cfg.augment.rotation * jitter)
    again = tune(cfg, max_epochs=2, factor=2)  # finished search: nothing re-runs
    assert [t["trial"] for t in again["trials"]] == [t["trial"] for t in trials]
    twin = tune(cfg.replace(name="twin"), max_epochs=2, factor=2)  # seed 0 is a seed (KerasTuner: `seed or random`)
    assert [(t["trial"], t["hyperparameters"], t["val_score"]) for t in twin["trials"]] == \
        [(t["trial"], t["hyperparameters"], t["val_score"]) for t in trials]
    assert sorted(t["trial"] for t in trials)[0] == "#1"  # named as KerasTuner's own log names them


def test_a_continued_tune_trial_trains_on_as_an_uninterrupted_one(tmp_path):
    """Hyperband's continuation (epochs 1->2 from the trial that ran 0->1) carries the optimizer's moments with the
    weights, so without dropout it repeats a trial that ran 0->2 to every digit (issue 32: a continued trial's
    metrics looked like a jump)."""
    import types

    import keras_tuner as kt

    from edgeface.data import load_data
    from edgeface.train.tune import define_space, run_one_trial

    cfg = TrainConfig(**TINY, epochs=2, runs_dir=str(tmp_path))
    data = load_data(cfg.data, seed=cfg.seed)
    tuner = types.SimpleNamespace(cfg=cfg, data=data, log=lambda line: None, oracle=types.SimpleNamespace(max_epochs=2),
                                  get_trial_dir=lambda trial_id: str((tmp_path / trial_id).resolve()))

    def trial(trial_id, first, last, continues=None):
        hp = kt.HyperParameters()
        define_space(hp, cfg, data.numeric_age)
        hp.values.update({"dropout": 0.0, "tuner/initial_epoch": first, "tuner/epochs": last},
                         **({"tuner/trial_id": continues} if continues else {}))
        (tmp_path / trial_id).mkdir()
        return run_one_trial(tuner, types.SimpleNamespace(trial_id=trial_id, hyperparameters=hp))

    trial("0000", 0, 1)
    assert trial("0001", 1, 2, continues="0000") == trial("0002", 0, 2)


def test_a_resumed_run_trains_on_the_same_batches_as_an_uninterrupted_one(tmp_path):
    """Killed after epoch 2 and resumed, a run without dropout (the one random stream not restored) repeats the
    uninterrupted run to every digit: the same order, augmentation and optimizer state (issue 32 item 6)."""
    import tf_keras as keras

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    base = dict(TINY, epochs=4, runs_dir=str(tmp_path), dropout=0.0)
    train(TrainConfig(**base, name="whole"))
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**base, name="cut"), extra_callbacks=[Kill()])
    train(TrainConfig(name="cut", runs_dir=str(tmp_path)), resume=True)

    def history(name):
        rows = list(csv.DictReader(open(tmp_path / name / "history.csv")))
        return [{k: v for k, v in row.items() if k != "train_images_per_s"} for row in rows]

    assert len(history("whole")) == 4 and history("cut") == history("whole")

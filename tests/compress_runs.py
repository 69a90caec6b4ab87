"""The trained runs the compression tests start from (module-scoped fixtures that conftest exposes: each test
file that uses them trains its own) and the helpers they share: kill a training after its first checkpoint, resume it, tell a distilled run."""
import pytest
from click.testing import CliRunner

from edgeface.cli import main
from edgeface.run import Run
from edgeface.run.train_config import TrainConfig


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A MobileNetV2 (0.35, 32 px) trained one epoch on synthetic faces."""
    from edgeface.train.trainer import train

    return train(TrainConfig(data="synthetic:120", backbone="mobilenet_v2", alpha=0.35, input_size=32,
                             weights="none", epochs=1, batch_size=16, warmup_epochs=0,
                             runs_dir=str(tmp_path_factory.mktemp("runs")), name="parent", verbose=0)).path


def interrupted(monkeypatch, start):
    """Runs `start()`, killing it just after its first epoch's checkpoint."""
    from edgeface.train.trainer import RunCheckpoint

    original = RunCheckpoint.on_epoch_end

    def crash_after_first(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunCheckpoint, "on_epoch_end", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        start()
    monkeypatch.setattr(RunCheckpoint, "on_epoch_end", original)


def resume(folder):
    result = CliRunner().invoke(main, ["train", "--resume", "--name", folder.name, "--runs-dir", str(folder.parent)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def cnn_parent(tmp_path_factory):
    """The compact CNN, trained likewise (cheap to prune and quantize)."""
    from edgeface.train.trainer import train

    return train(TrainConfig(data="synthetic:120", backbone="compact_cnn", input_size=32, weights="none", epochs=1,
                             batch_size=16, runs_dir=str(tmp_path_factory.mktemp("runs")), name="cnn",
                             verbose=0)).path


def distilled(run: Run, teacher) -> bool:
    """The run learned from `teacher` and was saved as the student, not the distillation wrapper."""
    return ("distill_soft_loss" in run.history_file.read_text().splitlines()[0]
            and run.compression["teacher"] == str(teacher)
            and not any(l.name == "distiller" for l in run.load_model().layers))

"""`Run`: the one reader and writer of a run folder. Nothing else opens the files below by name.

    runs/NAME/
      run.json            format version, edgeface version, sha256 of each saved model (checked on load)
      config.json/.yaml   the resolved TrainConfig (typed; it nests the ModelSpec)
      model.json          the ModelSpec the model was built with (numeric_age and age_init set from the data)
      data.json           dataset spec, split source, counts, skipped files
      splits/SPLIT.csv    the images of each split with their labels, as trained: eval and benchmark score these
                          by default (format 1 runs have SPLIT.txt, paths only, joined with the dataset's labels)
      best.keras / last.keras (best.h5 / last.h5 for quantization-aware models), ckpt/, history.csv, logs/
      state.json          progress for --resume; metrics.json (validation report); compression.json;
      eval-DATA-SPLIT.json reports written by `edgeface eval`
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import warnings
from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.models import MODEL_SUFFIXES
from edgeface.utils import atomic_path, sha256_file, write_json, write_text
from edgeface.version import __version__

FORMAT_VERSION = 2  # 1: no run.json (flat config, no model hashes); 2: run.json, nested config
SPLIT_COLUMNS = ("path", "gender", "age", "age_group", "race", "source")
_WRITING: set = set()  # run folders this process holds the writer lock of (a second FileLock here would wait)


def _number(text: str, kind):
    return None if text == "" else kind(float(text)) if kind is int else kind(text)


_sha256 = sha256_file


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise EdgefaceError(f"{path}: unreadable ({type(err).__name__}: {str(err)[:100]})") from None


class Run:
    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # ---- opening and creating ----------------------------------------------------------------------------
    @staticmethod
    def is_run(path) -> bool:
        return (Path(path) / "config.json").is_file()

    @classmethod
    def open(cls, path, finished: bool = False) -> "Run":
        """An existing run; with `finished`, one that has a best model."""
        run = cls(path)
        if not cls.is_run(run.path):
            raise EdgefaceError(f"{run.path}: not an edgeface run folder (no config.json)")
        if run.format_version > FORMAT_VERSION:
            raise EdgefaceError(f"{run.path}: run format {run.format_version} is newer than this edgeface "
                                f"({FORMAT_VERSION}); upgrade edgeface")
        if finished and not run.model_path().is_file():
            raise EdgefaceError(f"{run.path}: not a finished edgeface run (no best model)")
        return run

    @classmethod
    def to_resume(cls, path) -> "Run":
        """The run at `path`, for `--resume`: the one place that says when there is nothing to resume."""
        if not cls.is_run(path):
            raise EdgefaceError(f"{path}: nothing to resume (no config.json)")
        return cls.open(path)

    @classmethod
    def create(cls, cfg) -> "Run":
        """A new run folder for `cfg` (numbered when the default name is taken); writes config and run.json.
        Call it after everything that can fail on the user's input has been checked."""
        base = Path(cfg.runs_dir)
        name = cfg.run_name()
        path = base / name
        if path.exists() and cfg.name:
            raise EdgefaceError(f"{path}: run folder exists; use --resume to continue it or another --name")
        k = 2
        while path.exists():
            path, k = base / f"{name}-{k}", k + 1
        path.mkdir(parents=True)
        run = cls(path)
        write_json(path / "run.json", {"format_version": FORMAT_VERSION, "edgeface_version": __version__,
                                       "models": {}})
        run.write_config(cfg)
        return run

    # ---- facts -------------------------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        file = self.path / "run.json"
        return _read_json(file) if file.is_file() else {"format_version": 1, "models": {}}

    @property
    def format_version(self) -> int:
        return int(self.info.get("format_version", 1))

    @property
    def config(self):
        from edgeface.run.train_config import TrainConfig

        try:
            return TrainConfig(**_read_json(self.path / "config.json"))
        except EdgefaceError as err:
            raise EdgefaceError(f"{self.path / 'config.json'}: {err}") from None

    def write_config(self, cfg) -> None:
        import yaml

        write_json(self.path / "config.json", cfg.to_dict())
        write_text(self.path / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    @property
    def spec(self):
        from edgeface.models.spec import ModelSpec

        file = self.path / "model.json"
        if not file.is_file():
            raise EdgefaceError(f"{file}: missing; edgeface runs keep their model spec in model.json")
        try:
            return ModelSpec(**_read_json(file))
        except EdgefaceError as err:
            raise EdgefaceError(f"{file}: {err}") from None

    def write_spec(self, spec) -> None:
        write_json(self.path / "model.json", spec.to_dict())

    def _optional(self, name: str) -> dict | None:
        file = self.path / name
        return _read_json(file) if file.is_file() else None

    @property
    def metrics(self) -> dict | None:
        """The validation report written when training finished (None before)."""
        return self._optional("metrics.json")

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    def write_metrics(self, report: dict) -> None:
        write_json(self.metrics_file, report)

    @property
    def data_info(self) -> dict:
        return self._optional("data.json") or {}

    @property
    def compression(self) -> dict | None:
        """compression.json: what a compression step measured (None for plain training runs)."""
        return self._optional("compression.json")

    def write_compression(self, report: dict) -> None:
        write_json(self.path / "compression.json", report)

    @property
    def state(self) -> dict:
        return self._optional("state.json") or {}

    def write_state(self, state: dict) -> None:
        write_json(self.path / "state.json", state)

    @property
    def lineage(self) -> list[str]:
        """The runs this one was derived from, nearest first."""
        return list(self.config.parents)

    @property
    def quantization_aware(self) -> bool:
        return self.config.compression.get("method") == "qat"

    def eval_reports(self, split: str = "test") -> dict:
        """Reports `edgeface eval` wrote for this run's Keras model, by file stem."""
        return {f.stem: _read_json(f) for f in sorted(self.path.glob(f"eval-*-{split}.json"))}

    def eval_report_path(self, data_name: str, split: str) -> Path:
        return self.path / f"eval-{data_name}-{split}.json"

    @property
    def int8_analysis_dir(self) -> Path:
        """Where `edgeface analyze` writes its report by default."""
        return self.path / "int8-analysis"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    def remove_partial_files(self) -> list[str]:
        """Deletes what a killed writer left: the temporaries of atomic writes (`.NAME.XXXXXXXX.SUFFIX` beside the
        file they would have replaced). A resume calls it; the names removed are returned (and logged)."""
        removed = []
        for file in self.path.iterdir():
            if file.name.startswith(".") and file.is_file() and file.name.count(".") >= 3:
                file.unlink()
                removed.append(file.name)
        return removed

    def trim_history(self, epochs: int) -> None:
        """Keeps the history rows of the first `epochs` epochs (a resumed run retrains the rest)."""
        if not self.history_file.is_file():
            return
        lines = self.history_file.read_text().splitlines(keepends=True)
        kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(line.split(",", 1)[0]) < epochs]
        if kept != lines:
            write_text(self.history_file, "".join(kept))

    def unfinished(self) -> str | None:
        """Why this run is not finished, or None: it is being written now (its writer lock is held), or it stopped
        before its final scoring (no metrics.json)."""
        from filelock import FileLock, Timeout

        if self.path.resolve() in _WRITING:
            return "is still being trained (by this process)"
        lock = FileLock(self.path / ".lock")
        try:
            lock.acquire(timeout=0)
            lock.release()
        except Timeout:
            holder = self.path / ".writer"
            pid = holder.read_text().strip() if holder.is_file() else "unknown"
            return f"is still being trained (pid {pid})"
        except OSError:  # a read-only run folder (an installed or shared copy) has no writer
            pass
        if self.metrics is None:
            return (f"stopped before its final scoring (no metrics.json); `edgeface train --resume --name {self.name}"
                    f" --runs-dir {self.path.parent}` finishes it")
        return None

    @contextlib.contextmanager
    def writer(self):
        """Holds this run's exclusive writer lock (an OS file lock, released if the process dies); a second
        writer is refused with the holder's pid."""
        from filelock import FileLock, Timeout

        lock = FileLock(self.path / ".lock")
        holder = self.path / ".writer"
        try:
            lock.acquire(timeout=0)
        except Timeout:
            pid = holder.read_text().strip() if holder.is_file() else "unknown"
            raise EdgefaceError(f"{self.path}: another edgeface process (pid {pid}) is writing this run; wait for it "
                                "to finish or stop it first") from None
        try:
            holder.write_text(str(os.getpid()))
            _WRITING.add(self.path.resolve())
            yield self
        finally:
            _WRITING.discard(self.path.resolve())
            holder.unlink(missing_ok=True)
            lock.release()
    @property
    def checkpoints(self) -> Path:
        return self.path / "ckpt"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    # ---- data --------------------------------------------------------------------------------------------
    def write_data(self, bundle) -> None:
        """The splits as trained (each image with its labels), and what the reader reported."""
        for split, records in bundle.splits.items():
            with atomic_path(self.path / "splits" / f"{split}.csv") as tmp, tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, SPLIT_COLUMNS)
                writer.writeheader()
                writer.writerows({k: getattr(r, k) for k in SPLIT_COLUMNS} for r in records)
        write_json(self.path / "data.json", {"spec": bundle.spec, "summary": bundle.summary(),
                                             "split": bundle.split_source, "validate_on": bundle.validate_on,
                                             "counts": {k: len(v) for k, v in bundle.splits.items()},
                                             "skipped": bundle.skipped, "notes": bundle.notes})

    def records_all(self, name: str, paths) -> bool:
        """Whether the recorded `name` split holds every one of `paths`, compared as real paths (a split recorded
        as /work/shared/... holds ../shared/... of the same images)."""
        recorded = {os.path.realpath(p) for p in self.split_paths(name)}
        return all(os.path.realpath(p) in recorded for p in paths)

    def split_paths(self, name: str) -> list[str]:
        folder = self.path / "splits"
        if (folder / f"{name}.csv").is_file():
            with (folder / f"{name}.csv").open(newline="") as f:
                return [row["path"] for row in csv.DictReader(f)]
        if not (folder / f"{name}.txt").is_file():
            raise EdgefaceError(f"{folder / name}.csv: this run recorded no {name} split")
        return [line for line in (folder / f"{name}.txt").read_text().splitlines() if line.strip()]

    def split(self, name: str) -> list:
        """The labelled records of a split exactly as this run recorded it (not a regenerated one)."""
        from edgeface.data import Record, load_data

        file = self.path / "splits" / f"{name}.csv"
        if file.is_file():
            with file.open(newline="") as f:
                return [Record(row["path"], _number(row["gender"], int), _number(row["age"], float),
                               _number(row["age_group"], int), row["race"] or None, row["source"])
                        for row in csv.DictReader(f)]
        paths = self.split_paths(name)  # format 1: paths only; the labels come from the dataset
        cfg = self.config
        bundle = load_data(cfg.data, seed=cfg.seed, fold=cfg.fold, check=False, verbose=False,
                           allow_outside_root=cfg.allow_outside_root)
        known = {r.path: r for records in bundle.splits.values() for r in records}
        missing = [p for p in paths if p not in known]
        if missing:
            raise EdgefaceError(f"{self.path / 'splits' / (name + '.txt')}: {len(missing)} recorded images are not "
                                f"in {cfg.data} any more (first: {missing[0]})")
        return [known[p] for p in paths]

    # ---- models ------------------------------------------------------------------------------------------
    def model_path(self, which: str = "best") -> Path:
        """best.keras, or best.h5 for quantization-aware models (tfmot's quantize wrappers do not round-trip
        through the .keras format)."""
        for suffix in MODEL_SUFFIXES:
            if (self.path / f"{which}{suffix}").is_file():
                return self.path / f"{which}{suffix}"
        return self.path / f"{which}.keras"

    def save_model(self, model, which: str) -> Path:
        """Writes WHICH.keras (WHICH.h5 for quantization-aware models) atomically and records its sha256. A
        distillation wrapper is saved as its student."""
        from edgeface.models import has_quantize_wrappers

        model = getattr(model, "student", model)
        path = self.path / f"{which}{'.h5' if has_quantize_wrappers(model) else '.keras'}"
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
            model.save(str(tmp))
        for other in MODEL_SUFFIXES:  # a stale twin in the other format would shadow or confuse
            stale = path.with_suffix(other)
            if stale != path and stale.exists():
                stale.unlink()
        info = self.info
        info.setdefault("models", {})[which] = {"file": path.name, "sha256": _sha256(path)}
        write_json(self.path / "run.json", info)
        return path

    def verify_model(self, which: str = "best") -> Path:
        """The model file, after checking it is the one this run saved (its recorded sha256)."""
        path = self.model_path(which)
        if not path.is_file():
            raise EdgefaceError(f"{path}: missing; this run has no {which} model")
        recorded = self.info.get("models", {}).get(which)
        if recorded and (recorded["file"] != path.name or recorded["sha256"] != _sha256(path)):
            raise EdgefaceError(f"{path}: changed since the run saved it (sha256 differs from {self.path}/run.json)")
        return path

    def load_model(self, which: str = "best", trust_hdf5: bool = False):
        """The saved Keras model, checked against its recorded hash. An HDF5 model (quantization-aware runs) is
        opened when this run recorded its hash and no layer carries code."""
        from edgeface.models import load_keras

        path = self.verify_model(which)
        recorded = bool(self.info.get("models", {}).get(which))
        return load_keras(path, hdf5="trust" if trust_hdf5 else ("scan" if recorded else "refuse"))

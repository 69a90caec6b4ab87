"""`edgeface.load(path)`: one verified way to open any model, a Predictor behind one API (Ultralytics'
AutoBackend idea) for a run folder, a .keras model or an exported artifact (.tflite, .onnx, .engine, SavedModel).

Before anything runs, an artifact's card is read (the JSON file, or the copy embedded in the file when the JSON
is lost), checked against the schema and against the embedded copy, the artifact's sha256 against the card, and
the card's contract (normalization, colour order, output meanings and decoding, quantization) against the model
spec it carries and the artifact's real inputs and outputs. Keras models open in safe mode; HDF5 models only from
the run that recorded their hash, or with an explicit trust flag. `verify(path)` runs the same checks plus a
parity run against the parent model and reports each."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from edgeface.card import PARITY_KEYS, card_path, content_sha256, contract_problems, failed_parity, read_card
from edgeface.errors import EdgefaceError
from edgeface.labels import AGE_GROUP_LABELS
from edgeface.models import MODEL_SUFFIXES, ModelSpec, load_keras
from edgeface.run import Run
from edgeface.runtime import KerasRunner, decode_outputs, open_runner

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """What `edgeface.data.images.normalize` needs: per-channel mean/std on the 0-255 scale, channel order."""

    mean: tuple
    std: tuple
    channel_order: str = "RGB"

    @classmethod
    def of_card(cls, card: dict) -> "Normalization":
        inp = card["input"]
        return cls(tuple(inp["normalization"]["mean"]), tuple(inp["normalization"]["std"]), inp["color_order"])


class BasePredictor:
    """What every model edgeface runs looks like: ours (Predictor), other projects' (edgeface.peers) and ensembles
    (edgeface.ensemble). uint8 RGB images at `.input_size` -> `preprocess` -> `infer` (the runtime alone: what the
    latency probe times) -> `decode` -> {"prob_male", "male", "age_years", ...}. Eval, compare, the benchmark and
    its probe take any of them; `edgeface.any_model.open_model(source)` reopens one from its `.source`."""

    name = format = precision = ""
    input_size = 0
    numeric_age = True  # its age output is years (False: age groups only)
    path = card = run = None

    def preprocess(self, images: np.ndarray):
        raise NotImplementedError

    def infer(self, x):
        raise NotImplementedError

    def decode(self, raw) -> dict:
        raise NotImplementedError

    @property
    def source(self) -> str:
        """What `open_model` takes to open this model again (in the benchmark's latency probe)."""
        return str(self.path)

    def training_run(self) -> Run | None:
        """The run the model came from, when its folder is on this machine."""
        return self.run

    def files(self) -> list[Path]:
        return []

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def predict(self, images: np.ndarray, batch_size: int = 64) -> dict:
        """Decoded predictions for uint8 RGB images at the input size, `batch_size` at a time."""
        if not len(images):
            raise EdgefaceError("no images to predict")
        parts = [self.decode(self.infer(self.preprocess(images[i:i + batch_size])))
                 for i in range(0, len(images), batch_size)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def predict_files(self, paths, batch_size: int = 64) -> dict:
        from edgeface.data.images import load_images

        return self.predict(load_images([str(p) for p in paths], self.input_size), batch_size)

    def predict_records(self, records, batch_size: int = 64, progress: str | None = None) -> dict:
        """Predictions for labelled records, in chunks; `progress` names a bar shown on a terminal."""
        import sys

        from tqdm import tqdm

        if not records:
            raise EdgefaceError("no images to predict")
        chunk, parts = 512, []
        with tqdm(total=len(records), desc=progress, unit="img", leave=False,
                  disable=progress is None or not sys.stderr.isatty()) as bar:
            for i in range(0, len(records), chunk):
                parts.append(self.predict_files([r.path for r in records[i:i + chunk]], batch_size))
                bar.update(len(parts[-1][next(iter(parts[-1]))]))
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


class Predictor(BasePredictor):
    """A verified edgeface model: `.spec`, `.card` (None for Keras models, which carry no card), `.format`,
    `.precision`, `.runner`. Preprocessing and decoding follow the card (artifacts) or the spec (Keras models): one
    path either way."""

    def __init__(self, runner, spec: ModelSpec, card: dict | None = None, path=None, run: Run | None = None,
                 parameters: int | None = None):
        self.runner, self.spec, self.card, self.run = runner, spec, card, run
        self.path = Path(path) if path is not None else None
        self.parameters = parameters
        if card is not None:
            self.normalization = Normalization.of_card(card)
            self.decodings = {o["name"]: o["decoding"] for o in card["outputs"]}
        else:
            config = spec.backbone_config
            self.normalization = Normalization(config.mean, config.std, config.channel_order)
            self.decodings = spec.decodings()

    @classmethod
    def from_keras(cls, model, spec: ModelSpec, path=None, run: Run | None = None) -> "Predictor":
        return cls(KerasRunner(model), spec, None, path, run, int(model.count_params()))

    @property
    def format(self) -> str:
        return self.runner.format

    @property
    def precision(self) -> str:
        return self.card["artifact"]["precision"] if self.card else "fp32"

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def numeric_age(self) -> bool:
        return self.spec.numeric_age

    @property
    def name(self) -> str:
        """The run it came from."""
        if self.card:
            return Path(self.card["training"]["run"]).name
        return self.run.name if self.run else (self.path.stem if self.path else "model")

    def training_run(self) -> Run | None:
        if self.run is None and self.card is not None and Run.is_run(self.card["training"]["run"]):
            return Run.open(self.card["training"]["run"])
        return self.run

    def files(self) -> list[Path]:
        if self.path is None:
            return []
        if self.card is None:
            return [self.run.model_path() if self.run and self.path.is_dir() else self.path]
        return sorted(p for p in self.path.rglob("*") if p.is_file()) if self.path.is_dir() else [self.path]

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        from edgeface.data.images import normalize

        return normalize(images, self.normalization).astype(np.float32)

    def infer(self, x: np.ndarray) -> dict:
        return self.runner(x)

    def outputs(self, images: np.ndarray, batch_size: int = 64) -> dict:
        """Raw head outputs (dequantized floats) for uint8 images at the input size."""
        return self.runner.predict(self.preprocess(images), batch_size)

    def decode(self, outputs: dict) -> dict:
        return decode_outputs(outputs, self.decodings)

    def predict(self, images: np.ndarray, batch_size: int = 64) -> dict:
        """prob_male, male, age_years, age_group and age_group_label (the group's name, for a user; scoring paths
        decode raw outputs without it) for uint8 RGB images at the input size."""
        pred = super().predict(images, batch_size)
        if "age_group" in pred:
            pred["age_group_label"] = np.asarray(AGE_GROUP_LABELS)[pred["age_group"]]
        return pred


def _keras_file(path: Path, trust_hdf5: bool) -> Predictor:
    if Run.is_run(path.parent) and path.stem in ("best", "last"):
        run = Run.open(path.parent)
        return Predictor.from_keras(run.load_model(path.stem, trust_hdf5), run.spec, path, run)
    spec = Run(path.parent).spec  # a model file saved outside a run still has its spec beside it
    return Predictor.from_keras(load_keras(path, hdf5="trust" if trust_hdf5 else "refuse"), spec, path)


def load(path, threads: int | None = None, trust_hdf5: bool = False) -> Predictor:
    """Opens and verifies a run folder, a Keras model file or an exported artifact (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise EdgefaceError(f"{path}: no such model file, run folder or exported artifact")
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        run = Run.open(path, finished=True)
        why = run.unfinished()
        if why:
            log.warning(f"{path} {why}: scoring its best model so far")
        return Predictor.from_keras(run.load_model(trust_hdf5=trust_hdf5), run.spec, path, run)
    if path.suffix in MODEL_SUFFIXES:
        return _keras_file(path, trust_hdf5)
    if path.suffix == ".json":
        twins = [p for p in path.parent.glob(path.stem + ".*") if p != path and not p.name.endswith(".vectors.json")]
        raise EdgefaceError(f"{path}: a model card; pass the artifact it describes"
                            + (f" ({twins[0]})" if twins else ""))
    card = read_card(path)
    sha, scope = content_sha256(path)
    if (sha, scope) != (card["artifact"]["sha256"], card["artifact"]["sha256_of"]):
        raise EdgefaceError(f"{path}: sha256 ({scope}) differs from its model card: the artifact was changed "
                            "after export, or the card belongs to another file")
    spec = ModelSpec(**card["model"]["spec"])
    pixels = Normalization.of_card(card) if card["input"].get("encoding") == "raw_pixels" else None
    runner = open_runner(path, threads, pixels)
    problems = contract_problems(card, spec, runner.io())
    if problems:
        raise EdgefaceError(f"{card_path(path)}: the card does not describe this artifact: {problems[0]}"
                            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return Predictor(runner, spec, card, path, parameters=card["model"]["parameters"])


def verify(path, parity_images: int = 32, threads: int | None = None, skip_parent: bool = False) -> dict:
    """Every load check, each reported, the golden test vectors replayed, and parity against the parent run's
    Keras model (a missing parent fails unless `skip_parent`).
    {"artifact", "checks": [{"name", "ok", "detail"}], "passed"}."""
    from edgeface.runtime.parity import compare

    checks = []

    def check(name, ok, detail=""):
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    try:
        predictor = load(path, threads)
        check("card, hash and contract", True, "schema, embedded copy, sha256, normalization, outputs, I/O agree")
    except EdgefaceError as err:
        check("card, hash and contract", False, str(err))
        return {"artifact": str(path), "checks": checks, "passed": False}
    if predictor.card is None:
        check("parity with parent", True, "a Keras model is its own reference")
    else:
        _check_vectors(predictor, check)
        training = predictor.card["training"]
        parent = next((Path(p) for p in (training["run"], training.get("run_absolute")) if p and Run.is_run(Path(p))),
                      Path(training["run"]))
        recorded = (training.get("run_model") or {}).get("sha256")
        if Run.is_run(parent) and recorded and recorded not in {
                m.get("sha256") for m in Run(parent).info.get("models", {}).values()}:
            check("parity with parent", False, f"the run at {parent} is not the parent this artifact was exported "
                  "from (its model's sha256 differs from the card's training.run_model)")
        elif not Run.is_run(parent):
            check("parity with parent", skip_parent, f"parent not found: the run {parent} is not on this machine"
                  + (" (skipped as asked)" if skip_parent else "; pass --skip-parent to verify without it"))
        else:
            try:
                run = Run.open(parent, finished=True)
                reference = Predictor.from_keras(run.load_model(), run.spec, run=run)
                from edgeface.data import stratified_subset
                from edgeface.data.images import load_images
                from edgeface.data.records import label_arrays

                records = stratified_subset(run.split("val"), parity_images, seed=0)  # as export's parity set
                images = load_images([r.path for r in records], predictor.input_size)
                _, ages = label_arrays(records)
                result = compare(reference.outputs(images), predictor.outputs(images), predictor.decodings,
                                 predictor.precision, ages)
                failed = [c for c in result["checks"] if not c["ok"]]
                check("parity with parent", not failed,
                      f"{len(records)} val images of {parent}: " + ", ".join(
                          f"{c['name']} {c['value']:.4g}" + (f" (limit {c['limit']:.4g})" if c["limit"] is not None
                                                              else "") for c in result["checks"]))
            except EdgefaceError as err:
                check("parity with parent", False, str(err))
    metrics = (predictor.card or {}).get("metrics", {})
    if any(key in metrics for key in PARITY_KEYS):
        failed = failed_parity(predictor.card)
        check("parity recorded at export", failed is None,
              "passed" if failed is None else f"the card records a failed parity check ({failed})")
    return {"artifact": str(path), "checks": checks, "passed": all(c["ok"] for c in checks)}


def _check_vectors(predictor: Predictor, check) -> None:
    """Replays the artifact's golden test vectors (NAME.vectors.json) when its card records them."""
    import tempfile

    import edgeface.golden as golden

    record = predictor.card["artifact"].get("options", {}).get("test_vectors")
    if record is None:
        check("test vectors", True, "none recorded (exported before edgeface wrote them)")
        return
    with tempfile.TemporaryDirectory() as scratch:
        problems = golden.check(golden.vectors_path(predictor.path), predictor, record["sha256"], Path(scratch))
    check("test vectors", not problems, "; ".join(problems[:3]) if problems else
          f"{record['images']} images: decoded pixels, model input and outputs as recorded")

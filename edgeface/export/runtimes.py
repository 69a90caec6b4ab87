"""Runners: load an artifact in its own runtime and map normalized float images -> float head outputs.

Integer inputs are quantized and integer outputs dequantized here, with the artifact's own scale and
zero point, so parity checks and benchmarks compare like with like.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError


class Runner:
    """Callable: float32 NHWC batch (already normalized) -> {"gender": (N, 1), "age": (N, k)} floats."""

    format = ""

    def __call__(self, images: np.ndarray) -> dict:
        # quantization-aware models name their outputs quant_gender, quant_age: report them by task
        from edgeface.models import task_key

        return {task_key(k): v for k, v in self.run(images).items()}

    def run(self, images: np.ndarray) -> dict:
        raise NotImplementedError

    def predict(self, images: np.ndarray, batch_size: int = 64) -> dict:
        chunks = [self(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class KerasRunner(Runner):
    format = "keras"

    def __init__(self, model):
        self.model = model

    def run(self, images):
        return {k: np.asarray(v, np.float32) for k, v in self.model(images, training=False).items()}


class SavedModelRunner(Runner):
    format = "saved_model"

    def __init__(self, path):
        import tensorflow as tf

        self.fn = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(self, images):
        return {k: np.asarray(v, np.float32) for k, v in self.fn(image=images).items()}


def _quantize(x, details):
    scale, zero = details["quantization_parameters"]["scales"], details["quantization_parameters"]["zero_points"]
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(x / scale[0]) + zero[0], info.min, info.max).astype(details["dtype"])


def _dequantize(q, details):
    params = details["quantization_parameters"]
    if not len(params["scales"]):
        return q.astype(np.float32)
    return (q.astype(np.float32) - params["zero_points"][0]) * params["scales"][0]


class TFLiteRunner(Runner):
    format = "tflite"

    def __init__(self, path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.signature = self.interpreter.get_signature_runner()
        self.inputs = self.signature.get_input_details()
        self.outputs = self.signature.get_output_details()
        (self.input_name, self.input_details), = self.inputs.items()

    @property
    def input_dtype(self):
        return self.input_details["dtype"]

    def run(self, images):
        x = images.astype(np.float32)
        if self.input_dtype != np.float32:
            x = _quantize(x, self.input_details)
        out = self.signature(**{self.input_name: x})
        return {k: _dequantize(v, self.outputs[k]) if v.dtype != np.float32 else v for k, v in out.items()}


class ONNXRunner(Runner):
    format = "onnx"

    def __init__(self, path, threads: int | None = None, providers=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.channels_first = len(inp.shape) == 4 and inp.shape[1] == 3 and inp.shape[3] != 3
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, images):
        x = images.astype(np.float32)
        if self.channels_first:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        values = self.session.run(self.output_names, {self.input_name: x})
        return dict(zip(self.output_names, (np.asarray(v, np.float32) for v in values)))


def load_runner(path, threads: int | None = None) -> Runner:
    """Picks the runtime by artifact type: .tflite, .onnx, .engine/.plan, .keras, or a SavedModel folder."""
    path = Path(path)
    if not path.exists():
        raise EdgefaceError(f"{path}: artifact not found")
    try:
        if path.is_dir() and (path / "saved_model.pb").is_file():
            return SavedModelRunner(path)
        if path.suffix == ".tflite":
            return TFLiteRunner(path, threads)
        if path.suffix == ".onnx":
            return ONNXRunner(path, threads)
        if path.suffix in (".engine", ".plan"):
            from edgeface.export.tensorrt import TensorRTRunner

            return TensorRTRunner(path)
        if path.suffix in (".keras", ".h5") or path.is_dir():
            from edgeface.models import load_model

            return KerasRunner(load_model(path)[0])
    except EdgefaceError:
        raise
    except Exception as err:
        raise EdgefaceError(f"{path}: cannot be loaded ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
    raise EdgefaceError(f"{path}: unknown artifact type (expected .tflite, .onnx, .engine, .keras or a SavedModel)")

"""Runners: open an artifact in its own runtime and map normalized float images -> float head outputs.

Integer inputs are quantized and integer outputs dequantized here, with the artifact's own scale and
zero point, so parity checks and benchmarks compare like with like. An app-form artifact reads raw pixels
(`pixels`: the card's normalization): the normalized images are mapped back to their exact 0-255 bytes.
"""
from __future__ import annotations

import re

import numpy as np


_WRAPPER_PREFIX = re.compile(r"^(val_)?(?:quant_|prune_low_magnitude_)")


def task_key(name: str) -> str:
    """tfmot wrappers rename outputs and their logs (quant_gender, val_quant_age_mae): the name by task."""
    return _WRAPPER_PREFIX.sub(r"\1", name)


class Runner:
    """Callable: float32 NHWC batch (already normalized) -> {"gender": (N, 1), "age": (N, k)} floats."""

    format = ""

    def __call__(self, images: np.ndarray) -> dict:
        # quantization-aware models name their outputs quant_gender, quant_age: report them by task
        return {task_key(k): v for k, v in self.run(images).items()}

    batch_one = False  # the file's batch is fixed at 1 (the app form): one face per call

    def feed(self, images: np.ndarray) -> np.ndarray:
        """The exact tensor the model is given for these normalized images (what golden test vectors record)."""
        return images.astype(np.float32)

    def invoke(self, x: np.ndarray) -> dict:
        raise NotImplementedError

    def run(self, images: np.ndarray) -> dict:
        x = self.feed(images)
        if self.batch_one and len(x) > 1:
            parts = [self.invoke(x[i:i + 1]) for i in range(len(x))]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self.invoke(x)

    def io(self) -> dict:
        """The artifact's real input and outputs: {"input": {...}, "outputs": {task: {...}}}, each with what the
        runtime reports of dtype, shape, (scale, zero point) quantization and output width ("units")."""
        return {"input": {}, "outputs": {}}

    path_only = False  # opened from the path alone: no thread setting of its own, no app form (SavedModel, TensorRT)

    @classmethod
    def open(cls, path, threads: int | None = None, pixels=None) -> "Runner":
        """How the formats table opens an artifact in this runtime (`pixels`: the app form's normalization)."""
        return cls(path) if cls.path_only else cls(path, threads, pixels=pixels)

    def predict(self, images: np.ndarray, batch_size: int = 64) -> dict:
        chunks = [self(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class KerasRunner(Runner):
    format = "keras"

    def __init__(self, model):
        self.model = model

    def run(self, images):
        return {k: np.asarray(v, np.float32) for k, v in self.model(images, training=False).items()}

    def io(self):
        shape = [-1 if d is None else int(d) for d in self.model.input_shape]
        outputs = {task_key(name): {"dtype": "float32", "units": int(tensor.shape[-1])}
                   for name, tensor in zip(self.model.output_names, self.model.outputs)}
        return {"input": {"dtype": "float32", "shape": shape}, "outputs": outputs}


class SavedModelRunner(Runner):
    format = "saved_model"
    path_only = True

    def __init__(self, path):
        import tensorflow as tf

        from edgeface.runtime.graph_safety import check_saved_model

        check_saved_model(path)  # a SavedModel is a program: refuse one that touches files or runs Python
        self.fn = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(self, images):
        return {k: np.asarray(v, np.float32) for k, v in self.fn(image=images).items()}

    def io(self):
        (spec,) = self.fn.structured_input_signature[1].values()
        return {"input": {"dtype": spec.dtype.name, "shape": [-1 if d is None else int(d) for d in spec.shape]},
                "outputs": {task_key(name): {"dtype": out.dtype.name, "units": int(out.shape[-1])}
                            for name, out in self.fn.structured_outputs.items()}}


def to_pixels(images: np.ndarray, normalization) -> np.ndarray:
    """Normalized floats -> the uint8 pixels they came from, in the card's colour order (exact: (p - mean) / std
    * std + mean is p within float32 rounding, far from a .5 tie). uint8 input passes through."""
    if images.dtype == np.uint8:
        return images
    mean = np.asarray(normalization.mean, np.float32)
    std = np.asarray(normalization.std, np.float32)
    return np.clip(np.rint(images * std + mean), 0, 255).astype(np.uint8)


def _quantize(x, details):
    scale, zero = details["quantization_parameters"]["scales"], details["quantization_parameters"]["zero_points"]
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(x / scale[0]) + zero[0], info.min, info.max).astype(details["dtype"])


def _qparams(details):
    params = details["quantization_parameters"]
    return (float(params["scales"][0]), int(params["zero_points"][0])) if len(params["scales"]) else None


def _dequantize(q, details):
    params = details["quantization_parameters"]
    if not len(params["scales"]):
        return q.astype(np.float32)
    return (q.astype(np.float32) - params["zero_points"][0]) * params["scales"][0]


class TFLiteRunner(Runner):
    format = "tflite"

    def __init__(self, path, threads: int | None = None, pixels=None):
        from ai_edge_litert.interpreter import Interpreter

        self.pixels = pixels
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()  # an op LiteRT cannot run (a custom op) fails here, at load
        self.signature = self.interpreter.get_signature_runner()
        self.inputs = self.signature.get_input_details()
        self.outputs = self.signature.get_output_details()
        (self.input_name, self.input_details), = self.inputs.items()
        self.batch_one = self.input_details["shape_signature"][0] == 1

    @property
    def input_dtype(self):
        return self.input_details["dtype"]

    def io(self):
        def describe(details):
            shape = details.get("shape_signature", details["shape"])
            return {"dtype": np.dtype(details["dtype"]).name, "quantization": _qparams(details),
                    "shape": [int(d) for d in shape]}

        names = {t["index"]: t["name"] for t in self.interpreter.get_tensor_details()}
        order = {d["index"]: i for i, d in enumerate(self.interpreter.get_output_details())}
        outputs = {}
        for name, details in self.outputs.items():
            entry = describe(details)
            entry["units"] = entry.pop("shape")[-1]
            entry["tensor"] = {"tflite_tensor": names.get(details["index"], ""), "tflite_signature_key": name,
                               "output_index": order[details["index"]]}
            outputs[task_key(name)] = entry
        return {"input": describe(self.input_details), "outputs": outputs}

    def feed(self, images):
        if self.pixels is not None:
            return to_pixels(images, self.pixels)
        x = images.astype(np.float32)
        return x if self.input_dtype == np.float32 else _quantize(x, self.input_details)

    def invoke(self, x):
        out = self.signature(**{self.input_name: x})
        return {k: _dequantize(v, self.outputs[k]) if v.dtype != np.float32 else v for k, v in out.items()}


ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
              "tensor(int8)": "int8"}  # ONNX Runtime's type names -> the card's dtypes


class ONNXRunner(Runner):
    format = "onnx"

    def __init__(self, path, threads: int | None = None, providers=None, pixels=None):
        import onnxruntime as ort

        self.pixels = pixels
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.channels_first = len(inp.shape) == 4 and inp.shape[1] == 3 and inp.shape[3] != 3
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.batch_one = inp.shape[0] == 1

    def io(self):
        def dims(shape):
            return [d if isinstance(d, int) else -1 for d in shape]

        inp = self.session.get_inputs()[0]
        return {"input": {"dtype": ONNX_TYPES.get(inp.type, inp.type), "shape": dims(inp.shape)},
                "outputs": {task_key(o.name): {"dtype": "float32", "units": dims(o.shape)[-1],
                                               "tensor": {"onnx_output": o.name, "output_index": i}}
                            for i, o in enumerate(self.session.get_outputs())}}

    def feed(self, images):
        x = to_pixels(images, self.pixels) if self.pixels is not None else images.astype(np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.channels_first else x

    def invoke(self, x):
        values = self.session.run(self.output_names, {self.input_name: x})
        return dict(zip(self.output_names, (np.asarray(v, np.float32) for v in values)))

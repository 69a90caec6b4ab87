"""What a saved Keras model may name before Keras is allowed to open it.

Keras resolves the objects a saved config names by importing modules and looking names up: a `Lambda` layer with
`function_type: "function"` calls any module function (`builtins.print`, a TF op that writes files), an activation
serialized as `{"class_name": "function", "module": "builtins"}` is called on every forward pass, a `TFOpLambda`
calls any `tf.*` function by name, and even naming a class imports its module. Safe mode stops only marshalled
lambdas. So every Keras format (.keras zip, HDF5) is read as data first and opened only when each object it names
is on the allow-list below: Keras' own layers and initializers that take no callables, tfmot's wrappers and
quantizers, and the layers edgeface registers. The .keras zip is size-checked before anything is decompressed
(Keras extracts it to $TMPDIR).
"""
from __future__ import annotations

import functools
import json
import zipfile
from pathlib import Path

from edgeface.errors import EdgefaceError

# Keras layers that compute on tensors only: none takes a callable, a file path or a module name.
SAFE_LAYERS = frozenset("""
    InputLayer Functional Sequential Model
    Conv1D Conv2D Conv3D Conv2DTranspose SeparableConv2D DepthwiseConv2D Dense EinsumDense
    BatchNormalization LayerNormalization GroupNormalization UnitNormalization Normalization Rescaling
    Activation ReLU LeakyReLU PReLU ELU Softmax ThresholdedReLU
    Add Subtract Multiply Average Maximum Minimum Concatenate Dot
    MaxPooling1D MaxPooling2D AveragePooling1D AveragePooling2D GlobalAveragePooling1D GlobalAveragePooling2D
    GlobalMaxPooling1D GlobalMaxPooling2D
    ZeroPadding2D Cropping2D UpSampling2D Reshape Flatten Permute RepeatVector Identity Resizing CenterCrop
    Dropout SpatialDropout1D SpatialDropout2D GaussianDropout GaussianNoise AlphaDropout
    MultiHeadAttention Attention Embedding
""".split())
# tf.* functions a TFOpLambda may name (MobileNetV3's hard-swish is written as `x + 3` and `x * y`): pure math.
SAFE_TF_OPS = frozenset({"__operators__.add", "__operators__.sub", "__operators__.mul", "__operators__.truediv",
                         "math.add", "math.subtract", "math.multiply", "math.truediv", "nn.relu", "nn.relu6",
                         "math.sigmoid", "math.tanh"})
# Value markers of Keras' serializer that build constants, not objects.
VALUE_MARKERS = frozenset({"__tensor__", "__numpy__", "__bytes__"})
SAFE_MODULE_PREFIXES = ("keras.", "tf_keras.", "tensorflow_model_optimization.", "edgeface.")
ZIP_MAX_BYTES = 2 << 30  # larger than any registered backbone's .keras (Inception-ResNet v2: ~0.2 GiB)
ZIP_MAX_RATIO = 20  # weights barely compress (a pruned model: ~2x); a zip bomb does 1000x
ZIP_RATIO_FROM = 64 << 20
CONFIG_MAX_BYTES = 64 << 20
MAX_DEPTH = 100


@functools.lru_cache(maxsize=1)
def _allowed_classes() -> frozenset:
    """Class names Keras may instantiate: the safe layers, every initializer, regularizer and constraint (pure
    tensor factories), tfmot's quantization and pruning objects and edgeface's registered layers."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    import edgeface.models.layers  # noqa: F401  (registers the custom layers)
    from edgeface.models.quantizers import CUSTOM_OBJECTS

    names = set(SAFE_LAYERS)
    for module in (keras.initializers, keras.regularizers, keras.constraints):
        names.update(n for n in dir(module) if n[:1].isupper())
    for scope in (tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS), tfmot.sparsity.keras.prune_scope()):
        for objects in scope.custom_objects:
            names.update(objects)
    names.update(n for n in dir(tfmot.sparsity.keras) if n.endswith(("Sparsity", "Decay")))  # pruning schedules
    for registered, obj in keras.utils.get_custom_objects().items():
        if registered.startswith("edgeface>") or registered == "Custom>CustomScaleLayer":
            names.update({registered, obj.__name__})
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def _activation_names() -> frozenset:
    import tf_keras as keras

    return frozenset(n for n in dir(keras.activations) if n[:1].islower() and not n.startswith("_"))


def check_config(config, path) -> None:
    """Raises EdgefaceError naming the first object in a saved model config that is not on the allow-list. The
    top-level `compile_config` (optimizer, losses, metrics) is not walked: edgeface always loads with
    compile=False, so Keras never deserializes it."""
    allowed, activations = _allowed_classes(), _activation_names()
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k != "compile_config"}
    stack = [(config, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EdgefaceError(f"{path}: refused: the model config is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
            continue
        if not isinstance(node, dict):
            continue
        _check_object(node, path, allowed, activations)
        stack.extend((value, depth + 1) for value in node.values())


def _check_object(node: dict, path, allowed: frozenset, activations: frozenset) -> None:
    module = node.get("module")
    if module is not None and not (isinstance(module, str) and module.startswith(SAFE_MODULE_PREFIXES)
                                   or module in ("keras", "tf_keras")):
        raise EdgefaceError(f"{path}: refused: the model names module {str(module)[:80]!r}; edgeface opens only "
                            "models made of Keras, tfmot and edgeface objects")
    if "class_name" not in node:
        return
    name, inner = node["class_name"], node.get("config")
    if not isinstance(name, str):
        raise EdgefaceError(f"{path}: refused: a class_name that is not a string")
    layer = inner.get("name", "?") if isinstance(inner, dict) else "?"
    if name == "function":
        if not (isinstance(inner, str) and inner in activations and (module or "keras.activations").endswith(
                "activations")):
            raise EdgefaceError(f"{path}: refused: the model names function {str(inner)[:80]!r} to call; only "
                                "Keras activations may be named")
    elif name in ("Lambda", "__lambda__") or (isinstance(inner, dict) and "function_type" in inner):
        raise EdgefaceError(f"{path}: refused: layer {layer!r} is a Lambda (it names code to run)")
    elif name in ("TFOpLambda", "SlicingOpLambda"):
        function = inner.get("function") if isinstance(inner, dict) else None
        if function not in SAFE_TF_OPS:
            raise EdgefaceError(f"{path}: refused: layer {layer!r} calls tf.{str(function)[:80]}, which is not on "
                                "edgeface's list of pure tensor operations")
    elif name not in VALUE_MARKERS and name not in allowed:
        raise EdgefaceError(f"{path}: refused: the model names {name[:80]!r}, which is neither a Keras layer "
                            "that computes only on tensors nor a registered tfmot or edgeface object")


def keras_zip_config(path: Path) -> dict:
    """The config of a .keras zip, after checking that decompressing it is bounded."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            total = sum(e.file_size for e in entries)
            packed = max(1, sum(e.compress_size for e in entries))
            if total > ZIP_MAX_BYTES or (total > ZIP_RATIO_FROM and total / packed > ZIP_MAX_RATIO):
                raise EdgefaceError(f"{path}: refused: it would decompress to {total / 2**20:.0f} MiB from "
                                    f"{packed / 2**20:.1f} MiB (a zip bomb?)")
            info = next((e for e in entries if e.filename == "config.json"), None)
            if info is None:
                raise EdgefaceError(f"{path}: not a Keras model (no config.json inside)")
            if info.file_size > CONFIG_MAX_BYTES:
                raise EdgefaceError(f"{path}: refused: its config.json is {info.file_size / 2**20:.0f} MiB")
            raw = archive.read(info)
    except (zipfile.BadZipFile, OSError) as err:
        raise EdgefaceError(f"{path}: not a readable .keras file ({str(err).splitlines()[0][:120]})") from None
    return _parse(raw, path)


def hdf5_config(path: Path) -> dict:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as err:
        raise EdgefaceError(f"{path}: not a readable HDF5 model ({str(err).splitlines()[0][:120]})") from None
    if raw is None:
        raise EdgefaceError(f"{path}: an HDF5 file without a model config (weights only?)")
    return _parse(raw, path)


def _parse(raw, path) -> dict:
    try:
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, RecursionError) as err:
        raise EdgefaceError(f"{path}: its model config is not readable JSON ({str(err)[:120]})") from None


def check_model_file(path) -> None:
    """Refuses a Keras model file (.keras or .h5) that names anything outside the allow-list."""
    path = Path(path)
    check_config(hdf5_config(path) if path.suffix == ".h5" else keras_zip_config(path), path)

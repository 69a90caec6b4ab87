"""Model facade: `create_model(spec)` builds backbone + heads from a ModelSpec; `load_keras` opens saved Keras
models without running code stored in them.

    backbones   registered networks (registry.py holds each one's config: input size, normalization, weights)
    age_heads   the age-head registry (layer, targets, loss, metrics, decoding, card output)
    heads       gender head, head layer names, build_heads
    spec        ModelSpec, the per-model config carried by runs and model cards

Importing this facade (and reading a spec) does not import TensorFlow; building and loading models does.
"""
from __future__ import annotations

from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.models import backbones  # noqa: F401  (registers the backbones)
from edgeface.models.heads import build_heads
from edgeface.models.registry import BackboneConfig, get_backbone_config, get_builder, list_backbones
from edgeface.models.spec import ModelSpec

__all__ = ["ModelSpec", "create_model", "load_keras", "list_backbones", "get_backbone_config", "BackboneConfig",
           "has_quantize_wrappers", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".keras", ".h5")


def create_model(spec: ModelSpec | None = None, weights_dir: str | None = None, **kwargs):
    """Builds the multi-task model (a keras.Model). Pass a ModelSpec or its fields (`create_model(backbone="vit")`);
    `weights_dir`: the folder searched first for ImageNet weight files (models.weights.search_dirs)."""
    import tf_keras as keras

    spec = spec or ModelSpec(**kwargs)
    size = spec.input_size
    inputs = keras.Input((size, size, 3), name="image")
    weights = spec.weights if spec.weights in ("imagenet", "none") else "none"
    features = get_builder(spec.backbone)(inputs, alpha=spec.alpha, weights=None if weights == "none" else weights,
                                          weights_dir=weights_dir)
    model = keras.Model(inputs, build_heads(features, spec), name=f"edgeface_{spec.backbone}")
    if spec.weights not in ("imagenet", "none"):
        path = Path(spec.weights)  # a run folder was resolved to its best model file by the caller (Run)
        if not path.is_file():
            raise EdgefaceError(f"{path}: weights file not found")
        try:
            model.load_weights(str(path), skip_mismatch=path.suffix == ".h5", by_name=path.suffix == ".h5")
        except Exception as err:
            raise EdgefaceError(f"{path}: cannot load weights into {spec.backbone}: {str(err).splitlines()[0]}")
    return model


def has_quantize_wrappers(model) -> bool:
    return any(type(layer).__name__ in ("QuantizeWrapperV2", "QuantizeWrapper", "QuantizeLayer")
               for layer in model.layers)


HDF5_POLICIES = ("refuse", "scan", "trust")


def load_keras(path, hdf5: str = "refuse"):
    """Opens a Keras model, including models still wrapped for pruning or quantization-aware training, only after
    its config names nothing outside the allow-list of models/safety.py (no Lambda, no module function, no
    unregistered object) and a .keras zip would decompress to a bounded size. HDF5 files can also carry marshalled
    code, so by `hdf5` policy they are refused; opened when they pass the same check ("scan": what a run uses for
    the files whose hash it recorded itself); or opened as they are ("trust": the user's explicit --trust-hdf5)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from edgeface.models import layers  # noqa: F401  (registers the custom layers for loading)
    from edgeface.models.quantizers import CUSTOM_OBJECTS
    from edgeface.models.safety import check_model_file

    path = Path(path)
    if path.suffix == ".h5" and hdf5 == "refuse":
        raise EdgefaceError(f"{path}: HDF5 models can run code stored in them (Lambda layers), so edgeface "
                            "opens .h5 files only from its own run folders; pass --trust-hdf5 if you trust "
                            "this file")
    if not (path.suffix == ".h5" and hdf5 == "trust"):
        check_model_file(path)
    try:
        with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS), tfmot.sparsity.keras.prune_scope():
            if path.suffix == ".h5":
                return keras.models.load_model(str(path), compile=False)
            return keras.models.load_model(str(path), compile=False, safe_mode=True)
    except EdgefaceError:
        raise
    except Exception as err:
        raise EdgefaceError(f"{path}: not a loadable Keras model ({str(err).splitlines()[0][:160]})") from None

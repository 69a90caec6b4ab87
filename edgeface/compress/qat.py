"""Quantization-aware training with tfmot: the whole model when tfmot supports it, else the layers it can."""
from __future__ import annotations

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edgeface.errors import EdgefaceError
from edgeface.models.quantizers import DepthwiseQuantizeConfig

from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry as registry, default_8bit_quantize_scheme)

quantize = tfmot.quantization.keras


class _Registry(registry.Default8BitQuantizeRegistry):
    def __init__(self):
        super().__init__()
        self._layer_quantize_map[keras.layers.DepthwiseConv2D] = DepthwiseQuantizeConfig()


class PerChannelDepthwiseScheme(default_8bit_quantize_scheme.Default8BitQuantizeScheme):
    """tfmot's default 8-bit scheme with per-channel depthwise kernels (what the int8 TFLite file will hold)."""

    def get_quantize_registry(self):
        return _Registry()


def quantize_for_training(model, preserve_sparsity: bool = False):
    """Returns (QAT model, [(layer, why it stays float)]). preserve_sparsity keeps pruned weights at zero
    (tfmot's prune-preserving scheme), for a magnitude-pruned parent. Raises EdgefaceError where tfmot cannot
    rebuild the network at all (e.g. MobileNetV3's hard-swish written as `x + 3` TFOpLambda ops)."""
    try:
        return _quantize(model, preserve_sparsity)
    except (AttributeError, TypeError, ValueError) as err:
        raise EdgefaceError(f"tfmot cannot make this network quantization-aware ({str(err).splitlines()[0]}); "
                            "export the float run with post-training int8 instead (edgeface export RUN --format "
                            "tflite --precision int8)") from err


def _quantize(model, preserve_sparsity: bool):
    scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity
              else PerChannelDepthwiseScheme())
    try:
        annotated = quantize.quantize_annotate_model(model)
        return quantize.quantize_apply(annotated, scheme), []
    except RuntimeError:
        pass
    supported = registry.Default8BitQuantizeRegistry()
    left_float = [(l.name, f"{type(l).__name__} is not in tfmot's default 8-bit registry (e.g. batch norm not "
                           "directly after a convolution, or a custom layer)")
                  for l in model.layers if not isinstance(l, keras.layers.InputLayer) and not supported.supports(l)]
    float_names = {name for name, _ in left_float}

    def annotate(layer):
        return layer if layer.name in float_names else quantize.quantize_annotate_layer(layer)

    annotated = keras.models.clone_model(model, clone_function=annotate)
    return quantize.quantize_apply(annotated, scheme), left_float


def calibrate_ranges(qat_model, float_model, images) -> int:
    """Starts every activation quantizer at the range the float model really produces on `images`.

    tfmot starts activation ranges at [-6, 6] and moves them by an exponential average (decay 0.999): an age
    regression head (0-100 years) would be clipped to 6 for thousands of steps. Returns how many ranges were set.
    """
    import numpy as np

    targets = []  # (min variable, max variable, float layer name or None for the model input)
    for wrapper in qat_model.layers:
        inner = getattr(wrapper, "layer", None)
        for variable in wrapper.weights:
            name = variable.name.split("/")[-1]
            if name == "quantize_layer_min:0":
                targets.append((variable, _partner(wrapper, variable), None))
            elif name in ("post_activation_min:0", "output_min:0") and inner is not None:
                targets.append((variable, _partner(wrapper, variable), inner.name))
    layers = sorted({t[2] for t in targets if t[2] is not None and t[2] in {l.name for l in float_model.layers}})
    probe = keras.Model(float_model.input, [float_model.get_layer(n).output for n in layers])
    outputs = probe.predict(images, verbose=0, batch_size=64)
    observed = {n: (float(np.min(o)), float(np.max(o))) for n, o in zip(layers, outputs)}
    observed[None] = (float(np.min(images)), float(np.max(images)))
    count = 0
    for low, high, layer in targets:
        if layer in observed:
            lo, hi = observed[layer]
            low.assign(min(lo, 0.0))
            high.assign(max(hi, 0.0))
            count += 1
    return count


def _partner(wrapper, min_variable):
    wanted = min_variable.name.replace("_min:0", "_max:0")
    return next(v for v in wrapper.weights if v.name == wanted)

"""Quantization-aware training with tfmot: the whole model when tfmot supports it, else the layers it can."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edgeface.errors import EdgefaceError

from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry as registry, default_8bit_quantize_scheme)

quantize = tfmot.quantization.keras


class DepthwiseWeightsQuantizer(quantize.quantizers.LastValueQuantizer):
    """One 8-bit range per channel of a depthwise kernel (H, W, C, M), as TFLite stores it.

    tfmot's conv quantizer keys its ranges on the kernel's last axis, which is the depth multiplier M = 1 here:
    every channel shares one range (tensorflow/model-optimization#808), and a channel whose weights reach 68
    quantizes its neighbours at 0.3 in steps of 0.5. Ranges are kept over C * M, channel-major, as in TFLite.
    """

    def __init__(self):
        super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
        return {f"{key}_var": layer.add_weight(f"{name}_{key}", shape=(channels,), trainable=False,
                                               initializer=keras.initializers.Constant(sign * 6.0))
                for key, sign in (("min", -1), ("max", 1))}

    def __call__(self, inputs, training, weights, **kwargs):
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, tf.stack([shape[0], shape[1], 1, shape[2] * shape[3]]))
        return tf.reshape(super().__call__(flat, training, weights, **kwargs), shape)

    def get_config(self):
        return {}


class DepthwiseQuantizeConfig(registry.Default8BitConvQuantizeConfig):
    def __init__(self, weight_attrs=("depthwise_kernel",), activation_attrs=("activation",), quantize_output=False):
        super().__init__(list(weight_attrs), list(activation_attrs), quantize_output)
        self.weight_quantizer = DepthwiseWeightsQuantizer()


class _Registry(registry.Default8BitQuantizeRegistry):
    def __init__(self):
        super().__init__()
        self._layer_quantize_map[keras.layers.DepthwiseConv2D] = DepthwiseQuantizeConfig()


class PerChannelDepthwiseScheme(default_8bit_quantize_scheme.Default8BitQuantizeScheme):
    """tfmot's default 8-bit scheme with per-channel depthwise kernels (what the int8 TFLite file will hold)."""

    def get_quantize_registry(self):
        return _Registry()


CUSTOM_OBJECTS = {"DepthwiseWeightsQuantizer": DepthwiseWeightsQuantizer,
                  "DepthwiseQuantizeConfig": DepthwiseQuantizeConfig}


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

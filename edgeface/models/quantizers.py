"""Quantizers that quantization-aware models carry and that must load back with them. They live with the models
(not with the training step that inserts them) so that any layer can open a quantization-aware model."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry as registry)

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


CUSTOM_OBJECTS = {"DepthwiseWeightsQuantizer": DepthwiseWeightsQuantizer,
                  "DepthwiseQuantizeConfig": DepthwiseQuantizeConfig}

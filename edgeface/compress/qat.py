"""Quantization-aware training with tfmot: the whole model when tfmot supports it, else the layers it can."""
from __future__ import annotations

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry as registry)

quantize = tfmot.quantization.keras


def quantize_for_training(model, preserve_sparsity: bool = False):
    """Returns (QAT model, [(layer, why it stays float)]). preserve_sparsity keeps pruned weights at zero
    (tfmot's prune-preserving scheme), for a magnitude-pruned parent."""
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity else None
    try:
        annotated = quantize.quantize_annotate_model(model)
        return (quantize.quantize_apply(annotated, scheme) if scheme else quantize.quantize_apply(annotated)), []
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
    return (quantize.quantize_apply(annotated, scheme) if scheme else quantize.quantize_apply(annotated)), left_float

"""Size and cost of a model: parameters, non-zero parameters, MACs, per-layer sparsity, gzip size of weights."""
from __future__ import annotations

import gzip

import numpy as np
import tf_keras as keras


def _kernel(layer):
    """The layer's kernel variable, also inside tfmot wrappers (which may replace .kernel by a tensor)."""
    return next((w for w in layer.weights if w.name.split("/")[-1] in ("kernel:0", "depthwise_kernel:0")), None)


def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (convolutions, depthwise convolutions, dense)."""
    total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        kernel = _kernel(layer)
        if kernel is None:
            continue
        shape, out_shape = kernel.shape, layer.output_shape  # the wrapper, not the inner layer, was called
        if isinstance(inner, keras.layers.DepthwiseConv2D):
            total += out_shape[1] * out_shape[2] * shape[0] * shape[1] * shape[2] * shape[3]
        elif isinstance(inner, keras.layers.Conv2D):
            total += out_shape[1] * out_shape[2] * int(np.prod(shape))
        elif isinstance(inner, keras.layers.Dense):
            positions = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
            total += positions * int(np.prod(shape))
    return int(total)


def sparsity(model) -> dict:
    """Fraction of exactly-zero weights per layer with a kernel, and overall."""
    per_layer, zeros, count = {}, 0, 0
    for layer in model.layers:
        kernel = _kernel(layer)
        if kernel is None:
            continue
        values = kernel.numpy()
        per_layer[getattr(layer, "layer", layer).name] = float((values == 0).mean())
        zeros += int((values == 0).sum())
        count += values.size
    return {"overall_kernel_sparsity": zeros / max(count, 1), "per_layer": per_layer}


def gzip_weights_bytes(model) -> int:
    """gzip -9 size of all weights as float32: what pruning saves once an artifact is compressed for download."""
    raw = b"".join(np.asarray(w, np.float32).tobytes() for w in model.get_weights())
    return len(gzip.compress(raw, compresslevel=9, mtime=0))


def describe(model) -> dict:
    weights = model.get_weights()
    return {"parameters": int(sum(w.size for w in weights)),
            "nonzero_parameters": int(sum(np.count_nonzero(w) for w in weights)),
            "macs": count_macs(model), "gzip_weights_kb": gzip_weights_bytes(model) / 1000,
            "sparsity": sparsity(model)}

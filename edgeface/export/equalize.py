"""Cross-layer equalization before post-training int8 (Nagel et al. 2019, "Data-free quantization through
weight equalization and bias correction", section 4.1).

Per-channel weight ranges of a MobileNet's depthwise convolutions differ by up to 30x (BENCHMARKS.md section 5:
conv_dw_1's largest channel reaches 68, its median 2.3); the activations they produce share one int8 range per
tensor, so the small channels lose their resolution. For two layers A -> (BN) -> ReLU -> B, scaling output
channel i of A by 1/s_i and input channel i of B by s_i leaves the function unchanged (ReLU is positively
homogeneous) and, with s_i = sqrt(r_A,i / r_B,i) over the batch-norm-folded weight ranges, gives both the same
range sqrt(r_A,i r_B,i). ReLU6 is not homogeneous: after the scaling its clip at 6 acts at 6 * s_i on the original
pre-activation. Two ways through:
- "bound" (default): ReLU6 stays, and calibration images bound the scales so the clip never moves where the model
  uses it: a channel whose pre-activation reaches 6 on those images keeps s_i = 1 (its clip matters), any other
  gets s_i >= peak_i / 6 (scaled up no further than the clip). Exact on those images; an unseen image differs only
  where a channel goes past its calibration peak.
- "replace": the paper's and AIMET's way: the ReLU6 between equalized layers become ReLU. Measured on the 160 px
  MobileNetV2 of BENCHMARKS.md section 10, that alone costs 1.65 points of gender accuracy and 0.18 years of MAE in
  float on validation, so it is not the default.
The export's parity check compares the int8 file with the original float model either way.

Pairs are found in the Keras graph: a Conv2D or DepthwiseConv2D whose single consumer chain is optional batch
norm, optional ReLU/ReLU6, any zero padding or max pooling, then a Conv2D or DepthwiseConv2D (depth multiplier 1). Outputs that
feed anything else (a residual add, a second branch) are left alone.
"""
from __future__ import annotations

import numpy as np
import tf_keras as keras

ITERATIONS = 20  # chains share layers (dw is B of one pair and A of the next): repeat until the scales settle
CONVERGED = 1e-4  # largest |log s| of a round at which equalization stops
# layers that commute with a positive per-channel scale, so they may sit between an equalized pair
PASS_THROUGH = (keras.layers.ZeroPadding2D, keras.layers.MaxPooling2D)


def _consumers(layer) -> list:
    return [node.outbound_layer for node in layer._outbound_nodes]


def _is_relu(layer) -> bool:
    """ReLU or ReLU6 (the caller handles the clip), or a relu/linear Activation."""
    if isinstance(layer, keras.layers.ReLU):
        top = None if layer.max_value is None else float(layer.max_value)
        return float(layer.negative_slope) == 0 and float(layer.threshold) == 0 and top in (None, 6.0)
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in ("relu", "linear")


def _weighted(layer) -> bool:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return layer.depth_multiplier == 1 and layer.get_config()["activation"] == "linear"
    return type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.get_config()["activation"] == "linear"


def find_pairs(model) -> list[tuple]:
    """(A, batch norm or None, activation or None, B) for every equalizable pair, in graph order. A batch norm
    without gamma cannot carry the scale exactly (its epsilon), so it ends the chain."""
    pairs = []
    for a in model.layers:
        if not _weighted(a):
            continue
        bn = act = None
        layer = a
        while True:
            following = _consumers(layer)
            if len(following) != 1:
                layer = None
                break
            layer = following[0]
            if isinstance(layer, keras.layers.BatchNormalization) and layer.scale and bn is None and act is None:
                bn = layer
            elif _is_relu(layer) and act is None:
                act = layer
            elif not isinstance(layer, PASS_THROUGH):
                break
        if layer is not None and _weighted(layer):
            pairs.append((a, bn, act, layer))
    return pairs


def bn_scale(bn) -> np.ndarray:
    return bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)


def following_bn(layer):
    following = _consumers(layer)
    return following[0] if len(following) == 1 and isinstance(following[0], keras.layers.BatchNormalization) else None


def kernel_of(layer):
    return layer.depthwise_kernel if isinstance(layer, keras.layers.DepthwiseConv2D) else layer.kernel


def _channel_axis(layer, s: np.ndarray) -> np.ndarray:
    """`s` shaped to multiply a kernel's output channels (axis 2 of a depthwise kernel, axis 3 of a Conv2D's)."""
    return s[None, None, :, None] if isinstance(layer, keras.layers.DepthwiseConv2D) else s[None, None, None, :]


def _folded_kernel(layer) -> np.ndarray:
    """|kernel| with the following batch norm's per-channel scale folded in (what the converter will store)."""
    kernel, bn = np.abs(kernel_of(layer).numpy()), following_bn(layer)
    return kernel if bn is None else kernel * _channel_axis(layer, np.abs(bn_scale(bn)))


def _output_ranges(a) -> np.ndarray:
    return _folded_kernel(a).max(axis=(0, 1, 3) if isinstance(a, keras.layers.DepthwiseConv2D) else (0, 1, 2))


def _input_ranges(b) -> np.ndarray:
    return _folded_kernel(b).max(axis=(0, 1, 3))  # axis 2 is the input channel of both kernel layouts


def _apply(a, bn, b, s: np.ndarray) -> None:
    """A's output channels / s (through its batch norm's gamma and beta when it has one), B's input channels * s."""
    if bn is not None:
        bn.gamma.assign(bn.gamma.numpy() / s)
        if bn.center:
            bn.beta.assign(bn.beta.numpy() / s)
    else:
        kernel_of(a).assign(kernel_of(a).numpy() / _channel_axis(a, s))
        if a.use_bias:
            a.bias.assign(a.bias.numpy() / s)
    kernel_of(b).assign(kernel_of(b).numpy() * s[None, None, :, None])


def _peaks(model, acts: list, images, batch: int = 32) -> dict:
    """Per-channel maximum of each activation layer's input over `images`."""
    probe = keras.Model(model.inputs, [act.input for act in acts])
    peaks = None
    for i in range(0, len(images), batch):
        outs = probe(images[i:i + batch], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        now = [o.numpy().max(axis=(0, 1, 2)) for o in outs]
        peaks = now if peaks is None else [np.maximum(p, n) for p, n in zip(peaks, now)]
    return {act.name: p for act, p in zip(acts, peaks)}


def relu6_as_relu(model, names=frozenset()):
    """A copy of `model` (weights too) whose ReLU layers named in `names` lose their clip."""
    def clone(layer):
        config = layer.get_config()
        if layer.name in names:
            config["max_value"] = None
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def equalize(model, images=None, relu6: str = "bound") -> tuple:
    """A copy of `model` with every equalizable pair equalized; returns (model, report). `images` (normalized
    calibration images) bound the scales around ReLU6 (see the module docstring); without them, pairs joined by a
    ReLU6 are left alone under "bound". The report names the pairs, the ReLU6 that became ReLU ("replace"), the
    channels whose clip kept them unscaled, and the median per-channel range ratio before and after."""
    if relu6 not in ("bound", "replace"):
        raise ValueError(f"relu6={relu6!r}: bound or replace")
    replaced = {act.name for _, _, act, _ in find_pairs(model) if act is not None and act.max_value is not None} \
        if relu6 == "replace" else set()

    copy = relu6_as_relu(model, replaced)
    pairs = find_pairs(copy)
    clipped = [act for _, _, act, _ in pairs if act is not None and act.max_value is not None]
    if clipped and images is None:
        pairs = [p for p in pairs if p[2] not in clipped]
        clipped = []
    peaks = _peaks(copy, clipped, images) if clipped else {}
    held = {name: int((peak > 6).sum()) for name, peak in peaks.items()}
    spread_before = _spread(pairs)
    rounds = 0
    for rounds in range(1, ITERATIONS + 1):
        largest = 0.0
        for a, bn, act, b in pairs:
            r1, r2 = _output_ranges(a), _input_ranges(b)
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.where(r2 > 0, r2, 1)), 1.0)
            if act is not None and act.name in peaks:
                peak = peaks[act.name]
                s = np.where(peak > 6, 1.0, np.maximum(s, peak / 6))
                peaks[act.name] = peak / s
            s = s.astype(np.float32)
            _apply(a, bn, b, s)
            largest = max(largest, float(np.abs(np.log(s)).max()))
        if largest < CONVERGED:
            break
    return copy, {"method": "cross-layer equalization (Nagel et al. 2019)", "relu6": relu6,
                  "pairs": [f"{a.name} -> {b.name}" for a, _, _, b in pairs],
                  "relu6_to_relu": sorted(replaced), "clipping_channels_kept": sum(held.values()),
                  "rounds": rounds, "channel_range_ratio": {"before": spread_before, "after": _spread(pairs)}}


def _spread(pairs) -> float:
    """Median over equalized layers of (largest / median) per-output-channel folded weight range."""
    ratios = []
    for a, _, _, _ in pairs:
        r = _output_ranges(a)
        ratios.append(float(r.max() / max(np.median(r), 1e-12)))
    return float(np.median(ratios)) if ratios else 1.0

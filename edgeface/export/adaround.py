"""Weight corrections before post-training int8 TFLite: AdaRound (Nagel et al. 2020, "Up or down? Adaptive
rounding for post-training quantization") and empirical bias correction (Nagel et al. 2019, section 4.2).

The TFLite converter folds each batch norm into the layer before it and stores the folded kernel as int8 per
output channel, symmetric, with step max|w| / 127 (Conv2D, DepthwiseConv2D and Dense alike; tests/test_adaround.py
reads the steps back from the file). Both corrections work on that folded kernel and write back a float kernel
that already lies on the converter's grid, so the converter's nearest rounding keeps the integers chosen here:
- AdaRound: each weight goes to the floor or the ceiling of w / step, whichever the layer's output error on the
  calibration images prefers: a rectified-sigmoid relaxation of that choice, trained with Adam against the
  float layer's output, with the paper's annealed regularizer pushing every choice to 0 or 1. Inputs come from
  the model whose earlier layers are already rounded (the paper's asymmetric reconstruction), targets from the
  float model. Each channel's largest weight keeps its value (it fixes the step). A layer whose learned rounding
  does not beat nearest rounding on that loss keeps nearest rounding, and the report says so.
- Bias correction: the mean shift of each output channel against float on the calibration images (from the
  rounding of this and every earlier layer) is subtracted from the layer's bias, or from its batch norm's beta.
Activation quantization is not modelled; the export's parity check compares the int8 file with the float model.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeface.export.equalize import bn_scale, following_bn, kernel_of

log = logging.getLogger(__name__)
QMAX = 127  # symmetric int8 weights: [-127, 127]
ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch (paper, eq. 23)
REGULARIZATION = 0.01  # lambda of the rounding regularizer (paper, eq. 24)
WARMUP = 0.2  # share of the iterations without the regularizer
BETA = (20.0, 2.0)  # the regularizer's exponent, annealed from the first to the second after warm-up
ITERATIONS = 500  # per layer (the paper: 10,000 on a GPU); chosen by measurement, BENCHMARKS.md section 13
POSITIONS = 4096  # input pixels per iteration (whole maps of as many images as that takes)
MAX_IMAGES = 128  # calibration images the reconstruction sees (one batch in the rounded copy's pass)


def weighted_layers(model) -> list:
    """The layers whose kernels the converter stores as per-channel int8, in graph order."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            ok = layer.depth_multiplier == 1
        elif isinstance(layer, keras.layers.Conv2D):
            ok = layer.groups == 1 and layer.rank == 2
        else:
            ok = isinstance(layer, keras.layers.Dense)
        if ok:
            out.append(layer)
    return out


def _out_axis(layer) -> int:
    return 2 if isinstance(layer, keras.layers.DepthwiseConv2D) else -1


def _per_channel(layer, values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-output-channel `values` shaped to broadcast against the layer's kernel."""
    shape = [1] * ndim
    shape[_out_axis(layer)] = -1
    return values.reshape(shape)


def _fold_scale(layer) -> np.ndarray:
    bn = following_bn(layer)
    channels = kernel_of(layer).shape[_out_axis(layer)]
    return bn_scale(bn) if bn is not None else np.ones(channels, np.float32)


def folded_grid(layer) -> tuple[np.ndarray, np.ndarray]:
    """(folded kernel, per-channel step shaped to broadcast against it) as the converter will quantize them."""
    kernel = kernel_of(layer).numpy()
    folded = kernel * _per_channel(layer, _fold_scale(layer), kernel.ndim)
    axes = tuple(a for a in range(kernel.ndim) if a != _out_axis(layer) % kernel.ndim)
    return folded, np.abs(folded).max(axis=axes, keepdims=True) / QMAX


def grid_integers(folded: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Nearest rounding of the folded kernel to its grid (the converter's own choice); 0 where a channel is 0."""
    return np.round(np.divide(folded, step, out=np.zeros_like(folded), where=step != 0))


def _op(layer):
    """The layer's linear map of (inputs, kernel), without bias or activation."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return lambda x, w: keras.backend.depthwise_conv2d(x, w, strides=layer.strides, padding=layer.padding,
                                                          data_format=layer.data_format,
                                                          dilation_rate=layer.dilation_rate)
    if isinstance(layer, keras.layers.Conv2D):
        return layer.convolution_op
    return lambda x, w: tf.tensordot(x, w, axes=1)


def _inputs(model, names: list, images: np.ndarray, batch: int = 32) -> dict:
    """{layer name: its input on every image}, from one pass of `model` through all of them."""
    probe = keras.Model(model.inputs, [model.get_layer(name).input for name in names])
    parts = [probe(images[i:i + batch], training=False) for i in range(0, len(images), batch)]
    parts = [p if isinstance(p, (list, tuple)) else [p] for p in parts]
    return {name: np.concatenate([p[k].numpy() for p in parts]) for k, name in enumerate(names)}


def _write(layer, integers: np.ndarray, step: np.ndarray) -> None:
    """Kernel := the folded grid values integers * step, un-folded through the batch norm the converter folds."""
    kernel = kernel_of(layer).numpy()
    scale = _per_channel(layer, _fold_scale(layer), kernel.ndim)
    grid = integers * step
    kernel_of(layer).assign(np.where(scale != 0, grid / np.where(scale != 0, scale, 1), kernel).astype(np.float32))


def _outputs(op, x, w, batch: int = 32) -> np.ndarray:
    """op(x, w) on every image, batch by batch."""
    return np.concatenate([op(x[i:i + batch], w).numpy() for i in range(0, len(x), batch)])


def _errors(op, x_q, y_f, w, batch: int = 32):
    """The layer's output error against float, batch by batch: op(x_q, w) - y_f."""
    for i in range(0, len(x_q), batch):
        yield op(x_q[i:i + batch], w).numpy() - y_f[i:i + batch]


def _loss(op, x_q, y_f, w) -> float:
    """Mean over images of the summed squared output error (the paper's reconstruction loss)."""
    return sum(float(np.square(err).sum()) for err in _errors(op, x_q, y_f, w)) / len(x_q)


def _h(v):
    return tf.clip_by_value(tf.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _learn_rounding(op, x_q, y_f, folded, step, pinned, iterations: int, positions: int,
                    seed: int) -> np.ndarray:
    """0/1 per weight (added to the floor), learned as in the paper's section 4. Each iteration sees whole input
    maps of as many images as make about `positions` input pixels (one image of an early, wide layer; many of a
    late one), so every layer costs about the same per iteration."""
    grid = np.divide(folded, step, out=np.zeros_like(folded), where=step != 0)
    floor = np.floor(grid)
    rest = np.clip(grid - floor, 1e-4, 1 - 1e-4)
    v = tf.Variable(-np.log((ZETA - GAMMA) / (rest - GAMMA) - 1).astype(np.float32))  # h(v) = rest
    free = tf.constant(~pinned, tf.float32)
    base = tf.constant(np.where(pinned, np.round(grid), floor), tf.float32)  # pinned weights: nearest, fixed
    step_t = tf.constant(step, tf.float32)
    optimizer = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(seed)
    warm = int(WARMUP * iterations)
    batch = int(np.clip(positions // max(1, int(np.prod(x_q.shape[1:-1]))), 1, len(x_q)))

    # the layer's inputs and targets stay tensors; a step picks its images inside the graph (a numpy copy and
    # tensor conversion of each step's batch cost about as much as the step itself)
    xq_all, yf_all = tf.constant(x_q), tf.constant(y_f)

    @tf.function
    def step_fn(pick, beta, reg):
        xq, yf = tf.gather(xq_all, pick), tf.gather(yf_all, pick)
        with tf.GradientTape() as tape:
            h = _h(v)
            err = op(xq, (base + h * free) * step_t) - yf
            recon = tf.reduce_sum(tf.square(err)) / tf.cast(tf.shape(xq)[0], tf.float32)
            loss = recon + reg * tf.reduce_sum((1 - tf.pow(tf.abs(2 * h - 1), beta)) * free)
        optimizer.apply_gradients([(tape.gradient(loss, v), v)])

    for it in range(iterations):
        pick = rng.choice(len(x_q), size=batch, replace=False)
        progress = max(0.0, (it - warm) / max(1, iterations - warm))
        beta = BETA[1] + 0.5 * (BETA[0] - BETA[1]) * (1 + np.cos(np.pi * progress))
        step_fn(tf.constant(pick), tf.constant(beta, tf.float32),
                tf.constant(REGULARIZATION if it >= warm else 0.0, tf.float32))
    return np.where(pinned, np.round(grid), floor + (v.numpy() >= 0))


def correct(model, images: np.ndarray, *, adaround: bool = True, bias_correction: bool = False,
            iterations: int = ITERATIONS, positions: int = POSITIONS, max_images: int = MAX_IMAGES,
            seed: int = 0) -> tuple:
    """A copy of `model` whose weights lie on the converter's int8 grid (AdaRound, else nearest rounding) and, with
    `bias_correction`, whose biases absorb the mean output shift; returns (model, {correction: its record}).
    `images`: normalized calibration images (a seeded sample of `max_images` of them is used)."""
    if len(images) > max_images:
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), max_images, replace=False))]
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    targets = weighted_layers(model)
    index = {layer.name: i for i, layer in enumerate(targets, start=1)}
    # the float model never changes: every layer's float input from one pass of it
    float_inputs = _inputs(model, list(index), images)
    rounding, shifts = {}, {}

    def round_on_arrival(mine):
        """`mine.call`, rounding the layer first from the input that reaches it: the copy's earlier layers are
        already rounded when it arrives, so one pass of the copy gives every layer its asymmetric-reconstruction
        input (issue 30: a pass per layer made AdaRound's time quadratic in depth)."""
        call = mine.call

        def rounded_call(inputs, *args, **kwargs):
            layer, i = model.get_layer(mine.name), index[mine.name]
            op, x_q = _op(mine), inputs.numpy()
            folded, step = folded_grid(layer)
            y_f = _outputs(op, float_inputs.pop(mine.name), folded)  # the float target, once (not per step)
            integers = nearest = grid_integers(folded, step)
            said = []
            if adaround:
                pinned = np.abs(nearest) == QMAX  # each channel's largest weight sets the converter's step
                learned = np.clip(_learn_rounding(op, x_q, y_f, folded, step, pinned, iterations, positions,
                                                  seed + i), -QMAX, QMAX)
                loss_nearest = _loss(op, x_q, y_f, (nearest * step).astype(np.float32))
                loss_learned = _loss(op, x_q, y_f, (learned * step).astype(np.float32))
                kept = loss_learned >= loss_nearest
                integers = nearest if kept else learned
                entry = rounding[mine.name] = {
                    "layer": mine.name, "loss_nearest": loss_nearest, "loss_adaround": loss_learned,
                    "nearest_kept": bool(kept), "changed": 0 if kept else int((learned != nearest).sum())}
                said.append(f"loss {loss_nearest:.4g} nearest, {loss_learned:.4g} learned"
                            + (" (nearest kept)" if kept else f", {entry['changed']} weights changed"))
            _write(mine, integers.astype(np.float32), step)
            if bias_correction:
                shift = _correct_bias(mine, op, x_q, y_f, (integers * step).astype(np.float32))
                shifts[mine.name] = {"layer": mine.name, "mean_abs_shift": shift}
                said.append("no bias to correct" if shift is None else f"mean |shift| {shift:.4g} removed")
            log.info(f"[{i}/{len(targets)}] {mine.name}: {'; '.join(said) or 'nearest rounding'}")
            return call(inputs, *args, **kwargs)  # with the rounded kernel: what later layers receive

        return rounded_call

    mine = [copy.get_layer(name) for name in index]
    for layer in mine:
        layer.call = round_on_arrival(layer)  # eager Layer.__call__ runs self.call (tf_keras base_layer)
    try:
        copy(images, training=False)
    finally:
        for layer in mine:
            del layer.call
    if float_inputs:  # every weighted layer must have been reached by the pass
        raise RuntimeError(f"AdaRound: layers not reached by the model's pass: {', '.join(float_inputs)}")
    rounding, shifts = [rounding[n] for n in index if n in rounding], [shifts[n] for n in index if n in shifts]
    report = {}
    if adaround:
        report["adaround"] = {"method": "AdaRound (Nagel et al. 2020)", "iterations": iterations, "positions": positions,
                              "images": int(len(images)), "seed": seed,
                              "layers_improved": sum(not e["nearest_kept"] for e in rounding),
                              "layers_nearest": sum(e["nearest_kept"] for e in rounding), "layers": rounding}
    if bias_correction:
        done = [e["mean_abs_shift"] for e in shifts if e["mean_abs_shift"] is not None]
        report["bias_correction"] = {"method": "empirical bias correction (Nagel et al. 2019)",
                                     "images": int(len(images)), "layers_corrected": len(done),
                                     "mean_abs_shift": float(np.mean(done)) if done else 0.0,
                                     "skipped": [e["layer"] for e in shifts if e["mean_abs_shift"] is None],
                                     "layers": shifts}
    return copy, report


def _correct_bias(layer, op, x_q, y_f, grid) -> float | None:
    """Subtracts the per-channel mean output shift against float (in the folded output) from the batch norm's
    beta or the layer's bias; returns the mean |shift| removed, or None when the layer has neither."""
    shift, count = 0.0, 0
    for diff in _errors(op, x_q, y_f, grid):
        shift = shift + diff.reshape(-1, diff.shape[-1]).sum(axis=0)
        count += diff.size // diff.shape[-1]
    shift = shift / count
    bn = following_bn(layer)
    if bn is not None and bn.center:
        bn.beta.assign(bn.beta.numpy() - shift)
    elif bn is None and layer.use_bias:
        layer.bias.assign(layer.bias.numpy() - shift)
    else:
        return None
    return float(np.abs(shift).mean())

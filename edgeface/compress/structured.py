"""Structured (filter/channel) pruning: removes whole channels, so the dense model is smaller and faster on every
runtime, not only smaller after compression.

Channels that must stay aligned form one group: a convolution's filters, the depthwise convolutions and batch
norms that carry them through, and every branch joined by a residual Add. A channel's importance is how much
the layers that read it receive from it. Given calibration images: the spread (std) of the channel's activation
at each reader's input times the norm of the reader's weights for it, and a removed channel's mean activation
is folded into each reader's bias (or the batch norm after it), so the slim model starts close to the parent.
Without images: the channel's batch-norm scale (|gamma| / sqrt(var + eps)) times those weight norms, or its
producers' filter norms. Groups are shrunk as a whole; groups touching the input, the model outputs, excluded
layers or layers this pass does not understand (Flatten, Concatenate, attention, ...) are kept, and so are
residual streams unless asked (every later block reads them).
"""
from __future__ import annotations

import math

import numpy as np
import tf_keras as keras

from edgeface.errors import EdgefaceError
from edgeface.export.equalize import following_bn

L = keras.layers
CHANNELWISE = (L.BatchNormalization, L.DepthwiseConv2D)  # weights indexed by channel, channel count kept
PASSTHROUGH = (L.ReLU, L.Activation, L.ZeroPadding2D, L.Dropout, L.SpatialDropout2D, L.MaxPooling2D,
               L.AveragePooling2D, L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.LeakyReLU, L.PReLU)
MERGE = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)


class _Groups:
    """Union-find over channel groups."""

    def __init__(self):
        self.parent, self.frozen = [], set()

    def new(self, frozen=False) -> int:
        self.parent.append(len(self.parent))
        if frozen:
            self.frozen.add(len(self.parent) - 1)
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, groups) -> int:
        roots = {self.find(g) for g in groups}
        root = min(roots)
        for r in roots:
            self.parent[r] = root
            if r in self.frozen:
                self.frozen.add(root)
        return root

    def freeze(self, g: int) -> None:
        self.frozen.add(self.find(g))

    def is_frozen(self, g: int) -> bool:
        return self.find(g) in self.frozen


def _inbound(layer) -> list:
    if not layer._inbound_nodes:
        return []
    inbound = layer._inbound_nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def channel_groups(model, exclude=(), prune_residual: bool = False):
    """Maps every layer to the group of its input and output channels; returns (groups, in_g, out_g, producers)."""
    groups = _Groups()
    in_g, out_g, producers = {}, {}, {}
    residual = []
    output_layers = {t._keras_history.layer.name for t in model.outputs}
    for layer in model.layers:
        parents = _inbound(layer)
        inputs = [out_g[p.name] for p in parents]
        if isinstance(layer, L.InputLayer):
            out_g[layer.name] = groups.new(frozen=True)
            continue
        if len(inputs) == 1:
            in_g[layer.name] = inputs[0]
        if isinstance(layer, L.DepthwiseConv2D):
            if layer.depth_multiplier != 1:
                groups.freeze(inputs[0])
                out_g[layer.name] = groups.new(frozen=True)
            else:
                out_g[layer.name] = inputs[0]
        elif isinstance(layer, L.Conv2D) and getattr(layer, "groups", 1) == 1 and type(layer) is L.Conv2D or \
                isinstance(layer, L.Dense) and len(layer.input_shape) == 2:
            out_g[layer.name] = groups.new()
            producers.setdefault(out_g[layer.name], []).append(layer)
        elif isinstance(layer, CHANNELWISE + PASSTHROUGH) and len(inputs) == 1:
            out_g[layer.name] = inputs[0]
        elif isinstance(layer, MERGE):
            out_g[layer.name] = groups.union(inputs)
            residual.append(out_g[layer.name])
        else:  # a layer whose channel mapping this pass does not know: keep everything around it
            for g in inputs:
                groups.freeze(g)
            out_g[layer.name] = groups.new(frozen=True)
        if layer.name in output_layers or layer.name in exclude:
            groups.freeze(out_g[layer.name])
    if not prune_residual:
        for g in residual:
            groups.freeze(g)
    # producers registered under a group that was later merged: re-key by root
    merged = {}
    for g, layers in producers.items():
        merged.setdefault(groups.find(g), []).extend(layers)
    return groups, in_g, out_g, merged


def _norms(kernel: np.ndarray, norm: str, axis: int) -> np.ndarray:
    """Per-channel L1/L2 norm of a kernel along `axis` (-1: filters it writes, -2: channels it reads)."""
    flat = np.moveaxis(kernel, axis, -1).reshape(-1, kernel.shape[axis])
    return np.abs(flat).sum(0) if norm == "l1" else np.sqrt((flat ** 2).sum(0))


def _readers(model, in_g: dict) -> list:
    """Layers that mix channels of a group into new ones: convolutions and dense layers (not depthwise)."""
    return [layer for layer in model.layers if isinstance(layer, (L.Conv2D, L.Dense))
            and type(layer) is not L.DepthwiseConv2D and in_g.get(layer.name) is not None]


def activation_stats(model, readers: list, images: np.ndarray, batch_size: int = 32) -> dict:
    """{reader name: (mean, std) of each input channel} over calibration images, accumulated batch by batch."""
    probe = keras.Model(model.inputs, [layer.input for layer in readers])
    sums = {}
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start:start + batch_size], training=False)
        for layer, out in zip(readers, outputs if isinstance(outputs, list) else [outputs]):
            flat = np.asarray(out, np.float64).reshape(-1, out.shape[-1])
            n, s1, s2 = sums.get(layer.name, (0, 0.0, 0.0))
            sums[layer.name] = (n + len(flat), s1 + flat.sum(0), s2 + (flat ** 2).sum(0))
    return {name: (s1 / n, np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0))) for name, (n, s1, s2) in sums.items()}


def channel_importance(model, analysis: dict, norm: str, stats: dict | None = None) -> dict:
    """{group root: per-channel importance} (see the module docstring)."""
    groups, in_g, producers = analysis["groups"], analysis["in"], analysis["producers"]
    scale, reads = {}, {}
    for layer in _readers(model, in_g):
        root = groups.find(in_g[layer.name])
        weight = _norms(layer.kernel.numpy(), norm, -2)
        reads[root] = reads.get(root, 0) + (weight * stats[layer.name][1] if stats else weight)
    if not stats:
        for layer in model.layers:
            if isinstance(layer, L.BatchNormalization) and layer.name in in_g:
                root = groups.find(in_g[layer.name])
                gamma = np.abs(layer.gamma.numpy()) if layer.scale else np.ones(layer.moving_variance.shape)
                scale[root] = scale.get(root, 0) + gamma / np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
    importance = {}
    for root, layers in producers.items():
        if root in reads and (stats or root in scale):
            importance[root] = reads[root] * (1 if stats else scale[root])
        else:
            importance[root] = sum(_norms(l.kernel.numpy(), norm, -1) for l in layers)
    return importance


def choose_channels(model, ratio: float | None = 0.3, threshold: float | None = None, norm: str = "l2",
                    min_filters: int = 8, multiple: int = 8, exclude=(), prune_residual: bool = False,
                    images: np.ndarray | None = None) -> tuple[dict, dict]:
    """Returns ({group root: kept channel indices}, analysis) for every prunable group; `images` (normalized
    calibration inputs) switch to activation-based ranking and add the statistics to the analysis."""
    if (ratio is None) == (threshold is None):
        raise EdgefaceError("structured pruning takes either a ratio or a threshold, not both")
    if ratio is not None and not 0 <= ratio < 1:
        raise EdgefaceError(f"pruning ratio must be in [0, 1), got {ratio}")
    if norm not in ("l1", "l2"):
        raise EdgefaceError(f"norm must be l1 or l2, got {norm!r}")
    unknown = set(exclude) - {l.name for l in model.layers}
    if unknown:
        raise EdgefaceError(f"--exclude names no layer of this model: {', '.join(sorted(unknown))}")
    groups, in_g, out_g, producers = channel_groups(model, exclude, prune_residual)
    analysis = {"groups": groups, "in": in_g, "out": out_g, "producers": producers, "stats": None}
    if images is not None and len(images):
        analysis["stats"] = activation_stats(model, _readers(model, in_g), images)
    ranks = channel_importance(model, analysis, norm, analysis["stats"])
    keep = {}
    for root in producers:
        if groups.is_frozen(root):
            continue
        importance = ranks[root]
        count = len(importance)
        if ratio is not None:
            wanted = count - int(round(count * ratio))
        else:
            wanted = int((importance / max(importance.max(), 1e-12) >= threshold).sum())
        wanted = min(count, max(min_filters, int(math.ceil(wanted / multiple) * multiple)))
        keep[root] = np.sort(np.argsort(-importance, kind="stable")[:wanted])
    return keep, analysis


def _compensation(old, k_in, stats) -> np.ndarray | None:
    """What a reader loses per output when its removed input channels go: their mean activation through its
    weights (summed over the kernel window, exact away from the image border)."""
    if stats is None or old.name not in stats:
        return None
    removed = np.setdiff1d(np.arange(old.kernel.shape[-2]), k_in)
    if not len(removed):
        return None
    kernel = old.kernel.numpy()
    window = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(0)  # (in, out)
    return stats[old.name][0][removed] @ window[removed]


def prune_channels(model, **options):
    """A slimmer copy of `model` with the chosen channels removed and the surviving weights copied (and, with
    calibration images, the removed channels' mean contribution folded into what reads them)."""
    keep, a = choose_channels(model, **options)
    groups = a["groups"]

    def kept(group):
        return keep.get(groups.find(group)) if group is not None else None

    config = model.get_config()
    for entry in config["layers"]:
        name = entry["name"]
        if name in a["out"] and kept(a["out"][name]) is not None:
            if entry["class_name"] == "Conv2D":
                entry["config"]["filters"] = int(len(kept(a["out"][name])))
            elif entry["class_name"] == "Dense":
                entry["config"]["units"] = int(len(kept(a["out"][name])))
    slim = model.__class__.from_config(config)
    shifts = {}  # batch norm name -> amount to take off its moving mean
    for old in model.layers:
        new = slim.get_layer(old.name)
        weights = old.get_weights()
        if not weights:
            continue
        k_in, k_out = kept(a["in"].get(old.name)), kept(a["out"].get(old.name))
        if isinstance(old, L.DepthwiseConv2D):
            weights = [w[:, :, k_in] if w.ndim == 4 else w[k_in] for w in weights] if k_in is not None else weights
        elif isinstance(old, (L.Conv2D, L.Dense)):
            lost = _compensation(old, k_in, a["stats"]) if k_in is not None else None
            kernel = weights[0]
            if k_in is not None:
                kernel = kernel[..., k_in, :]
            if k_out is not None:
                kernel = kernel[..., k_out]
                lost = lost[k_out] if lost is not None else None
            bias = ([weights[1][k_out] if k_out is not None else weights[1]] if len(weights) > 1 else [])
            if lost is not None:
                if bias:
                    bias = [bias[0] + lost.astype(bias[0].dtype)]
                else:
                    follower = following_bn(old)
                    if follower is not None:
                        shifts[follower.name] = lost
            weights = [kernel] + bias
        elif isinstance(old, L.BatchNormalization):
            if k_in is not None:
                weights = [w[k_in] for w in weights]
            if old.name in shifts:  # weights: [gamma], [beta], moving_mean, moving_variance
                weights[-2] = weights[-2] - shifts[old.name].astype(weights[-2].dtype)
        new.set_weights(weights)
    return slim, {name: int(len(kept(g))) for name, g in a["out"].items()
                  if kept(g) is not None and name in {l.name for ls in a["producers"].values() for l in ls}}



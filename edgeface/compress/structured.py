"""Structured (filter/channel) pruning: removes whole channels, so the dense model is smaller and faster on every
runtime, not only smaller after compression.

Channels that must stay aligned form one group: a convolution's filters, the depthwise convolutions and batch
norms that carry them through, and every branch joined by a residual Add. A group is ranked by the summed
L1/L2 norms of its producers' filters and shrunk as a whole; groups touching the input, the model outputs,
excluded layers or layers this pass does not understand (Flatten, Concatenate, attention, ...) are kept.
"""
from __future__ import annotations

import math

import numpy as np
import tf_keras as keras

from edgeface.errors import EdgefaceError

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


def analyse(model, exclude=()):
    """Maps every layer to the group of its input and output channels; returns (groups, in_g, out_g, producers)."""
    groups = _Groups()
    in_g, out_g, producers = {}, {}, {}
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
        else:  # a layer whose channel mapping this pass does not know: keep everything around it
            for g in inputs:
                groups.freeze(g)
            out_g[layer.name] = groups.new(frozen=True)
        if layer.name in output_layers or layer.name in exclude:
            groups.freeze(out_g[layer.name])
    # producers registered under a group that was later merged: re-key by root
    merged = {}
    for g, layers in producers.items():
        merged.setdefault(groups.find(g), []).extend(layers)
    return groups, in_g, out_g, merged


def _filter_norms(layer, norm: str) -> np.ndarray:
    kernel = layer.kernel.numpy()
    flat = kernel.reshape(-1, kernel.shape[-1])
    return np.abs(flat).sum(0) if norm == "l1" else np.sqrt((flat ** 2).sum(0))


def choose_channels(model, ratio: float | None = 0.3, threshold: float | None = None, norm: str = "l2",
                    min_filters: int = 8, multiple: int = 8, exclude=()) -> tuple[dict, dict]:
    """Returns ({group root: kept channel indices}, analysis) for every prunable group."""
    if (ratio is None) == (threshold is None):
        raise EdgefaceError("structured pruning takes either a ratio or a threshold, not both")
    if ratio is not None and not 0 <= ratio < 1:
        raise EdgefaceError(f"pruning ratio must be in [0, 1), got {ratio}")
    if norm not in ("l1", "l2"):
        raise EdgefaceError(f"norm must be l1 or l2, got {norm!r}")
    unknown = set(exclude) - {l.name for l in model.layers}
    if unknown:
        raise EdgefaceError(f"--exclude names no layer of this model: {', '.join(sorted(unknown))}")
    groups, in_g, out_g, producers = analyse(model, exclude)
    keep = {}
    for root, layers in producers.items():
        if groups.is_frozen(root):
            continue
        importance = sum(_filter_norms(l, norm) for l in layers)
        count = len(importance)
        if ratio is not None:
            wanted = count - int(round(count * ratio))
        else:
            wanted = int((importance / max(importance.max(), 1e-12) >= threshold).sum())
        wanted = min(count, max(min_filters, int(math.ceil(wanted / multiple) * multiple)))
        keep[root] = np.sort(np.argsort(-importance, kind="stable")[:wanted])
    return keep, {"groups": groups, "in": in_g, "out": out_g, "producers": producers}


def prune_channels(model, **options):
    """A slimmer copy of `model` with the chosen channels removed and the surviving weights copied."""
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
    for old in model.layers:
        new = slim.get_layer(old.name)
        weights = old.get_weights()
        if not weights:
            continue
        k_in, k_out = kept(a["in"].get(old.name)), kept(a["out"].get(old.name))
        if isinstance(old, L.DepthwiseConv2D):
            weights = [w[:, :, k_in] if w.ndim == 4 else w[k_in] for w in weights] if k_in is not None else weights
        elif isinstance(old, (L.Conv2D, L.Dense)):
            kernel = weights[0]
            if k_in is not None:
                kernel = kernel[..., k_in, :]
            if k_out is not None:
                kernel = kernel[..., k_out]
            weights = [kernel] + ([weights[1][k_out] if k_out is not None else weights[1]] if len(weights) > 1 else [])
        elif isinstance(old, L.BatchNormalization) and k_in is not None:
            weights = [w[k_in] for w in weights]
        new.set_weights(weights)
    return slim, {name: int(len(kept(g))) for name, g in a["out"].items()
                  if kept(g) is not None and name in {l.name for ls in a["producers"].values() for l in ls}}

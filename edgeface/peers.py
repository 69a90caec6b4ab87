"""Peer models from other projects (../shared/peers/NAME/peer.json), each fed and decoded per its peer.json, each a
BasePredictor like our own models, so eval, compare and the benchmark score and time them the same way.

Every peer sees the same eval images, loaded at the native 200x200 crop and resized to the peer's input with
TensorFlow's antialiased bilinear resize (after the peer's own crop box, if it has one), then normalized the peer's
own way; each peer class's docstring says how.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.predictor import BasePredictor

NATIVE = 200  # UTKFace crops; peers resize from here, as their peer.json figures were measured


def _resize(images: np.ndarray, size: int, box=None) -> np.ndarray:
    import tensorflow as tf

    x = tf.constant(images)
    if box is not None:  # (top, left, bottom, right) fractions, like tf.image.crop_and_resize
        h, w = images.shape[1:3]
        x = x[:, int(box[0] * h):int(box[2] * h), int(box[1] * w):int(box[3] * w)]
    return tf.image.resize(tf.cast(x, tf.float32), (size, size), antialias=True).numpy()


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class Peer(BasePredictor):
    """Takes images at the native crop size (`input_size`) and resizes them its own way in `preprocess`."""

    precision = "fp32"
    input_size = NATIVE

    def __init__(self, folder: Path, threads: int | None = None):
        from edgeface.runtime import format_of, open_runner  # the formats table opens each file in its runtime

        self.path = folder
        self.meta = json.loads((folder / "peer.json").read_text())
        self.name = f"peer:{self.meta['name']}"
        files = [folder / f["file"] for f in self.meta["files"]]
        self.format = format_of(files[0])
        self.sessions = [open_runner(f, threads) for f in files]

    def files(self):
        return [self.path / f["file"] for f in self.meta["files"]]


class DlibCydral(Peer):
    """gender-v1 (32 px) + age-v1 (64 px), NCHW RGB, (x - mean) / 256; softmaxes in graph."""

    MEAN = np.array([122.781998, 117.000999, 104.297997], np.float32)

    def preprocess(self, images):
        return tuple((_resize(images, s) - self.MEAN) / 256.0 for s in (32, 64))

    def infer(self, x):
        return self.sessions[0](x[0])["probabilities"], self.sessions[1](x[1])["probabilities"]

    def decode(self, raw):
        weights = np.array([0.25] + list(range(1, 81)), np.float32)
        return {"prob_male": raw[0][:, 1], "age_years": raw[1] @ weights}


class InsightFace(Peer):
    """112 px NCHW, raw 0-255 (the graph normalizes); fc1[0:2] gender logits (1 = male), fc1[2:] 100 age pairs."""

    def preprocess(self, images):
        return _resize(images, 112)

    def infer(self, x):
        return np.concatenate([self.sessions[0](x[i:i + 1])["fc1"] for i in range(len(x))])  # batch fixed at 1

    def decode(self, raw):
        pairs = raw[:, 2:].reshape(-1, 100, 2)
        return {"prob_male": _softmax(raw[:, :2])[:, 1], "age_years": (pairs[..., 1] > pairs[..., 0]).sum(-1)}


class Gear(Peer):
    """198 px crop box (top 0, left .1, bottom .9, right .9), x/255; gender [male, female]; 7 age buckets."""

    BUCKETS = np.array([15, 23, 28, 35.5, 45.5, 55.5, 65], np.float32)

    def preprocess(self, images):
        return _resize(images, 198, box=(0.0, 0.1, 0.9, 0.9)) / 255.0

    def infer(self, x):
        return self.sessions[0](x)

    def decode(self, raw):
        probs = raw["Identity"]
        ages = []
        for p in probs:  # Human's decode: start at the top bucket, pull towards the others by probability
            order = np.argsort(-p)
            age = self.BUCKETS[order[0]]
            for i in order[1:]:
                age += p[i] * (self.BUCKETS[i] - age)
            ages.append(age)
        return {"prob_male": raw["Identity_1"][:, 0], "age_years": np.array(ages, np.float32)}


class SSRNet(Peer):
    """64 px raw 0-255 in BGR (what SSR-Net was trained on; better than RGB per peer.json)."""

    def preprocess(self, images):
        return _resize(images, 64)[..., ::-1].copy()

    def infer(self, x):
        return self.sessions[0](x)["Identity"][:, 0]

    def decode(self, raw):
        task = "prob_male" if "gender" in self.meta["outputs"] else "age_years"
        return {task: raw}


class MiniXception(Peer):
    """64 px grey: g = (0.2989R + 0.5870G + 0.1140B)/255, x = (g - 0.5) * 2; softmax [female, male]."""

    def preprocess(self, images):
        grey = _resize(images, 64) @ np.array([0.2989, 0.5870, 0.1140], np.float32) / 255.0
        return ((grey - 0.5) * 2)[..., None]

    def infer(self, x):
        return self.sessions[0](x)["Identity"]

    def decode(self, raw):
        return {"prob_male": raw[:, 1]}


PEERS = {"dlib_cydral_age_gender": DlibCydral, "insightface_genderage_2018": InsightFace, "human_gear": Gear,
         "human_ssrnet_gender_imdb": SSRNet, "human_ssrnet_age": SSRNet, "human_gender_minixception": MiniXception}


def is_peer(folder: Path) -> bool:
    return (Path(folder) / "peer.json").is_file()


def load_peer(folder: Path, threads: int | None = None) -> Peer:
    folder = Path(folder)
    if not is_peer(folder):
        raise EdgefaceError(f"{folder}: no peer.json")
    if folder.name not in PEERS:
        raise EdgefaceError(f"{folder}: no adapter for peer {folder.name!r} (known: {', '.join(sorted(PEERS))})")
    return PEERS[folder.name](folder, threads)


def find_peers(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise EdgefaceError(f"{folder}: peers folder not found (pass --peers-dir)")
    return sorted(p for p in folder.iterdir() if is_peer(p) and p.name in PEERS)

"""Benchmark candidates: our runs/artifacts and peer models, each with its own preprocessing and decoding.

A candidate loads eval images at its own size through the shared decode/resize op, prepares them (its
normalization), runs inference, and decodes to P(male) and age in years, so every model is scored the
same way on the same images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeface.card import failed_parity


class Candidate:
    name = ""
    format = ""
    precision = ""
    load_size = 0
    channel_order = "RGB"

    def descriptor(self) -> dict:
        """What a probe subprocess needs to rebuild this candidate."""
        raise NotImplementedError

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def files(self) -> list[Path]:
        raise NotImplementedError

    def prepare(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def infer(self, x: np.ndarray):
        raise NotImplementedError

    def decode(self, raw) -> dict:
        raise NotImplementedError

    def predict(self, images: np.ndarray, batch_size: int = 64) -> dict:
        parts = [self.decode(self.infer(self.prepare(images[i:i + batch_size])))
                 for i in range(0, len(images), batch_size)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class EdgefaceCandidate(Candidate):
    """A run folder / .keras model (Keras runtime) or an exported artifact, opened through the verified loader
    (card, hash and contract checked first). An artifact whose own card records a failed parity check says so."""

    def __init__(self, path, threads: int | None = None):
        from edgeface.predictor import load

        self.path = Path(path)
        self.predictor = load(self.path, threads)
        self.spec = self.predictor.spec
        self.format, self.precision, self.name = self.predictor.format, self.predictor.precision, self.predictor.name
        self.load_size = self.spec.input_size
        failed = failed_parity(self.predictor.card)
        self.parity_error = None if failed is None else f"its model card records a failed parity check ({failed})"

    def descriptor(self):
        return {"kind": "edgeface", "path": str(self.path)}

    def files(self):
        return self.predictor.files()

    def prepare(self, images):
        return self.predictor.preprocess(images)

    def infer(self, x):
        return self.predictor.runner(x)

    def decode(self, raw):
        return self.predictor.decode(raw)

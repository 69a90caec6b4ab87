"""Benchmark candidates: our runs/artifacts and peer models, each with its own preprocessing and decoding.

A candidate loads eval images at its own size through the shared decode/resize op, prepares them (its
normalization), runs inference, and decodes to P(male) and age in years, so every model is scored the
same way on the same images.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError


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
    """A run folder / .keras model (Keras runtime) or an exported artifact read with its model card."""

    def __init__(self, path, threads: int | None = None):
        from edgeface.eval import load_any

        self.path = Path(path)
        self.runner, self.spec, self.parameters = load_any(self.path, threads)
        self.format = self.runner.format
        card = self._card()
        self.precision = card["artifact"]["precision"] if card else "fp32"
        self.name = card["training"]["run"].rstrip("/").split("/")[-1] if card else self._run_name()
        self.load_size = self.spec.input_size

    def _run_name(self) -> str:
        return (self.path if self.path.is_dir() else self.path.parent).name

    def _card(self):
        if self.format == "keras":
            return None
        from edgeface.export.card import card_path

        return json.loads(card_path(self.path).read_text())

    def descriptor(self):
        return {"kind": "edgeface", "path": str(self.path)}

    def files(self):
        if self.format == "keras":
            from edgeface.models import model_file

            return [model_file(self.path) if self.path.is_dir() else self.path]
        if self.path.is_dir():
            return [p for p in self.path.rglob("*") if p.is_file()]
        return [self.path]

    def prepare(self, images):
        from edgeface.data.pipeline import normalize

        return normalize(images, self.spec.config).astype(np.float32)

    def infer(self, x):
        return self.runner(x)

    def decode(self, raw):
        from edgeface.eval import decode_outputs

        return decode_outputs(raw, self.spec)


def make_candidate(descriptor: dict, threads: int | None = None) -> Candidate:
    if descriptor["kind"] == "edgeface":
        return EdgefaceCandidate(descriptor["path"], threads)
    if descriptor["kind"] == "peer":
        from edgeface.benchmark.peers import load_peer

        return load_peer(Path(descriptor["path"]), threads)
    raise EdgefaceError(f"unknown candidate kind {descriptor['kind']!r}")

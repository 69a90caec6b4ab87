"""`open_model(source)`: any model edgeface can score, behind the one BasePredictor API: `ensemble:A,B`, a peer's
folder (peer.json), or anything `edgeface.load` opens (run folder, Keras file, exported artifact). compare, the
benchmark and its latency probe open models here."""
from __future__ import annotations

from edgeface.ensemble import PREFIX, Ensemble
from edgeface.peers import is_peer, load_peer
from edgeface.predictor import BasePredictor, load


def open_model(source, threads: int | None = None, trust_hdf5: bool = False) -> BasePredictor:
    if str(source).startswith(PREFIX):
        return Ensemble(str(source), threads, trust_hdf5)
    if is_peer(source):
        return load_peer(source, threads)
    return load(source, threads, trust_hdf5=trust_hdf5)

"""Several models scored as one (`ensemble:A,B`): probability male and age in years averaged over the members, the
way `edgeface distill A B` averages its teachers (a regression student distils the same average: the teachers'
expected ages), so an ensemble of teachers is chosen on validation like any single model."""
from __future__ import annotations

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.predictor import BasePredictor, load

PREFIX = "ensemble:"


def _average(outputs: list[dict]) -> dict:
    shared = set.intersection(*(set(o) for o in outputs)) & {"prob_male", "age_years"}
    return {key: np.mean([o[key] for o in outputs], axis=0) for key in shared}


class Ensemble(BasePredictor):
    """Members of one input size run in the three steps like any model (and are timed so); members of several
    sizes each read the files at their own size (`predict_files`, `predict_records`)."""

    format = "ensemble"

    def __init__(self, spec: str, threads: int | None = None, trust_hdf5: bool = False):
        paths = [p for p in spec[len(PREFIX):].split(",") if p]
        if not spec.startswith(PREFIX) or len(paths) < 2:
            raise EdgefaceError(f"{spec}: an ensemble names two or more models, comma-separated "
                                "(ensemble:runs/a,runs/b)")
        self.members = [load(p, threads, trust_hdf5=trust_hdf5) for p in paths]
        self.path = self.name = spec
        self.precision = "+".join(m.precision for m in self.members)
        sizes = {m.input_size for m in self.members}
        self.input_size = sizes.pop() if len(sizes) == 1 else None

    @property
    def numeric_age(self) -> bool:
        return all(m.numeric_age for m in self.members)

    def training_run(self):
        return self.members[0].training_run()

    def files(self):
        return [f for m in self.members for f in m.files()]

    def preprocess(self, images):
        if self.input_size is None:
            raise EdgefaceError(f"{self.path}: the members take different input sizes "
                                f"({', '.join(str(m.input_size) for m in self.members)} px); score it on files")
        return [m.preprocess(images) for m in self.members]

    def infer(self, xs):
        return [m.infer(x) for m, x in zip(self.members, xs)]

    def decode(self, raws):
        return _average([m.decode(raw) for m, raw in zip(self.members, raws)])

    def predict_files(self, paths, batch_size: int = 64) -> dict:
        return _average([m.predict_files(paths, batch_size) for m in self.members])

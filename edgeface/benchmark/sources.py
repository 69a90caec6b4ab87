"""What the benchmark measures: rows for each run (its Keras model, then every export variant, exported once),
each artifact as given and each peer; and the images they are all scored on."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeface.benchmark.rows import Row, Settings
from edgeface.errors import EdgefaceError
from edgeface.run import Run

def row_sources(sources, s: Settings, workdir: Path):
    """(Row, factory, exports) triples: per run its Keras model then every export variant (exported once per run,
    so the fp32 ONNX model is converted once for all its derivatives); artifacts, peer folders and ensembles as
    given; the peers of --peers-dir."""
    from edgeface.any_model import open_model
    from edgeface.export import export_variants
    from edgeface.peers import find_peers
    from edgeface.runtime.formats import qat_variants
    from edgeface.runtime.tensorrt import cuda_available

    gpu = cuda_available()[0]
    for source in sources:
        path = Path(source)
        if not Run.is_run(path):  # an artifact, a peer's folder or an ensemble: the model knows what it is
            yield Row(path.name if path.exists() else str(source), "?", "?"), \
                lambda x=source: open_model(x, s.threads), False
            continue
        yield Row(path.name, "keras", "fp32"), lambda p=path: open_model(p, s.threads), False
        variants = export_variants(s.formats, s.precisions, gpu)
        try:
            if Run.open(path).quantization_aware:  # the benchmark takes what applies, the rest stays as asked
                variants = qat_variants(variants, explicit=False)
        except EdgefaceError as err:
            yield Row(path.name, "?", "?"), lambda e=err: _raise(e), True
            continue
        exported = _export_once(path, variants, workdir / path.name, s)
        for fmt, precision in variants:
            def make(key=(fmt, precision), exported=exported):
                result = exported()[key]
                if result.error:
                    raise EdgefaceError(result.error)
                return open_model(result.path, s.threads)

            yield Row(path.name, fmt, precision), make, True
    if s.peers_dir:
        for folder in find_peers(Path(s.peers_dir)):
            yield Row(f"peer:{folder.name}", "?", "fp32"), lambda f=folder: open_model(f, s.threads), False


def _raise(err: Exception):
    raise err


def _export_once(run: Path, variants: list, folder: Path, s: Settings):
    """A function giving {(format, precision): ExportResult} for a run, exporting every variant in one call on
    first use (one fp32 ONNX conversion for all its derivatives)."""
    from edgeface.export import ExportOptions, export_run

    done = {}

    def results() -> dict:
        if not done:
            done.update({(r.format, r.precision): r for r in export_run(
                run, output_dir=folder, options=ExportOptions(calibration=s.calibration), variants=variants)})
        return done

    return results


def scoring_records(sources, s: Settings) -> tuple[list, str]:
    """The images every row is scored on: --data's split, or else the split the first run among the sources
    recorded (a model is then never scored on images it trained on); eval's records_to_score decides."""
    from edgeface.eval import records_to_score

    runs = [Run.open(p) for p in sources if Run.is_run(p)]
    records, _ = records_to_score(runs[0] if runs else None, s.data, s.split, limit=s.limit, others=runs[1:],
                                  no_run="no run folder among the sources")
    return records, (f"{s.data} [{s.split}]" if s.data else f"the {s.split} split recorded by {runs[0].path}")


class Images:
    """Eval images decoded once per input size, through the shared decode/resize op."""

    def __init__(self, records):
        from edgeface.data.images import load_images
        from edgeface.data.records import label_arrays

        self.records, self.load_images, self.cache = records, load_images, {}
        self.gender, self.age = label_arrays(records)

    def at(self, size: int) -> np.ndarray:
        if size not in self.cache:
            self.cache[size] = self.load_images([r.path for r in self.records], size)
        return self.cache[size]

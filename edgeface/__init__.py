"""edgeface: face-attribute (gender, age) models from training to verified edge artifacts."""
import os

# tensorflow-model-optimization needs Keras 2; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgeface.version import __version__  # noqa: E402,F401


def load(path, threads: int | None = None, trust_hdf5: bool = False):
    """A verified Predictor for a run folder, .keras model or exported artifact (edgeface.predictor.load)."""
    from edgeface.predictor import load as _load

    return _load(path, threads, trust_hdf5)


def quiet() -> bool:
    """Keeps TensorFlow's and LiteRT's known C++ start-up chatter (oneDNN, CUDA probing, "XNNPACK delegate") off
    this process's stderr, as the command line does. Not done on import: a library does not take over its host's
    file descriptor 2 unasked. Call before the first model is loaded; False when fd 2 cannot be redirected."""
    from edgeface.native_stderr import filter_native_stderr

    return filter_native_stderr()

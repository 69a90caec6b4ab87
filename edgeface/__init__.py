"""edgeface: face-attribute (gender, age) models from training to verified edge artifacts."""
import os

# tensorflow-model-optimization needs Keras 2; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

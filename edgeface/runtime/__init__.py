"""The bottom inference layer: one runner per runtime (Keras, LiteRT, ONNX Runtime, TensorRT) mapping
normalized float images to float head outputs, the formats table, and output decoding by the card's rules.
Nothing here imports models, training or export, so every layer above can run an artifact."""
from edgeface.runtime.decode import decode_age, decode_outputs, male_decisions
from edgeface.runtime.formats import FORMATS, format_of
from edgeface.runtime.open import open_runner
from edgeface.runtime.runners import KerasRunner, ONNXRunner, Runner, SavedModelRunner, TFLiteRunner, task_key

__all__ = ["Runner", "KerasRunner", "SavedModelRunner", "TFLiteRunner", "ONNXRunner", "open_runner", "task_key",
           "FORMATS", "format_of", "decode_outputs", "decode_age", "male_decisions"]

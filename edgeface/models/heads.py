"""Task heads on the pooled features: gender is P(male); age is whatever its registered head gives
(edgeface.models.age_heads). The one place that names head layers."""
from __future__ import annotations

from edgeface.labels import GENDER_MEANING
from edgeface.runtime.decode import GENDER_THRESHOLD

TASKS = ("gender", "age")
DROPOUT_LAYER = "head_dropout"


def hidden_layer(task: str) -> str:
    return f"{task}_hidden"


HEAD_LAYERS = (*TASKS, DROPOUT_LAYER, *(hidden_layer(t) for t in TASKS))
GENDER_DECODING = {"rule": "probability", "positive": "male", "threshold": GENDER_THRESHOLD}


def gender_card_output(dtype: str = "float32", quantization=None) -> dict:
    return {"name": "gender", "shape": [-1, 1], "dtype": dtype, "meaning": GENDER_MEANING,
            "decode": f"male if output[0] >= {GENDER_THRESHOLD:g} else female", "decoding": dict(GENDER_DECODING),
            "quantization": quantization}


def build_heads(features, spec) -> dict:
    from tf_keras import layers

    x = layers.Dropout(spec.dropout, name=DROPOUT_LAYER)(features) if spec.dropout else features
    outputs = {}

    def trunk(task):
        if not spec.head_units:
            return x
        return layers.Dense(spec.head_units, activation="relu", name=hidden_layer(task))(x)

    if "gender" in spec.tasks:
        outputs["gender"] = layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(trunk("gender"))
    if "age" in spec.tasks:
        outputs["age"] = spec.head().layer(spec.age_init)(trunk("age"))
    return outputs

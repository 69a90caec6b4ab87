"""Custom Keras layers of the registered backbones, registered for (safe-mode) loading of saved models."""
from __future__ import annotations

import tf_keras as keras

layers = keras.layers


@keras.utils.register_keras_serializable(package="edgeface")
class PositionEmbedding(layers.Layer):
    """Learned position embedding added to a (batch, tokens, dim) sequence."""

    def build(self, input_shape):
        self.embedding = self.add_weight(
            name="embedding", shape=(1, input_shape[1], input_shape[2]),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def call(self, tokens):
        return tokens + self.embedding

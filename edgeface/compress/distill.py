"""Knowledge distillation: a trained teacher run guides a new student on the same (augmented) images.

loss = (1 - alpha) * hard loss on the labels + alpha * soft loss against the teacher, where the soft loss is
T^2-scaled binary cross-entropy between temperature-softened gender probabilities (Hinton et al. 2015), and
for age the head's own distance to the teacher's output (L1 in years for regression, softened cross-entropy
for distribution/group/ordinal heads). A student may use another numeric age head than its teacher (say a
regression student under a distribution teacher, to stay small): the teacher's age is then converted to the
student's form (expected years, or a Gaussian around the teacher's years). The teacher sees each batch resized
and normalized its own way, so teacher and student may differ in input size and preprocessing. Several
teachers distil as an ensemble (their outputs averaged).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeface.models.age_heads import age_head
from edgeface.models.age_losses import sigmoid_soft_loss
from edgeface.runtime import task_key


def _pixels(x, config):
    """Inverse of edgeface.data.images.normalize: network input -> float 0-255 RGB."""
    x = x * np.asarray(config.std, np.float32) + np.asarray(config.mean, np.float32)
    return x[..., ::-1] if config.channel_order == "BGR" else x


def soft_loss(task: str, spec, teacher_out, student_out, temperature: float):
    """The distillation loss of one task: the age head's own (edgeface.models.age_heads), sigmoid cross-entropy
    for gender."""
    if task == "age":
        return spec.head().soft_loss(teacher_out, student_out, temperature)
    return sigmoid_soft_loss(teacher_out, student_out, temperature)


def as_student_age(age, teacher_spec, student_spec):
    """A teacher's age output in the student head's form (through years when the heads differ)."""
    if teacher_spec.age_head == student_spec.age_head:
        return age
    return student_spec.head().from_years(age_head(teacher_spec.age_head).years(age))


class Distiller(keras.Model):
    """Trains `student` against labels and frozen teachers; predicts (and is saved) as the student.

    Several teachers form an ensemble: each sees the batch its own way and their outputs (gender probability,
    age in the student's form) are averaged, so teachers may differ in backbone, input size and age head."""

    def __init__(self, student, teachers, student_spec, teacher_specs, alpha=0.5, temperature=2.0,
                 loss_weights=None):
        super().__init__(name="distiller")
        self.student = student
        self.teachers, self.teacher_specs = list(teachers), list(teacher_specs)
        for teacher in self.teachers:
            teacher.trainable = False
        self.student_spec = student_spec
        self.alpha, self.temperature = alpha, temperature
        self.kd_weights = dict(loss_weights or {})

    def call(self, x, training=False):
        return self.student(x, training=training)

    def _one_teacher(self, teacher, spec, pixels):
        from edgeface.data.images import normalize

        if spec.input_size != self.student_spec.input_size:
            pixels = tf.image.resize(pixels, (spec.input_size, spec.input_size), antialias=True)
        outputs = {task_key(k): v for k, v in teacher(normalize(pixels, spec.backbone_config), training=False).items()}
        if "age" in outputs:
            outputs["age"] = as_student_age(outputs["age"], spec, self.student_spec)
        return outputs

    def _teacher_outputs(self, x):
        pixels = _pixels(x, self.student_spec.backbone_config)
        each = [self._one_teacher(t, spec, pixels) for t, spec in zip(self.teachers, self.teacher_specs)]
        return {task: tf.add_n([o[task] for o in each]) / len(each) for task in each[0]}

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher = self._teacher_outputs(x)
        with tf.GradientTape() as tape:
            student = self.student(x, training=True)
            hard = self.compiled_loss(y, student, sample_weight, regularization_losses=self.student.losses)
            soft = tf.add_n([self.kd_weights.get(task, 1.0)
                             * soft_loss(task, self.student_spec, teacher[task], student[task], self.temperature)
                             for task in self.student_spec.tasks])
            loss = (1 - self.alpha) * hard + self.alpha * soft
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
        self.compiled_metrics.update_state(y, student, sample_weight)
        return {"loss": loss, "distill_soft_loss": soft, **{m.name: m.result() for m in self.metrics
                                                              if m.name != "loss"}}

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student = self.student(x, training=False)
        self.compiled_loss(y, student, sample_weight, regularization_losses=self.student.losses)
        self.compiled_metrics.update_state(y, student, sample_weight)
        return {m.name: m.result() for m in self.metrics}

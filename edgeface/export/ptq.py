"""Post-training int8 corrections of the Keras model before TFLite conversion, applied in the order that composes:
cross-layer equalization (moves range between layers), AdaRound (chooses each weight's int8 rounding), bias
correction (absorbs the mean output shift that remains). Each is selectable and recorded in the card; the
converter always folds batch norms itself."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PtqCorrections:
    equalize: str | None = None  # cross-layer equalization: bound | replace (edgeface.export.equalize)
    adaround: bool = False  # learned weight rounding (edgeface.export.adaround)
    bias_correction: bool = False  # empirical bias correction (edgeface.export.adaround)

    def __bool__(self) -> bool:
        return bool(self.equalize or self.adaround or self.bias_correction)

    def flags(self) -> str:
        return " ".join(f for f, on in ((f"--equalize {self.equalize}", self.equalize), ("--adaround", self.adaround),
                                        ("--bias-correction", self.bias_correction)) if on)

    def apply(self, model, images: np.ndarray) -> tuple:
        """(corrected copy of `model`, one record per correction for the card). `images`: normalized calibration
        images."""
        records = []
        if self.equalize:
            from edgeface.export.equalize import equalize

            model, record = equalize(model, images, self.equalize)
            log.info(f"cross-layer equalization ({self.equalize}): {len(record['pairs'])} layer pairs, "
                     f"{len(record['relu6_to_relu'])} ReLU6 -> ReLU, {record['clipping_channels_kept']} clipping "
                     f"channels unscaled; median channel-range ratio {record['channel_range_ratio']['before']:.1f} "
                     f"-> {record['channel_range_ratio']['after']:.1f}")
            records.append(record)
        if self.adaround or self.bias_correction:
            from edgeface.export.adaround import correct

            model, report = correct(model, images, adaround=self.adaround, bias_correction=self.bias_correction)
            for record in report.values():
                log.info(f"{record['method']}: " + ", ".join(
                    f"{k} {v}" for k, v in record.items() if k not in ("method", "skipped", "layers")))
                records.append(record)
        return model, records

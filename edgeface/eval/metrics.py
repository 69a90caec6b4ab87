"""Plain-numpy metrics, so every runtime (Keras, LiteRT, ONNX Runtime, TensorRT) is scored identically."""
from __future__ import annotations

import numpy as np

from edgeface.labels import AGE_GROUP_LABELS



def gender_metrics(true: np.ndarray, male: np.ndarray) -> dict:
    """From gender decisions (True = male; runtime.male_decisions). Male is the positive class. Balanced accuracy
    averages the per-gender recalls."""
    true = np.asarray(true).astype(int)
    pred = np.asarray(male).reshape(-1).astype(int)
    if len(true) == 0:
        return {}
    cm = np.zeros((2, 2), int)  # rows: true female/male; cols: predicted female/male
    np.add.at(cm, (true, pred), 1)
    tp, fp = cm[1, 1], cm[0, 1]
    # a recall (and so balanced accuracy) of a gender the images do not have is undefined, not 0 or 1
    recall_m = tp / cm[1].sum() if cm[1].sum() else None
    recall_f = cm[0, 0] / cm[0].sum() if cm[0].sum() else None
    precision = tp / max(tp + fp, 1)
    both = recall_m is not None and recall_f is not None
    return {
        "accuracy": float((pred == true).mean()),
        "balanced_accuracy": float((recall_m + recall_f) / 2) if both else None,
        "precision_male": float(precision),
        "recall_male": None if recall_m is None else float(recall_m),
        "recall_female": None if recall_f is None else float(recall_f),
        "f1_male": float(2 * precision * recall_m / max(precision + recall_m, 1e-12)) if recall_m is not None else None,
        "confusion_matrix": {"rows_true_cols_pred": ["female", "male"], "counts": cm.tolist()},
        "n": int(len(true)),
    }


def age_metrics(true_years, pred_years, true_group, pred_group, numeric: bool) -> dict:
    true_group, pred_group = np.asarray(true_group), np.asarray(pred_group)
    if len(true_group) == 0:
        return {}
    out = {"group_accuracy": float((true_group == pred_group).mean()),
           "group_one_off_accuracy": float((np.abs(true_group - pred_group) <= 1).mean()), "n": int(len(true_group))}
    if numeric:
        err = np.abs(np.asarray(true_years) - np.asarray(pred_years))
        out.update(mae=float(err.mean()), median_abs_error=float(np.median(err)),
                   within_5_years=float((err <= 5).mean()))
    return out


def group_order(key):
    """Age bands in age order (0-2, 4-6, ..., 60-100), anything else (races) by name after them."""
    return (AGE_GROUP_LABELS.index(key), "") if key in AGE_GROUP_LABELS else (len(AGE_GROUP_LABELS), str(key))


def breakdown(keys, true_gender, male, age_parts, numeric: bool) -> dict:
    """The same metrics per value of `keys` (age band or race), plus the gap between best and worst."""
    keys = np.asarray(keys, dtype=object)
    out = {}
    for key in sorted({k for k in keys if k is not None}, key=group_order):
        m = keys == key
        entry = {"n": int(m.sum())}
        if true_gender is not None:
            g = true_gender[m]
            known = g >= 0
            if known.any():
                entry["gender_accuracy"] = float((male[m][known].astype(int) == g[known]).mean())
        if age_parts is not None and numeric:
            ty, py = age_parts[0][m], age_parts[1][m]
            known = ~np.isnan(ty)
            if known.any():
                entry["age_mae"] = float(np.abs(ty[known] - py[known]).mean())
        out[str(key)] = entry
    gaps = {}
    for metric, better in (("gender_accuracy", max), ("age_mae", min)):
        values = {k: v[metric] for k, v in out.items() if metric in v and v["n"] >= 20}
        if len(values) >= 2:
            worst = min(values, key=values.get) if better is max else max(values, key=values.get)
            gaps[metric] = {"worst": worst, "worst_value": values[worst],
                            "gap": float(max(values.values()) - min(values.values()))}
    return {"groups": out, "gaps": gaps}

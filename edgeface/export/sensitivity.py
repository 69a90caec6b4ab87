"""Which layer breaks int8 (`edgeface analyze`), and mixed precision that keeps just those float
(`edgeface export --keep-float LAYERS|auto`).

Two views per layer of a full-integer int8 TFLite file:
- numeric: TensorFlow's QuantizationDebugger compares each op's int8 output with its float output on the
  calibration images; the error is reported in quantization steps (RMSE / scale);
- task effect on the validation split (the same images for every variant): Δ gender accuracy and Δ age MAE
  when only that layer stays float, against the full int8 file ("recovered": how much of int8's loss it
  explains), and when only it is quantized, against a file where everything that can be is float ("effect":
  what quantizing it alone changes; negative is a cost). Every change is signed + for better.
Layers are named by their Keras layer; the selective files come from the debugger's denylisted nodes (one
calibration for all of them)."""
from __future__ import annotations

import csv
import datetime
import io
import logging
import math
import re
import tempfile
from pathlib import Path

import numpy as np

from edgeface.errors import EdgefaceError
from edgeface.export.ptq import PtqCorrections
from edgeface.export.tflite import Quantizer, layer_name
from edgeface.utils import atomic_path, write_json, write_text
from edgeface.version import __version__

log = logging.getLogger(__name__)
TRIVIAL_OPS = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "QUANTIZE", "DEQUANTIZE", "CONCATENATION", "PAD",
               "SOFTMAX", "LOGISTIC"}  # share their input's scale, or have fixed output ranges
TOLERANCE = {"gender_accuracy": 0.003, "age_mae": 0.1}  # int8 "holds" within 0.3 points / 0.1 years of float
MIN_RESOLVING = math.ceil(1 / TOLERANCE["gender_accuracy"])  # fewer images: one image is more than the tolerance


def _outcomes(data: bytes, spec, images, gender, age) -> dict:
    from edgeface.stats import per_image
    from edgeface.predictor import Predictor
    from edgeface.runtime import TFLiteRunner

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(data)
        predictor = Predictor(TFLiteRunner(path), spec)
        return per_image(predictor.predict(images), gender, age)


def _means(outcome: dict) -> dict:
    from edgeface.stats import summarize

    return {k: v for k, v in summarize(outcome).items() if v is not None}


def _gap(a: dict, b: dict) -> dict:
    """b - a per metric, signed so that positive is better for b (accuracy up, MAE down)."""
    out = {}
    if "gender_accuracy" in a:
        out["gender_points"] = 100 * (b["gender_accuracy"] - a["gender_accuracy"])
    if "age_mae" in a:
        out["age_years"] = a["age_mae"] - b["age_mae"]
    return out


class _Bench:
    """A run's model, its validation images and one int8 calibration, shared by the analysis and the search."""

    def __init__(self, run_path, calibration: str, root=None, val_limit=500, calibration_limit=200, seed=0,
                 corrections: PtqCorrections = PtqCorrections()):
        from edgeface.data import stratified_subset
        from edgeface.data.records import label_arrays
        from edgeface.data.images import load_images
        from edgeface.stats import per_image
        from edgeface.export.calibration import calibration_batches, find_manifest
        from edgeface.predictor import Predictor
        from edgeface.run import Run

        self.run, self.corrections = Run.open(run_path, finished=True), corrections
        if self.run.quantization_aware:
            raise EdgefaceError(f"{self.run.path}: a quantization-aware run brings its own int8 ranges; analyze its "
                                "float parent instead")
        model, self.spec = self.run.load_model(), self.run.spec
        self.manifest = find_manifest(calibration)
        batches = calibration_batches(self.manifest, self.spec, root, limit=calibration_limit)
        records = self.run.split("val")
        if val_limit is not None and val_limit < 0:
            raise EdgefaceError(f"--val-limit {val_limit}: must be 0 (all) or a number of images")
        if val_limit:
            records = stratified_subset(records, val_limit, seed)
        self.n = len(records)
        self.images = load_images([r.path for r in records], self.spec.input_size)
        self.gender, self.age = label_arrays(records)
        log.info(f"float model on {self.n} val images; calibrating int8 on {len(batches)} images")
        self.float_outcome = per_image(Predictor.from_keras(model, self.spec).predict(self.images), self.gender,
                                       self.age)
        self.float = _means(self.float_outcome)
        if corrections:  # int8 of the corrected model, measured against the original float model
            model = corrections.apply(model, np.concatenate(batches))[0]
        self.quantizer = Quantizer(model, batches)

    def outcome(self, keep_float=()) -> dict:
        return _outcomes(self.quantizer.file(keep_float), self.spec, self.images, self.gender, self.age)

    def score(self, keep_float=()) -> dict:
        return _means(self.outcome(keep_float))


BLOCK = re.compile(r"(block_?\d+[a-z]?|expanded_conv(?:_\d+)?|stack_?\d+)|conv_(?:dw|pw)_(\d+)")


def block_name(layer: str) -> str:
    """The block a Keras layer belongs to (MobileNetV2 block_3_*, MobileNet v1 conv_dw_3 / conv_pw_3 -> block 3,
    MobileNetV3 expanded_conv_3_*, EfficientNet block2a_*); the layer itself when it names none."""
    match = BLOCK.search(layer)
    if not match:
        return layer
    return match.group(1) or f"block {match.group(2)}"


def _units(stats: list[dict], by: str) -> list[dict]:
    """What the analysis keeps float or quantizes at a time: every quantized op (by layer), or the ops of one
    block together (by block)."""
    units = {}
    for s in stats:
        if s["op"] in TRIVIAL_OPS:
            continue
        key = s["layer"] if by == "layer" else block_name(s["layer"])
        unit = units.setdefault(key, {"layer": key, "op": s["op"] if by == "layer" else "block", "tensors": [],
                                      "layers": [], "rmse_steps": 0.0})
        unit["tensors"].append(s["tensor"])
        unit["layers"].append(s["layer"])
        unit["rmse_steps"] = max(unit["rmse_steps"], s["rmse_steps"])
    return list(units.values())


def analyze(run_path, calibration: str, *, root: str | None = None, val_limit: int | None = 500, top: int = 12,
            calibration_limit: int | None = 200, seed: int = 0, by: str = "layer", bench: _Bench | None = None,
            corrections: PtqCorrections = PtqCorrections()) -> dict:
    """Per-layer (or per-block) int8 sensitivity of a run's model (see the module docstring)."""
    if by not in ("layer", "block"):
        raise EdgefaceError(f"--by {by}: layer or block")
    b = bench or _Bench(run_path, calibration, root, val_limit, calibration_limit, seed, corrections)
    from edgeface.stats import paired_deltas

    stats = b.quantizer.layer_statistics()
    int8_outcome = b.outcome()
    int8_m = _means(int8_outcome)
    paired = paired_deltas(b.float_outcome, int8_outcome, seed=seed)  # int8 against float, same images
    units = _units(stats, by)
    every = [t for u in units for t in u["tensors"]]
    candidates = sorted(units, key=lambda u: -u["rmse_steps"])[:top]
    # "only it int8" is measured against every layer float but the ops that cannot be (input quantization,
    # pooling, softmax/logistic outputs), so the damage is the unit's own
    plumbing = b.score(every)
    rows = []
    for index, u in enumerate(candidates, start=1):
        log.info(f"[{index}/{len(candidates)}] {u['layer']} ({u['op']}): only it float, then only it int8")
        alone_float = b.score(u["tensors"])
        alone_int8 = b.score([t for t in every if t not in u["tensors"]])
        rows.append({**u, "only_float": alone_float, "recovered": _gap(int8_m, alone_float),
                     "only_int8": alone_int8, "effect": _gap(plumbing, alone_int8)})
    rows.sort(key=lambda r: -_score(r["recovered"]))
    return {"run": str(b.run.path), "calibration": b.manifest.describe(), "val_images": b.n, "by": by,
            "corrections": b.corrections.flags(),
            "float": b.float, "int8": int8_m, "int8_vs_float": paired, "int8_plumbing_only": plumbing,
            "int8_loss": _gap(int8_m, b.float), "layers": rows, "numeric": stats,
            "verdict": verdict(b.float, int8_m, rows, paired, b.n),
            "edgeface_version": __version__, "date": datetime.date.today().isoformat()}


def _score(gap: dict) -> float:
    """One number for ranking: gender points plus age years x 10 (0.1 year weighs like 1 point, the tolerances)."""
    return gap.get("gender_points", 0.0) + 10 * gap.get("age_years", 0.0)


def verdict(float_m: dict, int8_m: dict, rows: list[dict], paired: dict | None = None, n: int | None = None) -> str:
    loss = _score(_gap(int8_m, float_m))
    if n is not None and n < MIN_RESOLVING and (loss <= 0 or not any(e.get("real") for e in (paired or {}).values())):
        hint = _culprits(rows, loss) if loss > 0 else ""
        return (f"only {n} validation images: one image moves gender accuracy by {100 / max(n, 1):.2f} points, more "
                f"than the {100 * TOLERANCE['gender_accuracy']:.1f}-point tolerance, so they cannot tell whether int8 "
                "holds (measure on more: --val-limit 0, or a larger validation split)"
                + (f"; on these images {hint}" if hint else ""))
    if loss <= 0:
        return "int8 loses nothing measurable on these images against float: no layer needs to stay float"
    if paired and not any(entry.get("real") for entry in paired.values()):
        from edgeface.stats import interval_entry_text

        parts = [f"Δ gender {interval_entry_text(paired['gender_accuracy'], 100, unit=' pt')}"
                 if "gender_accuracy" in paired else "",
                 f"Δ MAE {interval_entry_text(paired['age_mae'], digits=3, unit=' y')}" if "age_mae" in paired else ""]
        return (f"int8's difference from float is within noise on these images ({', '.join(p for p in parts if p)}; "
                "paired 95% intervals): no layer needs to stay float")
    return _culprits(rows, loss) or (f"int8 loses {loss:.2f} score points, spread over many layers: none recovers "
                                     "any of it alone (try per-layer corrections or QAT)")


def _culprits(rows: list[dict], loss: float) -> str:
    """The fewest layers (up to 3) that recover 80% of int8's loss alone, as advice; "" when none recovers any."""
    helpful = [r for r in rows if _score(r["recovered"]) > 0]
    if not helpful:
        return ""
    best, total, names, layers = helpful[0], 0.0, [], []
    for r in helpful:
        names.append(r["layer"])
        layers += r["layers"]
        total += _score(r["recovered"])
        if total >= 0.8 * loss or len(names) == 3:
            break
    share = min(1.0, total / loss)
    return (f"{', '.join(names)} explain{'s' if len(names) == 1 else ''} {100 * share:.0f}% of int8's loss "
            f"(each alone float; {best['layer']} recovers the most); try --keep-float "
            f"{','.join(dict.fromkeys(layers))}")


def format_analysis(report: dict) -> str:
    f, q = report["float"], report["int8"]

    def metrics(m):
        parts = []
        if "gender_accuracy" in m:
            parts.append(f"gender {100 * m['gender_accuracy']:.2f}%")
        if "age_mae" in m:
            parts.append(f"MAE {m['age_mae']:.3f}")
        return ", ".join(parts)

    op_width = max([len("op")] + [len(r["op"]) for r in report["layers"]])  # op names whole (DEPTHWISE_CONV_2D)
    lines = [f"{report['run']}: int8 sensitivity on {report['val_images']} val images",
             f"  float {metrics(f)}   int8 {metrics(q)}   only the unavoidable int8 ops (input, pooling, "
             f"softmax/logistic outputs) {metrics(report['int8_plumbing_only'])}",
             "  each change is signed + for better (accuracy up, MAE down), - for worse",
             f"  {'layer':34} {'op':{op_width}} {'err/step':>8}  {'only it float: vs int8':>24}  "
             f"{'only it int8: vs float':>24}"]
    for r in report["layers"]:
        rec, eff = r["recovered"], r["effect"]
        lines.append(f"  {r['layer'][:34]:34} {r['op']:{op_width}} {r['rmse_steps']:8.3f}  "
                     f"{rec.get('gender_points', 0):+8.2f} pt {rec.get('age_years', 0):+8.3f} y  "
                     f"{eff.get('gender_points', 0):+8.2f} pt {eff.get('age_years', 0):+8.3f} y")
    lines.append(f"  verdict: {report['verdict']}")
    return "\n".join(lines)


def write_analysis(report: dict, folder) -> Path:
    """analysis.json, layers.csv (the ranked table) and sensitivity.png under `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "analysis.json", report)
    columns = ["layer", "op", "rmse_steps", "recovered_gender_points", "recovered_age_years",
               "only_int8_gender_points", "only_int8_age_years", "tensor"]  # + better, as in the table
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    for r in report["layers"]:
        writer.writerow({"layer": r["layer"], "op": r["op"], "rmse_steps": r["rmse_steps"],
                         "tensor": ";".join(r["tensors"]),
                         "recovered_gender_points": r["recovered"].get("gender_points"),
                         "recovered_age_years": r["recovered"].get("age_years"),
                         "only_int8_gender_points": r["effect"].get("gender_points"),
                         "only_int8_age_years": r["effect"].get("age_years")})
    write_text(folder / "layers.csv", out.getvalue())
    _plot(report, folder / "sensitivity.png")
    return folder


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import textwrap

    import numpy as np

    rows = report["layers"]
    names = [f"{r['layer']} ({r['op']})" for r in rows]
    y = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.4 * len(rows) + 2.6), sharey=True)
    for ax, key, title in ((axes[0], "gender_points", "gender accuracy, points (+ better)"),
                           (axes[1], "age_years", "age MAE, years (+ lower MAE)")):
        # side by side, not on top of each other: both bars of a layer stay readable
        ax.barh(y - 0.2, [r["recovered"].get(key, 0) for r in rows], height=0.4, color="tab:blue",
                label="only it float, against full int8")
        ax.barh(y + 0.2, [r["effect"].get(key, 0) for r in rows], height=0.4, color="tab:red",
                label="only it int8, against all float (- is its cost)")
        ax.set_title(title, fontsize=9)
        ax.axvline(0, color="k", lw=0.5)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)  # below the bars
    fig.suptitle("\n".join(textwrap.wrap(report["verdict"], 150)), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(path) as tmp:  # atomic, and 0644 like every other file edgeface writes
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def holds(float_m: dict, m: dict, tolerance: dict | None = None) -> bool:
    """int8 within the tolerance of float: accuracy at most `gender_accuracy` lower, MAE at most `age_mae` higher."""
    tolerance = tolerance or TOLERANCE
    return all((float_m[k] - m[k] if k == "gender_accuracy" else m[k] - float_m[k]) <= tol
               for k, tol in tolerance.items() if k in float_m)


def auto_keep_float(run_path, calibration: str, *, root=None, val_limit: int | None = None, max_layers: int = 8,
                    tolerance: dict | None = None, seed: int = 0,
                    corrections: PtqCorrections = PtqCorrections()) -> tuple[list[str], dict]:
    """Accuracy-controlled mixed precision: layers added greedily, most recovering first (from `analyze`), until
    int8 holds within `tolerance` of float on the validation images (the whole split by default: 500 images cannot
    resolve a 0.3-point tolerance, BENCHMARKS.md section 11); returns (Keras layer names, the search)."""
    bench = _Bench(run_path, calibration, root, val_limit, seed=seed, corrections=corrections)
    report = analyze(run_path, calibration, top=max(12, max_layers), bench=bench)
    if holds(bench.float, report["int8"], tolerance):
        return [], {"analysis": report, "chosen": [], "holds": True}
    chosen, steps = [], []
    for r in [r for r in report["layers"] if _score(r["recovered"]) > 0][:max_layers]:
        chosen += r["tensors"]
        m = bench.score(chosen)
        steps.append({"float_layers": [layer_name(t) for t in chosen], **m})
        log.info(f"keep float {', '.join(steps[-1]['float_layers'])}: {m}")
        if holds(bench.float, m, tolerance):
            layers = list(dict.fromkeys(steps[-1]["float_layers"]))
            return layers, {"analysis": report, "chosen": layers, "steps": steps, "holds": True}
    raise EdgefaceError(f"no mixed-precision file within the tolerance ({tolerance or TOLERANCE}) with up to "
                        f"{max_layers} float layers; closest: {steps[-1] if steps else 'no layer helped alone'}")


def keep_float_options(run_path, value: str, calibration: str, root=None,
                       corrections: PtqCorrections = PtqCorrections()) -> tuple[tuple, str]:
    """--keep-float LAYERS|auto -> (Keras layer names, the reason the card records)."""
    if value != "auto":
        return tuple(v.strip() for v in value.split(",") if v.strip()), "requested (--keep-float)"
    layers, search = auto_keep_float(run_path, calibration, root=root, corrections=corrections)
    if not layers:
        return (), ""
    last = search["steps"][-1]
    return tuple(layers), (f"auto: the fewest layers (greedy, by int8 loss each recovers) that bring int8 within "
                           f"{100 * TOLERANCE['gender_accuracy']:.1f} points / {TOLERANCE['age_mae']} years of float on "
                           f"{search['analysis']['val_images']} val images: "
                           + ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "float_layers"))

"""The BENCHMARKS.md compression table from what tools/compress_reference.sh wrote.

Usage: python tools/compress_table.py benchmarks/compress-PARENT PARENT_NAME
Rows: the float parent, then every compressed run with a test report (PARENT-*-utkface-test.json) and its
compression.json; QAT runs are scored on their int8 TFLite export when there is one.
"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import json
import sys
from pathlib import Path


def load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def describe(comp: dict) -> str:
    """magnitude 50%, structured 30% of filters, qat (sparsity kept), with the fine-tuning epochs."""
    label = comp["method"]
    if comp.get("target_sparsity") is not None:
        label += f" {comp['target_sparsity']:.0%} sparsity"
    if comp.get("ratio") is not None:
        label += f" {comp['ratio']:.0%} of filters"
    if comp.get("preserve_sparsity"):
        label += " (sparsity kept)"
    tune = comp.get("fine_tune")
    return label + (f", {tune['epochs']} ep" if tune else "")


def main(folder, parent):
    folder = Path(folder)
    base = load(folder / f"{parent}-utkface-test.json")
    acc0, mae0 = base["gender"]["accuracy"], base["age"]["mae"]
    print("| model | method | scored as | test gender acc | Δ vs float | test age MAE | Δ MAE | parameters "
          "(non-zero) | MACs | gzip weights KB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    first = load(next(folder.glob("*-compression.json")))["parent_model"]
    print(f"| {parent} | float parent | Keras | {100 * acc0:.2f}% | — | {mae0:.2f} | — | {first['parameters']:,} | "
          f"{first['macs'] / 1e6:.1f}M | {first['gzip_weights_kb']:.0f} |")
    for report in sorted(folder.glob(f"{parent}-*-compression.json")):
        name = report.name.removesuffix("-compression.json")
        comp = load(report)
        for suffix, scored in (("-tflite-int8", "int8 TFLite"), ("", "Keras")):
            test = load(folder / f"{name}{suffix}-utkface-test.json")
            if test is None:
                continue
            acc, mae, m = test["gender"]["accuracy"], test["age"]["mae"], comp["model"]
            method = describe(comp)
            print(f"| {name} | {method} | {scored} | {100 * acc:.2f}% | {100 * (acc - acc0):+.2f} | {mae:.2f} | "
                  f"{mae - mae0:+.2f} | {m['parameters']:,} ({m['nonzero_parameters']:,}) | {m['macs'] / 1e6:.1f}M | "
                  f"{m['gzip_weights_kb']:.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])

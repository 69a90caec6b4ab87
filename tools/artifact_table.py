"""Markdown table of exported artifacts: size, parity, test-split accuracy, next to the Keras float model.

Usage: python tools/artifact_table.py RUN_FOLDER BENCHMARK_FOLDER
(BENCHMARK_FOLDER holds keras-utkface-test.json, NAME.card.json and NAME-utkface-test.json, all written by
tools/export_reference.sh)
"""

from edgeface.native_stderr import quiet_unless_verbose  # noqa: E402  before TensorFlow is imported
quiet_unless_verbose()

import json
import sys
from pathlib import Path

from edgeface.run import Run


def main(run: Path, folder: Path) -> None:
    keras = json.loads((folder / "keras-utkface-test.json").read_text())
    keras_size = Run.open(run, finished=True).model_path().stat().st_size
    rows = [("Keras (.keras)", "fp32", keras_size, keras, None)]
    for card_file in sorted(folder.glob("*.card.json")):
        card = json.loads(card_file.read_text())
        report = json.loads((folder / card_file.name.replace(".card.json", "-utkface-test.json")).read_text())
        art = card["artifact"]
        rows.append((art["format"], art["precision"], art["size_bytes"], report, card["metrics"]["parity_vs_keras"]))
    fp32_tflite = next(r[2] for r in rows if r[:2] == ("tflite", "fp32"))
    print("| format | precision | size (KB) | vs TFLite fp32 | gender acc (test) | Δ vs Keras | age MAE (test) "
          "| parity vs Keras |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for fmt, precision, size, report, parity in rows:
        acc, mae = 100 * report["gender"]["accuracy"], report["age"]["mae"]
        delta = acc - 100 * keras["gender"]["accuracy"]
        checks = "—" if parity is None else ("pass: " if parity["passed"] else "FAIL: ") + ", ".join(
            f"{c['name']} {c['value']:.3g}" for c in parity["checks"])
        print(f"| {fmt} | {precision} | {size / 1000:.0f} | {fp32_tflite / size:.2f}x | {acc:.2f}% | {delta:+.2f} "
              f"| {mae:.2f} | {checks} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

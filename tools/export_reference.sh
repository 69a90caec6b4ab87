#!/usr/bin/env bash
# Exports a reference run to every CPU format and precision with the shipped UTKFace calibration manifest,
# then scores every artifact (and the Keras model) once on the UTKFace test split.
# Usage: tools/export_reference.sh [RUN_NAME]    (default mnv2-128; the run lives in runs/RUN_NAME)
set -euo pipefail
NAME=${1:-mnv2-128}
DATA=${DATA:-utkface:../shared/data/utkface}
. "$(dirname "$0")/score_test.sh"
OUT=export/$NAME
# a parity failure exits non-zero but keeps the artifacts: score them anyway, the table shows which failed
edgeface export "runs/$NAME" --format all --precision all --calibration utkface-train-300 --output "$OUT" \
  || echo "export: some artifacts failed their parity check (kept; see the table)"
mkdir -p "benchmarks/export-$NAME"
score_test "runs/$NAME" "benchmarks/export-$NAME/keras-utkface-test.json"
for artifact in "$OUT"/*.tflite "$OUT"/*.onnx "$OUT"/*-saved_model-fp32; do
  base=$(basename "$artifact"); base=${base%.*}
  score_test "$artifact" "benchmarks/export-$NAME/$base-utkface-test.json"
  cp "$OUT/$base.json" "benchmarks/export-$NAME/$base.card.json"
done
python tools/artifact_table.py "runs/$NAME" "benchmarks/export-$NAME"

#!/usr/bin/env bash
# Exports a reference run to every CPU format and precision with the shipped UTKFace calibration manifest,
# then scores every artifact (and the Keras model) once on the UTKFace test split.
# Usage: tools/export_reference.sh [RUN_NAME]    (default mnv2-128; the run lives in runs/RUN_NAME)
set -euo pipefail
NAME=${1:-mnv2-128}
DATA=${DATA:-utkface:../shared/data/utkface}
OUT=export/$NAME
edgeface export "runs/$NAME" --format all --precision all --calibration utkface-train-300 --output "$OUT"
mkdir -p "benchmarks/export-$NAME"
for artifact in "$OUT"/*.tflite "$OUT"/*.onnx "$OUT"/*-saved_model-fp32; do
  base=$(basename "$artifact"); base=${base%.*}
  edgeface eval "$artifact" --data "$DATA" --split test --output "benchmarks/export-$NAME/$base-utkface-test.json" \
    | head -2
  cp "$OUT/$base.json" "benchmarks/export-$NAME/$base.card.json"
done
python tools/artifact_table.py "runs/$NAME" "benchmarks/export-$NAME"

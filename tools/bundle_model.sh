#!/usr/bin/env bash
# Rebuilds the bundled model (edgeface/bundled/): the int8 TFLite export of a QAT run and the fp32 ONNX export of
# that run's float parent (its twin for desktop/server runtimes), both in the app form (--io app: raw pixels in,
# float outputs by name, batch 1) with model card, test vectors and SHA256SUMS, then scores both once on the
# UTKFace test split (JSON in benchmarks/bundled/).
# Usage: tools/bundle_model.sh QAT_RUN_FOLDER
set -euo pipefail
RUN=${1:?usage: tools/bundle_model.sh QAT_RUN_FOLDER}
DATA=${DATA:-utkface:../shared/data/utkface}
. "$(dirname "$0")/score_test.sh"
PARENT=$(python -c "import sys; from edgeface.run import Run; print(Run.open(sys.argv[1]).lineage[0])" "$RUN")
OUT=edgeface/bundled
rm -f "$OUT"/*.tflite "$OUT"/*.onnx "$OUT"/*.json "$OUT"/SHA256SUMS
edgeface export "$RUN" --format tflite --precision int8 --io app --output "$OUT"
edgeface export "$PARENT" --format onnx --precision fp32 --io app --output "$OUT"
mkdir -p benchmarks/bundled
for artifact in "$OUT"/*.tflite "$OUT"/*.onnx; do
  base=$(basename "$artifact"); base=${base%.*}
  score_test "$artifact" "benchmarks/bundled/$base-utkface-test.json"
  cp "$OUT/$base.json" "benchmarks/bundled/$base.card.json"
done

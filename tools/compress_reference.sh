#!/usr/bin/env bash
# Issue-3 compression runs of a reference run: magnitude pruning 50/75%, structured pruning 30/50% of filters,
# QAT of the float model and prune + QAT (QAT of the 50%-sparse run, sparsity preserved); each scored once on the
# UTKFace test split with `edgeface eval` (JSON in benchmarks/compress-PARENT/). Finished runs are skipped.
# Usage: tools/compress_reference.sh [PARENT_RUN_NAME]    (default mnv2-128-v1; runs live in runs/)
set -euo pipefail
PARENT=${1:-mnv2-128-v1}
DATA=${DATA:-utkface:../shared/data/utkface}
. "$(dirname "$0")/score_test.sh"
OUT=benchmarks/compress-$PARENT
mkdir -p "$OUT"
step() {  # step NAME COMMAND...: run the command unless runs/NAME is finished, then score runs/NAME on test
  local name=$1; shift
  [ -f "runs/$name/metrics.json" ] && echo "skip $name (done)" || "$@" --name "$name"
  score_test "runs/$name" "$OUT/$name-utkface-test.json"
  cp "runs/$name/compression.json" "$OUT/$name-compression.json"
}
step "$PARENT-prune50" edgeface prune "runs/$PARENT" --method magnitude --sparsity 0.5
step "$PARENT-prune75" edgeface prune "runs/$PARENT" --method magnitude --sparsity 0.75
step "$PARENT-struct30" edgeface prune "runs/$PARENT" --method structured --ratio 0.3
step "$PARENT-struct50" edgeface prune "runs/$PARENT" --method structured --ratio 0.5
step "$PARENT-qat" edgeface qat "runs/$PARENT"
step "$PARENT-prune50-qat" edgeface qat "runs/$PARENT-prune50"
for name in "$PARENT-qat" "$PARENT-prune50-qat"; do  # what ships from a QAT run is its int8 TFLite
  edgeface export "runs/$name" --format tflite --precision int8 --output "export/$name"
  score_test "export/$name/$name-tflite-int8.tflite" "$OUT/$name-tflite-int8-utkface-test.json"
done
score_test "runs/$PARENT" "$OUT/$PARENT-utkface-test.json"

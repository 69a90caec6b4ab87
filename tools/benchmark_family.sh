#!/usr/bin/env bash
# Issue-5 table: the reference UTKFace model family (float, magnitude-pruned 50%,
# structured-pruned 30/50%, QAT of the float, pruned and structured-pruned runs, the small MobileNet v1 0.5 run)
# in TFLite and ONNX at fp32 and int8 (QAT runs: int8 TFLite), plus the peers, all scored on the UTKFace test
# split and timed single-threaded in one run. Output: benchmarks/family/.
set -euo pipefail
DATA=${DATA:-utkface:../shared/data/utkface}
P=runs/mnv2-128-v1
edgeface benchmark $P $P-prune50 $P-struct30 $P-struct50 $P-qat $P-prune50-qat $P-struct50-qat \
  runs/mnv1-050-128 runs/mnv1-050-128-qat \
  --data "$DATA" --split test --formats tflite --formats onnx --precisions fp32 --precisions int8 \
  --calibration utkface-train-300 --peers --threads 1 --batch 1 --output benchmarks/family "$@"

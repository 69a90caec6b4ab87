#!/usr/bin/env bash
# Small reference models for the ≤ 1 MB / ≤ 1 ms int8 target: MobileNet v1 at width 0.5 and 0.25, 128 px,
# ImageNet weights, default recipe; then one epoch of QAT each, exported as int8 TFLite. Each run and its int8
# artifact are scored once on the UTKFace test split (JSON in benchmarks/small/). Finished runs are skipped.
# mnv1-050-128-kd is the 0.5 student distilled from the recipe-v3 MobileNetV2 teacher (TEACHER), with a
# regression age head so its int8 file stays under 1 MB.
# Usage: tools/small_reference.sh [RUN ...]    runs: mnv1-050-128 mnv1-025-128 mnv1-050-128-kd
#                                              (default: the first two)
set -euo pipefail
DATA=${DATA:-utkface:../shared/data/utkface}
WEIGHTS_DIR=${WEIGHTS_DIR:-../shared/weights/imagenet}
TEACHER=${TEACHER:-runs/mnv2-128-v3}
OUT=benchmarks/small
mkdir -p "$OUT"
score() { edgeface eval "$1" --data "$DATA" --split test --output "$OUT/$2-utkface-test.json" | sed -n 2p; }
for name in ${@:-mnv1-050-128 mnv1-025-128}; do
  train=(edgeface train --data "$DATA")
  case $name in
    mnv1-050-128) args=(--backbone mobilenet_v1 --alpha 0.5 --input-size 128) ;;
    mnv1-025-128) args=(--backbone mobilenet_v1 --alpha 0.25 --input-size 128) ;;
    mnv1-050-128-kd) train=(edgeface distill "$TEACHER" --weights imagenet)
                     args=(--backbone mobilenet_v1 --alpha 0.5 --input-size 128 --age-head regression) ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
  [ -f "runs/$name/metrics.json" ] || "${train[@]}" --weights-dir "$WEIGHTS_DIR" --name "$name" "${args[@]}"
  score "runs/$name" "$name"
  [ -f "runs/$name-qat/metrics.json" ] || edgeface qat "runs/$name" --name "$name-qat"
  edgeface export "runs/$name-qat" --format tflite --precision int8 --output "export/$name-qat"
  score "export/$name-qat/$name-qat-tflite-int8.tflite" "$name-qat-tflite-int8"
done

#!/usr/bin/env bash
# The small-model zoo for the <= 1 MB / <= 1 ms int8 target, each trained with the default recipe at its listed
# input size on the canonical UTKFace split, then one epoch of QAT, exported as int8 TFLite (MobileNetV3, which
# tfmot cannot make quantization-aware, gets post-training int8 with the utkface-train-300 calibration set,
# scored even when its parity check fails). Each run and its int8 artifact are scored once on the UTKFace test
# split (JSON in benchmarks/small/). Finished runs are skipped.
# MobileNet v1 starts from the offline ImageNet weights (WEIGHTS_DIR); the networks that have no offline
# weights here (MobileNetV2 0.5, MobileNetV3-Small, EfficientNet-B0, Levi-Hassner, the compact CNN) train from
# scratch. mnv1-050-128-kd is the 0.5 student distilled from the recipe-v3 MobileNetV2 teacher (TEACHER), with a
# regression age head so its int8 file stays under 1 MB; mnv1-050-128-kd-e20 is the same for 20 epochs (the
# bundled model's float parent).
# Usage: tools/small_reference.sh [RUN ...]
#   runs: mnv1-050-128 mnv1-025-128 mnv1-050-128-kd mnv1-050-128-kd-e20 mnv2-050-128 mnv3-small-128 effnet-b0-128 levi-hassner-128
#         compact-96   (default: the first two)
set -euo pipefail
DATA=${DATA:-utkface:../shared/data/utkface}
WEIGHTS_DIR=${WEIGHTS_DIR:-../shared/weights/imagenet}
TEACHER=${TEACHER:-runs/mnv2-128-v3}
OUT=benchmarks/small
mkdir -p "$OUT"
. "$(dirname "$0")/score_test.sh"
score() { score_test "$1" "$OUT/$2-utkface-test.json"; }
for name in ${@:-mnv1-050-128 mnv1-025-128}; do
  train=(edgeface train --data "$DATA")
  qat=1
  case $name in
    mnv1-050-128) args=(--backbone mobilenet_v1 --alpha 0.5 --input-size 128) ;;
    mnv1-025-128) args=(--backbone mobilenet_v1 --alpha 0.25 --input-size 128) ;;
    mnv1-050-128-kd|mnv1-050-128-kd-e20) train=(edgeface distill "$TEACHER" --weights imagenet)
      args=(--backbone mobilenet_v1 --alpha 0.5 --input-size 128 --age-head regression)
      if [ "$name" = mnv1-050-128-kd-e20 ]; then args+=(--epochs 20); fi ;;
    mnv2-050-128) args=(--backbone mobilenet_v2 --alpha 0.5 --input-size 128 --weights none) ;;
    mnv3-small-128) args=(--backbone mobilenet_v3_small --input-size 128 --weights none); qat=0 ;;
    effnet-b0-128) args=(--backbone efficientnet_b0 --input-size 128 --weights none) ;;
    levi-hassner-128) args=(--backbone levi_hassner --input-size 128 --weights none) ;;
    compact-96) args=(--backbone compact_cnn --input-size 96 --weights none) ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
  [ -f "runs/$name/metrics.json" ] || "${train[@]}" --weights-dir "$WEIGHTS_DIR" --name "$name" "${args[@]}"
  score "runs/$name" "$name"
  if [ $qat = 1 ]; then
    [ -f "runs/$name-qat/metrics.json" ] || edgeface qat "runs/$name" --name "$name-qat"
    edgeface export "runs/$name-qat" --format tflite --precision int8 --output "export/$name-qat"
    score "export/$name-qat/$name-qat-tflite-int8.tflite" "$name-qat-tflite-int8"
  else
    edgeface export "runs/$name" --format tflite --precision int8 --calibration utkface-train-300 \
      --output "export/$name-ptq" || echo "$name: int8 parity check failed; scoring the kept file anyway" >&2
    score "export/$name-ptq/$name-tflite-int8.tflite" "$name-ptq-tflite-int8"
  fi
done

#!/usr/bin/env bash
# Reference MobileNetV2 runs for BENCHMARKS.md: the default recipe on the canonical UTKFace split,
# each scored once on the test split with `edgeface eval` (JSON copied to benchmarks/).
# Usage: tools/train_reference.sh [RUN ...]   runs: mnv2-128 mnv2-96 mnv2-96-scratch (default: all)
set -euo pipefail
DATA=${DATA:-utkface:../shared/data/utkface}
WEIGHTS_DIR=${WEIGHTS_DIR:-../shared/weights/imagenet}
mkdir -p runs benchmarks
run() {
  local name=$1; shift
  if [ -f "runs/$name/metrics.json" ]; then echo "skip $name (done)"; else
    if [ -f "runs/$name/config.json" ]; then
      edgeface train --name "$name" --resume
    else
      edgeface train --data "$DATA" --weights-dir "$WEIGHTS_DIR" --name "$name" "$@"
    fi
  fi
  edgeface eval "runs/$name" --data "$DATA" --split test --output "benchmarks/$name-utkface-test.json"
}
for name in ${@:-mnv2-128 mnv2-96 mnv2-96-scratch}; do
  case $name in
    mnv2-128) run mnv2-128 --backbone mobilenet_v2 --input-size 128 ;;
    mnv2-96) run mnv2-96 --backbone mobilenet_v2 --input-size 96 ;;
    mnv2-96-scratch) run mnv2-96-scratch --backbone mobilenet_v2 --input-size 96 --weights none ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
done

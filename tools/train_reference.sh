#!/usr/bin/env bash
# Reference MobileNetV2 runs for BENCHMARKS.md: the default recipe on the canonical UTKFace split,
# each scored once on the test split with `edgeface eval` (JSON copied to benchmarks/).
# Usage: tools/train_reference.sh [RUN ...]
#   runs: mnv2-128 mnv2-96 mnv2-96-scratch (default: these three), mnv2-128-seed1 (the default recipe, seed 1),
#         mnv2-160, mnv2-192 (the default recipe at a larger input: teacher candidates),
#         mnv2-128-ba (born-again: mnv2-128 distilled into a fresh MobileNetV2 1.0 @128 with the same recipe),
#         mnv2-128-ba2 (the same from the mnv2-128 + mnv2-128-seed1 ensemble); their teachers must be run first
set -euo pipefail
DATA=${DATA:-utkface:../shared/data/utkface}
. "$(dirname "$0")/score_test.sh"
WEIGHTS_DIR=${WEIGHTS_DIR:-../shared/weights/imagenet}
mkdir -p runs benchmarks
run() {  # run NAME COMMAND...: train unless done (a started run, distillations too, resumes), then score on test
  local name=$1; shift
  if [ -f "runs/$name/metrics.json" ]; then echo "skip $name (done)"
  elif [ -f "runs/$name/config.json" ]; then edgeface train --name "$name" --resume
  else "$@" --name "$name"; fi
  score_test "runs/$name" "benchmarks/$name-utkface-test.json"
}
train() { edgeface train --data "$DATA" --weights-dir "$WEIGHTS_DIR" --backbone mobilenet_v2 "$@"; }
born_again() { edgeface distill "$@" --backbone mobilenet_v2 --input-size 128 --weights imagenet; }
for name in ${@:-mnv2-128 mnv2-96 mnv2-96-scratch}; do
  case $name in
    mnv2-128) run mnv2-128 train --input-size 128 ;;
    mnv2-128-seed1) run mnv2-128-seed1 train --input-size 128 --seed 1 ;;
    mnv2-96) run mnv2-96 train --input-size 96 ;;
    mnv2-160) run mnv2-160 train --input-size 160 ;;  # teacher candidates (issue 20): UTKFace chips are 200 px
    mnv2-192) run mnv2-192 train --input-size 192 ;;
    mnv2-96-scratch) run mnv2-96-scratch train --input-size 96 --weights none ;;
    mnv2-128-ba) run mnv2-128-ba born_again runs/mnv2-128 ;;
    mnv2-128-ba2) run mnv2-128-ba2 born_again runs/mnv2-128 runs/mnv2-128-seed1 ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
done

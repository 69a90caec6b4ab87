#!/usr/bin/env bash
# docs/first-day.md's session, re-run: a new user's first commands (smoke train, calibrate, export, benchmark,
# predict) in a fresh folder WORK beside ../shared, each printed as "$ command" then its stdout and stderr.
# Usage: tools/first_day.sh WORK > transcript.txt   (in a checkout set up as the README says; FACE = a face chip)
set -uo pipefail
WORK=${1:?usage: tools/first_day.sh WORK}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FACE=${FACE:-$ROOT/../shared/data/utkface/UTKFace/$(head -1 "$ROOT/../shared/data/utkface/splits/test.txt")}
mkdir -p "$WORK" && cd "$WORK" || exit 1
[ -d ../shared/data/utkface ] || { echo "WORK must sit beside shared/ (as the project checkout does)" >&2; exit 2; }
cp "$FACE" face.jpg
run() { echo "\$ $*"; "$@" 2>&1; }
run edgeface train
run edgeface calibrate --data utkface:../shared/data/utkface --name utkface-train-100 --size 100
run edgeface export runs/compact_cnn-64 --format tflite --format onnx --precision fp32 --precision int8 \
    --calibration utkface-train-100
run edgeface benchmark runs/compact_cnn-64 --formats tflite --formats onnx --precisions fp32 --precisions int8 \
    --calibration utkface-train-100 --runs 50 --output runs/benchmark
run edgeface predict face.jpg --model export/compact_cnn-64/compact_cnn-64-tflite-int8.tflite
run edgeface predict face.jpg
run edgeface info export/compact_cnn-64/compact_cnn-64-tflite-int8.tflite

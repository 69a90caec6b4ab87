#!/usr/bin/env bash
# Post-training int8 of a float run with each correction alone and combined (BENCHMARKS.md section 13): one
# full-integer TFLite file per setting (wall time of each export in export/RUN-ptq*/wall.txt), then every file
# paired against the run's float model on the validation split, and on the test split once.
# Usage: [ORDER="ptq ptq-adaround ..."] tools/ptq_reference.sh [RUN_NAME] [SPLITS]
#        (default: every setting below, mnv2-128, "val test"; the run lives in runs/RUN_NAME)
set -euo pipefail
NAME=${1:-mnv2-128}
SPLITS=${2:-val test}
OUT=benchmarks/int8-ptq-$NAME
mkdir -p "$OUT"
declare -A SETTINGS=([ptq]="" [ptq-cle]="--equalize" [ptq-adaround]="--adaround" [ptq-bias]="--bias-correction"
                     [ptq-cle-adaround]="--equalize --adaround" [ptq-adaround-bias]="--adaround --bias-correction")
ORDER=${ORDER:-ptq ptq-cle ptq-bias ptq-adaround ptq-cle-adaround ptq-adaround-bias}
files=()
for setting in $ORDER; do
  folder=export/$NAME-$setting
  if [ ! -f "$folder/wall.txt" ]; then
    start=$(date +%s)
    # a parity failure exits non-zero but keeps the file: it is compared anyway, its card says it failed
    edgeface export "runs/$NAME" --format tflite --precision int8 --calibration utkface-train-300 \
      ${SETTINGS[$setting]} --output "$folder" || echo "$setting: parity check failed (kept)"
    echo "$(( $(date +%s) - start ))" > "$folder/wall.txt"
  fi
  echo "$setting: $(cat "$folder/wall.txt") s"
  cp "$folder/$NAME-tflite-int8.json" "$OUT/$setting.card.json"
  files+=("$folder/$NAME-tflite-int8.tflite")
done
for split in $SPLITS; do
  edgeface compare "runs/$NAME" "${files[@]}" --split "$split" --output "$OUT/compare-$split.json"
done

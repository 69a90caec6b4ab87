# Sourced by the reference scripts: `score_test MODEL REPORT.json` scores MODEL on the UTKFace test split ($DATA)
# and prints its summary line. The test split is scored once: a report that exists (committed) is kept, never
# re-scored over, unless FORCE=1.
score_test() {
  local model=$1 out=$2
  if [ -e "$out" ] && [ -z "${FORCE:-}" ]; then
    echo "$out: already scored on test, kept (FORCE=1 re-scores)" >&2
    return 0
  fi
  edgeface eval "$model" --data "$DATA" --split test --output "$out" | sed -n 2p
}

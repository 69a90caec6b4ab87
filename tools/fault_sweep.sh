#!/usr/bin/env bash
# The fault sweep: reproduces every fault class of the fault-sweep issues (tests/test_faults.py and, for "no model
# file can name code to call", tests/test_safety.py; small fixtures made on the fly) and prints one line per fault
# class: its number, passed/failed/skipped, what it checks. --variants prints every variant (test) too. Exits 1 if
# any fault is back. Usage: tools/fault_sweep.sh [--variants]   (in a checkout set up as the README says)
set -uo pipefail
cd "$(dirname "$0")/.."
VARIANTS=${1:-}
python -m pytest tests/test_faults.py tests/test_safety.py -v -p no:cacheprovider 2>/dev/null \
  | awk -v variants="$VARIANTS" '
    / (PASSED|FAILED|SKIPPED|ERROR)/ && /^tests\/test_(faults|safety)\.py::/ {
      status = tolower($2)
      if (status == "failed" || status == "error") bad = 1
      if ($1 ~ /test_safety/) {
        safety++; if (status == "failed" || status == "error") safety_bad++
        if (variants == "--variants") { v = $1; sub(/.*::test_/, "", v); gsub(/_/, " ", v); printf "  code   %-7s %s\n", status, v }
        next
      }
      name = $1; sub(/.*::test_fault_/, "", name)
      number = name; sub(/_.*/, "", number); what = name; sub(/^[0-9a-z]+_/, "", what); gsub(/_/, " ", what)
      count++
      printf "fault %-4s %-7s %s\n", number, status, what
    }
    END {
      printf "fault code %-7s no model file of any format can name a function to call (%d variants)\n",
             (safety_bad ? "failed" : "passed"), safety
      if (count < 12 || safety < 10) { print "expected at least 12 fault classes and 10 code variants, saw " count " and " safety; bad = 1 }
      exit bad
    }'

#!/usr/bin/env bash
# The fault sweep: reproduces every fault class of the fault-sweep issues (tests/test_faults.py, one test per
# variant named test_fault_NN[x]_..., and, for "no model file can name code to call", tests/test_safety.py; small
# fixtures made on the fly) and prints one line per fault class: its number, passed/failed/skipped (failed if any
# variant failed), how many variants, what its first variant checks. --variants prints every variant too. Exits 1 if
# any fault is back. Usage: tools/fault_sweep.sh [--variants]   (in a checkout set up as the README says)
set -uo pipefail
cd "$(dirname "$0")/.."
VARIANTS=${1:-}
python -m pytest tests/test_faults.py tests/test_safety.py -v -p no:cacheprovider 2>/dev/null \
  | awk -v variants="$VARIANTS" '
    function worst(a, b) { return (a == "failed" || b == "failed") ? "failed" : (a == "passed" || b == "passed") ? "passed" : b }
    / (PASSED|FAILED|SKIPPED|ERROR)/ && /^tests\/test_(faults|safety)\.py::/ {
      status = tolower($2); if (status == "error") status = "failed"
      if (status == "failed") bad = 1
      v = $1; sub(/.*::test_/, "", v)
      if ($1 ~ /test_safety/) { cls = "code"; what = v; gsub(/_/, " ", what) }
      else { sub(/^fault_/, "", v); cls = v; sub(/[a-z]?_.*/, "", cls); what = v; sub(/^[0-9]+[a-z]?_/, "", what); gsub(/_/, " ", what) }
      if (!(cls in state)) { order[++n] = cls; state[cls] = status; first[cls] = what } else state[cls] = worst(state[cls], status)
      count[cls]++
      lines[cls] = lines[cls] sprintf("    %-7s %s\n", status, what)
    }
    END {
      classes = 0
      for (i = 1; i <= n; i++) {
        c = order[i]
        if (c == "code") label = "no model file of any format can name a function to call"; else { label = first[c]; classes++ }
        printf "fault %-4s %-7s %2d variant%s  %s\n", c, state[c], count[c], count[c] == 1 ? " " : "s", label
        if (variants == "--variants") printf "%s", lines[c]
      }
      if (classes < 12 || count["code"] < 10) { print "expected at least 12 fault classes and 10 code variants, saw " classes " and " count["code"]; bad = 1 }
      exit bad
    }'

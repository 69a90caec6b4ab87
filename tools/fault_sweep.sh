#!/usr/bin/env bash
# The fault sweep: reproduces every fault class of the fault-sweep issue (tests/test_faults.py, small fixtures
# made on the fly) and prints one line per fault: its number, passed/failed/skipped, what it checks. Exits 1 if
# any fault is back. Usage: tools/fault_sweep.sh   (in a checkout set up as the README says)
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pytest tests/test_faults.py -v -p no:cacheprovider 2>/dev/null \
  | awk '/^tests\/test_faults.py::test_fault_[0-9]+_[a-z0-9_]+ (PASSED|FAILED|SKIPPED|ERROR)/ {
      name = $1; sub(/.*::test_fault_/, "", name)
      number = substr(name, 1, 2); what = substr(name, 4); gsub(/_/, " ", what)
      status = tolower($2); count++
      printf "fault %s  %-7s %s\n", number, status, what
      if (status == "failed" || status == "error") bad = 1
    } END { if (count != 11) { print "expected 11 faults, saw " count; bad = 1 }; exit bad }'

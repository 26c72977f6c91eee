#!/bin/bash
# User-space instructions per request, by callgrind: repeatable whatever else the
# machine is doing (wall-clock timings here vary by ±30 %), so use it for A/B of a change.
#
#   bench/callgrind.sh URLS.txt [afetch options...]
#
# Runs afetch over URLS.txt (e.g. 3 000 URLs of a local nginx) and over an empty
# input, both under callgrind, and prints (total - empty) / number of records.
# Needs valgrind; uses .venv-bench (make bench) so uvloop is used as in the bench.
set -euo pipefail
urls=$1; shift
python=${PYTHON:-.venv-bench/bin/python}
export PYTHONHASHSEED=${PYTHONHASHSEED:-0}  # set and dict layouts vary with the seed: ±2 % otherwise
out=$(mktemp -d)
# A stale bytecode cache (sources edited, PYTHONDONTWRITEBYTECODE set) would be compiled in every run.
"$python" -m compileall -q "$(dirname "$0")/../src" > /dev/null
count() {  # instructions of one afetch run
    # --workers 1: callgrind follows one process, and a run under it is CPU-bound
    # long enough for --workers auto to take on worker processes.
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$python" -m afetch \
        --no-progress --no-summary --workers 1 "$@" > "$out/records" 2> "$out/log" || true
    grep -o 'refs: *[0-9,]*' "$out/log" | tr -dc '0-9'
}
total=$(count -i "$urls" "$@")
records=$(wc -l < "$out/records")
empty=$(count -i /dev/null "$@")
echo "records=$records total=$total start-up=$empty per-request=$(( (total - empty) / records ))"
rm -rf "$out"

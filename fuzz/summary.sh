#!/bin/sh
# Summarises a fuzz campaign: `fuzz/summary.sh OUT_ROOT [TEST_LOG]` reads every run's
# console.log (and report.json) under OUT_ROOT (one directory per config and policy
# combination, as `tally test --out-root OUT_ROOT` writes them) and prints one line:
#
#   fuzz: runs=R passed=P failed=F calls=N panics=P hangs=H recount-failures=R leaks=L corrupt=C
#
# calls: the sum of the `calls=` figures the fuzzer domains print (clients and servers);
# panics: kernel panics and user panics; hangs: runs that timed out or ended in a deadlock stop;
# recount-failures: the kernel's full recount failed; leaks: teardown did not return every frame
# or charge; corrupt: a program's check found a corrupt message (CHECK FAILED ... corrupt ...).
# `passed`/`failed` come from TEST_LOG (the output of `tally test`) when given. Exit status 1
# when any run failed or any count but runs/calls is non-zero.
set -eu
root=${1:?usage: fuzz/summary.sh OUT_ROOT [TEST_LOG]}
log=${2:-}
logs=$(find "$root" -name console.log | sort)
runs=0 calls=0 panics=0 hangs=0 recount=0 leaks=0 corrupt=0
for f in $logs; do
    runs=$((runs + 1))
    n=$(grep -a -o '^\[[a-z0-9_-]*\] fuzz[a-z-]*: .*calls=[0-9]*' "$f" \
        | sed 's/.*calls=//' | awk '{ s += $1 } END { print s + 0 }')
    calls=$((calls + n))
    if grep -a -q -e 'kernel panic' -e '^\[[a-z0-9_-]*\] panic:' "$f"; then
        panics=$((panics + 1))
    fi
    dir=$(dirname "$f")
    if grep -a -q 'stopped: deadlock' "$f" \
        || grep -q '"timed_out": *true' "$dir/report.json" 2>/dev/null; then
        hangs=$((hangs + 1))
    fi
    if grep -a -q 'recount failed' "$f"; then recount=$((recount + 1)); fi
    if grep -a -q 'teardown did not return' "$f"; then leaks=$((leaks + 1)); fi
    c=$(grep -a -c 'CHECK FAILED: .*corrupt' "$f" || true)
    corrupt=$((corrupt + c))
done
passed=- failed=-
if [ -n "$log" ] && [ -f "$log" ]; then
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
    if [ -n "$line" ]; then
        passed=${line%% passed*}
        failed=${line#*, }; failed=${failed%% failed*}
    fi
fi
echo "fuzz: runs=$runs passed=$passed failed=$failed calls=$calls panics=$panics hangs=$hangs" \
     "recount-failures=$recount leaks=$leaks corrupt=$corrupt"
bad=$((panics + hangs + recount + leaks + corrupt))
if [ "$bad" -ne 0 ] || { [ "$failed" != - ] && [ "$failed" -ne 0 ]; }; then exit 1; fi

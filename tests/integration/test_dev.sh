#!/bin/bash
# drover dev: starts PostgreSQL, qmgr, sched and noded on its own, runs a
# job, stops cleanly on SIGTERM, and a second start reuses the data.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${DROVER_BIN:-$here/../../build/test/bin}
data=$(mktemp -d /tmp/drover-devtest-XXXXXX)
chmod 0755 "$data"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DROVER_ADDR="http://127.0.0.1:$port"
dev=
fail=0

cleanup() {
    [ -n "$dev" ] && kill -TERM "$dev" 2>/dev/null && wait "$dev"
    rm -rf "$data"
}
trap cleanup EXIT

start_dev() {
    "$bin/drover" dev --data-dir "$data" --addr "127.0.0.1:$port" \
        >>"$data/dev.log" 2>&1 &
    dev=$!
    for _ in $(seq 1 600); do
        [ "$(grep -c 'cluster ready' "$data/dev.log")" -ge "$1" ] && return 0
        kill -0 "$dev" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

stop_dev() {
    kill -TERM "$dev"
    wait "$dev"
    local rc=$?
    dev=
    return $rc
}

result() { # name, status
    if [ "$2" = 0 ]; then echo "ok $1"; else echo "not ok $1"; fail=1; fi
}

start_dev 1
result dev_starts $?
jobid=$(cd "$data" && "$bin/qsub" -N devjob -- /bin/sh -c 'echo dev-ok')
result dev_qsub $?
state=
for _ in $(seq 1 300); do
    state=$("$bin/qstat" -x -f "$jobid" 2>/dev/null | awk '/job_state =/ { print $3 }')
    [ "$state" = F ] && break
    sleep 0.1
done
[ "$state" = F ] && grep -q dev-ok "$data/devjob.o${jobid%%.*}"
result dev_job_finishes $?
stop_dev
result dev_stops_cleanly $?
pgrep -f "$data/pg/data" >/dev/null
[ $? != 0 ]
result dev_postgres_stopped $?
start_dev 2
result dev_restarts $?
"$bin/qstat" -x "$jobid" | grep -q " F "
result dev_reuses_data $?
stop_dev
result dev_stops_again $?
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$data/dev.log"; then
    echo "not ok dev_sanitizers"
    grep -E -A5 'AddressSanitizer|LeakSanitizer|runtime error:' "$data/dev.log" | head -40
    fail=1
fi
[ "$fail" = 0 ] || tail -n 60 "$data/dev.log"
exit $fail

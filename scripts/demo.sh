#!/bin/bash
# make demo: starts the all-in-one cluster (drover dev), submits
# examples/hello.pbs with qsub, shows it go Q -> R -> F with qstat, prints
# its output, and stops the cluster.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
bin="$top/${DROVER_DEMO_BIN:-bin}"
data=${DROVER_DEMO_DIR:-/tmp/drover-demo}
port=${DROVER_DEMO_PORT:-4750}
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
export DROVER_ADDR="http://127.0.0.1:$port"
work="$data/work"
mkdir -p "$work"
chmod 0755 "$data" "$work"
log="$data/dev.log"

echo "==> starting drover dev (data in $data, log in $log)"
"$bin/drover" dev --data-dir "$data" --addr "127.0.0.1:$port" >"$log" 2>&1 &
dev=$!
stop() {
    if kill -0 "$dev" 2>/dev/null; then
        echo "==> stopping drover dev"
        kill -TERM "$dev"
        wait "$dev" || true
    fi
}
trap stop EXIT
for _ in $(seq 1 600); do
    if grep -q "cluster ready" "$log"; then
        break
    fi
    if ! kill -0 "$dev" 2>/dev/null; then
        echo "drover dev exited; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
grep "cluster ready" "$log" | sed 's/^/    /'

cd "$work"
cp "$top/examples/hello.pbs" .
echo "==> qsub hello.pbs"
jobid=$("$bin/qsub" hello.pbs)
echo "$jobid"
seq=${jobid%%.*}
"$bin/qstat" "$jobid" || true
last=""
for _ in $(seq 1 600); do
    state=$("$bin/qstat" -x -f "$jobid" | awk '/job_state =/ { print $3 }')
    if [ "$state" != "$last" ]; then
        echo "==> job $jobid is now in state $state"
        "$bin/qstat" -x "$jobid" | tail -n 1
        last=$state
    fi
    [ "$state" = F ] && break
    sleep 0.2
done
echo "==> qstat -x"
"$bin/qstat" -x
echo "==> qstat -x -f $jobid"
"$bin/qstat" -x -f "$jobid"
echo "==> output file $work/hello.o$seq"
for _ in $(seq 1 50); do [ -s "hello.o$seq" ] && break; sleep 0.1; done
cat "hello.o$seq"

#!/bin/bash
# Starts and stops a throwaway PostgreSQL 15 cluster for tests: fsync off,
# a private socket directory, a free TCP port on 127.0.0.1.
#
#   pg.sh start DIR    initdb DIR/data, start, create database "drover" and
#                      print one line: the conninfo
#                      "host=DIR/sock port=PORT dbname=drover user=postgres"
#   pg.sh stop DIR     stop it at once (pg_ctl stop -m immediate); keeps DIR
#   pg.sh restart DIR  stop it at once and start it again on the same port
#   pg.sh destroy DIR  stop it and remove DIR
#
# As root the server runs as the postgres user (initdb refuses root): DIR is
# created with mode 0755 and handed to postgres. When postgres cannot reach
# DIR (a parent it may not search), the cluster lives in a directory of its
# own under ${TMPDIR:-/tmp}, named in DIR/pg.base, and DIR/sock links to its
# socket directory, so the conninfo stays the same.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

usage() {
    echo "usage: pg.sh start|stop|restart|destroy DIR" >&2
    exit 2
}

[ $# = 2 ] || usage
cmd=$1
dir=$2
case "$dir" in
/*) ;;
*) dir="$(pwd)/$dir" ;;
esac
case "$dir" in
*\'* | *\"* | *' '* | *\\*)
    echo "pg.sh: directory name must not hold quotes, spaces or backslashes: $dir" >&2
    exit 2
    ;;
esac

is_root() {
    [ "$(id -u)" = 0 ]
}

# Runs a command as the user that owns the cluster, from a directory that
# user can read (tools complain when they cannot resolve the current one).
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# The directory holding data/ and sock/ as the server sees it.
base_of() {
    if [ -f "$1/pg.base" ]; then
        cat "$1/pg.base"
    else
        echo "$1"
    fi
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null && return 0
    fi
    echo $((20000 + RANDOM % 40000))
}

show_log() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            echo "pg.sh: --- $f ---" >&2
            cat "$f" >&2
        fi
    done
}

do_start() {
    local base port log _
    mkdir -p "$dir"
    chmod 0755 "$dir"
    base=$dir
    if is_root; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -x "$dir" -a -w "$dir"; then
            base=$(mktemp -d "${TMPDIR:-/tmp}/drover-pg.XXXXXX")
            chmod 0755 "$base"
            chown postgres: "$base"
            echo "$base" >"$dir/pg.base"
            ln -sfn "$base/sock" "$dir/sock"
        fi
    fi
    mkdir -p "$base/sock"
    chmod 0755 "$base/sock"
    if is_root; then
        chown postgres: "$base/sock"
    fi
    if ! as_pg "$PGBIN/initdb" -D "$base/data" --auth=trust -U postgres \
        --no-sync -E UTF8 --locale=C >"$base/initdb.log" 2>&1; then
        echo "pg.sh: initdb failed in $base/data" >&2
        show_log "$base/initdb.log"
        exit 1
    fi
    log="$base/server.log"
    for _ in 1 2 3 4 5 6 7 8; do
        port=$(free_port)
        : >"$log"
        if is_root; then
            chown postgres: "$log"
        fi
        if as_pg "$PGBIN/pg_ctl" start -D "$base/data" -w -t 60 -l "$log" \
            -o "$(server_opts "$base" "$port")" \
            >/dev/null 2>&1; then
            break
        fi
        if ! grep -qE 'could not (bind|create)|already in use|lock file' "$log"; then
            echo "pg.sh: could not start PostgreSQL in $base/data" >&2
            show_log "$log"
            exit 1
        fi
        port=
    done
    if [ -z "$port" ]; then
        echo "pg.sh: could not find a free port for PostgreSQL" >&2
        show_log "$log"
        exit 1
    fi
    if ! "$PGBIN/createdb" -h "$dir/sock" -p "$port" -U postgres drover \
        >"$base/createdb.log" 2>&1; then
        echo "pg.sh: could not create database \"drover\"" >&2
        show_log "$base/createdb.log" "$log"
        exit 1
    fi
    echo "$port" >"$dir/pg.port"
    echo "host=$dir/sock port=$port dbname=drover user=postgres"
}

# The server options; the same at start and restart.
server_opts() {
    echo "-c fsync=off -c full_page_writes=off -c listen_addresses=127.0.0.1 -p $2 -k '$1/sock' -c max_connections=200"
}

do_restart() {
    local base port
    base=$(base_of "$dir")
    port=$(cat "$dir/pg.port")
    do_stop
    if ! as_pg "$PGBIN/pg_ctl" start -D "$base/data" -w -t 60 \
        -l "$base/server.log" -o "$(server_opts "$base" "$port")" \
        >/dev/null 2>&1; then
        echo "pg.sh: could not restart PostgreSQL in $base/data" >&2
        show_log "$base/server.log"
        exit 1
    fi
}

do_stop() {
    local base
    base=$(base_of "$dir")
    if [ -f "$base/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" stop -D "$base/data" -m immediate -w -t 30 \
            >/dev/null 2>&1 || true
    fi
}

case "$cmd" in
start)
    do_start
    ;;
stop)
    do_stop
    ;;
restart)
    do_restart
    ;;
destroy)
    if [ -d "$dir" ]; then
        base=$(base_of "$dir")
        do_stop
        if [ "$base" != "$dir" ]; then
            rm -rf "$base"
        fi
        rm -rf "$dir"
    fi
    ;;
*)
    usage
    ;;
esac

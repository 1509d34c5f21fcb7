#!/usr/bin/env bash
# Runs the whole test suite against a throw-away PostgreSQL cluster, with Debian's Chromium for the browser tests and
# Debian's Node.js and npm for the DPoP interop test.
#
#   ./test.sh                                   # every test
#   ./test.sh --filter "FullyQualifiedName~Storage"   # extra arguments go to `dotnet test`
#
# It finds the PostgreSQL server binaries (installing Debian's `postgresql` package when there are none), creates a
# cluster in a temporary directory, starts it on a free port on 127.0.0.1, points TESSERA_TEST_POSTGRES at it, runs
# `dotnet test`, and always stops the cluster and deletes the directory afterwards. Nothing is left running or on disk.
set -euo pipefail

cd "$(dirname "$0")"

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- (a) PostgreSQL server binaries ------------------------------------------------------------------------------

# find_pg_bindir, install_postgres, free_port
. ./scripts/postgres.sh

PG_BIN="$(find_pg_bindir || true)"
if [ -z "$PG_BIN" ]; then
    install_postgres "install PostgreSQL by hand (Debian: apt-get install postgresql, as root) and run again"
    PG_BIN="$(find_pg_bindir || true)"
    [ -n "$PG_BIN" ] || die "the postgresql package is installed but initdb/pg_ctl are still not found."
fi
for tool in initdb pg_ctl pg_isready; do
    [ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool is missing."
done
log "using PostgreSQL from $PG_BIN ($("$PG_BIN/pg_ctl" --version))"

# ---- Chromium for the browser tests (Debian's package; never a browser download) ------------------------------------

CHROMIUM="${TESSERA_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and apt-get is not available: install Chromium and run again."
    chromium_sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "$CHROMIUM is missing, and installing it needs root (no sudo here): run 'apt-get install chromium' as root."
        chromium_sudo=(sudo)
    fi
    log "Chromium not found; installing Debian's chromium package for the browser tests..."
    ${chromium_sudo[@]+"${chromium_sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || die "apt-get update failed: install chromium by hand."
    ${chromium_sudo[@]+"${chromium_sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 || die "apt-get install chromium failed: install it by hand."
    [ -x "$CHROMIUM" ] || die "the chromium package is installed but $CHROMIUM is still missing."
fi

# ---- Node.js and npm for the DPoP interop test (Debian's packages; the test runs `npm ci` on its locked client) -------

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "node or npm is missing and apt-get is not available: install Node.js and npm and run again."
    node_sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "node or npm is missing, and installing them needs root (no sudo here): run 'apt-get install nodejs npm' as root."
        node_sudo=(sudo)
    fi
    log "Node.js or npm not found; installing Debian's nodejs and npm packages for the DPoP interop test..."
    ${node_sudo[@]+"${node_sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || die "apt-get update failed: install nodejs and npm by hand."
    ${node_sudo[@]+"${node_sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2 || die "apt-get install nodejs npm failed: install them by hand."
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "the nodejs and npm packages are installed but node or npm is still missing."
fi

# ---- (b) a throw-away cluster ------------------------------------------------------------------------------------

# initdb and postgres refuse to run as root: then they run as the `postgres` OS user, who must own the directory.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 \
        || die "running as root, but there is no 'postgres' OS user to run the server as (install the postgresql package, or run as a normal user)."
    if command -v runuser >/dev/null 2>&1; then
        as_pg=(runuser -u postgres --)
    else
        as_pg=(su postgres -s /bin/sh -c '"$0" "$@"')
    fi
fi

PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/tessera-pg.XXXXXX")"
PG_DATA="$PG_TMP/data"
PG_LOG="$PG_TMP/postgres.log"
started=0

cleanup() {
    local rc=$?
    if [ "$started" -eq 1 ]; then
        ${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 \
            || log "could not stop the PostgreSQL cluster in $PG_DATA cleanly."
    fi
    rm -rf "$PG_TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${#as_pg[@]}" -gt 0 ]; then
    chown postgres "$PG_TMP"
fi
chmod 700 "$PG_TMP"

${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale --no-sync >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; die "initdb failed."; }

PG_PORT=""
for attempt in 1 2 3; do
    PG_PORT="$(free_port)"
    # Only 127.0.0.1, the unix socket in the temporary directory, and no fsync: the data is thrown away anyway.
    if ${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null 2>&1; then
        started=1
        break
    fi
    log "PostgreSQL did not start on port $PG_PORT (attempt $attempt):"
    tail -n 20 "$PG_LOG" >&2 2>/dev/null || true
done
[ "$started" -eq 1 ] || die "could not start PostgreSQL; see the log above."

ready=0
for _ in $(seq 1 120); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres; then
        ready=1
        break
    fi
    sleep 0.25
done
[ "$ready" -eq 1 ] || { tail -n 50 "$PG_LOG" >&2 || true; die "PostgreSQL on 127.0.0.1:$PG_PORT did not become ready."; }
log "PostgreSQL is ready on 127.0.0.1:$PG_PORT (data in $PG_DATA)"

# ---- (c) point the tests at it, (d) run them -----------------------------------------------------------------------

# Timeout: connecting may wait on a busy 2-core machine running every test project at once (Npgsql's default is 15 s).
export TESSERA_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Timeout=60"

set +e
dotnet test Tessera.slnx -c Release "$@"
status=$?
set -e

# ---- (e) the EXIT trap stops the cluster and removes the directory --------------------------------------------------
exit "$status"

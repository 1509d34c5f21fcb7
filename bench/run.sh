#!/usr/bin/env bash
# The Tessera benchmark suite, in one command (bench/README.md):
#   builds everything in Release, installs the peers from the registries (NuGet: OpenIddict; npm: oidc-provider),
#   runs the in-process micro-benchmark, starts a throw-away PostgreSQL cluster (Debian's postgresql package,
#   installed with apt-get when missing), starts Tessera on SQLite, Tessera on PostgreSQL (one node, and three
#   nodes sharing one database), OpenIddict, oidc-provider and the ceiling on 127.0.0.1, runs every scenario
#   interleaved, stops the servers by pid and the cluster, deletes the cluster's directory (also on error or Ctrl-C),
#   writes bench/results/latest.md and the PNG charts.
#
# Durations and sizes (environment):
#   BENCH_WARMUP=4 BENCH_DURATION=8 BENCH_REPS=3      seconds of discarded warm-up and of measurement per run
#   BENCH_FIRST_WARMUP=10                            seconds of discarded warm-up before the first repetition (JIT tiering)
#   BENCH_CONCURRENCY=32 BENCH_LOGIN_CONCURRENCY=4    virtual clients (closed loop)
#   BENCH_SCENARIOS=refresh,client_credentials,introspection,login   BENCH_FIXED_RATE=1 (open-loop latency run)
#   BENCH_MICRO=1 (BenchmarkDotNet row)   BENCH_TESSERA_FULLSYNC=0 (1: --Tessera:SqliteFullSync=true)
#   BENCH_PORT_BASE=5101 (Tessera, OpenIddict, oidc-provider, ceiling on 5101..5104; Tessera on PostgreSQL: one node
#   on 5105, three nodes on 5106..5108)   BENCH_OUT=bench/results
#   BENCH_PG=1 (0: no PostgreSQL columns)   BENCH_PG_SCENARIOS=refresh,client_credentials,introspection,login
#   (add refresh_fixed_rate for their open-loop run)
# Quick run (about 6 minutes): BENCH_WARMUP=2 BENCH_DURATION=3 BENCH_MICRO=0 bench/run.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
: "${BENCH_FIRST_WARMUP:=10}" "${BENCH_WARMUP:=4}" "${BENCH_DURATION:=8}" "${BENCH_REPS:=3}" "${BENCH_CONCURRENCY:=32}" "${BENCH_LOGIN_CONCURRENCY:=4}"
: "${BENCH_SCENARIOS:=refresh,client_credentials,introspection,login}" "${BENCH_FIXED_RATE:=1}" "${BENCH_MICRO:=1}"
: "${BENCH_TESSERA_FULLSYNC:=0}" "${BENCH_PORT_BASE:=5101}" "${BENCH_OUT:=$HERE/results}"
: "${BENCH_PG:=1}" "${BENCH_PG_SCENARIOS:=refresh,client_credentials,introspection,login}"
export BENCH_FIRST_WARMUP BENCH_WARMUP BENCH_DURATION BENCH_REPS BENCH_CONCURRENCY BENCH_LOGIN_CONCURRENCY BENCH_SCENARIOS BENCH_FIXED_RATE
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

COMMAND="BENCH_FIRST_WARMUP=$BENCH_FIRST_WARMUP BENCH_WARMUP=$BENCH_WARMUP BENCH_DURATION=$BENCH_DURATION BENCH_REPS=$BENCH_REPS BENCH_CONCURRENCY=$BENCH_CONCURRENCY BENCH_LOGIN_CONCURRENCY=$BENCH_LOGIN_CONCURRENCY"
[ "$BENCH_TESSERA_FULLSYNC" = 1 ] && COMMAND="$COMMAND BENCH_TESSERA_FULLSYNC=1"
[ "$BENCH_PG" = 1 ] || COMMAND="$COMMAND BENCH_PG=0"
[ "$BENCH_PG" = 1 ] && [ "$BENCH_PG_SCENARIOS" != refresh,client_credentials,introspection,login ] && COMMAND="$COMMAND BENCH_PG_SCENARIOS=$BENCH_PG_SCENARIOS"
COMMAND="$COMMAND bench/run.sh"

WORK="$HERE/work"
BIN="$WORK/bin"
LOGS="$WORK/logs"
rm -rf "$WORK/data"
mkdir -p "$BIN" "$LOGS" "$WORK/data" "$BENCH_OUT"

P_TESSERA=$BENCH_PORT_BASE
P_OPENIDDICT=$((BENCH_PORT_BASE + 1))
P_OIDCPROVIDER=$((BENCH_PORT_BASE + 2))
P_CEILING=$((BENCH_PORT_BASE + 3))
P_PG1=$((BENCH_PORT_BASE + 4))
P_PG3=($((BENCH_PORT_BASE + 5)) $((BENCH_PORT_BASE + 6)) $((BENCH_PORT_BASE + 7)))
PEER_SECRET="bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
USER_PASSWORD="bench-password-4711"

step() { printf '\n== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# ---- PostgreSQL server binaries (first: a missing PostgreSQL fails before the long build) --------------------------
# Shared with ./test.sh (scripts/postgres.sh): find_pg_bindir (pg_config's bindir, else Debian's
# /usr/lib/postgresql/<newest>/bin, else PATH), install_postgres (Debian's package through apt-get), free_port.
. "$ROOT/scripts/postgres.sh"

if [ "$BENCH_PG" = 1 ]; then
  step "PostgreSQL server binaries"
  PG_BIN="$(find_pg_bindir || true)"
  if [ -z "$PG_BIN" ]; then
    install_postgres "install PostgreSQL (Debian: apt-get install postgresql) and run again, or run without the PostgreSQL columns: BENCH_PG=0 bench/run.sh"
    PG_BIN="$(find_pg_bindir || true)"
    [ -n "$PG_BIN" ] || die "the postgresql package is installed but initdb/pg_ctl are still not found (BENCH_PG=0 runs without PostgreSQL)."
  fi
  for tool in initdb pg_ctl pg_isready psql createdb; do
    [ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool is missing (BENCH_PG=0 runs without PostgreSQL)."
  done
  echo "  $("$PG_BIN/pg_ctl" --version) in $PG_BIN"
fi

# ---- build ---------------------------------------------------------------------------------------------------
step "build (Release)"
build() { dotnet build "$1" -c Release -o "$BIN/$2" -nologo -v quiet -clp:ErrorsOnly; }
build "$ROOT/src/Tessera.Server/Tessera.Server.csproj" tessera
build "$HERE/peers/OpenIddictServer/OpenIddictServer.csproj" openiddict
build "$HERE/Tessera.Bench.Ceiling/Tessera.Bench.Ceiling.csproj" ceiling
build "$HERE/Tessera.Bench.LoadGen/Tessera.Bench.LoadGen.csproj" loadgen
build "$HERE/Tessera.Bench.Micro/Tessera.Bench.Micro.csproj" micro

step "install node oidc-provider (npm)"
( cd "$HERE/peers/oidc-provider" && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi )

# ---- micro-benchmark first, on a quiet machine ------------------------------------------------------------------
if [ "$BENCH_MICRO" = 1 ]; then
  step "BenchmarkDotNet: resource-server validation"
  dotnet "$BIN/micro/Tessera.Bench.Micro.dll" --out "$BENCH_OUT/micro.json" > "$LOGS/micro.log" 2>&1 || { tail -20 "$LOGS/micro.log"; exit 1; }
  tail -2 "$LOGS/micro.log"
else
  rm -f "$BENCH_OUT/micro.json"   # no stale row from an earlier run
fi

# ---- servers --------------------------------------------------------------------------------------------------
PORTS=($P_TESSERA $P_OPENIDDICT $P_OIDCPROVIDER $P_CEILING)
[ "$BENCH_PG" = 1 ] && PORTS+=($P_PG1 "${P_PG3[@]}")
for port in "${PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use; set BENCH_PORT_BASE"; fi
done

# Everything started from here on is stopped by cleanup: the servers by their pids first, then the PostgreSQL cluster,
# whose directory is deleted. It runs on every exit: the end of the run, an error (set -e), Ctrl-C or a TERM.
PIDS=()
PG_TMP=""
as_pg=()
cleanup() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  PIDS=()
  if [ -n "$PG_TMP" ] && [ -f "$PG_TMP/data/postmaster.pid" ]; then   # a postmaster runs (or ran) in it
    local postmaster
    postmaster="$(head -1 "$PG_TMP/data/postmaster.pid" 2>/dev/null || true)"
    ${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || ${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
      || { echo "bench/run.sh: could not stop PostgreSQL in $PG_TMP/data with pg_ctl; killing its postmaster ($postmaster)" >&2
           if [ -n "$postmaster" ]; then kill -9 "$postmaster" 2>/dev/null || true; sleep 1; fi; }
  fi
  if [ -n "$PG_TMP" ]; then rm -rf "$PG_TMP"; PG_TMP=""; fi
}
on_exit() { local rc=$?; cleanup; exit "$rc"; }
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_up() {
  local name=$1 url=$2 pid=$3
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then echo "  $name up on $url (pid $pid)"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; log:" >&2; tail -30 "$LOGS/$name.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "$name did not come up" >&2; exit 1
}

# ---- a throw-away PostgreSQL cluster ------------------------------------------------------------------------------
# As in ./test.sh, but with PostgreSQL's durability defaults (fsync, synchronous_commit, full_page_writes all on):
# every commit is flushed to disk before it is acknowledged. Only max_connections is raised, above what the four
# Tessera processes' connection pools (Npgsql's default of 100 each) could open.
if [ "$BENCH_PG" = 1 ]; then
  step "PostgreSQL: a throw-away cluster"
  # initdb and postgres refuse to run as root: then they run as the postgres OS user, who must own the directory.
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' OS user to run PostgreSQL as (install the postgresql package, run as a normal user, or BENCH_PG=0)."
    if command -v runuser >/dev/null 2>&1; then as_pg=(runuser -u postgres --); else as_pg=(su postgres -s /bin/sh -c '"$0" "$@"'); fi
  fi
  PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench-pg.XXXXXX")"
  [ "${#as_pg[@]}" -gt 0 ] && chown postgres "$PG_TMP"
  chmod 700 "$PG_TMP"
  ${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 --no-locale >"$LOGS/postgres-initdb.log" 2>&1 \
    || { cat "$LOGS/postgres-initdb.log" >&2; die "initdb failed."; }
  PG_PORT=""
  for attempt in 1 2 3; do
    PG_PORT="$(free_port)"
    if ${as_pg[@]+"${as_pg[@]}"} "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_TMP -c max_connections=500" start >/dev/null 2>&1; then
      break
    fi
    echo "PostgreSQL did not start on port $PG_PORT (attempt $attempt):" >&2
    tail -n 20 "$PG_TMP/postgres.log" >&2 2>/dev/null || true
    PG_PORT=""
  done
  [ -n "$PG_PORT" ] || die "could not start PostgreSQL; see the log above."
  for _ in $(seq 1 120); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres && break; sleep 0.25; done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres || { tail -n 50 "$PG_TMP/postgres.log" >&2 || true; die "PostgreSQL on 127.0.0.1:$PG_PORT did not become ready."; }
  PG_PID="$(head -1 "$PG_TMP/data/postmaster.pid")"
  psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -At "$@"; }
  # One database per set-up, in the one cluster: the single node and the three nodes do not share rows.
  psql_ -c "CREATE DATABASE tessera_pg1" -c "CREATE DATABASE tessera_pg3" > "$LOGS/postgres-setup.log" 2>&1 || { cat "$LOGS/postgres-setup.log" >&2; die "could not create the databases."; }
  PG_VERSION="$(psql_ -c "SHOW server_version")"
  PG_SETTINGS="$(psql_ -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN
    ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'max_connections')")"
  echo "  PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT (postmaster pid $PG_PID, data in $PG_TMP/data): $PG_SETTINGS"
fi

step "Tessera: client and user through the tessera CLI"
TDATA="$WORK/data/tessera"
TESSERA=(dotnet "$BIN/tessera/tessera.dll" "--Tessera:DataDirectory=$TDATA" "--urls=http://127.0.0.1:$P_TESSERA")
"${TESSERA[@]}" clients add bench --grant authorization_code --grant refresh_token --grant client_credentials \
  --scope "offline_access api" --redirect-uri https://app.example.com/callback --first-party \
  --resource https://api.bench.example > "$LOGS/tessera-setup.log" 2>&1
TESSERA_SECRET=$(grep -o 'tss_[A-Za-z0-9_-]*' "$LOGS/tessera-setup.log" | head -1)
[ -n "$TESSERA_SECRET" ] || { cat "$LOGS/tessera-setup.log"; exit 1; }
"${TESSERA[@]}" users add benchuser --password "$USER_PASSWORD" >> "$LOGS/tessera-setup.log" 2>&1

# Tessera on PostgreSQL: the store, the connection string, a master key (required with PostgreSQL: every node decrypts
# the signing keys with it) and one issuer for all nodes of a set-up (behind a load balancer they are one server).
# The same client and user, made with the same CLI commands against each database.
RATE_LIMITS_OFF=(--Tessera:RateLimits:Token=0 --Tessera:RateLimits:Login=0 --Tessera:RateLimits:Authorize=0 --Tessera:RateLimits:Other=0)
tessera_pg() { # name database issuer
  printf '%s\n' dotnet "$BIN/tessera/tessera.dll" --Tessera:Store=postgres \
    "--Tessera:PostgresConnectionString=Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$2" \
    "--Tessera:MasterKey=$(head -c 32 /dev/urandom | base64 | tr -d '\n')" "--Tessera:Issuer=$3" "--Tessera:DataDirectory=$WORK/data/$1"
}
seed_tessera_pg() { # name; prints the client secret
  local name=$1; shift
  "$@" clients add bench --grant authorization_code --grant refresh_token --grant client_credentials \
    --scope "offline_access api" --redirect-uri https://app.example.com/callback --first-party \
    --resource https://api.bench.example > "$LOGS/$name-setup.log" 2>&1 || { cat "$LOGS/$name-setup.log" >&2; die "$name: clients add failed."; }
  "$@" users add benchuser --password "$USER_PASSWORD" >> "$LOGS/$name-setup.log" 2>&1 || { cat "$LOGS/$name-setup.log" >&2; die "$name: users add failed."; }
  grep -o 'tss_[A-Za-z0-9_-]*' "$LOGS/$name-setup.log" | head -1
}
if [ "$BENCH_PG" = 1 ]; then
  mapfile -t TESSERA_PG1 < <(tessera_pg tessera-pg1 tessera_pg1 "http://127.0.0.1:$P_PG1")
  mapfile -t TESSERA_PG3 < <(tessera_pg tessera-pg3 tessera_pg3 "http://127.0.0.1:${P_PG3[0]}")
  SECRET_PG1="$(seed_tessera_pg tessera-pg1 "${TESSERA_PG1[@]}")"
  SECRET_PG3="$(seed_tessera_pg tessera-pg3 "${TESSERA_PG3[@]}")"
  [ -n "$SECRET_PG1" ] && [ -n "$SECRET_PG3" ] || die "no client secret from the tessera CLI on PostgreSQL (logs: $LOGS/tessera-pg*-setup.log)."
fi

step "start the servers on 127.0.0.1"
FULLSYNC=false; [ "$BENCH_TESSERA_FULLSYNC" = 1 ] && FULLSYNC=true
# The per-IP rate limits are off: the load generator is a single client address.
"${TESSERA[@]}" "--Tessera:SqliteFullSync=$FULLSYNC" --Tessera:RateLimits:Token=0 --Tessera:RateLimits:Login=0 \
  --Tessera:RateLimits:Authorize=0 --Tessera:RateLimits:Other=0 > "$LOGS/tessera.log" 2>&1 &
PID_TESSERA=$!; PIDS+=("$PID_TESSERA")
dotnet "$BIN/openiddict/OpenIddictServer.dll" --port "$P_OPENIDDICT" --db "$WORK/data/openiddict.db" \
  --client-id bench --client-secret "$PEER_SECRET" > "$LOGS/openiddict.log" 2>&1 &
PID_OPENIDDICT=$!; PIDS+=("$PID_OPENIDDICT")
node "$HERE/peers/oidc-provider/server.js" --port "$P_OIDCPROVIDER" --client-id bench --client-secret "$PEER_SECRET" > "$LOGS/oidc-provider.log" 2>&1 &
PID_OIDCPROVIDER=$!; PIDS+=("$PID_OIDCPROVIDER")
dotnet "$BIN/ceiling/Tessera.Bench.Ceiling.dll" --port "$P_CEILING" --client-id bench --client-secret "$PEER_SECRET" > "$LOGS/ceiling.log" 2>&1 &
PID_CEILING=$!; PIDS+=("$PID_CEILING")
if [ "$BENCH_PG" = 1 ]; then
  "${TESSERA_PG1[@]}" "--urls=http://127.0.0.1:$P_PG1" "${RATE_LIMITS_OFF[@]}" > "$LOGS/tessera-pg1.log" 2>&1 &
  PID_PG1=$!; PIDS+=("$PID_PG1")
  PIDS_PG3=(); URLS_PG3=(); NAMES_PG3=(tessera-pg3-a tessera-pg3-b tessera-pg3-c)
  for i in 0 1 2; do
    "${TESSERA_PG3[@]}" "--urls=http://127.0.0.1:${P_PG3[$i]}" "${RATE_LIMITS_OFF[@]}" > "$LOGS/${NAMES_PG3[$i]}.log" 2>&1 &
    PIDS_PG3+=($!); PIDS+=($!); URLS_PG3+=("http://127.0.0.1:${P_PG3[$i]}")
  done
fi
wait_up tessera "http://127.0.0.1:$P_TESSERA" "$PID_TESSERA"
wait_up openiddict "http://127.0.0.1:$P_OPENIDDICT" "$PID_OPENIDDICT"
wait_up oidc-provider "http://127.0.0.1:$P_OIDCPROVIDER" "$PID_OIDCPROVIDER"
wait_up ceiling "http://127.0.0.1:$P_CEILING" "$PID_CEILING"
PG_SYSTEMS=()
if [ "$BENCH_PG" = 1 ]; then
  wait_up tessera-pg1 "http://127.0.0.1:$P_PG1" "$PID_PG1"
  for i in 0 1 2; do wait_up "${NAMES_PG3[$i]}" "${URLS_PG3[$i]}" "${PIDS_PG3[$i]}"; done
  # Every node of the three must tell the same issuer (one authorization server behind a load balancer).
  for url in "${URLS_PG3[@]}"; do
    issuer="$(curl -fsS "$url/.well-known/openid-configuration" | grep -o '"issuer":"[^"]*"')"
    [ "$issuer" = "\"issuer\":\"http://127.0.0.1:${P_PG3[0]}\"" ] || die "$url: discovery says $issuer, expected the shared issuer http://127.0.0.1:${P_PG3[0]}."
  done
  PG_SYSTEMS=(
    --system "tessera-pg1=tessera@http://127.0.0.1:$P_PG1@$PID_PG1@bench@$SECRET_PG1@db=$PG_PID@scenarios=$BENCH_PG_SCENARIOS"
    --system "tessera-pg3=tessera@$(IFS=,; echo "${URLS_PG3[*]}")@$(IFS=,; echo "${PIDS_PG3[*]}")@bench@$SECRET_PG3@db=$PG_PID@scenarios=$BENCH_PG_SCENARIOS"
    --meta "system:tessera=SQLite (Tessera's default store), one process"
    --meta "system:tessera-pg1=PostgreSQL, one node (\`--Tessera:Store=postgres\`, Npgsql's default pool)"
    --meta "system:tessera-pg3=PostgreSQL, three nodes (three processes on three ports, one database, one master key, one issuer); the load generator sends each request to the next node and each session's successive refreshes to successive nodes, so every rotation crosses nodes. Server CPU: the three processes summed; peak RSS: the largest node's"
    --meta "postgres=$PG_VERSION, a throw-away cluster on 127.0.0.1 (TCP), data directory on $(df -PT "$PG_TMP" | awk 'NR==2{print $2}') (the SQLite files: $(df -PT "$WORK/data" | awk 'NR==2{print $2}')). Durability defaults kept: $PG_SETTINGS (only max_connections changed). It runs on the same 2 cores as the servers and the load generator; its CPU (postmaster and all backends) is reported in its own column. PostgreSQL's background work after a run (checkpoints, autovacuum) can fall into the next system's window, in its \"other processes\" column."
  )
fi

# ---- the suite ------------------------------------------------------------------------------------------------
step "scenarios, interleaved"
CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MACHINE="$(nproc) cores ($CPU), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, Linux $(uname -r), .NET $(dotnet --version) SDK, node $(node --version)"
SYNC="SQLite in WAL mode with synchronous=NORMAL (survives a crash of the process; a power loss may drop the last commits); --Tessera:SqliteFullSync=true fsyncs every commit"
[ "$FULLSYNC" = true ] && SYNC="SQLite in WAL mode with synchronous=FULL (--Tessera:SqliteFullSync=true: every commit fsynced)"
dotnet "$BIN/loadgen/Tessera.Bench.LoadGen.dll" suite --out "$BENCH_OUT" \
  --system "tessera=tessera@http://127.0.0.1:$P_TESSERA@$PID_TESSERA@bench@$TESSERA_SECRET" \
  ${PG_SYSTEMS[@]+"${PG_SYSTEMS[@]}"} \
  --system "openiddict=openiddict@http://127.0.0.1:$P_OPENIDDICT@$PID_OPENIDDICT@bench@$PEER_SECRET" \
  --system "oidc-provider=oidc-provider@http://127.0.0.1:$P_OIDCPROVIDER@$PID_OIDCPROVIDER@bench@$PEER_SECRET" \
  --system "ceiling=ceiling@http://127.0.0.1:$P_CEILING@$PID_CEILING@bench@$PEER_SECRET" \
  --meta "command=$COMMAND" --meta "machine=$MACHINE" --meta "tessera=$SYNC; per-IP rate limits off" \
  --meta "argon2=Argon2id m=19456 KiB, t=2, p=1 (Tessera's default, OWASP's minimum)" \
  --meta "notes=Peers and what favours them: see bench/README.md. Server logs of this run: bench/work/logs/."

step "stop the servers$([ "$BENCH_PG" = 1 ] && echo " and PostgreSQL")"
cleanup
echo "results: $BENCH_OUT/latest.md"

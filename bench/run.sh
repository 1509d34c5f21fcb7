#!/usr/bin/env bash
# The Tessera benchmark suite, in one command (bench/README.md):
#   builds everything in Release, installs the peers from the registries (NuGet: OpenIddict; npm: oidc-provider),
#   runs the in-process micro-benchmark, starts Tessera, OpenIddict, oidc-provider and the ceiling on 127.0.0.1,
#   runs every scenario interleaved, stops the servers by pid, writes bench/results/latest.md and the PNG charts.
#
# Durations and sizes (environment):
#   BENCH_WARMUP=4 BENCH_DURATION=8 BENCH_REPS=3      seconds of discarded warm-up and of measurement per run
#   BENCH_CONCURRENCY=32 BENCH_LOGIN_CONCURRENCY=4    virtual clients (closed loop)
#   BENCH_SCENARIOS=refresh,client_credentials,introspection,login   BENCH_FIXED_RATE=1 (open-loop latency run)
#   BENCH_MICRO=1 (BenchmarkDotNet row)   BENCH_TESSERA_FULLSYNC=0 (1: --Tessera:SqliteFullSync=true)
#   BENCH_PORT_BASE=5101 (Tessera, OpenIddict, oidc-provider, ceiling on 5101..5104)   BENCH_OUT=bench/results
# Quick run (about 4 minutes): BENCH_WARMUP=2 BENCH_DURATION=3 BENCH_MICRO=0 bench/run.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
: "${BENCH_WARMUP:=4}" "${BENCH_DURATION:=8}" "${BENCH_REPS:=3}" "${BENCH_CONCURRENCY:=32}" "${BENCH_LOGIN_CONCURRENCY:=4}"
: "${BENCH_SCENARIOS:=refresh,client_credentials,introspection,login}" "${BENCH_FIXED_RATE:=1}" "${BENCH_MICRO:=1}"
: "${BENCH_TESSERA_FULLSYNC:=0}" "${BENCH_PORT_BASE:=5101}" "${BENCH_OUT:=$HERE/results}"
export BENCH_WARMUP BENCH_DURATION BENCH_REPS BENCH_CONCURRENCY BENCH_LOGIN_CONCURRENCY BENCH_SCENARIOS BENCH_FIXED_RATE
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

COMMAND="BENCH_WARMUP=$BENCH_WARMUP BENCH_DURATION=$BENCH_DURATION BENCH_REPS=$BENCH_REPS BENCH_CONCURRENCY=$BENCH_CONCURRENCY BENCH_LOGIN_CONCURRENCY=$BENCH_LOGIN_CONCURRENCY"
[ "$BENCH_TESSERA_FULLSYNC" = 1 ] && COMMAND="$COMMAND BENCH_TESSERA_FULLSYNC=1"
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
PEER_SECRET="bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
USER_PASSWORD="bench-password-4711"

step() { printf '\n== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

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
for port in $P_TESSERA $P_OPENIDDICT $P_OIDCPROVIDER $P_CEILING; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port is in use; set BENCH_PORT_BASE" >&2; exit 1; fi
done

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

wait_up() {
  local name=$1 url=$2 pid=$3
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then echo "  $name up on $url (pid $pid)"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; log:" >&2; tail -30 "$LOGS/$name.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "$name did not come up" >&2; exit 1
}

step "Tessera: client and user through the tessera CLI"
TDATA="$WORK/data/tessera"
TESSERA=(dotnet "$BIN/tessera/tessera.dll" "--Tessera:DataDirectory=$TDATA" "--urls=http://127.0.0.1:$P_TESSERA")
"${TESSERA[@]}" clients add bench --grant authorization_code --grant refresh_token --grant client_credentials \
  --scope "offline_access api" --redirect-uri https://app.example.com/callback --first-party \
  --resource https://api.bench.example > "$LOGS/tessera-setup.log" 2>&1
TESSERA_SECRET=$(grep -o 'tss_[A-Za-z0-9_-]*' "$LOGS/tessera-setup.log" | head -1)
[ -n "$TESSERA_SECRET" ] || { cat "$LOGS/tessera-setup.log"; exit 1; }
"${TESSERA[@]}" users add benchuser --password "$USER_PASSWORD" >> "$LOGS/tessera-setup.log" 2>&1

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
wait_up tessera "http://127.0.0.1:$P_TESSERA" "$PID_TESSERA"
wait_up openiddict "http://127.0.0.1:$P_OPENIDDICT" "$PID_OPENIDDICT"
wait_up oidc-provider "http://127.0.0.1:$P_OIDCPROVIDER" "$PID_OIDCPROVIDER"
wait_up ceiling "http://127.0.0.1:$P_CEILING" "$PID_CEILING"

# ---- the suite ------------------------------------------------------------------------------------------------
step "scenarios, interleaved"
CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MACHINE="$(nproc) cores ($CPU), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, Linux $(uname -r), .NET $(dotnet --version) SDK, node $(node --version)"
SYNC="SQLite in WAL mode with synchronous=NORMAL (survives a crash of the process; a power loss may drop the last commits); --Tessera:SqliteFullSync=true fsyncs every commit"
[ "$FULLSYNC" = true ] && SYNC="SQLite in WAL mode with synchronous=FULL (--Tessera:SqliteFullSync=true: every commit fsynced)"
dotnet "$BIN/loadgen/Tessera.Bench.LoadGen.dll" suite --out "$BENCH_OUT" \
  --system "tessera=tessera@http://127.0.0.1:$P_TESSERA@$PID_TESSERA@bench@$TESSERA_SECRET" \
  --system "openiddict=openiddict@http://127.0.0.1:$P_OPENIDDICT@$PID_OPENIDDICT@bench@$PEER_SECRET" \
  --system "oidc-provider=oidc-provider@http://127.0.0.1:$P_OIDCPROVIDER@$PID_OIDCPROVIDER@bench@$PEER_SECRET" \
  --system "ceiling=ceiling@http://127.0.0.1:$P_CEILING@$PID_CEILING@bench@$PEER_SECRET" \
  --meta "command=$COMMAND" --meta "machine=$MACHINE" --meta "tessera=$SYNC; per-IP rate limits off" \
  --meta "argon2=Argon2id m=19456 KiB, t=2, p=1 (Tessera's default, OWASP's minimum)" \
  --meta "notes=Peers and what favours them: see bench/README.md. Server logs of this run: bench/work/logs/."

step "stop the servers"
cleanup
trap - EXIT INT TERM
echo "results: $BENCH_OUT/latest.md"

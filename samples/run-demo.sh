#!/usr/bin/env bash
# One command for the backend-for-frontend demo, everything on loopback:
#
#   samples/run-demo.sh
#
# It builds Tessera and the sample host, creates a throw-away data directory, registers the demo clients and a
# user with Tessera's command line, then runs together until Ctrl+C:
#   Tessera (authorization server)       http://127.0.0.1:5080   (DEMO_TESSERA_PORT)
#   sample API (`BffHost demo-api`)      http://127.0.0.1:5091   (DEMO_API_PORT)
#   BFF host with the single-page app    http://127.0.0.1:5090   (DEMO_BFF_PORT)
# Open http://127.0.0.1:5090, sign in as demo / tessera-demo-password, press "Call API". The page at
# /mediating.html shows the token-mediating mode (the host runs with Bff:Mode=TokenMediating so both pages work).
# Access tokens live 30 seconds (DEMO_ACCESS_TOKEN_LIFETIME) so you can watch the backend refresh them.
# Needs only the .NET 10 SDK. Everything is deleted when the script stops.
set -euo pipefail
cd "$(dirname "$0")/.."

TESSERA_PORT="${DEMO_TESSERA_PORT:-5080}"
BFF_PORT="${DEMO_BFF_PORT:-5090}"
API_PORT="${DEMO_API_PORT:-5091}"
LIFETIME="${DEMO_ACCESS_TOKEN_LIFETIME:-00:00:30}"
TESSERA="http://127.0.0.1:$TESSERA_PORT"
BFF="http://127.0.0.1:$BFF_PORT"
API="http://127.0.0.1:$API_PORT"

log() { printf 'run-demo: %s\n' "$*" >&2; }

log "building..."
dotnet build -c Release -v quiet -nologo src/Tessera.Server/Tessera.Server.csproj >&2
dotnet build -c Release -v quiet -nologo samples/BffHost/BffHost.csproj >&2
TESSERA_DLL="$PWD/src/Tessera.Server/bin/Release/net10.0/tessera.dll"
HOST_DLL="$PWD/samples/BffHost/bin/Release/net10.0/BffHost.dll"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tessera-demo.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
TESSERA_ARGS=(--urls="$TESSERA" --Tessera:Issuer="$TESSERA" --Tessera:DataDirectory="$WORK/tessera" --Tessera:MasterKey="$MASTER_KEY")
tessera() { (cd "$WORK" && dotnet "$TESSERA_DLL" "$@" "${TESSERA_ARGS[@]}"); }
secret_of() { sed -n 's/^Secret (shown once, stored only as a hash): //p'; }

log "registering the demo clients and user..."
BFF_SECRET="$(tessera clients add demo-bff --name "BFF sample" --grant authorization_code --grant refresh_token \
    --redirect-uri "$BFF/bff/callback" --backchannel-logout-uri "$BFF/bff/backchannel-logout" --scope "openid profile offline_access api.read" --first-party \
    --resource "$API" --access-token-lifetime "$LIFETIME" | secret_of)"
API_SECRET="$(tessera clients add demo-api --name "Sample API" --grant client_credentials --scope "api.read" --resource "$API" | secret_of)"
tessera users add demo --password tessera-demo-password --name "Demo User" >/dev/null
[ -n "$BFF_SECRET" ] && [ -n "$API_SECRET" ] || { log "could not create the demo clients."; exit 1; }

(cd "$WORK" && exec dotnet "$TESSERA_DLL" serve "${TESSERA_ARGS[@]}") & pids+=($!)
(cd "$WORK" && exec dotnet "$HOST_DLL" demo-api --urls="$API" --Api:Authority="$TESSERA" --Api:ClientId=demo-api \
    --Api:ClientSecret="$API_SECRET" --Api:Audience="$API" --Api:AllowedOrigins="$BFF") & pids+=($!)
(cd "$WORK" && exec dotnet "$HOST_DLL" --urls="$BFF" --Bff:Authority="$TESSERA" --Bff:ClientId=demo-bff \
    --Bff:ClientSecret="$BFF_SECRET" --Bff:Scope="openid profile offline_access api.read" --Bff:Resource="$API" \
    --Bff:Mode=TokenMediating --Bff:Routes:/api="$API/api" --Bff:DataDirectory="$WORK/bff" \
    --Sample:DirectApi="$API/api/data") & pids+=($!)

wait_port() {
    for _ in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    log "nothing answers on port $1; see the output above."
    exit 1
}
wait_port "$TESSERA_PORT"; wait_port "$API_PORT"; wait_port "$BFF_PORT"
log ""
log "ready: open $BFF and sign in as demo / tessera-demo-password"
log "       token-mediating page: $BFF/mediating.html   Tessera account page: $TESSERA/account"
log "press Ctrl+C to stop (the data directory $WORK is deleted)"
wait

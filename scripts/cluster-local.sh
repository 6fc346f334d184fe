#!/usr/bin/env bash
# A local llmos cluster on loopback: a throwaway PostgreSQL 15 (Debian's `postgresql`) and three `llmos serve`
# nodes with their own homes and memory budgets, one thread each. Ctrl-C stops everything (also on failure).
#
#   npm run build && bash scripts/cluster-local.sh            # nodes on ports 11441-11443
#   LLMOS_CLUSTER_NODES=2 BUDGET=2G bash scripts/cluster-local.sh
#
# initdb refuses to run as root, so as root PostgreSQL runs as the unprivileged `postgres` user (apt creates it).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${LLMOS_CLUSTER_NODES:-3}
BASE_PORT=${BASE_PORT:-11441}
PG_PORT=${PG_PORT:-15432}
BUDGET=${BUDGET:-1G}
SECRET=${LLMOS_CLUSTER_SECRET:-local-cluster-secret-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}
WORK=$(mktemp -d /tmp/llmos-cluster.XXXXXX)
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -x "$BIN/initdb" ] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
[ -f packages/cli/dist/src/main.js ] || { echo "run npm run build first" >&2; exit 1; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  as_pg "$BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] && chown postgres: "$WORK"
as_pg "$BIN/initdb" -D "$WORK/pg" -U llmos -A trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
  -o "-k $WORK -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" >/dev/null
URL="postgres://llmos@127.0.0.1:$PG_PORT/postgres"
echo "PostgreSQL: $URL"

for i in $(seq 1 "$NODES"); do
  port=$((BASE_PORT + i - 1))
  home="$WORK/node$i"
  mkdir -p "$home"
  LLMOS_HOME="$home" LLMOS_THREADS=1 LLMOS_MEMORY_BUDGET="$BUDGET" LLMOS_CLUSTER_SECRET="$SECRET" \
    node packages/cli/bin/llmos.js serve --host 127.0.0.1 --port "$port" \
    --cluster "$URL" --node-name "node$i" --advertise "http://127.0.0.1:$port" >"$WORK/node$i.log" 2>&1 &
  pids+=($!)
  echo "node$i: http://127.0.0.1:$port (home $home, log $WORK/node$i.log)"
done
for i in $(seq 1 "$NODES"); do
  port=$((BASE_PORT + i - 1))
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
echo
LLMOS_HOST="http://127.0.0.1:$BASE_PORT" LLMOS_HOME="$WORK/node1" node packages/cli/bin/llmos.js cluster status || true
echo
echo "Try: LLMOS_HOST=http://127.0.0.1:$BASE_PORT LLMOS_HOME=$WORK/node1 node packages/cli/bin/llmos.js import ../shared/models/stories260K.gguf stories"
echo "Ctrl-C stops the cluster."
wait

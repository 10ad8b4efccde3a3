#!/usr/bin/env bash
# Runs tidings as a cluster (several `tidings serve` sharing one Redis or
# NATS JetStream log) through the cluster measurements, side by side in one
# run on loopback, and writes the tables into the cluster section of
# docs/benchmarks.md.
#
#   bench/cluster.sh            full run: writes docs/benchmarks.md
#   bench/cluster.sh --smoke    tiny sizes, a few seconds in all once built,
#                               for CI; leaves docs alone
#
# Measurements (--measures): subscribers (many subscribers over many
# nodes), latency (cross-node against one node), publish (durable publish
# throughput per engine against redb), follow (CPU a node spends following
# the log, 1/3/6 nodes), peer (Nchan with Redis on two nginx against two
# tidings nodes). An engine whose server is not installed, or that tidings
# cannot use yet, is skipped loudly (a failure with TIDINGS_TEST_REQUIRE_ALL=1).
# Results (one JSON line per run) go to bench/results/cluster-*.jsonl. Exits
# non-zero if a tidings run lost or duplicated events or could not start.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/bench/nchan.sh"

SMOKE=0
ENGINES="redis,nats"
MEASURES="subscribers,latency,publish,follow,peer"
NODES=6                 # subscribers: hub processes
SUBS=100000             # subscribers: in all
PER_HOLDER=17000        # subscriptions per load-generator process
MAX_CONNECTIONS=19000   # per node, under the 20,000 open-files cap
FANOUT_RATE=1           # subscribers: events/s, each to every subscriber
LATENCY_SUBS=1000
LATENCY_TOPICS=100      # 10 subscribers per topic, on all three nodes
LATENCY_RATE=1000
PUBLISHERS="1 16 256"
ROUNDS=3                # publish: rounds, interleaved; the table shows the best
PUBLISH_NODES=3
FOLLOW_NODES="1 3 6"
FOLLOW_RATE=1000
PEER_SUBS=10000
PEER_RATE=20
DURATION=5
SETTLE=1
DRAIN=5
DOC="$ROOT/docs/benchmarks.md"
OUT_DOC=                # where the tables go instead of $DOC
REDIS_FSYNC=always      # Redis appendfsync
JWT_KEY="tidings-bench-$(date +%s)-0123456789abcdef"

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF

Options (defaults in brackets):
  --smoke                 tiny sizes for CI
  --engines LIST          [$ENGINES]
  --measures LIST         [$MEASURES]
  --nodes N               nodes holding the many subscribers [$NODES]
  --subs N                subscribers over those nodes [$SUBS]
  --per-holder N          subscriptions per load-generator process [$PER_HOLDER]
  --max-connections N     per node [$MAX_CONNECTIONS]
  --fanout-rate R         [$FANOUT_RATE]
  --latency-rate R        [$LATENCY_RATE]
  --follow-rate R         [$FOLLOW_RATE]
  --peer-subs N           [$PEER_SUBS]
  --rounds N              publish: rounds, the best shown [$ROUNDS]
  --duration S            [$DURATION]
  --redis-fsync WHEN      Redis appendfsync: always, everysec or no [$REDIS_FSYNC]
  --out FILE              write the tables into a copy of docs/benchmarks.md at FILE
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --engines) ENGINES=$2; shift ;;
    --measures) MEASURES=$2; shift ;;
    --nodes) NODES=$2; shift ;;
    --subs) SUBS=$2; shift ;;
    --per-holder) PER_HOLDER=$2; shift ;;
    --max-connections) MAX_CONNECTIONS=$2; shift ;;
    --fanout-rate) FANOUT_RATE=$2; shift ;;
    --latency-rate) LATENCY_RATE=$2; shift ;;
    --follow-rate) FOLLOW_RATE=$2; shift ;;
    --peer-subs) PEER_SUBS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --redis-fsync) REDIS_FSYNC=$2; shift ;;
    --out) OUT_DOC=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$SMOKE" = 1 ]; then
  NODES=3; SUBS=300; PER_HOLDER=100; FANOUT_RATE=5
  LATENCY_SUBS=60; LATENCY_TOPICS=10; LATENCY_RATE=50
  PUBLISHERS="1 16"; PUBLISH_NODES=2; ROUNDS=1
  FOLLOW_NODES="1 3"; FOLLOW_RATE=50
  PEER_SUBS=100; PEER_RATE=5
  DURATION=0.5; SETTLE=0.2; DRAIN=2
fi

ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

log() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
loud() { printf '\n\033[1;33m!!!!! %s\033[0m\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/tidings-cluster.XXXXXX)
RESULTS_DIR="$ROOT/bench/results"
mkdir -p "$RESULTS_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$RESULTS_DIR/cluster-$([ "$SMOKE" = 1 ] && echo smoke || echo full)-$STAMP.jsonl"
: > "$RESULTS"

# ---- processes ----------------------------------------------------------------

PIDS_STARTED=()
stop_all() {
  local pid
  for pid in "${PIDS_STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS_STARTED[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS_STARTED=()
}
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  local port=$1
  for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

free_port() { # a port nothing listens on, from a range the hubs do not use
  local port
  while :; do
    port=$((20000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

mkdir -p "$WORK/bin"
log "building tidings, tidings-bench (release)"
cargo build --release -q -p tidings-cli -p tidings-bench >&2
cp "$ROOT/target/release/tidings" "$ROOT/target/release/tidings-bench" "$WORK/bin/"
BENCH="$WORK/bin/tidings-bench"
TIDINGS="$WORK/bin/tidings"

RUN=0
# The engine of one run: a fresh server with a fresh store. Sets ENGINE_URL
# (without the stream) and ENGINE_PID.
start_redis() {
  local dir="$WORK/redis-$RUN" port
  port=$(free_port)
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize no \
    --appendonly yes --appendfsync "$REDIS_FSYNC" --save '' --logfile "$dir/redis.log" &
  ENGINE_PID=$!
  PIDS_STARTED+=("$ENGINE_PID")
  ENGINE_URL="redis://127.0.0.1:$port"
  wait_port "$port"
}
start_nats() {
  local dir="$WORK/nats-$RUN" port
  port=$(free_port)
  mkdir -p "$dir"
  nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir" -l "$dir/nats.log" &
  ENGINE_PID=$!
  PIDS_STARTED+=("$ENGINE_PID")
  ENGINE_URL="nats://127.0.0.1:$port"
  wait_port "$port" && sleep 0.5
}
engine_installed() {
  case "$1" in
    redis) command -v redis-server >/dev/null ;;
    nats) command -v nats-server >/dev/null ;;
    *) return 1 ;;
  esac
}

# start_hubs COUNT HISTORY [extra serve flags]: COUNT tidings nodes on
# consecutive ports. Sets NODE_ARGS (--node PID per node), SUB_ARGS,
# PUB_URLS (one per node) and HUB_PORTS.
HUB_BASE=18200
start_hubs() {
  local count=$1 history=$2 k port
  shift 2
  NODE_ARGS=(); SUB_ARGS=(); PUB_URLS=(); HUB_PORTS=()
  for k in $(seq 0 $((count - 1))); do
    port=$((HUB_BASE + k))
    "$TIDINGS" serve --listen "127.0.0.1:$port" --jwt-key "$JWT_KEY" \
      --history "$history" --max-connections "$MAX_CONNECTIONS" "$@" \
      > "$WORK/hub-$RUN-$k.log" 2>&1 &
    PIDS_STARTED+=($!)
    NODE_ARGS+=(--node "$!")
    SUB_ARGS+=(--subscribe-url "http://127.0.0.1:$port/.well-known/mercure?topic={topic}")
    PUB_URLS+=("http://127.0.0.1:$port/.well-known/mercure")
    HUB_PORTS+=("$port")
  done
  for port in "${HUB_PORTS[@]}"; do
    wait_port "$port" || return 1
  done
  # A node that cannot reach its engine exits; give it the moment to.
  sleep 0.3
  for k in $(seq 0 $((count - 1))); do
    kill -0 "${NODE_ARGS[$((2 * k + 1))]}" 2>/dev/null || return 1
  done
}

# start_cluster ENGINE COUNT: a fresh engine and COUNT nodes sharing its log.
start_cluster() {
  local engine=$1 count=$2
  "start_$engine" || return 1
  start_hubs "$count" "$ENGINE_URL?stream=bench$RUN"
}

# start_nchan COUNT: COUNT nginx instances with Nchan sharing a fresh Redis.
start_nchan() {
  local count=$1 k port dir
  start_redis || return 1
  NODE_ARGS=(); SUB_ARGS=(); PUB_URLS=()
  for k in $(seq 0 $((count - 1))); do
    port=$((HUB_BASE + k))
    dir="$WORK/nginx-$RUN-$k"
    nchan_config "$dir" "  nchan_redis_url \"$ENGINE_URL\";
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = /events {
      nchan_subscriber eventsource;
      nchan_channel_id \$arg_topic;
      nchan_use_redis on;
    }
    location = /pub {
      nchan_publisher;
      nchan_channel_id \$arg_id;
      nchan_use_redis on;
    }
  }"
    nginx -p "$dir" -c "$dir/nginx.conf" > "$dir/stderr.log" 2>&1 &
    PIDS_STARTED+=($!)
    NODE_ARGS+=(--node "$!")
    SUB_ARGS+=(--subscribe-url "http://127.0.0.1:$port/events?topic={topic}")
    PUB_URLS+=("http://127.0.0.1:$port/pub?id={topic}")
    wait_port "$port" || return 1
  done
}

FAILED=0
SKIPPED=0
# measure LABEL MEASURE [tidings-bench cluster flags]: one run against what
# was just started; stops everything afterwards.
measure() {
  local label=$1 what=$2 method=mercure
  shift 2
  [[ "$label" == nchan* ]] && method=nchan
  log "$what: $label"
  local engine=()
  [ -n "${ENGINE_PID:-}" ] && engine=(--engine "$ENGINE_PID")
  if ! "$BENCH" cluster --label "$label" --measure "$what" \
      "${NODE_ARGS[@]}" "${engine[@]}" --with-children \
      --publish "$method" --jwt-key "$JWT_KEY" \
      --settle "$SETTLE" --drain "$DRAIN" --duration "$DURATION" "$@" >> "$RESULTS"; then
    if [[ "$label" == tidings* ]]; then FAILED=1; fi
  fi
  stop_all
  ENGINE_PID=
  RUN=$((RUN + 1))
}
not_started() { # label measure
  loud "$1 did not start; its logs:"
  tail -n 15 "$WORK"/hub-"$RUN"-*.log "$WORK"/*-"$RUN"/*.log "$WORK"/nginx-"$RUN"-*/*.log 2>/dev/null >&2 || true
  printf '{"label":"%s","measure":"%s","ok":false,"reason":"did not start"}\n' "$1" "$2" >> "$RESULTS"
  stop_all
  ENGINE_PID=
  RUN=$((RUN + 1))
  if [[ "$1" == tidings* ]]; then FAILED=1; fi
}

USABLE=()
for engine in ${ENGINES//,/ }; do
  if ! engine_installed "$engine"; then
    loud "SKIPPING $engine: its server is not installed"
    SKIPPED=1
    continue
  fi
  # Does this tidings have the engine yet? One node, started and stopped.
  ENGINE_PID=
  if start_cluster "$engine" 1; then
    USABLE+=("$engine")
  else
    loud "SKIPPING $engine: tidings does not start with it:"
    tail -n 5 "$WORK"/hub-"$RUN"-*.log >&2 || true
    SKIPPED=1
  fi
  stop_all
  RUN=$((RUN + 1))
done
label_of() { case "$1" in redis) echo Redis ;; nats) echo NATS ;; esac; }

for what in ${MEASURES//,/ }; do
  case "$what" in
    subscribers)
      holders=$(( (SUBS + PER_HOLDER - 1) / PER_HOLDER ))
      for engine in "${USABLE[@]}"; do
        label="tidings, $(label_of "$engine"), $NODES nodes"
        start_cluster "$engine" "$NODES" || { not_started "$label" "$what"; continue; }
        measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
          --subs "$SUBS" --holders "$holders" --rate "$FANOUT_RATE" --publishers 1 \
          --setup-timeout 300
      done ;;
    latency)
      label="tidings, 1 node, memory history"
      ENGINE_PID=
      start_hubs 1 memory || { not_started "$label" "$what"; continue; }
      measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
        --subs "$LATENCY_SUBS" --topics "$LATENCY_TOPICS" --rate "$LATENCY_RATE"
      label="tidings, 1 node, redb (immediate)"
      mkdir -p "$WORK/redb-$RUN"
      start_hubs 1 redb --data-dir "$WORK/redb-$RUN" --durability immediate \
        || { not_started "$label" "$what"; continue; }
      measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
        --subs "$LATENCY_SUBS" --topics "$LATENCY_TOPICS" --rate "$LATENCY_RATE"
      for engine in "${USABLE[@]}"; do
        label="tidings, $(label_of "$engine"), 3 nodes"
        start_cluster "$engine" 3 || { not_started "$label" "$what"; continue; }
        measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
          --subs "$LATENCY_SUBS" --topics "$LATENCY_TOPICS" --rate "$LATENCY_RATE"
      done ;;
    publish)
      for round in $(seq "$ROUNDS"); do
        for publishers in $PUBLISHERS; do
          label="tidings, 1 node, redb (immediate)"
          ENGINE_PID=
          mkdir -p "$WORK/redb-$RUN"
          start_hubs 1 redb --data-dir "$WORK/redb-$RUN" --durability immediate \
            || { not_started "$label" "$what"; continue; }
          measure "$label" "$what" --publish-url "${PUB_URLS[0]}" \
            --rate 0 --publishers "$publishers" --topics 16
          for engine in "${USABLE[@]}"; do
            label="tidings, $(label_of "$engine"), $PUBLISH_NODES nodes"
            start_cluster "$engine" "$PUBLISH_NODES" || { not_started "$label" "$what"; continue; }
            urls=(); for url in "${PUB_URLS[@]}"; do urls+=(--publish-url "$url"); done
            measure "$label" "$what" "${urls[@]}" --rate 0 --publishers "$publishers" --topics 16
          done
        done
      done ;;
    follow)
      label="tidings, 1 node, memory history"
      ENGINE_PID=
      if start_hubs 1 memory; then
        measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
          --subs 1 --rate "$FOLLOW_RATE"
      else
        not_started "$label" "$what"
      fi
      for engine in "${USABLE[@]}"; do
        for count in $FOLLOW_NODES; do
          label="tidings, $(label_of "$engine"), $count node$([ "$count" = 1 ] || echo s)"
          start_cluster "$engine" "$count" || { not_started "$label" "$what"; continue; }
          measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
            --subs "$count" --rate "$FOLLOW_RATE"
        done
      done ;;
    peer)
      label="tidings, 1 node, memory history"
      ENGINE_PID=
      if start_hubs 1 memory; then
        measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
          --subs "$PEER_SUBS" --rate "$PEER_RATE" --topic-prefix bench-cluster-
      else
        not_started "$label" "$what"
      fi
      if [[ " ${USABLE[*]} " == *" redis "* ]]; then
        label="tidings, Redis, 2 nodes"
        if start_cluster redis 2; then
          measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
            --subs "$PEER_SUBS" --rate "$PEER_RATE" --topic-prefix bench-cluster-
        else
          not_started "$label" "$what"
        fi
      fi
      if command -v nginx >/dev/null && [ -f "$NCHAN_MODULE" ] && command -v redis-server >/dev/null; then
        label="nchan, Redis, 2 nginx"
        start_nchan 2 || { not_started "$label" "$what"; continue; }
        measure "$label" "$what" "${SUB_ARGS[@]}" --publish-url "${PUB_URLS[0]}" \
          --subs "$PEER_SUBS" --rate "$PEER_RATE" --topic-prefix bench-cluster-
      else
        loud "SKIPPING nchan: nginx, its Nchan module or redis-server is not installed"
        SKIPPED=1
      fi ;;
    *) loud "unknown measure $what"; exit 2 ;;
  esac
done

# ---- the tables -----------------------------------------------------------------

MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
COMMAND=bench/cluster.sh
[ "$SMOKE" = 1 ] && COMMAND="$COMMAND --smoke"
NOTES=(
  --note "Machine: $(nproc) cores, ${MODEL:-unknown CPU}, $MEM of memory; open-file limit $NOFILE per process; load average before the tables $(cut -d' ' -f1-3 /proc/loadavg)."
  --note "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $COMMAND: engines ${USABLE[*]:-none}; Redis with appendfsync $REDIS_FSYNC, NATS JetStream on file storage; $DURATION s of publishing per run."
)
if [ -n "$OUT_DOC" ]; then
  OUT=$OUT_DOC
  cp "$DOC" "$OUT"
elif [ "$SMOKE" = 1 ]; then
  OUT="$RESULTS_DIR/benchmarks-cluster-smoke.md"
  cp "$DOC" "$OUT"
else
  OUT=$DOC
fi
"$BENCH" cluster-table --results "$RESULTS" --doc "$OUT" "${NOTES[@]}"
log "results: $RESULTS; tables: $OUT"
if [ "$SKIPPED" != 0 ] && [ "${TIDINGS_TEST_REQUIRE_ALL:-0}" = 1 ]; then
  loud "some engines or peers were skipped and TIDINGS_TEST_REQUIRE_ALL=1"
  FAILED=1
fi
if [ "$FAILED" != 0 ]; then
  loud "some tidings runs FAILED (lost or duplicated events, or nodes that did not start); see above"
  exit 1
fi

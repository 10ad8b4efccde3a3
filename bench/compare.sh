#!/usr/bin/env bash
# Runs tidings and its peers through the same load generator and scenarios,
# one server at a time on loopback, and writes the comparison table into
# docs/benchmarks.md.
#
#   bench/compare.sh            full run: installs missing peers, writes docs/benchmarks.md
#   bench/compare.sh --smoke    tiny sizes, a few seconds per scenario, for CI;
#                               skips peers that are not installed; leaves docs alone
#
# Sizes can be changed with the flags listed by --help. Results (one JSON
# line per server and scenario) go to bench/results/. Exits non-zero if a
# tidings run lost or duplicated events, or a server could not be started;
# a peer's own failures (lost events, refused subscriptions) are reported
# in the table and warned about. With TIDINGS_TEST_REQUIRE_ALL=1, a peer
# that is not installed is a failure too.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. "$ROOT/bench/nchan.sh"

SMOKE=0
PORT=18080
ALSO=()
INSTALL=auto
SERVERS="tidings,naive-axum,node,next-route,nchan,pushpin"
SCENARIOS="idle,fanout,highrate,light-wide,light-fast,topics,patterns,replay,h2,h3,ws-idle,ws-fanout"
SUBS=10000           # idle, fanout and h2 subscribers
FANOUT_RATE=20       # events/s in fanout and h2 (10,000 x 20 = 200,000 deliveries/s offered)
# highrate: a log stream or live metrics, many events/s to a moderate audience.
HIGH_SUBS=1000
HIGH_RATE=1000
HIGH_PUBLISHERS=16   # enough connections that the publishing side is not the limit
# The lighter fan-outs, where latency is the figure: a wide one and a fast one.
LIGHT_WIDE_SUBS=10000
LIGHT_WIDE_RATE=5
LIGHT_FAST_SUBS=1000
LIGHT_FAST_RATE=100
TOPIC_SUBS=10000     # topics: one subscriber per topic
TOPIC_RATE=5000      # events/s spread over the topics
PATTERN_SUBS=2000    # patterns: half URL patterns, half URI templates
PATTERN_RATE=5000
REPLAY_SUBS=1000     # clients reconnecting at once
BEHIND=1000          # events each of them missed
H2_CONNECTIONS=100
DURATION=5           # seconds of publishing
# New subscriptions in flight at once. Pushpin answers 502 to part of a
# burst of 256 (its proxy-to-origin path drops requests), so every server
# gets the same, lower figure.
CONNECT_CONCURRENCY=100
SETTLE=1
DRAIN=5
DOC="$ROOT/docs/benchmarks.md"
# An HMAC secret of 32 bytes or more, as the hub recommends.
JWT_KEY="tidings-bench-$(date +%s)-0123456789abcdef"

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF

Options (defaults in brackets):
  --smoke                 tiny sizes for CI
  --install / --no-install  install missing peers with apt-get [full run: yes, smoke: no]
  --servers LIST          [$SERVERS]
  --scenarios LIST        [$SCENARIOS]
  --subs N                idle/fanout/h2/h3 subscribers [$SUBS]
  --fanout-rate R         [$FANOUT_RATE]
  --high-subs N           highrate subscribers [$HIGH_SUBS]
  --high-rate R           [$HIGH_RATE]
  --light-wide-subs N     [$LIGHT_WIDE_SUBS]
  --light-wide-rate R     [$LIGHT_WIDE_RATE]
  --light-fast-subs N     [$LIGHT_FAST_SUBS]
  --light-fast-rate R     [$LIGHT_FAST_RATE]
  --topic-subs N          [$TOPIC_SUBS]
  --topic-rate R          [$TOPIC_RATE]
  --pattern-subs N        [$PATTERN_SUBS]
  --pattern-rate R        [$PATTERN_RATE]
  --replay-subs N         [$REPLAY_SUBS]
  --behind N              [$BEHIND]
  --h2-connections K      connections in h2 and h3 [$H2_CONNECTIONS]
  --duration S            [$DURATION]
  --port P               where servers listen (P and P + 1) [$PORT]
  --also NAME=PATH        also run another tidings binary as server NAME (before/after
                          comparisons in one run); repeatable
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --install) INSTALL=yes ;;
    --no-install) INSTALL=no ;;
    --servers) SERVERS=$2; shift ;;
    --scenarios) SCENARIOS=$2; shift ;;
    --subs) SUBS=$2; shift ;;
    --fanout-rate) FANOUT_RATE=$2; shift ;;
    --high-subs) HIGH_SUBS=$2; shift ;;
    --high-rate) HIGH_RATE=$2; shift ;;
    --light-wide-subs) LIGHT_WIDE_SUBS=$2; shift ;;
    --light-wide-rate) LIGHT_WIDE_RATE=$2; shift ;;
    --light-fast-subs) LIGHT_FAST_SUBS=$2; shift ;;
    --light-fast-rate) LIGHT_FAST_RATE=$2; shift ;;
    --topic-subs) TOPIC_SUBS=$2; shift ;;
    --topic-rate) TOPIC_RATE=$2; shift ;;
    --pattern-subs) PATTERN_SUBS=$2; shift ;;
    --pattern-rate) PATTERN_RATE=$2; shift ;;
    --replay-subs) REPLAY_SUBS=$2; shift ;;
    --behind) BEHIND=$2; shift ;;
    --h2-connections) H2_CONNECTIONS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --port) PORT=$2; shift ;;
    --also) ALSO+=("$2"); SERVERS="$SERVERS,${2%%=*}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$SMOKE" = 1 ]; then
  SUBS=200; FANOUT_RATE=20
  HIGH_SUBS=50; HIGH_RATE=200
  LIGHT_WIDE_SUBS=200; LIGHT_WIDE_RATE=5
  LIGHT_FAST_SUBS=50; LIGHT_FAST_RATE=50
  TOPIC_SUBS=200; TOPIC_RATE=200
  PATTERN_SUBS=200; PATTERN_RATE=200
  REPLAY_SUBS=50; BEHIND=1000
  H2_CONNECTIONS=10
  DURATION=1; SETTLE=0.3; DRAIN=3
fi
[ "$INSTALL" = auto ] && { [ "$SMOKE" = 1 ] && INSTALL=no || INSTALL=yes; }

# Every subscription is a file descriptor, in this script's children too.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

log() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
loud() { printf '\n\033[1;33m!!!!! %s\033[0m\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/tidings-compare.XXXXXX)
RESULTS_DIR="$ROOT/bench/results"
mkdir -p "$RESULTS_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$RESULTS_DIR/$([ "$SMOKE" = 1 ] && echo smoke || echo full)-$STAMP.jsonl"
: > "$RESULTS"

SERVER_PIDS=()
stop_server() {
  local pid port
  for pid in "${SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    # Bounded wait, then force.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
  # Some servers (Pushpin) stop their children asynchronously; a survivor
  # sharing the port with the next server would take half its connections.
  for port in "$PORT" $((PORT + 1)) 5561; do
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
      sleep 0.1
    done
  done
}
cleanup() { stop_server; rm -rf "$WORK"; }
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

record() { # server scenario status reason
  printf '{"server":"%s","scenario":"%s","status":"%s","reason":"%s"}\n' "$1" "$2" "$3" "$4" >> "$RESULTS"
}

APT_UPDATED=0
apt_install() {
  [ "$INSTALL" = yes ] || return 1
  command -v apt-get >/dev/null || return 1
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >&2 || return 1
    APT_UPDATED=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ---- building ---------------------------------------------------------------

# The binaries are copied out of target/: another build in the same tree
# must not swap them in the middle of a run.
mkdir -p "$WORK/bin"
log "building tidings-bench and naive-axum (release)"
cargo build --release -q -p tidings-bench >&2
cp "$ROOT/target/release/tidings-bench" "$ROOT/target/release/naive-axum" "$WORK/bin/"
BENCH="$WORK/bin/tidings-bench"
NAIVE="$WORK/bin/naive-axum"

TIDINGS_OK=0
if [[ ",$SERVERS," == *,tidings,* ]]; then
  log "building tidings (release)"
  if cargo build --release -q --bin tidings >&2; then
    cp "$ROOT/target/release/tidings" "$WORK/bin/"
    TIDINGS_OK=1
  else
    loud "tidings does not build: its column will say skipped"
  fi
fi

# ---- servers ------------------------------------------------------------------
# Each start_<server> starts the server for one scenario, sets SERVER_PIDS
# and the variables the load generator needs, and fails if it cannot run.

# Servers listen on PORT (and PORT + 1); see --port.

start_tidings() {
  local tidings=${1:-"$WORK/bin/tidings"} history=() http3=()
  # In-memory history is the default; name it where the flag exists.
  "$tidings" serve --help 2>/dev/null | grep -q -- '--history' && history=(--history memory)
  # The h3 scenario: TLS with the development certificate, and HTTP/3.
  [ -n "${HTTP3:-}" ] && http3=(--tls-self-signed --http3)
  "$tidings" serve --listen "127.0.0.1:$PORT" --jwt-key "$JWT_KEY" "${history[@]}" "${http3[@]}" \
    > "$WORK/tidings.log" 2>&1 &
  SERVER_PIDS=($!)
  SUB_URL="http://127.0.0.1:$PORT/.well-known/mercure?topic={topic}"
  PATTERN_URL="http://127.0.0.1:$PORT/.well-known/mercure?match_urlpattern={topic}"
  H2_URL=$SUB_URL
  WS_URL="ws://127.0.0.1:$PORT/.well-known/mercure"
  WS_SUBSCRIBE='{"type":"subscribe","subscription":"s","match":"{topic}"}'
  H3_URL="https://127.0.0.1:$PORT/.well-known/mercure?topic={topic}"
  PUB_METHOD=mercure
  PUB_URL="http://127.0.0.1:$PORT/.well-known/mercure"
  PIDS=$!
  wait_port "$PORT"
}

start_naive_axum() {
  "$NAIVE" "127.0.0.1:$PORT" > "$WORK/naive-axum.log" 2>&1 &
  SERVER_PIDS=($!)
  SUB_URL="http://127.0.0.1:$PORT/events?topic={topic}"
  H2_URL=$SUB_URL
  WS_URL="ws://127.0.0.1:$PORT/ws?topic={topic}"
  WS_SUBSCRIBE=
  PUB_METHOD=post
  PUB_URL="http://127.0.0.1:$PORT/publish?topic={topic}"
  PIDS=$!
  wait_port "$PORT"
}

start_node() {
  node "$ROOT/bench/peers/node-sse.js" "$PORT" > "$WORK/node.log" 2>&1 &
  SERVER_PIDS=($!)
  SUB_URL="http://127.0.0.1:$PORT/events?topic={topic}"
  H2_URL=
  PUB_METHOD=post
  PUB_URL="http://127.0.0.1:$PORT/publish?topic={topic}"
  PIDS=$!
  wait_port "$PORT"
}

# The seed's SSE route handler in Next.js (bench/peers/next-route), on the
# `next` that `npm ci` at the repository root installs; built once per run.
NEXT_BIN="$ROOT/node_modules/next/dist/bin/next"
NEXT_BUILT=0
start_next_route() {
  local app="$ROOT/bench/peers/next-route"
  if [ "$NEXT_BUILT" = 0 ]; then
    NEXT_TELEMETRY_DISABLED=1 node "$NEXT_BIN" build "$app" > "$WORK/next-route-build.log" 2>&1 || return 1
    NEXT_BUILT=1
  fi
  NEXT_TELEMETRY_DISABLED=1 node "$NEXT_BIN" start "$app" --port "$PORT" --hostname 127.0.0.1 \
    > "$WORK/next-route.log" 2>&1 &
  SERVER_PIDS=($!)
  SUB_URL="http://127.0.0.1:$PORT/events?topic={topic}"
  H2_URL=
  PUB_METHOD=post
  PUB_URL="http://127.0.0.1:$PORT/publish?topic={topic}"
  PIDS=$!
  wait_port "$PORT"
}

start_nchan() {
  local dir="$WORK/nginx"
  nchan_config "$dir" "  server {
    listen 127.0.0.1:$PORT backlog=4096;
    include $dir/locations.conf;
  }
  server {
    listen 127.0.0.1:$((PORT + 1)) http2 backlog=4096;
    include $dir/locations.conf;
  }"
  cat > "$dir/locations.conf" <<'EOF'
location = /events {
  nchan_subscriber eventsource;
  nchan_channel_id $arg_topic;
}
location = /pub {
  nchan_publisher;
  nchan_channel_id $arg_id;
}
EOF
  nginx -p "$dir" -c "$dir/nginx.conf" > "$dir/stderr.log" 2>&1 &
  SERVER_PIDS=($!)
  SUB_URL="http://127.0.0.1:$PORT/events?topic={topic}"
  H2_URL="http://127.0.0.1:$((PORT + 1))/events?topic={topic}"
  PUB_METHOD=nchan
  PUB_URL="http://127.0.0.1:$PORT/pub?id={topic}"
  PIDS=$!
  wait_port "$PORT"
}

start_pushpin() {
  local dir="$WORK/pushpin" origin=$((PORT + 1))
  mkdir -p "$dir/run" "$dir/log"
  node "$ROOT/bench/peers/pushpin-origin.js" "$origin" > "$dir/origin.log" 2>&1 &
  local origin_pid=$!
  SERVER_PIDS=($origin_pid)
  wait_port "$origin" || return 1
  echo "* 127.0.0.1:$origin" > "$dir/routes"
  # The packaged configuration, moved to a private run directory, bound to
  # loopback, with its own zurl (the packaged one expects a system-wide zurl
  # service for requests to the origin), and with the handler's publish rate
  # limit (2,500 messages/s by default) lifted so it does not cap fan-out.
  local zurl="ipc://$dir/run/pushpin-zurl"
  sed -e "s|^rundir=.*|rundir=$dir/run|" \
      -e "s|^services=.*|services=condure,zurl,pushpin-proxy,pushpin-handler|" \
      -e "s|^\[proxy\]|[proxy]\nzurl_out_specs=$zurl-in\nzurl_out_stream_specs=$zurl-in-stream\nzurl_in_specs=$zurl-out|" \
      -e "s|^logdir=.*|logdir=$dir/log|" \
      -e "s|^http_port=.*|http_port=127.0.0.1:$PORT|" \
      -e "s|^routesfile=.*|routesfile=$dir/routes|" \
      -e "s|^client_maxconn=.*|client_maxconn=$NOFILE|" \
      -e "s|^message_rate=.*|message_rate=10000000|" \
      -e "s|^message_hwm=.*|message_hwm=10000000|" \
      -e "s|^updates_check=.*|updates_check=off|" \
      /etc/pushpin/pushpin.conf > "$dir/pushpin.conf"
  pushpin --config "$dir/pushpin.conf" > "$dir/stderr.log" 2>&1 &
  SERVER_PIDS=($! $origin_pid)
  SUB_URL="http://127.0.0.1:$PORT/events?topic={topic}"
  H2_URL=
  PUB_METHOD=pushpin
  PUB_URL="http://127.0.0.1:5561/publish/"
  PIDS="$!,$origin_pid"
  wait_port "$PORT" && wait_port 5561 || return 1
  # Its listening port opens before the proxy can reach the origin; until
  # then subscriptions get 500. Wait for one to be held open.
  for _ in $(seq 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.5 \
        "http://127.0.0.1:$PORT/events?topic=ready")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# The binary of an extra tidings given with --also, if $1 is one.
also_bin() {
  local entry
  for entry in "${ALSO[@]}"; do
    [ "${entry%%=*}" = "$1" ] && { echo "${entry#*=}"; return 0; }
  done
  return 1
}

available() { # server -> 0 if it can run here, installing it if allowed
  also_bin "$1" >/dev/null && return 0
  case "$1" in
    tidings) [ "$TIDINGS_OK" = 1 ] ;;
    naive-axum) [ -x "$NAIVE" ] ;;
    node) command -v node >/dev/null || apt_install nodejs ;;
    next-route) command -v node >/dev/null && [ -f "$NEXT_BIN" ] ;;
    nchan)
      { command -v nginx >/dev/null && [ -f "$NCHAN_MODULE" ]; } \
        || apt_install nginx libnginx-mod-nchan ;;
    pushpin)
      { { command -v pushpin >/dev/null && [ -f /etc/pushpin/pushpin.conf ]; } \
          || apt_install pushpin; } \
        && { command -v node >/dev/null || apt_install nodejs; } \
        && { command -v curl >/dev/null || apt_install curl; } ;;
    *) return 1 ;;
  esac
}

supports() { # server scenario -> 0 if the server has the feature
  # HTTP/3 is measured on this tidings only (beside its h2 figures).
  [ "$2" = h3 ] && { [ "$1" = tidings ]; return; }
  also_bin "$1" >/dev/null && return 0
  case "$2" in
    patterns|replay) [ "$1" = tidings ] ;;
    h2) [ "$1" = tidings ] || [ "$1" = naive-axum ] || [ "$1" = nchan ] ;;
    ws-*) [ "$1" = tidings ] || [ "$1" = naive-axum ] ;;
    *) return 0 ;;
  esac
}

# ---- running ------------------------------------------------------------------

# System calls per delivery, where perf may trace them (root, linux-perf).
SYSCALLS=()
if perf stat -e syscalls:sys_enter_writev true >/dev/null 2>&1; then
  SYSCALLS=(--count-syscalls)
else
  loud "perf cannot count system calls here: the write and futex counts are left out"
fi

FAILED=0
PEER_FAILED=0
run_one() { # server scenario
  local server=$1 scenario=$2 args kind=$2 start
  args=(--rate 0 --duration 0)
  case "$scenario" in
    idle) args=(--subs "$SUBS" --rate 0 --duration 0) ;;
    fanout) args=(--subs "$SUBS" --rate "$FANOUT_RATE" --duration "$DURATION") ;;
    highrate) kind=fanout
      args=(--subs "$HIGH_SUBS" --rate "$HIGH_RATE" --duration "$DURATION" --publishers "$HIGH_PUBLISHERS") ;;
    light-wide) kind=fanout
      args=(--subs "$LIGHT_WIDE_SUBS" --rate "$LIGHT_WIDE_RATE" --duration "$DURATION") ;;
    light-fast) kind=fanout
      args=(--subs "$LIGHT_FAST_SUBS" --rate "$LIGHT_FAST_RATE" --duration "$DURATION") ;;
    h2) args=(--subs "$SUBS" --rate "$FANOUT_RATE" --duration "$DURATION" --connections "$H2_CONNECTIONS") ;;
    ws-idle) kind=idle
      args=(--subs "$SUBS" --rate 0 --duration 0) ;;
    ws-fanout) kind=fanout
      args=(--subs "$SUBS" --rate "$FANOUT_RATE" --duration "$DURATION") ;;
    h3) args=(--subs "$SUBS" --rate 0 --duration 0 --connections "$H2_CONNECTIONS") ;;
    topics) args=(--subs "$TOPIC_SUBS" --rate "$TOPIC_RATE" --duration "$DURATION") ;;
    patterns) args=(--subs "$PATTERN_SUBS" --rate "$PATTERN_RATE" --duration "$DURATION") ;;
    replay) args=(--subs "$REPLAY_SUBS" --behind "$BEHIND" --rate 0) ;;
  esac
  # Another process on the port would take the load generator's connections.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    loud "port $PORT is already taken by another process: $server / $scenario not run (see --port)"
    record "$server" "$scenario" FAILED "port $PORT taken by another process"
    FAILED=1
    return
  fi
  local also
  if also=$(also_bin "$server"); then
    start=(start_tidings "$also")
  else
    start=("start_${server//-/_}")
  fi
  HTTP3=; [ "$scenario" = h3 ] && HTTP3=1
  if ! "${start[@]}"; then
    loud "$server did not start; see its log below"
    tail -n 20 "$WORK"/*.log "$WORK"/*/*.log 2>/dev/null >&2 || true
    stop_server
    record "$server" "$scenario" FAILED "server did not start"
    FAILED=1
    return
  fi
  local url=$SUB_URL
  [ "$scenario" = h2 ] && url=$H2_URL
  local ws=()
  if [[ "$scenario" == ws-* ]]; then
    url=$WS_URL
    [ -n "$WS_SUBSCRIBE" ] && ws=(--ws-subscribe "$WS_SUBSCRIBE")
  fi
  [ "$scenario" = h3 ] && url=$H3_URL
  log "$server / $scenario"
  if ! "$BENCH" run --server "$server" --scenario "$kind" --label "$scenario" "${SYSCALLS[@]}" \
      --subscribe-url "$url" ${PATTERN_URL:+--pattern-url "$PATTERN_URL"} "${ws[@]}" \
      --publish "$PUB_METHOD" --publish-url "$PUB_URL" --jwt-key "$JWT_KEY" \
      --pids "$PIDS" --with-children \
      --connect-concurrency "$CONNECT_CONCURRENCY" \
      --settle "$SETTLE" --drain "$DRAIN" "${args[@]}" >> "$RESULTS"; then
    # A peer losing events or refusing subscriptions is a finding about the
    # peer, shown as FAILED in the table; only tidings failing fails the run.
    if [ "$server" = tidings ] || also_bin "$server" >/dev/null; then FAILED=1; else PEER_FAILED=1; fi
  fi
  stop_server
  PATTERN_URL=
}

for server in ${SERVERS//,/ }; do
  if ! available "$server"; then
    loud "SKIPPING $server: not installed here (run without --smoke, or with --install, to install it)"
    for scenario in ${SCENARIOS//,/ }; do record "$server" "$scenario" skipped "not installed"; done
    [ "${TIDINGS_TEST_REQUIRE_ALL:-0}" = 1 ] && FAILED=1
    continue
  fi
  for scenario in ${SCENARIOS//,/ }; do
    if supports "$server" "$scenario"; then
      run_one "$server" "$scenario"
    else
      record "$server" "$scenario" n/a "no such feature"
    fi
  done
done

# ---- the table ---------------------------------------------------------------

MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
COMMAND=bench/compare.sh
[ "$SMOKE" = 1 ] && COMMAND="$COMMAND --smoke"
NOTES=(
  --note "Machine: $(nproc) cores, ${MODEL:-unknown CPU}, $MEM of memory; open-file limit $NOFILE per process."
  --note "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $COMMAND: idle, fanout and h2 with $SUBS subscribers (h2 over $H2_CONNECTIONS connections), fanout and h2 at $FANOUT_RATE events/s, highrate $HIGH_SUBS subscribers at $HIGH_RATE events/s over $HIGH_PUBLISHERS publishing connections, light-wide $LIGHT_WIDE_SUBS subscribers at $LIGHT_WIDE_RATE events/s, light-fast $LIGHT_FAST_SUBS subscribers at $LIGHT_FAST_RATE events/s, topics $TOPIC_SUBS subscribers at $TOPIC_RATE events/s, patterns $PATTERN_SUBS subscribers at $PATTERN_RATE events/s, $DURATION s of publishing; replay $REPLAY_SUBS clients each $BEHIND events behind; ws-idle and ws-fanout as idle and fanout, over WebSocket."
)
if [ "$SMOKE" = 1 ]; then
  OUT="$RESULTS_DIR/benchmarks-smoke.md"
  cp "$DOC" "$OUT"
else
  OUT=$DOC
fi
"$BENCH" table --results "$RESULTS" --doc "$OUT" "${NOTES[@]}"
log "results: $RESULTS; table: $OUT"
if [ "$PEER_FAILED" != 0 ]; then
  loud "some peer runs FAILED (the peer lost events or refused subscriptions); they are shown as FAILED in the table"
fi
if [ "$FAILED" != 0 ]; then
  loud "some runs FAILED (tidings lost or duplicated events, or a server could not run); see above"
  exit 1
fi
